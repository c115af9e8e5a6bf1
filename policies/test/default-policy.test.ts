// The one default policy: event limits, rate limits for clients not on this machine, valid
// job requests — the same for the Bazaar relay and the strfry plugin.
import t from 'tap';
import { alice, ctx, short, sign, T0 } from './helpers.ts';
import { fakeClock } from '../src/clock.ts';
import { defaultPolicy } from '../src/default-policy.ts';
import { DEFAULT_LIMITS, eventLimits } from '../src/limits.ts';
import { isLoopback } from '../src/rules/rate-limit-by-ip.ts';

t.test('isLoopback', async (t) => {
  for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1']) t.ok(isLoopback(ip), ip);
  for (const ip of ['10.0.0.1', '192.168.1.1', '::ffff:10.0.0.1', '2001:db8::1', '', '1270.0.0.1'.slice(1)]) t.notOk(isLoopback(ip), ip);
});

t.test('clients elsewhere are rate limited, this machine and non-socket sources are not', async (t) => {
  const policy = defaultPolicy({ ipBurst: 5, ipPerSecond: 1, pubkeyBurst: 1000 }, { clock: fakeClock(0) });
  const count = async (c: ReturnType<typeof ctx>): Promise<number> => {
    let refused = 0;
    for (let i = 0; i < 20; i++) if ((await policy(sign({ kind: 1, content: String(i) }), c)).action === 'reject') refused++;
    return refused;
  };
  t.equal(await count(ctx({ ip: '203.0.113.7' })), 15, 'a remote flood is throttled after its burst');
  t.equal(await count(ctx({ ip: '127.0.0.1' })), 0, 'loopback is never throttled');
  t.equal(await count(ctx({ ip: '::1' })), 0);
  t.equal(await count(ctx({ ip: '203.0.113.7', type: 'sync' })), 0, 'sync is not a client connection');
});

t.test('event limits are part of the default policy unless the host runs them itself', async (t) => {
  const tooMany = sign({ kind: 1, tags: Array.from({ length: DEFAULT_LIMITS.maxTags + 1 }, () => ['t', 'x']) });
  const future = sign({ kind: 1, created_at: T0 + DEFAULT_LIMITS.createdAtFutureSecs + 1 });
  t.equal(short(await defaultPolicy()(tooMany, ctx())), 'invalid:');
  t.equal(short(await defaultPolicy()(future, ctx())), 'invalid:');
  t.equal(short(await defaultPolicy({}, { eventLimits: false })(tooMany, ctx())), 'accept', 'eventLimits: false leaves them to the host');
  t.equal(short(await defaultPolicy({}, { eventLimits: false })(sign({ kind: 5932, tags: [['param', 'time_limit_secs', 'soon']] }), ctx())), 'invalid:', 'job requests are still checked');
});

t.test('eventLimits', async (t) => {
  const rows: [string, Parameters<typeof eventLimits>[0], Parameters<typeof sign>[0], ReturnType<typeof ctx>, string][] = [
    ['defaults accept a plain note', {}, { kind: 1, content: 'hi' }, ctx(), 'accept'],
    ['size from the measured message', { maxEventBytes: 100 }, { kind: 1 }, ctx({ size: 101 }), 'invalid:'],
    ['size computed when not measured', { maxEventBytes: 100 }, { kind: 1, content: 'x'.repeat(200) }, ctx(), 'invalid:'],
    ['maxEventBytes 0 is no limit', { maxEventBytes: 0 }, { kind: 1, content: 'x'.repeat(200) }, ctx(), 'accept'],
    ['tags', { maxTags: 1 }, { kind: 1, tags: [['t', 'a'], ['t', 'b']] }, ctx(), 'invalid:'],
    ['content in characters', { maxContentLength: 2 }, { kind: 1, content: '😀😀' }, ctx(), 'accept'],
    ['content too long', { maxContentLength: 2 }, { kind: 1, content: 'abc' }, ctx(), 'invalid:'],
    ['no past bound by default', {}, { kind: 1, created_at: 1 }, ctx(), 'accept'],
    ['past bound', { createdAtPastSecs: 60 }, { kind: 1, created_at: T0 - 61 }, ctx(), 'invalid:'],
    ['NIP-40', {}, { kind: 1, tags: [['expiration', String(T0)]] }, ctx(), 'invalid:'],
    ['NIP-70', {}, { kind: 1, tags: [['-']] }, ctx({ authedPubkey: alice.pk }), 'accept'],
    ['NIP-70 unauthenticated', {}, { kind: 1, tags: [['-']] }, ctx(), 'auth-required:'],
  ];
  for (const [name, limits, tmpl, c, want] of rows) t.equal(short(await eventLimits(limits)(sign(tmpl), c)), want, name);
});
