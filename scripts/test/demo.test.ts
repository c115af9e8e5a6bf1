// `npm run demo` as a newcomer runs it (self-contained: it starts `bazaar up` on free ports):
// a SandboxRun and a PatchGen paid after the buyer verified them, a dishonest PatchGen
// disputed and not paid, the same lie paid into a Cashu escrow, disputed and arbitrated (the
// market's arbiter replays the tests and rules for the buyer, who takes its escrow back),
// balances printed before and after — money moves only for verified work.
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// A whole market start plus four purchases through the CLI: minutes on a loaded 2-core box.
t.setTimeout(10 * 60_000);

t.test('npm run demo completes: verified work paid, the broken patch disputed, the escrowed one arbitrated', async (t) => {
  // stdout: the demo's headings and each purchase's summary; stderr: the live progress lines.
  const r = await new Promise<{ code: number; out: string; err: string }>((resolve) => {
    execFile(process.execPath, ['--import=tsx', 'scripts/demo.ts', '--self-contained'], { cwd: ROOT, env: { ...process.env, BAZAAR_PASSPHRASE: '', BAZAAR_DEMO_PASSPHRASE: '' }, timeout: 600_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout, err: stderr }));
  });
  t.equal(r.code, 0, r.code ? (r.out + r.err).slice(-3000) : 'exit 0');
  // 100 of the buyer's 100 000 sats were minted into ecash for the escrow case.
  t.match(r.out, /\$ bazaar buyer wallet --topup 100 [\s\S]*Balances before:\n\s+buyer\s+99900 sats[\s\S]*buyer\s+100 sats of ecash/);
  t.match(r.out, /=== 1\. SandboxRun[\s\S]*PAID\s+SandboxRun/, 'the SandboxRun is paid');
  t.match(r.out, /=== 2\. PatchGen from the local provider[\s\S]*PAID\s+PatchGen[\s\S]*ok   tests pass on our replay/, 'the good patch is verified, then paid');
  t.match(r.err, /verified: every check passed\n.*paying [\d.]+ sats? over lightning/, 'progress: verified, then paying');
  t.match(r.out, /=== 3\. PatchGen from a dishonest provider[\s\S]*DISPUTED\s+PatchGen[\s\S]*spent\s+0 sats[\s\S]*FAIL tests pass on our replay/, 'the broken patch is disputed, nothing spent');
  const paid = /The buyer paid ([\d.]+) sats, all to the honest provider \(\+([\d.]+)\)/.exec(r.out);
  t.ok(paid && paid[1] === paid[2] && Number(paid[1]) > 50, `what the buyer paid is what the provider received, to the millisat (${paid?.[1]})`);
  t.match(r.out, /the dishonest provider got 0/);
  t.match(r.out, /=== 4\. PatchGen from a dishonest provider, paid into a Cashu escrow[\s\S]*DISPUTED\s+PatchGen[\s\S]*FAIL tests pass on our replay/, 'the escrowed broken patch is disputed');
  t.match(r.out, /\$ bazaar arbiter cases --limit 1\n\n[0-9a-f]{16}…\s+5932\s+published\s+buyer · escrow → buyer/, "the arbiter's case: published, for the buyer, the escrow released to it");
  t.match(r.out, /Verdict [0-9a-f]{16}…: Our replay failed: test_exit_code/, 'the verdict says why');
  t.match(r.err, /redeemed \d+ sats of escrow an arbiter's verdict released to us/, 'the buyer redeems the release');
  const back = /ecash (\d+) → (\d+) sats/.exec(r.out);
  t.ok(back && Number(back[1]) - Number(back[2]) <= 5, `the escrow came back but for mint fees (${back?.[1]} → ${back?.[2]})`);
});
