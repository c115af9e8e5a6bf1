// The relay's write pipeline: its built-in event limits (policies' eventLimits with the relay's
// numbers) run in front of whatever policy the operator gives, and the one default policy
// (policies' defaultPolicy) refuses malformed job requests over a socket.
import t from 'tap';
import { defaultPolicy } from '@bazaar/policies/default-policy';
import type { Policy } from '@bazaar/policies/policy';
import { buildPatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { buildSandboxRunRequest } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { TestClient, now, signer, startTestRelay } from './helpers.ts';

t.test('the built-in limits run before any operator policy, and cannot be switched off by it', async (t) => {
  const seen: string[] = [];
  const acceptAll: Policy = (e) => {
    seen.push(e.content);
    return { action: 'accept' };
  };
  const relay = await startTestRelay('ws', { policy: acceptAll, limits: { maxTags: 3, maxContentLength: 10, createdAtPastSecs: 3600 } });
  t.teardown(() => relay.close());
  const c = await TestClient.connect(relay.url);
  const alice = signer();
  const refusals: [string, Parameters<typeof alice.sign>[0], RegExp][] = [
    ['tags', { kind: 1, content: 'tags', tags: [['t', '1'], ['t', '2'], ['t', '3'], ['t', '4']] }, /^invalid: too many tags \(4 > 3\)/],
    ['content', { kind: 1, content: 'x'.repeat(11) }, /^invalid: content longer than 10 characters/],
    ['old', { kind: 1, content: 'old', created_at: now() - 7200 }, /^invalid: created_at is more than 3600 seconds in the past/],
    ['future', { kind: 1, content: 'future', created_at: now() + 3600 }, /^invalid: created_at is more than 900 seconds in the future/],
    ['expired', { kind: 1, content: 'expired', tags: [['expiration', String(now() - 1)]] }, /^invalid: event has expired/],
    ['protected', { kind: 1, content: 'protected', tags: [['-']] }, /^auth-required: /],
  ];
  for (const [name, tmpl, re] of refusals) t.match((await c.publish(alice.sign(tmpl)))[1], re, name);
  t.same(seen, [], 'the operator policy never saw them');
  t.same(await c.publish(alice.sign({ kind: 1, content: 'fine', tags: [['t', '1']] })), [true, '']);
  t.same(seen, ['fine']);
  await c.close();
});

t.test('the default policy over a socket: a malformed 5932 is refused with its problems', async (t) => {
  const relay = await startTestRelay('uws', { policy: defaultPolicy({}, { eventLimits: false }) });
  t.teardown(() => relay.close());
  const c = await TestClient.connect(relay.url);
  const bad = signer().sign({ kind: 5932, tags: [['param', 'time_limit_secs', 'soon']] });
  const [ok, msg] = await c.publish(bad);
  t.equal(ok, false);
  t.match(msg, /^invalid: /);
  t.ok(msg.length > 'invalid: '.length + 10, `problems listed: ${msg}`);
  t.same((await c.publish(signer().sign({ kind: 1, content: 'fine' })))[0], true, 'ordinary events pass');
  await c.close();
});

t.test('the default policy accepts job requests with params and tags it does not know', async (t) => {
  const relay = await startTestRelay('ws', { policy: defaultPolicy({}, { eventLimits: false }) });
  t.teardown(() => relay.close());
  const c = await TestClient.connect(relay.url);
  const buyer = signer();
  // As real NIP-90 clients send them: an application param (model) and tags no kind defines.
  const extra = [['param', 'model', 'claude-sonnet'], ['param', 'x-hint', 'fast'], ['client', 'some-app'], ['alt', 'a job request']];
  const sandbox = buildSandboxRunRequest({ params: { cmd: ['echo hi'], time_limit_secs: 30 }, repoUrl: 'https://git.example.com/acme/calc.git' });
  const patch = buildPatchGenRequest({ repoUrl: 'https://git.example.com/acme/calc.git', issueBody: 'Fix the sum.', params: { repo_ref: 'main', issue_title: 'sum is off by one', time_limit_secs: 600 } });
  for (const tmpl of [sandbox, patch]) {
    const e = buyer.sign({ kind: tmpl.kind, content: tmpl.content, tags: [...tmpl.tags, ...extra] });
    t.same(await c.publish(e), [true, ''], `kind ${e.kind} with unknown params accepted`);
  }
  // What the kind requires is still required: a 5930 without cmd is refused, and says why.
  const noCmd = buyer.sign({ kind: 5930, tags: [['param', 'time_limit_secs', '30'], ['param', 'model', 'x']] });
  const [ok, msg] = await c.publish(noCmd);
  t.equal(ok, false);
  t.match(msg, /^invalid: .*cmd/);
  t.notMatch(msg, /model/, 'the unknown param is not among the problems');
  await c.close();
});

t.test('a policy that outlives policyTimeoutMs is answered error: and its signal aborts', async (t) => {
  let aborted: unknown;
  let started!: () => void;
  const began = new Promise<void>((r) => (started = r));
  const stuck: Policy = (_e, _ctx, signal) =>
    new Promise((resolve) => {
      started();
      signal!.addEventListener('abort', () => {
        aborted = signal!.reason;
        resolve({ action: 'accept' });
      });
    });
  const relay = await startTestRelay('ws', { policy: stuck, policyTimeoutMs: 50 });
  t.teardown(() => relay.close());
  const c = await TestClient.connect(relay.url);
  const e = signer().sign({ kind: 1, content: 'slow' });
  const answer = c.publish(e);
  await began;
  t.same(await answer, [false, 'error: policy check timed out']);
  t.match(String(aborted), /timed out/, 'the policy was told to stop');
  t.same(await c.query('q', { ids: [e.id] }), [], 'and the event was not stored');
  await c.close();
});
