// The pure parts: the ruling from the evidence, the case machine, the config, and the store's
// one-decision rule (a second decision for a job is refused, also after reopening the store).
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { problem } from '@bazaar/dvm-kinds/problem';
import { rule, isMinorProblem } from '../src/ruling.ts';
import { nextCaseState, type Case, type Decision, type ReplayRecord } from '../src/case.ts';
import { parseConfigText, validateConfig, ConfigError } from '../src/config.ts';
import { ArbiterStore, StoreError } from '../src/store.ts';

const replay = (problems: ReturnType<typeof problem>[], names = ['tests pass on our replay']): ReplayRecord => ({ ok: problems.length === 0, checks: names.map((name) => ({ name, passed: problems.length === 0 })), problems, replay: {}, at: 0 });
const stand = { id: 'r', position: 'stand' as const, message: 'it works', at: 0 };

t.test('the replay decides; silence alone never loses; a concession does', async (t) => {
  const failed = rule({ kind: 5932, replay: replay([problem('test_exit_code', 'mismatch', 'tests exited 1')]), splitProviderShare: 0.5 });
  t.equal(failed.ruling, 'buyer');
  t.match(failed.reasons.join(' '), /replay failed: test_exit_code: tests exited 1.*did not answer within the response window/);
  const passedSilent = rule({ kind: 5932, replay: replay([]), splitProviderShare: 0.5 });
  t.equal(passedSilent.ruling, 'provider', 'a silent provider whose work replays wins');
  t.match(passedSilent.reasons.join(' '), /silence alone decides nothing/);
  t.equal(rule({ kind: 5932, replay: replay([problem('test_exit_code', 'mismatch', 'x')]), response: stand, splitProviderShare: 0.5 }).ruling, 'buyer', 'answering does not save a failed replay');
  t.equal(rule({ kind: 5932, response: { ...stand, position: 'concede' }, splitProviderShare: 0.5 }).ruling, 'buyer', 'a concession needs no replay');
  t.throws(() => rule({ kind: 5932, response: stand, splitProviderShare: 0.5 }), /needs the provider to concede/, 'no replay, no concession: no ruling');
  const split = rule({ kind: 5932, replay: replay([problem('additions', 'mismatch', 'tag says 3')]), response: stand, splitProviderShare: 0.6 });
  t.same([split.ruling, split.providerShare], ['split', 0.6], 'right work, misstated: a split');
  t.ok(isMinorProblem(5933, problem('content.issues[2].file', 'mismatch', 'x')) && !isMinorProblem(5933, problem('review_sha256', 'mismatch', 'x')));
  t.notOk(isMinorProblem(5930, problem('content.commands[0].stdout_sha256', 'mismatch', 'x')), 'a reproduced output that differs is wrong work');
  const traj = rule({ kind: 5932, replay: replay([]), response: stand, trajectory: { status: 'mismatch', committed: 'a'.repeat(64), served: 'b'.repeat(64), requestedAt: 0 }, splitProviderShare: 0.5 });
  t.equal(traj.ruling, 'provider', 'a trajectory mismatch is evidence, not a verdict');
  t.ok(traj.checks.some((c) => c.name.startsWith('the trajectory served matches') && !c.passed));
  t.match(traj.reasons.join(' '), /does not match the hash in its result/);
});

t.test('case machine', async (t) => {
  t.equal(nextCaseState('open', 'replay-unavailable'), 'unavailable');
  t.equal(nextCaseState('unavailable', 'retry'), 'open');
  t.equal(nextCaseState('open', 'decide'), 'decided');
  t.equal(nextCaseState('decided', 'published'), 'published');
  t.equal(nextCaseState('decided', 'decide'), undefined, 'decided once');
  t.equal(nextCaseState('published', 'decide'), undefined);
  t.equal(nextCaseState('rejected', 'decide'), undefined);
});

t.test('config: defaults, every problem named, secrets not echoed', async (t) => {
  const ok = validateConfig({ relays: ['ws://127.0.0.1:4869'] });
  t.match(ok.config, { responseWindowSecs: 86_400, public: false, kinds: [5930, 5931, 5932, 5933], splitProviderShare: 0.5, feeSats: 0, isolation: 'bwrap' });
  const bad = validateConfig({ relays: ['http://x'], kinds: [5050, 5932], response_window_secs: 0, split_provider_share: 1, fee_sats: 10, nwc_uri: 'nostr+walletconnect-secret-but-wrong', colour: 'blue' });
  t.same(bad.problems.map((p) => p.split(':')[0]).sort(), ['colour', 'fee_sats', 'kinds[0]', 'nwc_uri', 'relays[0]', 'response_window_secs', 'split_provider_share']);
  t.notMatch(bad.problems.join('\n'), /secret-but-wrong/, 'the NWC URI is never quoted');
  t.throws(() => parseConfigText('{ "relays": [', 'x.jsonc'), ConfigError);
  const tpl = parseConfigText((await import('../src/config.ts')).configTemplate({ relays: ['ws://127.0.0.1:1'], mints: ['http://127.0.0.1:2'], responseWindowSecs: 60 }));
  t.match(tpl, { relays: ['ws://127.0.0.1:1'], mints: ['http://127.0.0.1:2'], responseWindowSecs: 60 }, 'the template parses');
});

t.test('the store decides a job once, across reopening', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-arb-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sk = generateSecretKey();
  const ev = (content: string) => finalizeEvent({ kind: 39301, created_at: 1, content, tags: [] }, sk) as NostrEvent;
  const c: Case = { id: 'a'.repeat(64), state: 'open', kind: 5932, buyer: 'b'.repeat(64), provider: 'c'.repeat(64), dispute: ev('d'), failedChecks: ['x'], buyerEvidenceSha256: 'e'.repeat(64), openedAt: 1, windowEndsAt: 2, updatedAt: 1 };
  const decision: Decision = { ruling: 'buyer', reasons: ['r'], checks: [], evidenceSha256: 'f'.repeat(64), release: { to: 'buyer', digest: '1'.repeat(64) }, decidedAt: 1 };
  let s = ArbiterStore.open(dir);
  t.ok(s.create(c));
  t.notOk(s.create(c), 'a repeated dispute is the same case');
  const first = ev('first');
  s.decide(c.id, decision, first);
  t.throws(() => s.decide(c.id, { ...decision, ruling: 'provider', release: { to: 'provider', digest: '2'.repeat(64) } }, ev('second')), StoreError);
  await s.close();
  s = ArbiterStore.open(dir);
  t.throws(() => s.decide(c.id, decision, ev('third')), StoreError, 'still refused after reopening');
  t.equal(s.get(c.id)?.verdict?.id, first.id, 'the first verdict stands');
  t.same(s.counts(), { open: 0, unavailable: 0, decided: 1, published: 0, rejected: 0 });
  await s.close();
});
