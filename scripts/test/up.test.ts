// `bazaar up` (npm start) as a user runs it: everything comes up, answers, and
// Ctrl-C (SIGINT) stops it cleanly with exit code 0.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bazaar.mjs', import.meta.url));

t.test('bazaar up runs the relay, the devnet wallets and the mint, and stops on SIGINT', async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'bazaar-up-'));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const child = spawn(process.execPath, [BIN, 'up', '--data', data, '--port', '0', '--mint-port', '0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  child.stderr.on('data', (b) => (out += b));
  const banner = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Press Ctrl-C to stop')) resolve(out);
    });
    exited.then((code) => reject(new Error(`exited early (${code}): ${out}`)));
  });
  const relayUrl = /relay\s+(ws:\/\/\S+)/.exec(banner)?.[1];
  const mintUrl = /mint\s+(http:\/\/\S+)/.exec(banner)?.[1];
  t.ok(relayUrl, 'banner names the relay');
  t.ok(mintUrl, 'banner names the mint');
  const info = (await (await fetch(relayUrl!.replace(/^ws/, 'http'), { headers: { Accept: 'application/nostr+json' } })).json()) as { supported_nips: number[] };
  t.ok(info.supported_nips.includes(1), 'relay answers NIP-11');
  const mintInfo = (await (await fetch(`${mintUrl}/v1/info`)).json()) as { nuts: Record<string, unknown> };
  t.ok(mintInfo.nuts, 'mint answers NUT-06 info');
  const uriFile = /customer\s+\d+ sats\s+NWC URI in (\S+)/.exec(banner)?.[1];
  t.ok(uriFile, 'customer wallet listed');
  t.equal(statSync(uriFile!).mode & 0o777, 0o600, 'NWC URI file is 0600');
  t.notMatch(banner, /nostr\+walletconnect:/, 'the banner never prints a secret URI');
  child.kill('SIGINT');
  t.equal(await exited, 0, 'clean exit on SIGINT');
});
