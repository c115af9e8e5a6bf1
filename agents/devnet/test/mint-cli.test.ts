// `bazaar devnet mint` as a user runs it: --help, bad flags (exit 2), a FakeWallet mint that
// serves, mints at once (brr) and stops cleanly on SIGTERM with its data kept.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Wallet, sumProofs } from '@cashu/cashu-ts';

const BAZAAR = fileURLToPath(new URL('../../../scripts/bazaar.mjs', import.meta.url));

function run(args: string[]): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; kill: (s: NodeJS.Signals) => void; onLine: (re: RegExp) => Promise<string> } {
  const child = spawn(process.execPath, [BAZAAR, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAZAAR_LOG_LEVEL: 'warn' } });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of [...waiters]) {
      const m = stdout.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[1] ?? m[0]);
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    kill: (s) => child.kill(s),
    onLine: (re) =>
      new Promise((resolve, reject) => {
        const m = stdout.match(re);
        if (m) return resolve(m[1] ?? m[0]);
        waiters.push({ re, resolve });
        void done.then(() => reject(new Error(`exited before ${re}: ${stderr.slice(0, 400)}`)));
      }),
  };
}

t.test('--help and bad flags', async (t) => {
  const help = await run(['devnet', 'mint', '--help']).done;
  t.equal(help.code, 0);
  t.match(help.stdout, /--input-fee-ppk/);
  t.match(help.stdout, /--fake-wallet/);
  const bad = await run(['devnet', 'mint', '--input-fee-ppk=-1']).done;
  t.equal(bad.code, 2, 'usage error exits 2');
  t.match(bad.stderr, /--input-fee-ppk must be at least 0/);
});

t.test('a FakeWallet mint serves, mints at once, stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-mint-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const p = run(['devnet', 'mint', '--fake-wallet', '--port', '0', '--data', join(dir, 'mint'), '--input-fee-ppk', '0']);
  const url = await p.onLine(/mint listening on (http:\/\/\S+)/);
  const w = new Wallet(url, { unit: 'sat' });
  await w.loadMint();
  t.equal(w.getKeyset().fee, 0, 'input fee from the flag');
  const q = await w.createMintQuoteBolt11(21);
  const proofs = await w.mintProofsBolt11(21, q.quote);
  t.equal(sumProofs(proofs).toNumber(), 21, 'FakeWallet quotes are paid at once (brr)');
  w.mint.disconnectWebSocket();
  p.kill('SIGTERM');
  const res = await p.done;
  t.equal(res.code, 0, 'clean exit on SIGTERM');
  t.ok(existsSync(join(dir, 'mint', 'mint.lmdb')), 'data kept');
});
