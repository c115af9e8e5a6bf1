// `bazaar up` (npm start) as a user runs it: everything comes up, answers, and
// Ctrl-C (SIGINT) stops it cleanly with exit code 0; on a machine without bubblewrap the
// provider is not started and the banner says how to install it; on a terminal the logs
// are readable lines (pino-pretty), not JSON.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const BIN = fileURLToPath(new URL('../bazaar.mjs', import.meta.url));

/** Starts `bazaar up` (optionally under a pseudo-terminal); resolves with the output up to the banner. */
function startUp(t: Test, args: string[], opts: { env?: NodeJS.ProcessEnv; tty?: boolean } = {}): Promise<{ banner: string; stop: () => Promise<number | null> }> {
  const data = mkdtempSync(join(tmpdir(), 'bazaar-up-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const argv = [process.execPath, BIN, 'up', '--data', data, '--port', '0', '--mint-port', '0', '--model-port', '0', '--git-port', '0', ...args];
  // util-linux `script` gives the command a terminal (stdout.isTTY) and copies its output to ours.
  // Either way the child dies with the test process (testkit die-with-parent; under `script`,
  // its death hangs up the terminal of `bazaar up`).
  const child = opts.tty
    ? spawn(...dieWithParent('script', ['-qfec', argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null']), { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, detached: true })
    : spawn(...dieWithParent(argv[0]!, argv.slice(1)), { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  child.stderr.on('data', (b) => (out += b));
  const banner = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Press Ctrl-C to stop')) resolve(out);
    });
    exited.then((code) => reject(new Error(`exited early (${code}): ${out}`)));
  });
  // Under `script` the whole session (script and bazaar) is signalled as one process group.
  const stop = async (): Promise<number | null> => {
    if (opts.tty) process.kill(-child.pid!, 'SIGINT');
    else child.kill('SIGINT');
    return exited;
  };
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return banner.then((b) => ({ banner: b, stop }));
}

t.test('bazaar up runs the relay, the devnet wallets and the mint, and stops on SIGINT', async (t) => {
  const { banner, stop } = await startUp(t, ['--log-level', 'warn']);
  const relayUrl = /relay\s+(ws:\/\/\S+)/.exec(banner)?.[1];
  const mintUrl = /mint\s+(http:\/\/\S+)/.exec(banner)?.[1];
  t.ok(relayUrl, 'banner names the relay');
  t.ok(mintUrl, 'banner names the mint');
  const info = (await (await fetch(relayUrl!.replace(/^ws/, 'http'), { headers: { Accept: 'application/nostr+json' } })).json()) as { supported_nips: number[] };
  t.ok(info.supported_nips.includes(1), 'relay answers NIP-11');
  const mintInfo = (await (await fetch(`${mintUrl}/v1/info`)).json()) as { nuts: Record<string, unknown> };
  t.ok(mintInfo.nuts, 'mint answers NUT-06 info');
  const uriFile = /buyer\s+\d+ sats\s+NWC URI in (\S+)/.exec(banner)?.[1];
  t.ok(uriFile, 'buyer wallet listed');
  t.equal(statSync(uriFile!).mode & 0o777, 0o600, 'NWC URI file is 0600');
  t.notMatch(banner, /nostr\+walletconnect:/, 'the banner never prints a secret URI');
  t.match(banner, /arbiter\s+npub1\S+\n\s+payment key 02[0-9a-f]{64} · replays kinds 5930, 5931, 5932, 5933/, 'the arbiter runs too');
  t.equal(await stop(), 0, 'clean exit on SIGINT');
});

t.test('without bubblewrap the provider is not started, and the banner says how to install it', async (t) => {
  // A PATH like a fresh machine's: every host tool but bwrap.
  const bin = mkdtempSync(join(tmpdir(), 'bazaar-nobwrap-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  for (const dir of ['/usr/local/bin', '/usr/bin', '/usr/sbin']) {
    for (const name of readdirSync(dir)) {
      if (name === 'bwrap') continue;
      try {
        symlinkSync(join(dir, name), join(bin, name));
      } catch {
        // the same name in an earlier directory wins, as on a PATH
      }
    }
  }
  const { banner, stop } = await startUp(t, ['--no-setup', '--log-level', 'warn'], { env: { ...process.env, PATH: bin } });
  t.match(banner, /provider\s+NOT STARTED: the sandbox \(bubblewrap\) is not usable: bubblewrap is not installed .*sudo apt-get install bubblewrap \(or sudo npm run setup\)/);
  t.notMatch(banner, /npub1/, 'no provider identity in the banner');
  const relayUrl = /relay\s+(ws:\/\/\S+)/.exec(banner)![1];
  // Nothing announces itself on the relay: no client is told there is a provider to post jobs to.
  const ws = new WebSocket(relayUrl);
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const events: unknown[] = [];
  await new Promise<void>((resolve) => {
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as unknown[];
      if (m[0] === 'EVENT') events.push(m[2]);
      if (m[0] === 'EOSE') resolve();
    });
    ws.send(JSON.stringify(['REQ', 'a', { kinds: [31990, 11998] }]));
  });
  ws.close();
  t.same(events, [], 'no announcement or heartbeat');
  t.equal(await stop(), 0, 'relay and devnet still run, and stop cleanly');
});

t.test('on a terminal the logs are readable lines, not JSON', async (t) => {
  const { banner: raw, stop } = await startUp(t, ['--log-level', 'info'], { tty: true });
  t.match(raw, /\x1b\[3\dm/, 'colored for the terminal');
  const banner = raw.replace(/\x1b\[[0-9;]*m/g, '');
  t.match(banner, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(bazaar\): relay listening$/m, 'pino-pretty lines');
  t.notMatch(banner, /^\{"level"/m, 'no JSON log lines');
  t.ok(banner.indexOf('relay listening') < banner.indexOf('Bazaar local market is running'), 'logs come before the banner');
  t.equal(await stop(), 0);
});
