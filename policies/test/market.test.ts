// Market rules against a real in-memory store of signed events.
import t from 'tap';
import { buildPatchGenRequest, buildPatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { buildTextGenRequest } from '@bazaar/dvm-kinds/kinds/text-gen';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import { buildDispute } from '@bazaar/dvm-kinds/market/dispute';
import { buildVerdict } from '@bazaar/dvm-kinds/market/verdict';
import { buildReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { buildPing, buildPong } from '@bazaar/dvm-kinds/market/ping';
import { sealJobRequest } from '@bazaar/dvm-kinds/private';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { alice, bob, carol, ctx, MemoryStore, rep, short, sign, T0 } from './helpers.ts';
import type { Policy, PolicyContext } from '../src/policy.ts';
import { validJobRequest } from '../src/market/valid-job-request.ts';
import { validJobResult } from '../src/market/valid-job-result.ts';
import { resultAnswersKnownRequest } from '../src/market/result-answers-known-request.ts';
import { feedbackFromTaggedProvider } from '../src/market/feedback-from-tagged-provider.ts';
import { minBid } from '../src/market/min-bid.ts';
import { verdictFromNamedArbiter } from '../src/market/verdict-from-named-arbiter.ts';
import { reputationFloor } from '../src/market/reputation-floor.ts';

// alice = buyer, bob = provider, carol = arbiter / outsider
const PATCH = 'diff --git a/a.ts b/a.ts\n--- a/a.ts\n+++ b/a.ts\n@@ -1 +1 @@\n-x\n+y\n';
const goodReq = sign(buildPatchGenRequest({ repoUrl: 'https://git.example.com/r.git', issueBody: 'fix it', params: { repo_ref: 'main', issue_title: 'bug', time_limit_secs: 60 }, bidMsats: 5000, providers: [bob.pk], createdAt: T0 }), alice.sk);
const openReq = sign(buildTextGenRequest({ prompt: 'hi', createdAt: T0 }), alice.sk);
const badReq = sign({ kind: 5932, tags: [['i', 'https://git.example.com/r.git', 'url'], ['param', 'time_limit_secs', 'forever']] }, alice.sk);
const privateReq = sign(( (r) => (r.ok ? r.value : null!))(sealJobRequest(buildPatchGenRequest({ repoUrl: 'https://x.example/r.git', issueBody: 'b', params: { repo_ref: 'main', issue_title: 't', time_limit_secs: 5 }, createdAt: T0 }), alice.sk, bob.pk)), alice.sk);
const unknownKindReq = sign({ kind: 5100, tags: [['i', 'a cat', 'text'], ['param', 'size', '512x512']] }, alice.sk);
const resultByBob = sign(buildPatchGenResult(goodReq, { patch: PATCH }, { createdAt: T0 + 1 }), bob.sk);
const resultByCarol = sign(buildPatchGenResult(goodReq, { patch: PATCH }, { createdAt: T0 + 1 }), carol.sk);
const orphanResult = sign({ kind: 6932, tags: [['e', sha256Hex('nothing')], ['p', alice.pk]], content: PATCH }, bob.sk);
const wrongKindResult = sign({ kind: 6050, tags: [['e', goodReq.id], ['p', alice.pk]], content: 'x' }, bob.sk);
const resultForOpen = sign({ kind: 6050, tags: [['e', openReq.id], ['p', alice.pk]], content: 'x' }, carol.sk);
const fbBob = sign(buildFeedback({ request: goodReq, status: 'processing', createdAt: T0 + 1 }), bob.sk);
const fbCarol = sign(buildFeedback({ request: goodReq, status: 'processing', createdAt: T0 + 1 }), carol.sk);
const ping = sign(buildPing({ provider: bob.pk, createdAt: T0 }), alice.sk);
const pongBob = sign(buildPong(ping, undefined, T0 + 1), bob.sk);
const pongCarol = sign(buildPong(ping, undefined, T0 + 1), carol.sk);
const dispute = sign(buildDispute({ requestId: goodReq.id, resultId: resultByBob.id, provider: bob.pk, arbiter: carol.pk, failedChecks: ['test_exit_code'], evidenceSha256: sha256Hex('e'), createdAt: T0 + 2 }), alice.sk);
const verdictBy = (sk: Uint8Array) => sign(buildVerdict({ requestId: goodReq.id, buyer: alice.pk, provider: bob.pk, ruling: 'buyer', reason: 'tests fail', createdAt: T0 + 3 }), sk);
const lowRep = sign(buildReputationAssertion(bob.pk, { jobsSeen: 200, resultsDelivered: 100, paidJobs: 90, disputesOpened: 20, disputesLost: 15, medianLatencySecs: 30, satsEarned: 100, successRate: 0.45, tier: 0, perKind: [] }, T0), rep.sk);
const fakeRep = sign(buildReputationAssertion(carol.pk, { jobsSeen: 200, resultsDelivered: 200, paidJobs: 200, disputesOpened: 0, disputesLost: 0, medianLatencySecs: 1, satsEarned: 1, successRate: 1, tier: 3, perKind: [] }, T0), carol.sk);
const announceBob = sign(buildAnnouncement({ d: 'x', kinds: [5932], createdAt: T0 }), bob.sk);
const announceCarol = sign(buildAnnouncement({ d: 'x', kinds: [5932], createdAt: T0 }), carol.sk);

const store = new MemoryStore().add(goodReq, openReq, ping, dispute, lowRep, fakeRep);
const c: PolicyContext = ctx({ store });

t.test('market rules', async (t) => {
  const rows: [string, Policy, NostrEvent, string][] = [
    ['validJobRequest: well-formed 5932', validJobRequest(), goodReq, 'accept'],
    ['validJobRequest: malformed 5932', validJobRequest(), badReq, 'invalid:'],
    ['validJobRequest: private request checked by envelope', validJobRequest(), privateReq, 'accept'],
    ['validJobRequest: other NIP-90 kind checked by envelope', validJobRequest(), unknownKindReq, 'accept'],
    ['validJobRequest: broken envelope of other kind', validJobRequest(), sign({ kind: 5100, tags: [['bid', 'lots']] }), 'invalid:'],
    ['validJobRequest: not a job request', validJobRequest(), sign({ kind: 1 }), 'accept'],
    ['validJobResult: well-formed PatchGen result', validJobResult(), resultByBob, 'accept'],
    ['validJobResult: stats tags missing', validJobResult(), orphanResult, 'invalid:'],
    ['validJobResult: other kinds by envelope', validJobResult(), resultForOpen, 'accept'],
    ['validJobResult: envelope without e', validJobResult(), sign({ kind: 6100, tags: [['p', alice.pk]] }, bob.sk), 'invalid:'],
    ['validJobResult: not a result', validJobResult(), goodReq, 'accept'],
    ['result: from the named provider', resultAnswersKnownRequest(), resultByBob, 'accept'],
    ['result: from a provider the request did not name', resultAnswersKnownRequest(), resultByCarol, 'restricted:'],
    ['result: for an unknown request', resultAnswersKnownRequest(), orphanResult, 'invalid:'],
    ['result: kind does not match the request', resultAnswersKnownRequest(), wrongKindResult, 'invalid:'],
    ['result: open request, anyone may answer', resultAnswersKnownRequest(), resultForOpen, 'accept'],
    ['feedback: from the named provider', feedbackFromTaggedProvider(), fbBob, 'accept'],
    ['feedback: from someone else', feedbackFromTaggedProvider(), fbCarol, 'restricted:'],
    ['feedback: unknown request', feedbackFromTaggedProvider(), sign({ kind: 7000, tags: [['status', 'processing'], ['e', sha256Hex('x')], ['p', alice.pk]] }, bob.sk), 'invalid:'],
    ['pong: from the pinged provider', feedbackFromTaggedProvider(), pongBob, 'accept'],
    ['pong: from an impostor', feedbackFromTaggedProvider(), pongCarol, 'restricted:'],
    ['minBid: enough', minBid(5000), goodReq, 'accept'],
    ['minBid: too low', minBid(5001), goodReq, 'blocked:'],
    ['minBid: missing', minBid(1), openReq, 'blocked:'],
    ['minBid: missing allowed', minBid(1, { allowMissing: true }), openReq, 'accept'],
    ['minBid: other kinds untouched', minBid(1, { kinds: [5932] }), openReq, 'accept'],
    ['verdict: by the named arbiter', verdictFromNamedArbiter(), verdictBy(carol.sk), 'accept'],
    ['verdict: by someone else', verdictFromNamedArbiter(), verdictBy(bob.sk), 'restricted:'],
    ['verdict: no dispute', verdictFromNamedArbiter(), sign(buildVerdict({ requestId: openReq.id, buyer: alice.pk, provider: bob.pk, ruling: 'provider', reason: 'x' }), carol.sk), 'invalid:'],
    ['reputation: below the floor', reputationFloor({ reputationPubkey: rep.pk, minRank: 50 }), resultByBob, 'blocked:'],
    ['reputation: announcements too', reputationFloor({ reputationPubkey: rep.pk, minRank: 50 }), announceBob, 'blocked:'],
    ['reputation: assertions by other keys do not count', reputationFloor({ reputationPubkey: rep.pk, minRank: 50, allowUnknown: false }), announceCarol, 'blocked:'],
    ['reputation: unknown provider starts at tier 0', reputationFloor({ reputationPubkey: rep.pk, minRank: 50 }), announceCarol, 'accept'],
    ['reputation: tier floor', reputationFloor({ reputationPubkey: rep.pk, minTier: 1 }), fbBob, 'blocked:'],
    ['reputation: buyers untouched', reputationFloor({ reputationPubkey: rep.pk, minRank: 50 }), goodReq, 'accept'],
  ];
  for (const [name, p, e, expected] of rows) t.equal(short(await p(e, c)), expected, name);
});

t.test('validJobRequest lists every problem of a malformed 5932', async (t) => {
  const v = await validJobRequest()(badReq, c);
  t.equal(v.action, 'reject');
  const msg = v.action === 'reject' ? v.message : '';
  t.match(msg, /^invalid: malformed PatchGen \(5932\): /);
  for (const p of ['tags.param[time_limit_secs]', 'tags.param[repo_ref]', 'tags.param[issue_title]', 'tags.i']) t.ok(msg.includes(p), `mentions ${p}`);
});
