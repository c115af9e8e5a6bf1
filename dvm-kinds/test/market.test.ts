// Market events: build → sign → parse round-trips, and the problems bad input produces.
import t from 'tap';
import bolt11 from 'bolt11';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { arbiter, buyer, provider, relayKey, sign, T0 } from './helpers.ts';
import { sha256Hex } from '../src/hash.ts';
import type { Parsed } from '../src/problem.ts';
import { buildFeedback, parseFeedback } from '../src/feedback.ts';
import { buildAnnouncement, parseAnnouncement } from '../src/market/announcement.ts';
import { buildHeartbeat, parseHeartbeat } from '../src/market/heartbeat.ts';
import { buildPing, buildPong, isPong, parsePing, parsePong } from '../src/market/ping.ts';
import { buildDispute, parseDispute } from '../src/market/dispute.ts';
import { buildVerdict, parseVerdict } from '../src/market/verdict.ts';
import { buildReceipt, hashToCurve, parseReceipt, verifyReceipt } from '../src/market/receipt.ts';
import { buildReputationAssertion, parseReputationAssertion } from '../src/market/reputation.ts';
import { buildPaymentInfo, parsePaymentInfo } from '../src/market/payment-info.ts';
import { paramSchemasFor } from '../src/registry.ts';

const value = <T>(p: Parsed<T>): T => {
  if (!p.ok) throw new Error(`expected ok, got ${JSON.stringify(p.errors)}`);
  return p.value;
};
const paths = (p: Parsed<unknown>): string[] => (p.ok ? [] : p.errors.map((x) => x.path));
const REQ = sha256Hex('request');
const RES = sha256Hex('result');

t.test('feedback: statuses, aliases, amounts, error codes, progress', async (t) => {
  const request = { id: REQ, pubkey: buyer.pk };
  const fb = value(parseFeedback(sign(buildFeedback({ request, status: 'payment-required', amount: { msats: 5000, bolt11: 'lnbcrt50n1pjqqqqqpp5' } }), provider.sk)));
  t.same(fb.amount, { msats: 5000, bolt11: 'lnbcrt50n1pjqqqqqpp5' });
  t.equal(fb.customer, buyer.pk);
  // as NDK and others write it: underscore spelling, amount without bolt11
  const legacy = value(parseFeedback({ kind: 7000, created_at: T0, content: '', tags: [['status', 'payment_required'], ['amount', '1000'], ['e', REQ], ['p', buyer.pk]] }));
  t.equal(legacy.status, 'payment-required');
  t.same(legacy.amount, { msats: 1000 });
  const bad = parseFeedback({ kind: 7000, created_at: T0, content: '', tags: [['status', 'done'], ['amount', '1.5 sats'], ['error', 'OOPS'], ['progress', '2']] });
  t.same(paths(bad).sort(), ['tags.amount', 'tags.e', 'tags.error', 'tags.p', 'tags.progress', 'tags.status']);
  t.same(paths(parseFeedback({ kind: 7000, created_at: T0, content: '', tags: [['status', 'success'], ['error', 'EXPIRED'], ['e', REQ], ['p', buyer.pk]] })), ['tags.error'], 'error code only with error');
  t.same(paths(parseFeedback({ kind: 7000, created_at: T0, content: '', tags: [['status', 'payment-required'], ['e', REQ], ['p', buyer.pk]] })), ['tags.amount'], 'payment-required says how much');
});

t.test('announcement (NIP-89 31990)', async (t) => {
  const tpl = buildAnnouncement({ d: 'bazaar-provider', kinds: [5930, 5932], prices: { 5930: { baseMsats: 1000, perUnitMsats: 10, unit: 'second', capMsats: 100000 }, 5932: { baseMsats: 50000, perUnitMsats: 0, unit: 'job' } }, capacity: 4, isolation: 'bwrap', models: ['claude-sonnet'], name: 'prov', about: 'runs things', paramSchemas: paramSchemasFor([5930, 5932]), createdAt: T0 });
  const a = value(parseAnnouncement(sign(tpl, provider.sk)));
  t.same(a.kinds, [5930, 5932]);
  t.same(a.prices[5930], { baseMsats: 1000, perUnitMsats: 10, unit: 'second', capMsats: 100000 });
  t.same(a.prices[5932], { baseMsats: 50000, perUnitMsats: 0, unit: 'job' });
  t.equal(a.capacity, 4);
  t.equal(a.isolation, 'bwrap');
  t.same(Object.keys(a.paramSchemas), ['5930', '5932']);
  t.same(paths(parseAnnouncement({ kind: 31990, created_at: T0, content: 'not json', tags: [['k', '1'], ['price', '5930', 'x'], ['isolation', 'chroot']] })).sort(), ['content', 'tags.d', 'tags.isolation', 'tags.k', 'tags.k', 'tags.price[0]', 'tags.price[0]'].sort());
  t.equal(a.lightningNode, undefined, 'no node announced: the payee is not checkable');
  const node = '03' + 'ab'.repeat(32);
  t.equal(value(parseAnnouncement(sign(buildAnnouncement({ d: 'p', kinds: [5930], lightningNode: node, createdAt: T0 }), provider.sk))).lightningNode, node, 'the Lightning node its invoices come from');
  t.same(paths(parseAnnouncement({ kind: 31990, created_at: T0, content: '', tags: [['d', 'p'], ['k', '5930'], ['lightning_node', 'ab'.repeat(32)]] })), ['tags.lightning_node'], 'an x-only key is not a node id');
});

t.test('heartbeat, ping and pong', async (t) => {
  const hb = value(parseHeartbeat(sign(buildHeartbeat({ active: 1, capacity: 4, kinds: [5930], createdAt: T0 }), provider.sk)));
  t.same({ status: hb.status, active: hb.active, capacity: hb.capacity, expiration: hb.expiration }, { status: 'online', active: 1, capacity: 4, expiration: T0 + 120 });
  t.same(paths(parseHeartbeat({ kind: 11998, created_at: T0, content: '', tags: [['status', 'online'], ['load', '1', '4']] })), ['tags.expiration'], 'a heartbeat must expire (NIP-40)');
  t.equal(hb.workers, undefined, 'one process: no workers tag');
  const pool = value(parseHeartbeat(sign(buildHeartbeat({ active: 3, capacity: 8, workers: 2, kinds: [5930], createdAt: T0 }), provider.sk)));
  t.same({ active: pool.active, capacity: pool.capacity, workers: pool.workers }, { active: 3, capacity: 8, workers: 2 }, 'a pool reports its workers and summed load');
  t.same(paths(parseHeartbeat({ kind: 11998, created_at: T0, content: '', tags: [['status', 'online'], ['load', '1', '4'], ['workers', '0'], ['expiration', String(T0 + 60)]] })), ['tags.workers']);
  const ping = sign(buildPing({ provider: provider.pk, createdAt: T0 }), buyer.sk);
  t.equal(value(parsePing(ping)).provider, provider.pk);
  const pong = sign(buildPong(ping, { active: 0, capacity: 2 }, T0 + 1), provider.sk);
  t.ok(isPong(pong));
  t.same({ ...value(parsePong(pong)), pubkey: undefined }, { pubkey: undefined, createdAt: T0 + 1, pingId: ping.id, pinger: buyer.pk, active: 0, capacity: 2 });
  t.equal(value(parseFeedback(pong)).status, 'success', 'a plain NIP-90 client reads a pong as feedback');
});

t.test('dispute and verdict', async (t) => {
  const d = value(parseDispute(sign(buildDispute({ requestId: REQ, resultId: RES, provider: provider.pk, arbiter: arbiter.pk, failedChecks: ['patch_sha256'], evidenceSha256: sha256Hex('evidence'), createdAt: T0 }), buyer.sk)));
  t.same([d.requestId, d.resultId, d.provider, d.arbiter, d.failedChecks], [REQ, RES, provider.pk, arbiter.pk, ['patch_sha256']]);
  const v = value(parseVerdict(sign(buildVerdict({ requestId: REQ, buyer: buyer.pk, provider: provider.pk, ruling: 'split', providerShare: 0.25, reason: 'tests pass, paths violated', checks: [{ name: 'tests', passed: true }], createdAt: T0 }), arbiter.sk)));
  t.equal(v.ruling, 'split');
  t.equal(v.providerShare, 0.25);
  t.equal(v.dispute, `39300:${buyer.pk}:${REQ}`);
  t.same(paths(parseDispute({ kind: 39300, created_at: T0, content: '{}', tags: [['d', RES], ['e', REQ, '', 'request']] })).sort(), ['content.evidence_sha256', 'content.failed_checks', 'tags.d', 'tags.e[result]', 'tags.p', 'tags.p[provider]'].sort(), 'the arbiter is optional (only escrowed jobs name one)');
  t.same(paths(parseVerdict({ kind: 39301, created_at: T0, content: '{"reason":"x","checks":[]}', tags: [['d', REQ], ['e', REQ, '', 'request'], ['a', '39300:x:y'], ['p', buyer.pk, '', 'buyer'], ['p', provider.pk, '', 'provider'], ['ruling', 'split', '7']] })).sort(), ['tags.a', 'tags.ruling']);
});

t.test('receipt: Lightning preimage and Cashu Y values are checked', async (t) => {
  const preimage = bytesToHex(randomBytes(32));
  const nodeKey = bytesToHex(randomBytes(32));
  const encoded = bolt11.encode({ network: { bech32: 'bcrt', pubKeyHash: 111, scriptHash: 196, validWitnessVersions: [0, 1] }, millisatoshis: '21000', timestamp: T0, tags: [{ tagName: 'payment_hash', data: sha256Hex(Buffer.from(preimage, 'hex')) }, { tagName: 'payment_secret', data: bytesToHex(randomBytes(32)) }, { tagName: 'description', data: 'job' }] });
  const invoice = bolt11.sign(encoded, nodeKey).paymentRequest!;
  const r = value(parseReceipt(sign(buildReceipt({ requestId: REQ, resultId: RES, provider: provider.pk, amountMsats: 21000, payment: { method: 'lightning', bolt11: invoice, preimage }, rating: 0.9, createdAt: T0 }), buyer.sk)));
  t.equal(r.rating, 0.9);
  t.ok(verifyReceipt(r).ok, 'a real preimage matches the invoice');
  t.same(verifyReceipt({ ...r, payment: { method: 'lightning', bolt11: invoice, preimage: bytesToHex(randomBytes(32)) } }).problems.map((p) => p.path), ['tags.payment']);
  t.same(verifyReceipt({ ...r, amountMsats: 1 }).problems.map((p) => p.path), ['tags.amount']);
  // NUT-00 test vectors
  t.equal(hashToCurve(new Uint8Array(32)), '024cce997d3b518f739663b757deaec95bcd9473c30a14ac2fd04023a739d1a725');
  t.equal(hashToCurve(Uint8Array.from({ length: 32 }, (_, i) => (i === 31 ? 1 : 0))), '022e7158e11c9506f1aa4248bf531298daa7febd6194f003edcd9b93ade6253acf');
  const secret = '407915bc212be61a77e3e6d2aeb4c727980bda51cd06a6afc29e2861768a7837';
  const y = hashToCurve(secret);
  t.match(y, /^0[23][0-9a-f]{64}$/);
  const cashu = value(parseReceipt(sign(buildReceipt({ requestId: REQ, resultId: RES, provider: provider.pk, amountMsats: 8000, payment: { method: 'cashu', mint: 'http://127.0.0.1:3338', proofs: [{ secret, y }] }, createdAt: T0 }), buyer.sk)));
  t.ok(verifyReceipt(cashu).ok);
  t.notOk(verifyReceipt({ ...cashu, payment: { method: 'cashu', mint: 'http://127.0.0.1:3338', proofs: [{ secret: 'other', y }] } }).ok);
  t.same(paths(parseReceipt({ kind: 39302, created_at: T0, content: '', tags: [['d', REQ], ['e', REQ, '', 'request'], ['e', RES, '', 'result'], ['p', provider.pk, '', 'provider'], ['amount', '5'], ['payment', 'paypal'], ['rating', '5']] })).sort(), ['tags.payment', 'tags.rating']);
});

t.test('reputation assertion (NIP-85 30382) and payment info (NIP-61 10019)', async (t) => {
  const stats = { jobsSeen: 120, resultsDelivered: 118, paidJobs: 115, disputesOpened: 2, disputesLost: 1, medianLatencySecs: 42, satsEarned: 9000, successRate: 0.95, tier: 1 as const, rating: 0.8, perKind: [{ kind: 5930, jobs: 120, delivered: 118, paid: 115, disputesLost: 1, medianLatencySecs: 42 }] };
  const rep = value(parseReputationAssertion(sign(buildReputationAssertion(provider.pk, stats, T0), relayKey.sk)));
  t.equal(rep.provider, provider.pk);
  t.equal(rep.rank, 95);
  t.same(rep.perKind, stats.perKind);
  t.equal(rep.successRate, 0.95);
  t.same(paths(parseReputationAssertion({ kind: 30382, created_at: T0, content: '', tags: [['d', 'x']] })).length, 11, 'every missing field is listed');
  // The full figure set (requests, accepted, p90 latency, last seen, per-kind p90 and sats) round-trips.
  const full = { ...stats, requests: 130, accepted: 121, p90LatencySecs: 77, lastSeen: T0 - 5, perKind: [{ kind: 5930, jobs: 120, delivered: 118, paid: 115, disputesLost: 1, medianLatencySecs: 42, p90LatencySecs: 77, satsEarned: 9000 }] };
  const ev = sign(buildReputationAssertion(provider.pk, full, T0), relayKey.sk);
  const back = value(parseReputationAssertion(ev));
  t.same({ ...back, pubkey: undefined, createdAt: undefined, provider: undefined, rank: undefined }, { ...full, pubkey: undefined, createdAt: undefined, provider: undefined, rank: undefined });
  t.same(ev.tags.filter((x) => ['requests', 'accepted', 'p90_latency_secs', 'last_seen'].includes(x[0])), [['requests', '130'], ['accepted', '121'], ['p90_latency_secs', '77'], ['last_seen', String(T0 - 5)]]);
  t.same(paths(parseReputationAssertion({ ...ev, tags: ev.tags.map((x) => (x[0] === 'kind_stats' ? [...x.slice(0, 7), 'x'] : x)) })), ['tags.kind_stats[0]'], 'a bad appended per-kind figure is refused');
  const pi = value(parsePaymentInfo(sign(buildPaymentInfo({ relays: ['ws://127.0.0.1:4869'], mints: [{ url: 'http://127.0.0.1:3338', units: ['sat'] }], p2pkPubkey: '02' + provider.pk, createdAt: T0 }), provider.sk)));
  t.same(pi.mints, [{ url: 'http://127.0.0.1:3338', units: ['sat'] }]);
  t.equal(pi.p2pkPubkey, '02' + provider.pk);
  t.same(paths(parsePaymentInfo({ kind: 10019, created_at: T0, content: '', tags: [['pubkey', provider.pk]] })).sort(), ['tags.mint', 'tags.pubkey']);
});
