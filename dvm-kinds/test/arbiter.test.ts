// The arbiter's protocol: its announcement, the buyer's claim on a dispute, the provider's
// dispute response, the trajectory request and its encrypted parts, and verdicts whose release
// is sealed to the winner. Real keys, real NIP-44, real SIG_ALL packages (built offline).
import t from 'tap';
import { SigAll, getEncodedToken, type Proof } from '@cashu/cashu-ts';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { arbiter, buyer, provider, sign, T0 } from './helpers.ts';
import { sha256Hex } from '../src/hash.ts';
import type { Parsed } from '../src/problem.ts';
import { buildAnnouncement, parseAnnouncement } from '../src/market/announcement.ts';
import { buildArbiterAnnouncement, isArbiterAnnouncement, parseArbiterAnnouncement } from '../src/market/arbiter.ts';
import { buildDispute, parseDispute } from '../src/market/dispute.ts';
import { buildDisputeResponse, parseDisputeResponse } from '../src/market/dispute-response.ts';
import { buildSealedEscrowReleaseTag, openEscrowRelease, parseEscrowRelease, readEscrowToken, verifyEscrowPackage } from '../src/market/escrow.ts';
import { buildVerdict, parseVerdict, reputationDeltaFor } from '../src/market/verdict.ts';
import { assembleTrajectory, buildTrajectoryParts, buildTrajectoryRefusal, buildTrajectoryRequest, parseTrajectoryPart, parseTrajectoryRequest, resultTrajectorySha256, splitUtf8, TRAJECTORY_PART_BYTES } from '../src/market/trajectory.ts';

const value = <T>(p: Parsed<T>): T => {
  if (!p.ok) throw new Error(`expected ok, got ${JSON.stringify(p.errors)}`);
  return p.value;
};
const paths = (p: { ok: boolean; errors?: readonly { path: string }[] }): string[] => (p.errors ?? []).map((x) => x.path).sort();
const REQ = sha256Hex('request');
const RES = sha256Hex('result');

t.test('arbiter announcement: handles disputes, names the kinds it replays; never read as a provider', async (t) => {
  const ev = sign(buildArbiterAnnouncement({ kinds: [5930, 5932], responseWindowSecs: 86_400, public: true, isolation: 'bwrap', fee: { msats: 2000, payer: 'loser' }, lightningNode: '02' + 'ab'.repeat(32), name: 'arb', createdAt: T0 }), arbiter.sk);
  t.ok(isArbiterAnnouncement(ev));
  const a = value(parseArbiterAnnouncement(ev));
  t.same([a.kinds, a.responseWindowSecs, a.public, a.isolation, a.fee, a.lightningNode, a.name], [[5930, 5932], 86_400, true, 'bwrap', { msats: 2000, payer: 'loser' }, '02' + 'ab'.repeat(32), 'arb']);
  t.notOk(parseAnnouncement(ev).ok, 'a provider parser refuses it (k is not a job kind)');
  t.notOk(isArbiterAnnouncement(sign(buildAnnouncement({ d: 'p', kinds: [5930] }), provider.sk)));
  const noFee = value(parseArbiterAnnouncement(sign(buildArbiterAnnouncement({ kinds: [5932], responseWindowSecs: 60, fee: { msats: 0, payer: 'loser' } }), arbiter.sk)));
  t.same([noFee.fee, noFee.public], [undefined, false], 'a zero fee is no fee; private by default');
  t.same(paths(parseArbiterAnnouncement({ kind: 31990, created_at: T0, content: '', tags: [['d', 'x'], ['k', '39300'], ['k', '5930'], ['arbitrates', '39300'], ['fee', '10', 'winner'], ['public', 'yes'], ['lightning_node', 'npub1x']] })), ['tags.arbitrates', 'tags.arbitrates', 'tags.fee', 'tags.k', 'tags.lightning_node', 'tags.public', 'tags.response_window']);
});

// An escrow and claims built offline: buyer B, provider P, arbiter A payment keys.
const payKey = () => {
  const sk = schnorr.utils.randomSecretKey();
  return { sk: bytesToHex(sk), pub: '02' + bytesToHex(schnorr.getPublicKey(sk)) };
};
const P = payKey();
const B = payKey();
const A = payKey();
const point = () => '02' + bytesToHex(schnorr.getPublicKey(schnorr.utils.randomSecretKey()));
const secrets = [0, 1].map(() => JSON.stringify(['P2PK', { nonce: bytesToHex(randomBytes(16)), data: P.pub, tags: [['sigflag', 'SIG_ALL'], ['n_sigs', '2'], ['pubkeys', B.pub, A.pub], ['locktime', String(T0 + 7200)], ['refund', B.pub]] }]));
const esc = value(readEscrowToken(getEncodedToken({ mint: 'http://127.0.0.1:3338', unit: 'sat', proofs: secrets.map((secret) => ({ id: '00ad268c4d1f5826', amount: 8, secret, C: point() }) as unknown as Proof) })));
const claimBy = (sk: string) => SigAll.serializePackage(SigAll.signPackage(SigAll.deserializePackage(SigAll.serializePackage({ version: 'sigallA', type: 'swap', inputs: secrets.map((secret) => ({ secret, C: point() })), outputs: [{ amount: 16, id: '00ad268c4d1f5826', B_: point() }] } as unknown as Parameters<typeof SigAll.serializePackage>[0])), sk));

t.test("a dispute carries the buyer's own claim; the provider's response stands or concedes", async (t) => {
  const buyerClaim = claimBy(B.sk);
  const d = value(parseDispute(sign(buildDispute({ requestId: REQ, resultId: RES, provider: provider.pk, arbiter: arbiter.pk, failedChecks: ['test_exit_code'], evidenceSha256: sha256Hex('ev'), escrowClaim: buyerClaim }), buyer.sk)));
  t.ok(d.escrowClaim && verifyEscrowPackage(d.escrowClaim, esc, [B.pub]).ok, "the buyer's claim spends the escrow, signed by the buyer");
  t.same(paths(parseDispute({ kind: 39300, created_at: T0, content: JSON.stringify({ failed_checks: ['x'], evidence_sha256: sha256Hex('e') }), tags: [['d', REQ], ['e', REQ, '', 'request'], ['e', RES, '', 'result'], ['p', provider.pk, '', 'provider'], ['escrow_claim', 'sigallAnope']] })), ['tags.escrow_claim']);

  const traj = sha256Hex('trajectory');
  const r = value(parseDisputeResponse(sign(buildDisputeResponse({ requestId: REQ, resultId: RES, buyer: buyer.pk, arbiter: arbiter.pk, position: 'stand', message: 'tests pass in our sandbox', checks: [{ name: 'tests pass', passed: true }], trajectorySha256: traj, escrowClaim: claimBy(P.sk), createdAt: T0 }), provider.sk)));
  t.same([r.position, r.arbiter, r.trajectorySha256, r.checks.length, r.dispute], ['stand', arbiter.pk, traj, 1, `39300:${buyer.pk}:${REQ}`]);
  t.ok(r.escrowClaim && verifyEscrowPackage(r.escrowClaim, esc, [P.pub]).ok);
  const bad = { kind: 39303, created_at: T0, content: JSON.stringify({ position: 'shrug', message: 'x' }), tags: [['d', REQ], ['e', REQ, '', 'request'], ['e', RES, '', 'result'], ['a', `39300:${provider.pk}:${REQ}`], ['p', buyer.pk, '', 'buyer'], ['trajectory_sha256', 'xx']] };
  t.same(paths(parseDisputeResponse(bad)), ['content.position', 'tags.a', 'tags.trajectory_sha256']);
});

t.test('a verdict seals the release to the winner; only the winner opens it', async (t) => {
  const release = SigAll.serializePackage(SigAll.signPackage(SigAll.deserializePackage(claimBy(P.sk)), A.sk));
  const ev = sign(buildVerdict({ requestId: REQ, buyer: buyer.pk, provider: provider.pk, ruling: 'provider', reason: 'the tests pass on our replay', checks: [{ name: 'tests pass on our replay', passed: true }], releaseTag: buildSealedEscrowReleaseTag(release, arbiter.sk, provider.pk), evidenceSha256: sha256Hex('arb-ev'), reputationDelta: reputationDeltaFor('provider'), fee: { msats: 2000 } }), arbiter.sk);
  t.notMatch(JSON.stringify(ev.tags), release.slice(8, 40), 'the package is not readable on the relay');
  const v = value(parseVerdict(ev));
  t.same([v.sealedRelease?.recipient, v.escrowRelease, v.evidenceSha256, v.reputationDelta, v.fee], [provider.pk, undefined, sha256Hex('arb-ev'), { provider: 0, buyer: -1 }, { msats: 2000 }]);
  const opened = value(openEscrowRelease(ev, provider.sk));
  t.equal(opened?.raw, release, 'the provider opens it');
  t.ok(opened && verifyEscrowPackage(opened, esc, [P.pub, A.pub]).ok, 'signed by the provider and the arbiter');
  t.equal(value(openEscrowRelease(ev, buyer.sk)), undefined, 'sealed to someone else: nothing for the buyer');
  t.equal(value(parseEscrowRelease(ev)), undefined, 'not a release in clear');
  const toStranger = sign(buildVerdict({ requestId: REQ, buyer: buyer.pk, provider: provider.pk, ruling: 'buyer', reason: 'x', releaseTag: buildSealedEscrowReleaseTag(release, arbiter.sk, arbiter.pk) }), arbiter.sk);
  t.same(paths(parseVerdict(toStranger)), ['tags.escrow_release'], 'a release goes to a party of the job');
  t.same([reputationDeltaFor('buyer'), reputationDeltaFor('split', 0.25)], [{ provider: -1, buyer: 0 }, { provider: -0.75, buyer: -0.25 }]);
  const old = value(parseVerdict(sign(buildVerdict({ requestId: REQ, buyer: buyer.pk, provider: provider.pk, ruling: 'buyer', reason: 'x' }), arbiter.sk)));
  t.same([old.evidenceSha256, old.reputationDelta, old.fee], [undefined, undefined, undefined], 'the new fields are optional');
});

t.test('trajectory: asked by the arbiter, answered in encrypted parts, hash checked', async (t) => {
  const q = value(parseTrajectoryRequest(sign(buildTrajectoryRequest({ requestId: REQ, provider: provider.pk, buyer: buyer.pk }), arbiter.sk)));
  t.same([q.requestId, q.provider, q.buyer], [REQ, provider.pk, buyer.pk]);
  t.same(paths(parseTrajectoryRequest({ kind: 39304, created_at: T0, content: '', tags: [['d', REQ], ['e', REQ, '', 'request'], ['p', provider.pk, '', 'provider'], ['a', `39300:${buyer.pk}:${RES}`]] })), ['tags.a']);

  // Multi-byte text over several parts: split on character boundaries, byte-exact when joined.
  const line = JSON.stringify({ step: 'agent', note: 'naïve café ✓ 🚀' }) + '\n';
  const text = line.repeat(Math.ceil((TRAJECTORY_PART_BYTES * 2.5) / line.length));
  const split = splitUtf8(text);
  t.equal(split.length, 3);
  t.ok(split.every((p) => new TextEncoder().encode(p).length <= TRAJECTORY_PART_BYTES));
  t.equal(split.join(''), text);
  const parts = value(buildTrajectoryParts({ requestId: REQ, arbiter: arbiter.pk, text }, provider.sk)).map((p) => sign(p, provider.sk));
  t.ok(parts.every((p) => p.content.length < 60_000), 'each part fits a 64 KiB relay limit');
  t.same(value(parseTrajectoryPart(parts[1])), { pubkey: provider.pk, createdAt: parts[1].created_at, requestId: REQ, arbiter: arbiter.pk, part: 1, parts: 3, sha256: sha256Hex(text), content: parts[1].content });
  t.match(value(assembleTrajectory(parts.slice(0, 2), arbiter.sk)), { complete: false, have: 2, parts: 3 });
  const all = value(assembleTrajectory([parts[2], parts[0], parts[1]], arbiter.sk));
  t.ok(all.complete && 'text' in all && all.text === text && all.sha256 === sha256Hex(text) && all.claimedSha256 === sha256Hex(text), 'reassembled in order, hash matches');
  t.notOk(assembleTrajectory(parts, buyer.sk).ok, 'only the arbiter can open it');
  // A provider that sends a log other than the one it committed to: the computed hash tells.
  const other = value(buildTrajectoryParts({ requestId: REQ, arbiter: arbiter.pk, text: 'rewritten\n', createdAt: parts[0].created_at + 1 }, provider.sk)).map((p) => sign(p, provider.sk));
  const newest = value(assembleTrajectory([...parts, ...other], arbiter.sk));
  t.ok(newest.complete && 'text' in newest && newest.text === 'rewritten\n', 'the newest answer wins');
  const result = sign({ kind: 6932, created_at: T0, content: 'x', tags: [['e', REQ], ['p', buyer.pk], ['trajectory_sha256', sha256Hex(text)]] }, provider.sk);
  t.not('text' in newest && newest.sha256, resultTrajectorySha256(result), "and it does not match the result's hash");
  const empty = value(assembleTrajectory(value(buildTrajectoryParts({ requestId: REQ, arbiter: arbiter.pk, text: '' }, provider.sk)).map((p) => sign(p, provider.sk)), arbiter.sk));
  t.ok(empty.complete && 'text' in empty && empty.text === '' && empty.sha256 === sha256Hex(''), 'an empty log is one empty part');
  const refused = value(assembleTrajectory([sign(buildTrajectoryRefusal({ requestId: REQ, arbiter: arbiter.pk, reason: 'not an arbiter of this job' }), provider.sk)], arbiter.sk));
  t.same(refused, { complete: true, refused: 'not an arbiter of this job' });
  t.same(paths(parseTrajectoryPart({ ...parts[0], tags: parts[0].tags.map((x) => (x[0] === 'part' ? ['part', '3', '3'] : x)) })), ['tags.d', 'tags.part']);
});
