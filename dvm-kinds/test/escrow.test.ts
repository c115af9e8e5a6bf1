// Escrow messages: the request's locked token, the result's claim, the receipt's / verdict's
// release. Tokens and packages are built offline with cashu-ts' own encoders and real
// Schnorr signatures (no mint needed for the pure checks).
import t from 'tap';
import { SigAll, getEncodedToken, type Proof } from '@cashu/cashu-ts';
import { schnorr } from '@noble/curves/secp256k1.js';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { buyer, provider, sign, T0 } from './helpers.ts';
import { sha256Hex } from '../src/hash.ts';
import type { Parsed } from '../src/problem.ts';
import { ESCROW_CLAIM_TAG, buildEscrowClaimTag, buildEscrowTag, escrowPackageSigners, parseEscrow, parseEscrowClaim, readEscrowPackage, readEscrowToken, verifyEscrowLock, verifyEscrowPackage, xOnlyKey } from '../src/market/escrow.ts';
import { buildReceipt, hashToCurve, parseReceipt } from '../src/market/receipt.ts';
import { buildVerdict, parseVerdict } from '../src/market/verdict.ts';
import { buildDispute, parseDispute } from '../src/market/dispute.ts';
import { buildAnnouncement, parseAnnouncement } from '../src/market/announcement.ts';

const value = <T>(p: Parsed<T>): T => {
  if (!p.ok) throw new Error(`expected ok, got ${JSON.stringify(p.errors)}`);
  return p.value;
};
const paths = (p: { ok: boolean; errors?: readonly { path: string }[]; problems?: readonly { path: string }[] }): string[] => [...(p.errors ?? []), ...(p.problems ?? [])].map((x) => x.path).sort();

const payKey = () => {
  const sk = schnorr.utils.randomSecretKey();
  return { sk: bytesToHex(sk), pub: '02' + bytesToHex(schnorr.getPublicKey(sk)) };
};
const P = payKey();
const B = payKey();
const A = payKey();
const MINT = 'http://127.0.0.1:3338';
const point = () => '02' + bytesToHex(schnorr.getPublicKey(schnorr.utils.randomSecretKey()));
const LOCKTIME = T0 + 7200;

function lockSecret(o: { data?: string; pubkeys?: string[]; nSigs?: string; sigflag?: string; locktime?: number; refund?: string[]; extra?: string[][] } = {}): string {
  const tags = [['sigflag', o.sigflag ?? 'SIG_ALL'], ['n_sigs', o.nSigs ?? '2'], ['pubkeys', ...(o.pubkeys ?? [B.pub, A.pub])], ...(o.locktime === -1 ? [] : [['locktime', String(o.locktime ?? LOCKTIME)]]), ['refund', ...(o.refund ?? [B.pub])], ...(o.extra ?? [])];
  return JSON.stringify(['P2PK', { nonce: bytesToHex(randomBytes(16)), data: o.data ?? P.pub, tags }]);
}
const token = (secrets: string[], amounts = secrets.map(() => 8), mint = MINT): string =>
  getEncodedToken({ mint, unit: 'sat', proofs: secrets.map((secret, i) => ({ id: '00ad268c4d1f5826', amount: amounts[i], secret, C: point() }) as unknown as Proof) });

t.test('the escrow tag on a request: token decoded, lock read, terms checked', async (t) => {
  const secret = lockSecret();
  const tok = token([secret, secret.replace(/"nonce":"[0-9a-f]+"/, `"nonce":"${bytesToHex(randomBytes(16))}"`)], [8, 2]);
  const req = sign({ kind: 5930, created_at: T0, content: '', tags: [['param', 'cmd', 'true'], ['param', 'time_limit_secs', '10'], buildEscrowTag(tok)] }, buyer.sk);
  const esc = value(parseEscrow(req))!;
  t.equal(esc.mint, MINT);
  t.equal(esc.amount, 10);
  t.equal(esc.secrets.length, 2);
  t.same({ ...esc.lock }, { data: P.pub, pubkeys: [B.pub, A.pub], nSigs: 2, sigflag: 'SIG_ALL', locktime: LOCKTIME, refund: [B.pub] });
  t.same(value(parseEscrow({ ...req, tags: req.tags.filter((x) => x[0] !== 'escrow') })), undefined, 'no escrow tag: undefined');
  t.ok(verifyEscrowLock(esc, { provider: P.pub, buyer: B.pub, arbiters: [A.pub], minLocktime: LOCKTIME, minAmount: 10, mints: [MINT + '/'] }).ok, 'agreed terms pass');
  // "03" + x names the same key under NUT-11
  t.ok(verifyEscrowLock(esc, { provider: '03' + xOnlyKey(P.pub) }).ok, 'keys compared x-only');
  t.same(paths(verifyEscrowLock(esc, { provider: B.pub, arbiters: [P.pub], minLocktime: LOCKTIME + 1, minAmount: 11, mints: ['http://other'] })), ['amount', 'lock.data', 'lock.locktime', 'lock.pubkeys', 'mint']);
  t.same(paths(parseEscrow({ ...req, tags: [...req.tags, buildEscrowTag(tok)] })), ['tags.escrow'], 'one escrow per request');
});

t.test('locks that are not an escrow are refused', async (t) => {
  const bad = (o: Parameters<typeof lockSecret>[0]) => verifyEscrowLock(value(readEscrowToken(token([lockSecret(o)]))), { provider: P.pub, buyer: B.pub });
  t.same(paths(bad({ nSigs: '1' })), ['lock.n_sigs']);
  t.same(paths(bad({ sigflag: 'SIG_INPUTS' })), ['lock.sigflag']);
  t.same(paths(bad({ locktime: -1 })), ['lock.locktime']);
  t.same(paths(bad({ refund: [B.pub, A.pub] })), ['lock.refund']);
  t.same(paths(bad({ pubkeys: [B.pub] })), ['lock.pubkeys']);
  t.same(paths(bad({ pubkeys: [B.pub, P.pub] })), ['lock.pubkeys'], 'the provider cannot be its own arbiter');
  t.same(paths(bad({ extra: [['n_sigs_refund', '2']] })), ['lock.n_sigs_refund']);
  t.same(paths(readEscrowToken(token(['plain-bearer-secret']))), ['tags.escrow.secret'], 'a bearer token is not an escrow');
  t.same(paths(readEscrowToken(token([lockSecret(), lockSecret({ locktime: LOCKTIME + 5 })]))), ['tags.escrow'], 'proofs with different locks');
  t.same(paths(readEscrowToken('cashuBnotatoken')), ['tags.escrow']);
  t.same(paths(readEscrowToken('hello')), ['tags.escrow']);
});

t.test('claim and release packages: inputs are the escrow, signatures by the right keys', async (t) => {
  const secrets = [lockSecret(), lockSecret()];
  const esc = value(readEscrowToken(token(secrets, [8, 4])));
  const unsigned = SigAll.serializePackage({ version: 'sigallA', type: 'swap', inputs: secrets.map((secret) => ({ secret, C: point() })), outputs: [{ amount: 8, id: '00ad268c4d1f5826', B_: point() }, { amount: 2, id: '00ad268c4d1f5826', B_: point() }] } as unknown as Parameters<typeof SigAll.serializePackage>[0]);
  const claim = SigAll.serializePackage(SigAll.signPackage(SigAll.deserializePackage(unsigned), P.sk));
  const release = SigAll.serializePackage(SigAll.signPackage(SigAll.deserializePackage(claim), B.sk));

  const result = sign({ kind: 6930, created_at: T0, content: '{}', tags: [['e', sha256Hex('req')], ['p', buyer.pk], ['amount', '10000'], buildEscrowClaimTag(claim)] }, provider.sk);
  const c = value(parseEscrowClaim(result))!;
  t.equal(c.inputs.length, 2);
  t.same(escrowPackageSigners(c, [P.pub, B.pub, A.pub]), [xOnlyKey(P.pub)], 'the claim is signed by the provider alone');
  t.ok(verifyEscrowPackage(c, esc, [P.pub]).ok, 'claim answers the escrow');
  t.same(paths(verifyEscrowPackage(c, esc, [P.pub, B.pub])), ['package.witness'], 'no buyer signature yet');
  const r = value(readEscrowPackage(release));
  t.ok(verifyEscrowPackage(r, esc, [P.pub, B.pub]).ok, 'release carries both');
  const other = value(readEscrowToken(token([lockSecret()])));
  t.same(paths(verifyEscrowPackage(r, other, [P.pub])), ['package.inputs'], 'a package for other proofs');
  t.same(paths(parseEscrowClaim({ ...result, tags: [...result.tags.filter((x) => x[0] !== ESCROW_CLAIM_TAG), [ESCROW_CLAIM_TAG, 'sigallAxx']] })), ['tags.escrow_claim']);

  // Receipt (buyer) and verdict (arbiter) carry the release.
  const receipt = sign(buildReceipt({ requestId: sha256Hex('req'), resultId: result.id, provider: provider.pk, amountMsats: 10_000, payment: { method: 'cashu', mint: MINT, proofs: secrets.map((s) => ({ secret: s, y: hashToCurve(s) })) }, rating: 1, escrowRelease: release }), buyer.sk);
  const pr = value(parseReceipt(receipt));
  t.equal(pr.escrowRelease?.raw, release);
  t.same(paths(parseReceipt(sign(buildReceipt({ requestId: sha256Hex('req'), resultId: result.id, provider: provider.pk, amountMsats: 1000, payment: { method: 'lightning', bolt11: 'lnbcrt10n1pjqqqqqpp5', preimage: sha256Hex('x') }, escrowRelease: release }), buyer.sk))), ['tags.escrow_release'], 'a release goes with a cashu payment');
  const verdict = value(parseVerdict(sign(buildVerdict({ requestId: sha256Hex('req'), buyer: buyer.pk, provider: provider.pk, ruling: 'provider', reason: 'tests pass on replay', escrowRelease: release }), buyer.sk)));
  t.equal(verdict.escrowRelease?.signatures.length, 2);
});

t.test('disputes without an arbiter (nothing escrowed) and announcements with terms', async (t) => {
  const d = value(parseDispute(sign(buildDispute({ requestId: sha256Hex('req'), resultId: sha256Hex('res'), provider: provider.pk, failedChecks: ['test_exit_code'], evidenceSha256: sha256Hex('ev') }), buyer.sk)));
  t.equal(d.arbiter, undefined);
  t.same(d.failedChecks, ['test_exit_code']);
  const withArb = value(parseDispute(sign(buildDispute({ requestId: sha256Hex('req'), resultId: sha256Hex('res'), provider: provider.pk, arbiter: buyer.pk, failedChecks: ['x'], evidenceSha256: sha256Hex('ev') }), buyer.sk)));
  t.equal(withArb.arbiter, buyer.pk);
  const a = value(parseAnnouncement(sign(buildAnnouncement({ d: 'x', kinds: [5930, 5932], terms: { 5930: 'after-verify', 5932: 'escrow' }, arbiters: [A.pub], disputeWindowSecs: 3600, heartbeatSecs: 60, createdAt: T0 }), provider.sk)));
  t.same(a.terms, { 5930: 'after-verify', 5932: 'escrow' });
  t.same(a.arbiters, [A.pub]);
  t.equal(a.disputeWindowSecs, 3600);
  t.equal(a.heartbeatSecs, 60);
  const plain = value(parseAnnouncement(sign(buildAnnouncement({ d: 'x', kinds: [5050], createdAt: T0 }), provider.sk)));
  t.same([plain.terms, plain.arbiters, plain.heartbeatSecs], [{}, [], undefined], 'a plain NIP-89 handler has none of them');
  t.same(paths(parseAnnouncement({ kind: 31990, created_at: T0, content: '', tags: [['d', 'x'], ['k', '5930'], ['terms', '5050', 'escrow'], ['terms', '5930', 'later'], ['arbiter', 'npub1'], ['heartbeat', '0']] })), ['tags.arbiter[0]', 'tags.heartbeat', 'tags.terms[0]', 'tags.terms[1]']);
});
