// (4) The arbiter is killed (SIGKILL of a child process) after its decision is durable and before
// the verdict leaves: restarted, it publishes the same verdict — the same event id, the same one
// signature — and the winner redeems with it. Nothing was published before the crash.
import t from 'tap';
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { readKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { escrowPackageDigest, openEscrowRelease, xOnlyKey } from '@bazaar/dvm-kinds/market/escrow';
import { ArbiterStore } from '../src/store.ts';
import { PASSPHRASE, arbiterDir, escrowProvider, lyingBuyer, peer, runArbiter, runProvider, sampleRepo, startMarket, until } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./fixtures/arbiter-child.ts', import.meta.url));

t.test('(4) killed between deciding and publishing: the same verdict, one signature', async (t) => {
  const m = await startMarket(t);
  const repo = sampleRepo(t);
  const dataDir = await arbiterDir(m, { responseWindowSecs: 30 });
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const keys = await readKeystoreFile(`${dataDir}/keys.json`);
  const arbiterPaymentKey = '02' + xOnlyKey(keys.paymentPubkey);
  const watcher = peer(t, m);
  const verdicts: NostrEvent[] = [];
  watcher.pool.subscribe([{ kinds: [39301] }], (e) => verdicts.push(e));

  const child = spawn(...dieWithParent(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify({ dataDir, passphrase: PASSPHRASE })]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, signal) => resolve(signal)));
  t.teardown(() => void child.kill('SIGKILL'));
  await until('the child arbiter is serving', () => out.includes('ready'), 60_000);

  const prov = await runProvider(t, m, 'prov', escrowProvider(m, arbiterPaymentKey));
  const liar = await lyingBuyer(t, m, { provider: prov.identity.pubkey, arbiter: keys.pubkey, repo: repo.url, priceSats: 50 });
  await liar.dispute();
  const signal = await exited;
  t.equal(signal, 'SIGKILL', `the arbiter died right after deciding${out.includes('ready') ? '' : `: ${out.slice(0, 300)}`}`);
  const [none] = await watcher.pool.query([{ kinds: [39301], '#d': [liar.request.id] }], { timeoutMs: 5000 });
  t.equal(none, undefined, 'no verdict left the process before the crash');

  const store = ArbiterStore.open(`${dataDir}/db`, { readOnly: true });
  const stored = store.get(liar.request.id)!;
  await store.close();
  t.equal(stored.state, 'decided', 'the decision survived the crash');
  t.equal(stored.decision?.ruling, 'provider');
  t.ok(stored.verdict && stored.decision?.release, 'with its signed verdict and the digest of the one release');

  const arb = await runArbiter(t, m, { dataDir });
  const published = await until('the restarted arbiter publishes', () => (arb.arbiter.store.get(liar.request.id)?.state === 'published' ? arb.arbiter.store.get(liar.request.id) : undefined));
  t.equal(published.verdict?.id, stored.verdict?.id, 'the very verdict decided before the crash');
  t.equal(published.decision?.decidedAt, stored.decision?.decidedAt, 'not decided again');
  await until('the watcher sees the verdict', () => verdicts.length > 0);
  t.same([...new Set(verdicts.map((v) => v.id))], [stored.verdict!.id], 'one verdict event on the relay');
  // The release in it is the one signature, over the digest recorded with the decision.
  const rel = openEscrowRelease(stored.verdict!, prov.identity.secretKey);
  t.ok(rel.ok && rel.value, 'the release is sealed to the provider in the verdict');
  if (rel.ok && rel.value) t.equal(escrowPackageDigest(rel.value), stored.decision?.release?.digest, 'signed over the recorded digest');
  const settled = await until('the provider redeems with it', () => prov.provider.store.get(liar.request.id)?.state === 'settled');
  t.ok(settled, "the provider redeemed the escrow with the arbiter's one signature");
});
