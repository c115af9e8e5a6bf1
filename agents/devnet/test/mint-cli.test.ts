// `bazaar devnet mint` as a user runs it: --help, bad flags (exit 2), a FakeWallet mint that
// serves, mints at once (brr) and stops cleanly on SIGTERM with its data kept.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Wallet, sumProofs } from '@cashu/cashu-ts';
import { runBazaar } from './helpers/cli-process.ts';

t.test('--help and bad flags', async (t) => {
  const help = await runBazaar(['devnet', 'mint', '--help']).done;
  t.equal(help.code, 0);
  t.match(help.stdout, /--input-fee-ppk/);
  t.match(help.stdout, /--fake-wallet/);
  const bad = await runBazaar(['devnet', 'mint', '--input-fee-ppk=-1']).done;
  t.equal(bad.code, 2, 'usage error exits 2');
  t.match(bad.stderr, /--input-fee-ppk must be at least 0/);
});

t.test('a FakeWallet mint serves, mints at once, stops on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-mint-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const p = runBazaar(['devnet', 'mint', '--fake-wallet', '--port', '0', '--data', join(dir, 'mint'), '--input-fee-ppk', '0']);
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
