// The provider's side of a dispute, on a real relay with a real provider: a raw customer
// disputes a delivered SandboxRun naming an arbiter; the provider answers (39303: it stands by
// the result, restating the trajectory hash); the named arbiter asks for the trajectory (39304)
// and gets it in NIP-44 parts (39305) that hash to the result's `trajectory_sha256`; a stranger
// asking gets a refusal and nothing readable; a dispute by someone else is not answered.
import t from 'tap';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { buildDispute } from '@bazaar/dvm-kinds/market/dispute';
import { parseDisputeResponse } from '@bazaar/dvm-kinds/market/dispute-response';
import { assembleTrajectory, buildTrajectoryRequest, resultTrajectorySha256 } from '@bazaar/dvm-kinds/market/trajectory';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { Customer, logger, resultOrError, runProvider, sandboxJob, startMarket, waitFor } from './helpers.ts';

t.test('dispute answered, trajectory served to the named arbiter only', async (t) => {
  const m = await startMarket(t);
  const prov = await runProvider(t, m, { kinds: [5930] });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const req = sandboxJob(c, ['echo trajectory please', 'true'], [['p', prov.identity.pubkey]]);
  await c.publish(req);
  const result = await resultOrError(c, req.id);
  const committed = resultTrajectorySha256(result);
  t.ok(committed, 'the result commits to a trajectory');

  const arbiterSk = generateSecretKey();
  const arbiter = getPublicKey(arbiterSk);
  const pool = new RelayPool({ relays: [m.relay.url], logger });
  t.teardown(() => pool.close());
  const collected: NostrEvent[] = [];
  pool.subscribe([{ kinds: [39303, 39305], since: Math.floor(Date.now() / 1000) - 60 }], (e) => collected.push(e));

  // A stranger's "dispute" of the customer's job is not answered.
  const strangerSk = generateSecretKey();
  await pool.publishAny(finalizeEvent(buildDispute({ requestId: req.id, resultId: result.id, provider: prov.identity.pubkey, failedChecks: ['x'], evidenceSha256: sha256Hex('x') }), strangerSk) as NostrEvent, { timeoutMs: 5000 });
  // The customer's dispute, naming the arbiter.
  await c.publish(c.sign({ ...buildDispute({ requestId: req.id, resultId: result.id, provider: prov.identity.pubkey, arbiter, failedChecks: ['content.commands[0].stdout_sha256'], evidenceSha256: sha256Hex('evidence') }) }));
  const response = await waitFor(() => collected.find((e) => e.kind === 39303), 15_000, 'the dispute response');
  const r = parseDisputeResponse(response);
  t.ok(r.ok, 'the response parses');
  if (!r.ok) return;
  t.same([response.pubkey, r.value.position, r.value.buyer, r.value.arbiter, r.value.trajectorySha256], [prov.identity.pubkey, 'stand', c.pubkey, arbiter, committed]);
  t.equal(collected.filter((e) => e.kind === 39303).length, 1, "one answer: the stranger's dispute got none");

  // A stranger asks for the trajectory: refused, nothing encrypted to it.
  await pool.publishAny(finalizeEvent(buildTrajectoryRequest({ requestId: req.id, provider: prov.identity.pubkey, buyer: c.pubkey }), strangerSk) as NostrEvent, { timeoutMs: 5000 });
  const refusal = await waitFor(() => collected.find((e) => e.kind === 39305 && e.tags.some((x) => x[0] === 'p' && x[1] === getPublicKey(strangerSk))), 15_000, 'the refusal');
  const refused = assembleTrajectory([refusal], strangerSk);
  t.ok(refused.ok && refused.value.complete && 'refused' in refused.value, 'a refusal');
  t.equal(refusal.content, '', 'with nothing in it');

  // The named arbiter asks: parts encrypted to it, hash as committed in the result.
  await pool.publishAny(finalizeEvent(buildTrajectoryRequest({ requestId: req.id, provider: prov.identity.pubkey, buyer: c.pubkey }), arbiterSk) as NostrEvent, { timeoutMs: 5000 });
  const parts = await waitFor(() => {
    const mine = collected.filter((e) => e.kind === 39305 && e.tags.some((x) => x[0] === 'p' && x[1] === arbiter));
    const a = assembleTrajectory(mine, arbiterSk);
    return a.ok && a.value.complete ? a.value : undefined;
  }, 15_000, 'the trajectory');
  t.ok('text' in parts, 'served, not refused');
  if (!('text' in parts)) return;
  t.equal(parts.sha256, committed, "the log hashes to the result's trajectory_sha256");
  t.match(parts.text, /"step":"start"/, 'it is the job log');
  t.notOk(assembleTrajectory(collected.filter((e) => e.kind === 39305 && e.tags.some((x) => x[0] === 'p' && x[1] === arbiter)), strangerSk).ok, 'only the arbiter can read it');
});
