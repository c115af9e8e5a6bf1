// Intake and decide on real parts: targeting, malformed requests, expiry, cancellation,
// capacity overflow, rate limits and NIP-44 private jobs — each seen by a raw customer.
import t from 'tap';
import * as nip44 from 'nostr-tools/nip44';
import { getPublicKey } from 'nostr-tools/pure';
import { sealJobRequest } from '@bazaar/dvm-kinds/private';
import { parseFeedback } from '@bazaar/dvm-kinds/feedback';
import { Customer, isFeedback, isResult, runProvider, sandboxJob, startMarket, waitFor } from './helpers.ts';

const statusOf = (e: { tags: string[][] }) => e.tags.find((x) => x[0] === 'status')?.[1];
const errorCode = (e: { tags: string[][] }) => e.tags.find((x) => x[0] === 'error')?.[1];

t.test('targeting, malformed requests and private jobs', async (t) => {
  const m = await startMarket(t);
  const running = await runProvider(t, m);
  const pk = running.identity.pubkey;
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());

  // Addressed to someone else: never touched.
  const other = getPublicKey(new Uint8Array(32).fill(7));
  const elsewhere = sandboxJob(c, ['echo not for you'], [['p', other]]);
  await c.publish(elsewhere);
  // Malformed: no cmd, a bad time limit (an unknown param is ignored, not a problem).
  const bad = c.sign({ kind: 5930, tags: [['param', 'time_limit_secs', 'soon'], ['param', 'colour', 'blue']] });
  await c.publish(bad);
  const err = await c.waitEvent(isFeedback(bad.id, 'error'), 10_000, 'error feedback for the malformed request');
  const fb = parseFeedback(err);
  t.ok(fb.ok, 'error feedback parses');
  t.equal(errorCode(err), 'INVALID_PARAMETER');
  t.match(fb.ok ? fb.value.message : '', /cmd/, 'the problems name the missing cmd');
  t.notMatch(fb.ok ? fb.value.message : '', /colour/, 'an unknown param is not a problem (NIP-90: ignore what you do not know)');
  t.equal(running.provider.store.get(bad.id)?.state, 'rejected');

  // Private job (NIP-44) to this provider: input decrypted, result encrypted back.
  const tmpl = { kind: 5930, created_at: Math.floor(Date.now() / 1000), content: '', tags: [['param', 'cmd', 'echo secret-output'], ['param', 'time_limit_secs', '20']] };
  const sealed = sealJobRequest(tmpl, c.sk, pk);
  t.ok(sealed.ok);
  if (!sealed.ok) return;
  const priv = c.sign(sealed.value);
  t.notOk(priv.content.includes('secret-output'), 'the command is not visible on the relay');
  await c.publish(priv);
  const res = await c.waitEvent(isResult(priv.id), 20_000, 'private result');
  t.ok(res.tags.some((x) => x[0] === 'encrypted'), 'result marked encrypted');
  t.notOk(res.tags.some((x) => x[0] === 'request' || x[0] === 'i'), 'no plaintext request or inputs in the result');
  t.notOk(res.content.includes('secret-output'), 'result content is not plaintext');
  const plain = JSON.parse(nip44.v2.decrypt(res.content, nip44.v2.utils.getConversationKey(c.sk, pk))) as { commands: { stdout: string }[] };
  t.equal(plain.commands[0].stdout, 'secret-output\n', 'the customer decrypts the result');
  // A private job sealed to another provider is ignored like any request targeted elsewhere.
  const sealedOther = sealJobRequest({ ...tmpl, created_at: tmpl.created_at + 1 }, c.sk, other);
  const privOther = c.sign(sealedOther.ok ? sealedOther.value : tmpl);
  await c.publish(privOther);

  // A job for us, published last: once its result is in, everything before it was handled.
  const mine = sandboxJob(c, ['echo for you'], [['p', pk]]);
  await c.publish(mine);
  await c.waitEvent(isResult(mine.id), 20_000, 'result for the targeted job');
  for (const id of [elsewhere.id, privOther.id]) {
    t.same(c.feedbackFor(id), [], 'no feedback for a job addressed elsewhere');
    t.same(c.resultsFor(id), [], 'no result for it');
    t.equal(running.provider.store.get(id), undefined, 'not even stored');
  }
});

t.test('capacity, queue overflow, cancellation and expiry in the queue', async (t) => {
  const m = await startMarket(t);
  const running = await runProvider(t, m, { capacity: 1, queue: 1 });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const now = () => Math.floor(Date.now() / 1000);

  const a = sandboxJob(c, ['sleep 4; echo a']);
  await c.publish(a);
  await c.waitEvent(isFeedback(a.id, 'processing'), 10_000, 'a started');
  const b = sandboxJob(c, ['echo b']); // queued, then cancelled by its customer
  await c.publish(b);
  await waitFor(() => running.provider.store.get(b.id)?.state === 'queued', 10_000, 'b queued');
  const overflow = sandboxJob(c, ['echo overflow']);
  await c.publish(overflow);
  const full = await c.waitEvent(isFeedback(overflow.id, 'error'), 10_000, 'overflow refused');
  t.equal(errorCode(full), 'SERVICE_UNAVAILABLE', 'a full queue answers SERVICE_UNAVAILABLE');
  t.equal(statusOf(full), 'error');

  // NIP-09 deletion of b by its author cancels it before it starts; a deletion by someone else does not.
  const stranger = new Customer(m.relay.url);
  await stranger.ready();
  t.teardown(() => stranger.close());
  await stranger.publish(stranger.sign({ kind: 5, tags: [['e', b.id], ['k', '5930']] }));
  await c.publish(c.sign({ kind: 5, tags: [['e', b.id], ['k', '5930']] }));
  await waitFor(() => running.provider.store.get(b.id)?.state === 'cancelled', 10_000, 'b cancelled');
  const e = sandboxJob(c, ['echo e'], [['expiration', String(now() + 1)]]); // expires before a slot frees
  await c.publish(e);
  // Someone else "deleting" e changes nothing: it ends expired, not cancelled.
  await stranger.publish(stranger.sign({ kind: 5, tags: [['e', e.id], ['k', '5930']] }));

  await c.waitEvent(isResult(a.id), 20_000, 'a finished');
  const expired = await c.waitEvent(isFeedback(e.id, 'error'), 20_000, 'e refused as expired');
  t.equal(errorCode(expired), 'EXPIRED', 'never starts a job past its expiration');
  // A job posted after the cancellation runs; b, ahead of it in the queue, never did.
  const after = sandboxJob(c, ['echo after']);
  await c.publish(after);
  await c.waitEvent(isResult(after.id), 20_000, 'the next job runs');
  t.same(c.feedbackFor(b.id, 'processing'), [], 'the cancelled job never started');
  t.same(c.resultsFor(b.id), [], 'and has no result');
  t.same(c.feedbackFor(e.id, 'processing'), [], 'the expired job never started');
  t.same(c.resultsFor(e.id), [], 'and has no result');
  t.equal(running.provider.store.get(e.id)?.state, 'expired');
  t.equal(running.provider.store.get(overflow.id)?.state, 'rejected');
});

t.test('per-customer rate limit', async (t) => {
  const m = await startMarket(t);
  await runProvider(t, m, { rateLimit: { burst: 2, perMinute: 1 } });
  const greedy = await new Customer(m.relay.url).ready();
  const polite = await new Customer(m.relay.url).ready();
  t.teardown(() => { greedy.close(); polite.close(); });
  const jobs = [0, 1, 2].map((i) => sandboxJob(greedy, [`echo ${i}`]));
  for (const j of jobs) await greedy.publish(j);
  const limited = await greedy.waitEvent(isFeedback(jobs[2].id, 'error'), 10_000, 'third job refused');
  t.equal(errorCode(limited), 'RATE_LIMITED');
  for (const j of jobs.slice(0, 2)) await greedy.waitEvent(isResult(j.id), 20_000, 'the first two run');
  const other = sandboxJob(polite, ['echo polite']);
  await polite.publish(other);
  await polite.waitEvent(isResult(other.id), 20_000, 'another customer is not limited by the first');
  t.pass('rate limit is per customer');
});

t.test("NIP-90 relays tag: responses also go to the customer's relay", async (t) => {
  const m = await startMarket(t);
  const { startRelay } = await import('@bazaar/relay/server');
  const { logger, tempDir } = await import('./helpers.ts');
  const dir = tempDir(t, 'bazaar-prov-extra-');
  const extra = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dir, transport: 'ws', verifyWorkers: 0, logger });
  t.teardown(() => extra.close());
  await runProvider(t, m);
  const c = await new Customer(m.relay.url).ready();
  const onExtra = await new Customer(extra.url).ready();
  t.teardown(() => { c.close(); onExtra.close(); });
  // The customer posts on the provider's relay but listens on its own.
  const job = c.sign({ kind: 5930, tags: [['param', 'cmd', 'echo over there'], ['param', 'time_limit_secs', '10'], ['relays', extra.url]] });
  await c.publish(job);
  onExtra.ws.send(JSON.stringify(['REQ', 'x', { kinds: [6930, 7000], '#e': [job.id] }]));
  const res = await onExtra.waitEvent(isResult(job.id), 20_000, 'result on the requested relay');
  t.equal(JSON.parse(res.content).commands[0].stdout, 'over there\n');
  await onExtra.waitEvent(isFeedback(job.id, 'processing'), 10_000, 'feedback on the requested relay too');
  t.pass('feedback and result reached the relay named in the request');
});
