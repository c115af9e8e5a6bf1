// The market index's pure parts from hand-built, really signed events: fact extraction,
// every job state transition, every reputation figure, payment proofs and anti-gaming.
import t from 'tap';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { extractFact, type Fact, type JobFact } from '../src/market/facts.ts';
import { reduceJob } from '../src/market/job.ts';
import { MarketState } from '../src/market/state.ts';
import { MarketScript, makeInvoice, newKey, sign } from './market-kit.ts';

const T0 = 1_765_000_000;
const factsOf = (events: readonly NostrEvent[]): Fact[] => events.map((e) => extractFact(e)).filter((f): f is Fact => f !== undefined);
const jobFacts = (events: readonly NostrEvent[]): JobFact[] => factsOf(events).filter((f): f is JobFact => f.t !== 'announcement' && f.t !== 'heartbeat');
const stateOf = (events: readonly NostrEvent[], o: ConstructorParameters<typeof MarketState>[0] = {}): MarketState => {
  const s = new MarketState({ now: () => T0 + 10_000, ...o });
  for (const f of factsOf(events)) s.add(f);
  return s;
};

t.test('job states, step by step', async (t) => {
  const m = new MarketScript();
  const buyer = newKey();
  const provider = newKey();
  const arbiter = newKey();
  const request = m.request(buyer, T0, { provider });
  const inv = makeInvoice(21_000, T0 + 1);
  const steps: [NostrEvent, string][] = [];
  const at = (e: NostrEvent, state: string) => steps.push([e, state]);
  at(request, 'requested');
  at(m.feedback(provider, request, 'payment-required', T0 + 1, { msats: 21_000, bolt11: inv.bolt11 }), 'payment-required');
  at(m.feedback(provider, request, 'processing', T0 + 2), 'processing');
  at(m.feedback(provider, request, 'partial', T0 + 3), 'partial');
  const result = m.result(provider, request, T0 + 9);
  at(result, 'delivered');
  const receipt = m.receipt(buyer, request, result, provider, T0 + 10, { msats: 21_000, ...inv }, 0.8);
  at(receipt, 'paid');
  at(m.dispute(buyer, request, result, provider, arbiter, T0 + 11), 'disputed');
  at(m.verdict(arbiter, request, buyer, provider, 'buyer', T0 + 12), 'resolved');
  const seen: NostrEvent[] = [];
  for (const [e, state] of steps) {
    seen.push(e);
    const v = reduceJob(request.id, jobFacts(seen));
    t.equal(v.state, state, `after ${state}`);
  }
  const v = reduceJob(request.id, jobFacts(seen));
  t.equal(v.buyer, buyer.pk);
  t.equal(v.kind, 5050);
  t.same(v.timeline.map((x) => x.what), ['requested', 'payment-required', 'processing', 'partial', 'result', 'receipt', 'dispute', 'verdict: buyer']);
  const p = v.parts[0];
  t.match(p, { provider: provider.pk, named: true, accepted: true, latencySecs: 9, payment: 'verified', paidMsats: 21_000, rating: 0.8, disputed: true, disputeLost: true, verdict: 'buyer' });
  // Order does not matter: reversed facts reduce to the same view.
  t.same(reduceJob(request.id, jobFacts([...seen].reverse())), v, 'order-independent');
  // error and expiry
  const r2 = m.request(buyer, T0, { provider, expiration: T0 + 60 });
  t.equal(reduceJob(r2.id, jobFacts([r2]), { now: T0 + 59 }).state, 'requested');
  t.equal(reduceJob(r2.id, jobFacts([r2]), { now: T0 + 60 }).state, 'expired', 'NIP-40: expired at the expiration second');
  const err = m.feedback(provider, r2, 'error', T0 + 5);
  const ve = reduceJob(r2.id, jobFacts([r2, err]));
  t.equal(ve.state, 'error');
  t.equal(ve.parts[0].accepted, false, 'an error without taking the job on is a decline, not an accepted job');
});

t.test('payment proofs: only the provider\'s own invoice, the real preimage, the buyer who posted the job', async (t) => {
  const m = new MarketScript();
  const buyer = newKey();
  const provider = newKey();
  const mallory = newKey();
  const judge = async (flow: Parameters<MarketScript['job']>[0]['flow']) => {
    const j = await m.job({ buyer, provider, flow, at: T0 });
    return reduceJob(j.request.id, jobFacts(j.events)).parts[0];
  };
  t.equal((await judge('paid')).payment, 'verified');
  t.equal((await judge('prepaid')).payment, 'verified', 'an invoice from payment-required feedback counts too');
  t.match(await judge('bad-preimage'), { payment: 'invalid', paidMsats: 0 });
  t.match(await judge('foreign-invoice'), { payment: 'invalid', paymentProblem: /not one the provider asked for/ });
  t.equal((await judge('delivered')).payment, 'none');
  // A receipt from someone else than the buyer is ignored; so is a rating from them.
  const j = await m.job({ buyer, provider, flow: 'delivered', at: T0 });
  const inv = j.result!.tags.find((x) => x[0] === 'amount')!;
  const forged = m.receipt(mallory, j.request, j.result!, provider, T0 + 20, { msats: 21_000, bolt11: inv[2], preimage: '00'.repeat(32) }, 0);
  const v = reduceJob(j.request.id, jobFacts([...j.events, forged]));
  t.equal(v.receipt, undefined, 'receipts count only from the request author');
  t.equal(v.parts[0].payment, 'none');
  // An invoice whose amount differs from the receipt's does not prove that amount.
  const j2 = await m.job({ buyer, provider, flow: 'delivered', at: T0 });
  const bolt = j2.result!.tags.find((x) => x[0] === 'amount')![2];
  const lying = m.receipt(buyer, j2.request, j2.result!, provider, T0 + 20, { msats: 99_000, bolt11: bolt, preimage: '11'.repeat(32) });
  t.equal(reduceJob(j2.request.id, jobFacts([...j2.events, lying])).parts[0].payment, 'invalid');
  // A newer receipt version (addressable) replaces the older one.
  const j3 = await m.job({ buyer, provider, flow: 'bad-preimage', at: T0 });
  const real = makeInvoice(21_000, T0);
  const fb = m.feedback(provider, j3.request, 'payment-required', T0 + 2, { msats: 21_000, bolt11: real.bolt11 });
  const fixed = m.receipt(buyer, j3.request, j3.result!, provider, T0 + 30, { msats: 21_000, ...real });
  t.equal(reduceJob(j3.request.id, jobFacts([...j3.events, fb, fixed])).parts[0].payment, 'verified', 'the newest receipt counts');
});

t.test('a result embedding the signed request stands in for a request the index never saw', async (t) => {
  const m = new MarketScript();
  const buyer = newKey();
  const provider = newKey();
  const j = await m.job({ buyer, provider, flow: 'paid', at: T0, latency: 7 });
  const withoutRequest = j.events.slice(1);
  const v = reduceJob(j.request.id, jobFacts(withoutRequest));
  t.equal(v.requestSource, 'embedded');
  t.equal(v.buyer, buyer.pk);
  t.match(v.parts[0], { payment: 'verified', latencySecs: 7 });
  // A forged embedded request (signature does not verify) is not trusted.
  const forgedRequest = { ...j.request, tags: [...j.request.tags, ['bid', '1']] };
  const forgedResult = sign({ kind: 6050, created_at: T0 + 7, content: 'x', tags: [['request', JSON.stringify(forgedRequest)], ['e', j.request.id], ['p', buyer.pk]] }, provider);
  const f = extractFact(forgedResult);
  t.equal(f?.t, 'result');
  t.equal((f as { request?: unknown }).request, undefined, 'the embedded request is dropped when its signature fails');
});

t.test('reputation figures', async (t) => {
  const m = new MarketScript();
  const provider = newKey();
  const buyers = Array.from({ length: 5 }, newKey);
  const arbiter = newKey();
  m.announce(provider, T0 - 100, { name: 'alpha' });
  // 5 buyers × 4 paid jobs with latencies 10..29 s, rating 1 from buyer 0
  let i = 0;
  for (const b of buyers) for (let n = 0; n < 4; n++, i++) await m.job({ buyer: b, provider, flow: 'paid', at: T0 + i * 100, latency: 10 + i, rating: b === buyers[0] ? 1 : undefined, kind: n % 2 ? 5930 : 5050 });
  await m.job({ buyer: buyers[1], provider, flow: 'delivered', at: T0 + 5000, latency: 50 });
  await m.job({ buyer: buyers[2], provider, flow: 'failed', at: T0 + 5100 });
  await m.job({ buyer: buyers[3], provider, flow: 'declined', at: T0 + 5200 });
  await m.job({ buyer: buyers[3], provider, flow: 'requested', at: T0 + 5300 });
  const lost = await m.job({ buyer: buyers[4], provider, flow: 'paid', at: T0 + 5400, latency: 40 });
  m.dispute(buyers[4], lost.request, lost.result!, provider, arbiter, T0 + 5500);
  m.verdict(arbiter, lost.request, buyers[4], provider, 'buyer', T0 + 5600);
  // a verdict from someone other than the named arbiter is ignored
  const fakeArb = newKey();
  const won = await m.job({ buyer: buyers[0], provider, flow: 'paid', at: T0 + 5700, latency: 12 });
  m.dispute(buyers[0], won.request, won.result!, provider, arbiter, T0 + 5800);
  m.verdict(fakeArb, won.request, buyers[0], provider, 'buyer', T0 + 5900);
  const s = stateOf(m.events);
  const r = s.reputation(provider.pk);
  t.equal(r.requests, 26, 'every request naming the provider');
  t.equal(r.accepted, 24, '20 paid + delivered + failed + lost + won (declined and unanswered are not accepted)');
  t.equal(r.resultsDelivered, 23);
  t.equal(r.paidJobs, 22);
  t.equal(r.disputesOpened, 2);
  t.equal(r.disputesLost, 1);
  t.equal(r.successRate, Math.round((21 / 24) * 10_000) / 10_000, 'paid and not lost / accepted');
  t.equal(r.satsEarned, 22 * 21);
  const lat = [...Array.from({ length: 20 }, (_, k) => 10 + k), 50, 40, 12].sort((a, b) => a - b);
  t.equal(r.medianLatencySecs, lat[Math.ceil(0.5 * lat.length) - 1]);
  t.equal(r.p90LatencySecs, lat[Math.ceil(0.9 * lat.length) - 1]);
  t.equal(r.rating, 1, 'only ratings from paying buyers');
  t.equal(r.jobsSeen, 24);
  t.equal(r.tier, 0, 'fewer than 100 jobs');
  t.equal(r.buyers, 5);
  t.ok(r.lastSeen! >= T0 + 5700);
  t.same(r.perKind.map((k) => k.kind), [5050, 5930]);
  t.equal(r.perKind.reduce((n, k) => n + k.paid, 0), 22);
  const d = s.directory(provider.pk);
  t.equal(d.announcement?.name, 'alpha');
  t.same(d.announcement?.kinds, [5050, 5930]);
  t.same(d.announcement?.terms, { 5050: 'after-verify', 5930: 'after-verify' });
});

t.test('tiers: 100+ independent jobs at > 90 % reach tier 1', async (t) => {
  const m = new MarketScript();
  const provider = newKey();
  const buyers = Array.from({ length: 25 }, newKey);
  for (let i = 0; i < 104; i++) await m.job({ buyer: buyers[i % buyers.length], provider, flow: i < 100 ? 'paid' : 'failed', at: T0 + i });
  const r = stateOf(m.events).reputation(provider.pk);
  t.equal(r.jobsSeen, 104);
  t.equal(r.successRate, Math.round((100 / 104) * 10_000) / 10_000);
  t.equal(r.tier, 1);
  t.equal(r.rank, Math.round(100 * r.successRate));
});

t.test('anti-gaming: self-dealing and wash-trading clusters do not lift the tier', async (t) => {
  const honest = newKey();
  const washer = newKey();
  const ring = Array.from({ length: 3 }, newKey);
  const outsiders = Array.from({ length: 6 }, newKey);
  const m = new MarketScript();
  let at = T0;
  // The washer buys from its own key: 200 "paid" jobs.
  for (let i = 0; i < 200; i++) await m.job({ buyer: washer, provider: washer, flow: 'paid', at: at++ });
  // It pays three keys of its ring (it buys a job from each), and they buy 300 jobs back from it.
  for (const k of ring) await m.job({ buyer: washer, provider: k, flow: 'paid', at: at++ });
  for (let i = 0; i < 300; i++) await m.job({ buyer: ring[i % 3], provider: washer, flow: 'paid', at: at++, rating: 1 });
  // A second-hop ring member: the washer pays ring[0], ring[0] pays x, x buys from the washer.
  const x = newKey();
  await m.job({ buyer: ring[0], provider: x, flow: 'paid', at: at++ });
  for (let i = 0; i < 50; i++) await m.job({ buyer: x, provider: washer, flow: 'paid', at: at++ });
  // A few real outsiders buy from it too.
  for (let i = 0; i < 12; i++) await m.job({ buyer: outsiders[i % 6], provider: washer, flow: 'paid', at: at++ });
  // Control: an honest provider with the same 12 outsider jobs.
  for (let i = 0; i < 12; i++) await m.job({ buyer: outsiders[i % 6], provider: honest, flow: 'paid', at: at++ });
  const s = stateOf(m.events);
  const w = s.reputation(washer.pk);
  t.equal(w.excluded.self, 200, 'self-dealing excluded');
  t.equal(w.excluded.cluster, 350, 'the ring the washer pays (two hops) excluded');
  t.equal(w.accepted, 12);
  t.equal(w.tier, 0);
  t.equal(w.rating, undefined, 'the ring\'s ratings do not count');
  t.equal(w.satsEarned, 12 * 21, 'circular payments are not earnings');
  t.same({ ...s.reputation(honest.pk), provider: '', lastSeen: 0, hourly: [] }, { ...w, provider: '', lastSeen: 0, hourly: [], excluded: { self: 0, cluster: 0, unknownBuyer: 0 } }, 'the washer ends exactly where an honest provider with its real customers is');
  // Many fresh keys that nobody visibly funds: each buyer counts for at most 25 jobs, so 4 sybils cannot make 100.
  const m2 = new MarketScript();
  const p2 = newKey();
  const sybils = Array.from({ length: 4 }, newKey);
  for (let i = 0; i < 400; i++) await m2.job({ buyer: sybils[i % 4], provider: p2, flow: 'paid', at: T0 + i });
  const r2 = stateOf(m2.events).reputation(p2.pk);
  t.equal(r2.accepted, 400);
  t.equal(r2.jobsSeen, 100, '4 buyers × 25');
  t.equal(r2.tier, 1, 'exactly the floor of tier 1, not tier 2 that 400 jobs at 100 % would give');
  // Incremental: the ring payment arriving last still excludes the ring (dirty tracking across the graph).
  const s3 = new MarketState({ now: () => T0 });
  const late = factsOf(m.events);
  const ringPayments = new Set(late.filter((f) => f.t !== 'announcement' && f.t !== 'heartbeat' && 'buyer' in f && f.buyer === washer.pk && f.t === 'receipt' && f.provider !== washer.pk).map((f) => f.id));
  for (const f of late) if (!ringPayments.has(f.id)) s3.add(f);
  t.equal(s3.reputation(washer.pk).excluded.cluster, 0, 'before the washer pays its ring, nothing links them');
  t.ok(s3.takeDirtyProviders().has(washer.pk));
  for (const f of late) if (ringPayments.has(f.id)) s3.add(f);
  t.ok(s3.takeDirtyProviders().has(washer.pk), 'paying the ring marks the washer for re-publication');
  t.equal(s3.reputation(washer.pk).excluded.cluster, 350);
});

t.test('directory: latest announcement, liveness and uptime from heartbeats', async (t) => {
  const m = new MarketScript();
  const p = newKey();
  m.announce(p, T0, { name: 'old' });
  m.announce(p, T0 + 10, { name: 'new', capacity: 8 });
  // heartbeats every 60 s with a 120 s lifetime for the first 12 hours, then silence
  for (let h = 0; h < 12 * 60; h++) m.heartbeat(p, T0 + h * 60);
  const now = T0 + 24 * 3600;
  const s = stateOf(m.events, { now: () => now });
  const d = s.directory(p.pk);
  t.equal(d.announcement?.name, 'new');
  t.equal(d.announcement?.capacity, 8);
  t.equal(d.live, false);
  t.equal(d.uptime24h, Math.round(((12 * 3600 + 60) / (24 * 3600)) * 10_000) / 10_000);
  const live = stateOf(m.events, { now: () => T0 + 12 * 3600 - 30 }).directory(p.pk);
  t.equal(live.live, true);
});

t.test('state: idempotent by event id, order-independent snapshot', async (t) => {
  const m = new MarketScript();
  const ps = [newKey(), newKey()];
  const bs = [newKey(), newKey(), newKey()];
  for (const p of ps) { m.announce(p, T0); m.heartbeat(p, T0); }
  const flows = ['paid', 'prepaid', 'delivered', 'failed', 'declined', 'bad-preimage', 'processing'] as const;
  for (let i = 0; i < 40; i++) await m.job({ buyer: bs[i % 3], provider: ps[i % 2], flow: flows[i % flows.length], at: T0 + i * 7, latency: 3 + (i % 5) });
  const a = stateOf(m.events);
  const shuffled = [...m.events].sort(() => Math.random() - 0.5);
  const b = stateOf([...shuffled, ...shuffled.slice(0, 20)]);
  t.same(b.snapshot(), a.snapshot());
  t.equal(a.add(extractFact(m.events[0])!), false, 'a known fact is not added twice');
});

t.test('state: listings, state filters, counts and expiry agree with reducing each job on its own', async (t) => {
  // The state keeps a summary per job and reduces the whole view when asked: every answer
  // must be what reducing the job's facts directly gives, with the state's clock.
  const m = new MarketScript();
  const ps = [newKey(), newKey()];
  const bs = [newKey(), newKey(), newKey()];
  const flows = ['paid', 'prepaid', 'delivered', 'failed', 'declined', 'bad-preimage', 'processing', 'requested'] as const;
  for (let i = 0; i < 48; i++) await m.job({ buyer: bs[i % 3], provider: ps[i % 2], flow: flows[i % flows.length], at: T0 + (i % 9) * 7, latency: 3 + (i % 5) });
  let now = T0 + 100;
  const expiring = m.request(bs[0], T0 + 1, { provider: ps[0], expiration: T0 + 200 });
  const s = stateOf(m.events, { now: () => now });
  const byJob = new Map<string, JobFact[]>();
  for (const f of jobFacts(m.events)) {
    const id = f.t === 'request' ? f.id : f.requestId;
    byJob.set(id, [...(byJob.get(id) ?? []), f]);
  }
  const expect = () => [...byJob].map(([id, fs]) => reduceJob(id, fs, { now }))
    .sort((a, b) => (b.requestedAt ?? b.lastAt) - (a.requestedAt ?? a.lastAt) || (a.id < b.id ? -1 : 1));
  for (const at of [T0 + 100, T0 + 200]) {
    now = at;
    const want = expect();
    t.same(s.jobs().map((v) => [v.id, v.state]), want.map((v) => [v.id, v.state]), `every job, newest first, at +${at - T0}`);
    t.same(s.jobs({ limit: 5 }), want.slice(0, 5), 'a page is the whole views of the first jobs');
    for (const st of new Set(want.map((v) => v.state))) t.same(s.jobs({ state: st }).map((v) => v.id), want.filter((v) => v.state === st).map((v) => v.id), `state=${st}`);
    t.same(s.jobs({ provider: ps[1].pk }).map((v) => v.id), want.filter((v) => v.parts.some((p) => p.provider === ps[1].pk)).map((v) => v.id), 'by provider');
    const counts: Record<string, number> = {};
    for (const v of want) counts[v.state] = (counts[v.state] ?? 0) + 1;
    t.same(s.jobsByState(), counts, 'counts per state');
    t.same(s.job(expiring.id), want.find((v) => v.id === expiring.id), 'one job, whole');
  }
  t.equal(s.job(expiring.id)?.state, 'expired', 'NIP-40: the clock moves a requested job to expired');
  t.equal(s.jobs({ state: 'expired' }).length, 1);
  let paidJobs = 0;
  let msats = 0;
  for (const v of expect()) for (const p of v.parts) if (p.payment === 'verified') { paidJobs++; msats += p.paidMsats; }
  t.match(s.totals(), { paidJobs, satsPaid: Math.floor(msats / 1000), jobs: byJob.size });
  t.ok(paidJobs > 0, 'the script pays some jobs');
});

t.test('lean extraction agrees with the dvm-kinds parsers on what it reads', async (t) => {
  const { parseFeedback } = await import('@bazaar/dvm-kinds/feedback');
  const { parseJobResult, parseJobRequest } = await import('@bazaar/dvm-kinds/job');
  const { parseAnnouncement } = await import('@bazaar/dvm-kinds/market/announcement');
  const m = new MarketScript();
  const p = newKey();
  const b = newKey();
  m.announce(p, T0, { name: 'lean', kinds: [5050, 5930], capacity: 3 });
  for (const flow of ['paid', 'prepaid', 'failed', 'declined'] as const) await m.job({ buyer: b, provider: p, flow, at: T0, kind: flow === 'failed' ? 5930 : 5050 });
  const bad = (e: NostrEvent, tags: string[][]) => sign({ kind: e.kind, created_at: e.created_at, content: e.content, tags }, p);
  const variants: NostrEvent[] = [...m.events];
  for (const e of m.events) {
    if (e.kind === 7000) {
      variants.push(bad(e, e.tags.map((x) => (x[0] === 'status' ? ['status', 'bogus'] : x))));
      variants.push(bad(e, e.tags.filter((x) => x[0] !== 'e')));
      variants.push(bad(e, [...e.tags, ['amount', 'x']]));
    }
    if (e.kind >= 6000 && e.kind < 7000) {
      variants.push(bad(e, e.tags.map((x) => (x[0] === 'e' ? ['e', 'nothex'] : x))));
      variants.push(bad(e, e.tags.map((x) => (x[0] === 'amount' ? ['amount', '-1'] : x))));
    }
    if (e.kind === 31990) {
      variants.push(bad(e, [...e.tags, ['k', '1']]));
      variants.push(bad(e, [...e.tags, ['price', '5933', '1', '0', 'job', '']]));
      variants.push(bad(e, e.tags.filter((x) => x[0] !== 'd')));
      variants.push(bad(e, [...e.tags, ['isolation', 'moon']]));
    }
  }
  for (const e of variants) {
    const f = extractFact(e);
    if (e.kind === 7000) {
      const r = parseFeedback(e);
      t.equal(f !== undefined, r.ok, `feedback ${JSON.stringify(e.tags).slice(0, 60)}`);
      if (r.ok && f?.t === 'feedback') t.match(f, { status: r.value.status, requestId: r.value.requestId, buyer: r.value.customer, amountMsats: r.value.amount?.msats, bolt11: r.value.amount?.bolt11 });
    } else if (e.kind >= 6000 && e.kind < 7000) {
      const r = parseJobResult(e);
      t.equal(f !== undefined, r.ok, `result ${JSON.stringify(e.tags.filter((x) => x[0] !== 'request')).slice(0, 60)}`);
      if (r.ok && f?.t === 'result') t.match(f, { requestId: r.value.requestId, buyer: r.value.customer, amountMsats: r.value.amount?.msats, kind: r.value.requestKind });
    } else if (e.kind === 31990) {
      const r = parseAnnouncement(e);
      t.equal(f !== undefined, r.ok, `announcement ${JSON.stringify(e.tags.slice(-1))}`);
      if (r.ok && f?.t === 'announcement') t.match(f, { d: r.value.d, kinds: [...r.value.kinds].sort(), capacity: r.value.capacity, isolation: r.value.isolation, name: r.value.name, prices: Object.fromEntries(Object.entries(r.value.prices)) });
    } else if (e.kind >= 5000 && e.kind < 6000) {
      const r = parseJobRequest(e);
      t.ok(r.ok && f?.t === 'request');
      if (r.ok && f?.t === 'request') t.match(f, { providers: [...r.value.providers].sort(), bidMsats: r.value.bidMsats, buyer: e.pubkey });
    }
  }
});
