// Policy files: the example parses and builds; every config mistake is reported at once.
import t from 'tap';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alice, bob, ctx, MemoryStore, rep, short, sign, T0 } from './helpers.ts';
import { fakeClock } from '../src/clock.ts';
import { defaultPolicy } from '../src/default-policy.ts';
import { loadPolicyFile, parsePolicyText, PolicyConfigError, policyFromConfig, RULE_NAMES } from '../src/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'bazaar-policies-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const example = new URL('../examples/policies.jsonc', import.meta.url).pathname;

t.test('the example file loads and behaves as commented', async (t) => {
  const p = await loadPolicyFile(example, { clock: fakeClock(T0 * 1000) });
  const store = new MemoryStore();
  t.equal(short(await p(sign({ kind: 1 }), ctx({ store }))), 'blocked:', 'kind 1 is not a market kind');
  t.equal(short(await p(sign({ kind: 0, content: '{}' }), ctx({ store }))), 'accept');
  t.equal(short(await p(sign({ kind: 5932, tags: [['param', 'x', 'y']] }), ctx({ store }))), 'invalid:', 'malformed job request');
  t.equal(short(await p(sign({ kind: 6932, tags: [['e', 'a'.repeat(64)], ['p', alice.pk]] }, bob.sk), ctx({ store }))), 'invalid:', 'result for an unknown request');
});

t.test('defaults when the file has no rules; defaultPolicy limits', async (t) => {
  const clock = fakeClock(0);
  const p = policyFromConfig({}, { clock });
  t.equal(short(await p(sign({ kind: 1 }), ctx())), 'accept');
  t.equal(short(await p(sign({ kind: 1, tags: [['expiration', String(T0 - 1)]] }), ctx())), 'invalid:', 'expired');
  t.equal(short(await p(sign({ kind: 1, created_at: T0 + 3600 }), ctx())), 'invalid:', 'far future');
  const tight = defaultPolicy({ ipBurst: 2, ipPerSecond: 1 }, { clock });
  const verdicts = [];
  for (let i = 0; i < 3; i++) verdicts.push(short(await tight(sign({ kind: 1, content: String(i) }), ctx())));
  t.same(verdicts, ['accept', 'accept', 'rate-limited:']);
});

t.test('every problem in a bad config is listed with its path', async (t) => {
  const bad = {
    rules: [
      { rule: 'maxEventSize' },
      { rule: 'maxTags', max: -1, colour: 'red' },
      { rule: 'teleport' },
      { rule: 'restrictToKinds', kinds: [1, '9-2', 'x'] },
      { rule: 'when', kinds: [1], then: { rule: 'requirePow', difficulty: 'high' } },
      { rule: 'reputationFloor', minRank: 10 },
      'maxTags',
      { rule: 'not', policy: { rule: 'rejectExpired' }, message: 'nope' },
    ],
    extra: true,
  };
  const err = t.throws(() => policyFromConfig(bad, {}, 'test.jsonc')) as PolicyConfigError;
  t.ok(err instanceof PolicyConfigError);
  t.same(err.problems, [
    'extra: unknown top-level key (expected "rules")',
    'rules[0].bytes: required by maxEventSize',
    'rules[1].max: must be at least 0',
    'rules[1].colour: unknown option for maxTags (options: max, maxValues)',
    `rules[2].rule: unknown rule "teleport" (one of: ${RULE_NAMES.join(', ')})`,
    'rules[3].kinds[1]: not a kind or kind range: "9-2"',
    'rules[3].kinds[2]: not a kind or kind range: "x"',
    'rules[4].then.difficulty: must be an integer',
    "rules[5].reputationPubkey: required by reputationFloor (or give the relay's reputation key)",
    'rules[6]: a rule is an object like {"rule": "maxEventSize", "bytes": 65536}',
    'rules[7].message: must start with a NIP-01 prefix (invalid:, blocked:, rate-limited:, pow:, restricted:, auth-required:, duplicate:, error:), e.g. "blocked: not here"',
  ]);
  t.match(err.message, /^test\.jsonc: invalid policy configuration:/);
  t.doesNotThrow(() => policyFromConfig({ rules: [{ rule: 'reputationFloor', minRank: 10 }] }, { reputationPubkey: rep.pk }), "the relay's reputation key fills in");
});

t.test('JSONC syntax errors carry line and column; missing files fail clearly', async (t) => {
  t.same(parsePolicyText('{\n  // comment\n  "rules": [ { "rule": "rejectExpired" }, ],\n}'), { rules: [{ rule: 'rejectExpired' }] }, 'comments and trailing commas are fine');
  const e = t.throws(() => parsePolicyText('{\n  "rules": [ { "rule": } ]\n}', 'x.jsonc')) as PolicyConfigError;
  t.match(e.problems[0], /^line 2, column \d+: ValueExpected$/);
  const f = join(dir, 'bad.jsonc');
  writeFileSync(f, '{"rules": [{"rule": "minBid"}]}');
  await t.rejects(loadPolicyFile(f), { name: 'PolicyConfigError', message: /minBid/ });
  await t.rejects(loadPolicyFile(join(dir, 'missing.jsonc')), { code: 'ENOENT' });
});

t.test('combinators from the file', async (t) => {
  const p = policyFromConfig({ rules: [{ rule: 'any', rules: [{ rule: 'restrictToKinds', kinds: [1] }, { rule: 'not', policy: { rule: 'restrictToKinds', kinds: ['0-2'] }, message: 'blocked: odd' }] }] });
  t.equal(short(await p(sign({ kind: 1 }), ctx())), 'accept');
  t.equal(short(await p(sign({ kind: 2 }), ctx())), 'blocked:');
  t.equal(short(await p(sign({ kind: 3 }), ctx())), 'accept');
  const w = policyFromConfig({ rules: [{ rule: 'when', sources: ['ws'], then: [{ rule: 'rejectKinds', kinds: [1] }], otherwise: { rule: 'rejectKinds', kinds: [2] } }] });
  t.equal(short(await w(sign({ kind: 1 }), ctx())), 'blocked:');
  t.equal(short(await w(sign({ kind: 1 }), ctx({ type: 'sync' }))), 'accept');
  t.equal(short(await w(sign({ kind: 2 }), ctx({ type: 'sync' }))), 'blocked:');
});

t.test('eventLimits and maxContentLength rules in a file', async (t) => {
  const p = policyFromConfig({ rules: [{ rule: 'eventLimits', limits: { maxTags: 1, createdAtPastSecs: 60 } }, { rule: 'maxContentLength', chars: 3 }] });
  t.equal(short(await p(sign({ kind: 1, content: 'abc' }), ctx())), 'accept');
  t.equal(short(await p(sign({ kind: 1, content: 'abcd' }), ctx())), 'invalid:', 'content');
  t.equal(short(await p(sign({ kind: 1, tags: [['t', 'a'], ['t', 'b']] }), ctx())), 'invalid:', 'tags');
  t.equal(short(await p(sign({ kind: 1, created_at: T0 - 61 }), ctx())), 'invalid:', 'too old');
  t.throws(() => policyFromConfig({ rules: [{ rule: 'eventLimits', limits: { maxTags: -1, colour: 2 } }] }), /maxTags: must be a number >= 0[\s\S]*colour: unknown limit/);
});
