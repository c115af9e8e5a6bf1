// `npm run demo` as a newcomer runs it (self-contained: it starts `bazaar up` on free ports):
// a SandboxRun and a PatchGen paid after the buyer verified them, a dishonest PatchGen
// disputed and not paid, balances printed before and after — money moves only for verified work.
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// A whole market start plus three purchases through the CLI: minutes on a loaded 2-core box.
t.setTimeout(10 * 60_000);

t.test('npm run demo completes: verified work paid, the broken patch disputed', async (t) => {
  // stdout: the demo's headings and each purchase's summary; stderr: the live progress lines.
  const r = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, ['--import=tsx', 'scripts/demo.ts', '--self-contained'], { cwd: ROOT, env: { ...process.env, BAZAAR_PASSPHRASE: '', BAZAAR_DEMO_PASSPHRASE: '' }, timeout: 600_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout, err: stderr }));
  });
  t.equal(r.code, 0, r.code ? (r.out + r.err).slice(-3000) : 'exit 0');
  t.match(r.out, /Balances before:\n\s+buyer\s+100000 sats/);
  t.match(r.out, /=== 1\. SandboxRun[\s\S]*PAID\s+SandboxRun/, 'the SandboxRun is paid');
  t.match(r.out, /=== 2\. PatchGen from the local provider[\s\S]*PAID\s+PatchGen[\s\S]*ok   tests pass on our replay/, 'the good patch is verified, then paid');
  t.match(r.err, /verified: every check passed\n.*paying [\d.]+ sats? over lightning/, 'progress: verified, then paying');
  t.match(r.out, /=== 3\. PatchGen from a dishonest provider[\s\S]*DISPUTED\s+PatchGen[\s\S]*spent\s+0 sats[\s\S]*FAIL tests pass on our replay/, 'the broken patch is disputed, nothing spent');
  const paid = /The buyer paid ([\d.]+) sats, all to the honest provider \(\+([\d.]+)\)/.exec(r.out);
  t.ok(paid && paid[1] === paid[2] && Number(paid[1]) > 50, `what the buyer paid is what the provider received, to the millisat (${paid?.[1]})`);
  t.match(r.out, /the dishonest provider got 0/);
});
