// `bazaar arbiter` as a user runs it: the real CLI in child processes. --help and --json
// everywhere; init seals an identity and writes a config, refuses to overwrite; status and cases
// need no passphrase; `serve --json` against a real relay announces the arbiter (31990 handling
// disputes, 10019 with its payment key) and stops cleanly on SIGTERM.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { fileURLToPath } from 'node:url';
import { rmSync } from 'node:fs';
import { helpText } from '@bazaar/cli-kit/command';
import { parseArbiterAnnouncement } from '@bazaar/dvm-kinds/market/arbiter';
import { parsePaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import { arbiterCommand } from '../src/cli.ts';
import { PASSPHRASE, peer, startMarket, tempDir, until } from './helpers.ts';

const BAZAAR = fileURLToPath(new URL('../../../scripts/bazaar.mjs', import.meta.url));
const env = { BAZAAR_PASSPHRASE: PASSPHRASE, BAZAAR_KDF_LOG_N: '10', BAZAAR_LOG_LEVEL: 'warn' };
const bazaar = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, [BAZAAR, ...args], { env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });

t.test('help and --json on every command', async (t) => {
  for (const [name, load] of Object.entries(arbiterCommand.subcommands!)) {
    const text = helpText(await load(), `bazaar arbiter ${name}`);
    t.match(text, new RegExp(`^Usage: bazaar arbiter ${name}`), `${name} has help`);
    t.match(text, /--json/, `${name} takes --json`);
  }
  const top = await bazaar(['arbiter', '--help']);
  t.equal(top.code, 0);
  t.match(top.stdout, /init[\s\S]*serve[\s\S]*status[\s\S]*cases/);
  const bad = await bazaar(['arbiter', 'cases', '--state', 'maybe']);
  t.equal(bad.code, 2, 'a usage error');
  t.match(bad.stderr, /one of/);
});

t.test('init, status, cases; serve announces the arbiter', async (t) => {
  const m = await startMarket(t);
  const data = tempDir('bazaar-arb-cli-');
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const none = await bazaar(['arbiter', 'status', '--data', data]);
  t.equal(none.code, 1);
  t.match(none.stderr, /no arbiter at .* \(run 'bazaar arbiter init'\)/);

  const init = await bazaar(['arbiter', 'init', '--data', data, '--relay', m.relay.url, '--mint', m.mintUrl, '--response-window', '600', '--json']);
  t.equal(init.code, 0, init.stderr);
  const id = JSON.parse(init.stdout) as { pubkey: string; paymentPubkey: string };
  t.match(id, { pubkey: /^[0-9a-f]{64}$/, paymentPubkey: /^02[0-9a-f]{64}$/ });
  const again = await bazaar(['arbiter', 'init', '--data', data]);
  t.equal(again.code, 1);
  t.match(again.stderr, /refusing to overwrite/);

  const status = await bazaar(['arbiter', 'status', '--data', data, '--json']);
  t.match(JSON.parse(status.stdout), { pubkey: id.pubkey, paymentPubkey: id.paymentPubkey, running: false, responseWindowSecs: 600, cases: { open: 0, published: 0 } });
  const cases = await bazaar(['arbiter', 'cases', '--data', data]);
  t.equal(cases.stdout, 'no cases\n');

  const child = spawn(...dieWithParent(process.execPath, [BAZAAR, 'arbiter', 'serve', '--data', data, '--json', '--poll-ms', '200']), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  const started = await until('serve prints its start line', () => (out.includes('\n') ? JSON.parse(out.split('\n')[0]) as { pubkey: string; responseWindowSecs: number } : undefined), 60_000).catch((e: Error) => {
    throw new Error(`${e.message}: ${err.slice(0, 500)}`);
  });
  t.match(started, { pubkey: id.pubkey, paymentPubkey: id.paymentPubkey, responseWindowSecs: 600, kinds: [5930, 5931, 5932, 5933] });
  const w = peer(t, m);
  const ann = await until('the announcement', async () => (await w.pool.query([{ kinds: [31990], authors: [id.pubkey], '#k': ['39300'] }], { timeoutMs: 3000 }))[0]);
  const a = parseArbiterAnnouncement(ann);
  t.match(a.ok && a.value, { kinds: [5930, 5931, 5932, 5933], responseWindowSecs: 600, public: false }, 'a 31990 handling disputes');
  const [pi] = await w.pool.query([{ kinds: [10019], authors: [id.pubkey] }], { timeoutMs: 3000 });
  const p = parsePaymentInfo(pi);
  t.ok(p.ok && p.value.p2pkPubkey === id.paymentPubkey && p.value.mints[0].url === m.mintUrl, 'a 10019 with its payment key and mint');
  const running = await until('status sees it running', async () => {
    const s = JSON.parse((await bazaar(['arbiter', 'status', '--data', data, '--json'])).stdout) as { running: boolean; relaysConnected?: number };
    return s.running ? s : undefined;
  });
  t.equal(running.relaysConnected, 1);
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stopped cleanly');
});
