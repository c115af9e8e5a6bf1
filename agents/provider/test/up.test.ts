// `bazaar up` (npm start) as a plain NIP-90 client sees it: post a 5930 job to the relay it
// prints, get `processing` and a result with a bolt11, pay it from the buyer wallet it
// prints, and the provider's earnings show it. Ctrl-C then stops everything with exit 0.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import { ProviderStore } from '../src/store.ts';
import { Customer, isFeedback, isResult, sandboxJob, waitFor } from './helpers.ts';

const BIN = fileURLToPath(new URL('../../../scripts/bazaar.mjs', import.meta.url));

t.test('bazaar up serves a plain NIP-90 client, pay-after-verify', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'bazaar-up-prov-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const child = spawn(...dieWithParent(process.execPath, [BIN, 'up', '--data', data, '--port', '0', '--mint-port', '0', '--model-port', '0', '--git-port', '0', '--log-level', 'warn']), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAZAAR_PASSPHRASE: '', BAZAAR_KDF_LOG_N: '' } });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  child.stderr.on('data', (b) => (out += b));
  const banner = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Press Ctrl-C to stop')) resolve(out);
    });
    void exited.then((code) => reject(new Error(`exited early (${code}): ${out}`)));
  });
  const relayUrl = /relay\s+(ws:\/\/\S+)/.exec(banner)?.[1];
  t.match(banner, /provider\s+npub1/, 'banner names the provider');
  t.match(banner, /kinds 5050, 5930, 5931, 5932, 5933 /, 'and the kinds it serves: every kind');
  const customerUriFile = /buyer\s+\d+ sats\s+NWC URI in (\S+)/.exec(banner)?.[1];
  t.ok(relayUrl && customerUriFile);

  const c = await new Customer(relayUrl!).ready();
  t.teardown(() => c.close());
  const job = sandboxJob(c, ['echo hello bazaar']);
  t.ok((await c.publish(job))[0], 'relay accepts the job');
  await c.waitEvent(isFeedback(job.id, 'processing'), 30_000, 'processing');
  const result = await c.waitEvent(isResult(job.id), 30_000, 'result');
  t.equal(JSON.parse(result.content).commands[0].stdout, 'hello bazaar\n');
  const amount = result.tags.find((x) => x[0] === 'amount');
  t.ok(amount?.[2]?.startsWith('lnbcrt'), 'result carries a devnet bolt11');

  const { NWCClient } = await loadNwcSdk();
  const wallet = new NWCClient({ nostrWalletConnectUrl: readFileSync(customerUriFile!, 'utf8').trim() });
  t.teardown(() => wallet.close());
  await wallet.payInvoice({ invoice: amount![2] });
  await waitFor(async () => {
    const s = ProviderStore.open(join(data, 'provider', 'db'));
    try {
      return s.get(job.id)?.state === 'settled';
    } finally {
      await s.close();
    }
  }, 20_000, 'the provider sees the payment');
  // The command the banner prints works as-is: a plain customer posts, gets the result, pays.
  const tryLine = /try\s+(node scripts\/bazaar\.mjs provider try .+)$/m.exec(banner)?.[1];
  t.ok(tryLine, 'the banner prints a command to try');
  const { execFile } = await import('node:child_process');
  const tried = await new Promise<{ code: number; out: string }>((resolve) => {
    const argv = tryLine!.split(/\s+/);
    execFile(process.execPath, argv.slice(1), { cwd: fileURLToPath(new URL('../../..', import.meta.url)), timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
  });
  t.equal(tried.code, 0, tried.out);
  t.match(tried.out, /feedback\s+processing/);
  t.match(tried.out, /hello from the bazaar sandbox/);
  t.match(tried.out, /paid/);
  child.kill('SIGINT');
  t.equal(await exited, 0, 'clean exit on SIGINT');
});
