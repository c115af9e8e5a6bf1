// Combinators and rate limiters (under a fake clock).
import t from 'tap';
import { alice, bob, ctx, short, sign } from './helpers.ts';
import { accept, reject, shadowReject, type Policy } from '../src/policy.ts';
import { any, kindIn, not, PolicyTimeoutError, seq, shadow, when, withTimeout } from '../src/combinators.ts';
import { fakeClock } from '../src/clock.ts';
import { ipKey, rateLimitByIp } from '../src/rules/rate-limit-by-ip.ts';
import { rateLimitByPubkey } from '../src/rules/rate-limit-by-pubkey.ts';
import { TokenBuckets } from '../src/rules/token-bucket.ts';

const A: Policy = () => accept();
const R = (m: string): Policy => () => reject(m);
const S: Policy = () => shadowReject('spam');
const THROW: Policy = () => {
  throw new Error('boom');
};
const ASYNC_THROW: Policy = async () => {
  throw new Error('async boom');
};
const ev = sign({ kind: 1 });

t.test('combinators', async (t) => {
  const calls: string[] = [];
  const spy = (name: string, p: Policy): Policy => (e, c) => {
    calls.push(name);
    return p(e, c);
  };
  const rows: [string, Policy, string][] = [
    ['seq: all accept', seq(A, A), 'accept'],
    ['seq: empty accepts', seq(), 'accept'],
    ['seq: first reject wins', seq(A, R('blocked: a'), R('invalid: b')), 'blocked:'],
    ['seq: shadowReject stops too', seq(S, R('invalid: b')), 'shadowReject'],
    ['seq: a throwing rule becomes error:', seq(A, THROW), 'error:'],
    ['seq: an async throw becomes error:', seq(ASYNC_THROW), 'error:'],
    ['any: one accept is enough', any(R('blocked: a'), A), 'accept'],
    ['any: none accepts → first verdict', any(R('blocked: a'), R('invalid: b')), 'blocked:'],
    ['any: empty rejects', any(), 'blocked:'],
    ['not: accept → reject', not(A, 'restricted: nope'), 'restricted:'],
    ['not: reject → accept', not(R('blocked: a'), 'restricted: nope'), 'accept'],
    ['when: predicate true runs policy', when(kindIn([1]), R('blocked: k1')), 'blocked:'],
    ['when: predicate false accepts', when(kindIn([2]), R('blocked: k1')), 'accept'],
    ['when: otherwise branch', when(kindIn([2]), A, R('invalid: other')), 'invalid:'],
    ['shadow: a rejection becomes a shadow-rejection', shadow(R('blocked: spam')), 'shadowReject'],
    ['shadow: acceptance stays', shadow(A), 'accept'],
    ['when: throwing predicate is error:', when(() => { throw new Error('x'); }, A), 'error:'],
  ];
  for (const [name, p, expected] of rows) t.equal(short(await p(ev, ctx())), expected, name);
  const rejectVerdict = await seq(A, R('blocked: a'))(ev, ctx());
  t.same(rejectVerdict, { action: 'reject', message: 'blocked: a' }, 'the message is passed through unchanged');
  await seq(spy('a', A), spy('b', R('blocked: b')), spy('c', A))(ev, ctx());
  t.same(calls, ['a', 'b'], 'seq stops at the first rejection');
  calls.length = 0;
  await any(spy('a', R('blocked: a')), spy('b', A), spy('c', A))(ev, ctx());
  t.same(calls, ['a', 'b'], 'any stops at the first acceptance');
});

t.test('withTimeout: a slow policy yields error: and its timer is cleared', async (t) => {
  let release!: () => void;
  const slow: Policy = () => new Promise((resolve) => (release = () => resolve(accept())));
  const v = await withTimeout(slow, 20)(ev, ctx());
  t.same(v, { action: 'reject', message: 'error: policy timed out' });
  release();
  t.equal(short(await withTimeout(A, 10_000)(ev, ctx())), 'accept', 'a fast policy is not delayed (and the 10s timer does not keep the process alive)');
  t.equal(short(await withTimeout(THROW, 1000)(ev, ctx())), 'error:');
  t.same(await withTimeout(slow, 5, shadowReject())(ev, ctx()), { action: 'shadowReject' }, 'custom timeout verdict');
  release();
});

t.test('a slow policy for one connection does not delay another', async (t) => {
  const gate = new Map<string, () => void>();
  const perConn: Policy = (_e, c) => (c.source.connectionId === 'slow' ? new Promise((r) => gate.set('slow', () => r(accept()))) : accept());
  const p = withTimeout(perConn, 60_000);
  const slowCall = p(ev, { ...ctx(), source: { type: 'ws', ip: '1.1.1.1', connectionId: 'slow' } });
  const fast = await p(ev, { ...ctx(), source: { type: 'ws', ip: '2.2.2.2', connectionId: 'fast' } });
  t.equal(short(fast), 'accept', 'the other connection is served while the slow one waits');
  gate.get('slow')!();
  t.equal(short(await slowCall), 'accept');
});

t.test('token buckets: burst, refill, bounded memory', async (t) => {
  const clock = fakeClock(0);
  const b = new TokenBuckets({ perSecond: 2, burst: 3, maxKeys: 2, clock });
  t.same([b.take('x'), b.take('x'), b.take('x'), b.take('x')], [true, true, true, false], 'burst of 3 then empty');
  clock.advance(499);
  t.notOk(b.take('x'), 'not yet refilled a whole token');
  clock.advance(1);
  t.ok(b.take('x'), '500 ms at 2/s refills one token');
  t.notOk(b.take('x'));
  clock.advance(60_000);
  t.same([b.take('x'), b.take('x'), b.take('x'), b.take('x')], [true, true, true, false], 'refill is capped at the burst');
  b.take('y');
  b.take('z');
  t.equal(b.size, 2, 'never more than maxKeys buckets');
});

t.test('rateLimitByIp and rateLimitByPubkey', async (t) => {
  const clock = fakeClock(0);
  const byIp = rateLimitByIp({ perSecond: 1, burst: 2, clock });
  const from = (ip: string, type: 'ws' | 'sync' = 'ws') => ctx({ ip, type });
  const seen = [];
  for (let i = 0; i < 3; i++) seen.push(short(await byIp(ev, from('198.51.100.1'))));
  t.same(seen, ['accept', 'accept', 'rate-limited:']);
  t.equal(short(await byIp(ev, from('198.51.100.2'))), 'accept', 'another address is still served');
  t.equal(short(await byIp(ev, from('198.51.100.1', 'sync'))), 'accept', 'sync/import are not rate limited');
  clock.advance(1000);
  t.equal(short(await byIp(ev, from('198.51.100.1'))), 'accept', 'refilled after a second');
  t.equal(short(await byIp(ev, from('::ffff:198.51.100.1'))), 'rate-limited:', 'IPv4-mapped IPv6 is the same client');
  t.equal(ipKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.equal(ipKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64', 'one /64 is one client');
  t.equal(ipKey('2001:db8::1'), '2001:db8:0:0::/64');

  const byPk = rateLimitByPubkey({ perSecond: 1, burst: 1, clock });
  const evA = sign({ kind: 1 }, alice.sk);
  const evB = sign({ kind: 1 }, bob.sk);
  t.equal(short(await byPk(evA, ctx())), 'accept');
  t.equal(short(await byPk(evA, ctx({ ip: '9.9.9.9' }))), 'rate-limited:', 'per author, whatever the address');
  t.equal(short(await byPk(evB, ctx())), 'accept');
});

t.test('the AbortSignal reaches every policy; withTimeout aborts the one it gave up on', async (t) => {
  const got: (AbortSignal | undefined)[] = [];
  const record: Policy = (_e, _c, signal) => {
    got.push(signal);
    return accept();
  };
  const ac = new AbortController();
  for (const p of [seq(record, record), any(record), not(record, 'blocked: x'), when(() => true, record), shadow(record)]) await p(ev, ctx(), ac.signal);
  t.ok(got.length === 6 && got.every((s) => s === ac.signal), 'combinators pass the caller\'s signal on');
  got.length = 0;
  await withTimeout(record, 1000)(ev, ctx(), ac.signal);
  t.ok(got[0] instanceof AbortSignal && got[0] !== ac.signal && !got[0].aborted, 'withTimeout gives its own signal');
  let innerSignal: AbortSignal | undefined;
  const waiting = withTimeout((_e, _c, signal) => new Promise((resolve) => {
    innerSignal = signal;
    signal!.addEventListener('abort', () => resolve(reject('error: stopped')));
  }), 60_000)(ev, ctx(), ac.signal);
  ac.abort(new Error('caller gave up'));
  t.same(await waiting, { action: 'reject', message: 'error: stopped' });
  t.match(String(innerSignal!.reason), /caller gave up/, "the caller's abort reaches a policy still running");

  let reason: unknown;
  const stuck: Policy = (_e, _c, signal) => new Promise((resolve) => signal!.addEventListener('abort', () => {
    reason = signal!.reason;
    resolve(accept());
  }));
  t.same(await withTimeout(stuck, 20)(ev, ctx()), { action: 'reject', message: 'error: policy timed out' });
  t.ok(reason instanceof PolicyTimeoutError, 'the timed-out policy was told to stop');

  const calls: string[] = [];
  const gone = new AbortController();
  const abortAfterFirst: Policy = () => {
    calls.push('first');
    gone.abort();
    return accept();
  };
  const v = await seq(abortAfterFirst, () => { calls.push('second'); return accept(); })(ev, ctx(), gone.signal);
  t.match(v, { action: 'reject', message: /^error: policy check aborted/ });
  t.same(calls, ['first'], 'seq runs nothing after an abort');
});

t.test('seq of synchronous rules answers synchronously', async (t) => {
  const v = seq(A, A, R('blocked: sync'))(ev, ctx());
  t.same(v, { action: 'reject', message: 'blocked: sync' }, 'a verdict, not a promise');
  const mixed = seq(A, async () => accept(), R('invalid: after async'))(ev, ctx());
  t.ok(mixed instanceof Promise, 'an async rule makes the rest async');
  t.same(await mixed, { action: 'reject', message: 'invalid: after async' });
});
