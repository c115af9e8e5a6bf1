// Table-driven tests for every built-in rule.
import t from 'tap';
import { finalizeEvent } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { alice, bob, ctx, short, sign, T0 } from './helpers.ts';
import type { Policy, PolicyContext } from '../src/policy.ts';
import { maxEventSize } from '../src/rules/max-event-size.ts';
import { maxTags } from '../src/rules/max-tags.ts';
import { createdAtWindow } from '../src/rules/created-at-window.ts';
import { rejectKinds, restrictToKinds } from '../src/rules/restrict-to-kinds.ts';
import { powOf, requirePow } from '../src/rules/require-pow.ts';
import { requireAuthForKinds } from '../src/rules/require-auth-for-kinds.ts';
import { protectedEvents } from '../src/rules/protected-events.ts';
import { rejectExpired } from '../src/rules/reject-expired.ts';
import { codePointLength, maxContentLength } from '../src/rules/max-content-length.ts';

type Row = [name: string, policy: Policy, event: NostrEvent, ctx: PolicyContext, expected: string];

/** Mines a kind-1 event whose nonce tag commits to `target` until its id has `difficulty` leading zero bits. */
const mined = (difficulty: number, target: number): NostrEvent => {
  for (let n = 0; ; n++) {
    const e = finalizeEvent({ kind: 1, created_at: T0, content: 'pow', tags: [['nonce', String(n), String(target)]] }, alice.sk) as NostrEvent;
    if (powOf(e.id) >= difficulty) return e;
  }
};

const pow8 = mined(8, 8);
const pow8claims4 = mined(8, 4);
const big = sign({ kind: 1, content: 'x'.repeat(2000) });
const small = sign({ kind: 1, content: 'hi' });
const manyTags = sign({ kind: 1, tags: Array.from({ length: 11 }, (_, i) => ['t', String(i)]) });
const wideTag = sign({ kind: 1, tags: [['x', '1', '2', '3', '4']] });
const protectedEv = sign({ kind: 1, tags: [['-']] });

const rows: Row[] = [
  ['size: under the limit', maxEventSize(1000), small, ctx(), 'accept'],
  ['size: over the limit', maxEventSize(1000), big, ctx(), 'invalid:'],
  ['size: measured size wins', maxEventSize(1000), small, ctx({ size: 5000 }), 'invalid:'],
  ['tags: at the limit', maxTags(11), manyTags, ctx(), 'accept'],
  ['tags: over the limit', maxTags(10), manyTags, ctx(), 'invalid:'],
  ['tags: tag too wide', maxTags(10, { maxValues: 4 }), wideTag, ctx(), 'invalid:'],
  ['created_at: inside window', createdAtWindow({ pastSecs: 60, futureSecs: 60 }), small, ctx(), 'accept'],
  ['created_at: too far in future', createdAtWindow({ futureSecs: 60 }), sign({ kind: 1, created_at: T0 + 61 }), ctx(), 'invalid:'],
  ['created_at: too old', createdAtWindow({ pastSecs: 60 }), sign({ kind: 1, created_at: T0 - 61 }), ctx(), 'invalid:'],
  ['created_at: no past bound', createdAtWindow({ futureSecs: 60 }), sign({ kind: 1, created_at: 1 }), ctx(), 'accept'],
  ['restrictToKinds: listed', restrictToKinds([1, [5000, 5999]]), small, ctx(), 'accept'],
  ['restrictToKinds: in range', restrictToKinds([1, [5000, 5999]]), sign({ kind: 5930 }), ctx(), 'accept'],
  ['restrictToKinds: not listed', restrictToKinds([0, [5000, 5999]]), small, ctx(), 'blocked:'],
  ['rejectKinds: listed', rejectKinds([1]), small, ctx(), 'blocked:'],
  ['rejectKinds: range', rejectKinds([[20000, 29999]]), sign({ kind: 22242 }), ctx(), 'blocked:'],
  ['rejectKinds: other', rejectKinds([4]), small, ctx(), 'accept'],
  ['pow: enough, committed', requirePow(8), pow8, ctx(), 'accept'],
  ['pow: no nonce tag', requirePow(8), small, ctx(), 'pow:'],
  ['pow: committed target too low', requirePow(8), pow8claims4, ctx(), 'pow:'],
  ['pow: higher bar than mined', requirePow(30), pow8, ctx(), 'pow:'],
  ['pow: zero difficulty still needs a nonce commitment', requirePow(0), pow8, ctx(), 'accept'],
  ['auth for kinds: not authed', requireAuthForKinds([4]), sign({ kind: 4 }), ctx(), 'auth-required:'],
  ['auth for kinds: authed', requireAuthForKinds([4]), sign({ kind: 4 }), ctx({ authedPubkey: bob.pk }), 'accept'],
  ['auth for kinds: authed as someone else', requireAuthForKinds([4], { matchAuthor: true }), sign({ kind: 4 }), ctx({ authedPubkey: bob.pk }), 'restricted:'],
  ['auth for kinds: other kind', requireAuthForKinds([4]), small, ctx(), 'accept'],
  ['NIP-70: unprotected', protectedEvents(), small, ctx(), 'accept'],
  ['NIP-70: protected, no auth', protectedEvents(), protectedEv, ctx(), 'auth-required:'],
  ['NIP-70: protected, authed as other', protectedEvents(), protectedEv, ctx({ authedPubkey: bob.pk }), 'restricted:'],
  ['NIP-70: protected, authed as author', protectedEvents(), protectedEv, ctx({ authedPubkey: alice.pk }), 'accept'],
  ['NIP-70: protected, author among several authed', protectedEvents(), protectedEv, ctx({ authedPubkey: bob.pk, authedPubkeys: [bob.pk, alice.pk] }), 'accept'],
  ['auth for kinds: author among several authed', requireAuthForKinds([4], { matchAuthor: true }), sign({ kind: 4 }), ctx({ authedPubkey: bob.pk, authedPubkeys: [bob.pk, alice.pk] }), 'accept'],
  ['content: at the limit (code points)', maxContentLength(4), sign({ kind: 1, content: '😀é😀é' }), ctx(), 'accept'],
  ['content: over the limit', maxContentLength(4), sign({ kind: 1, content: 'hello' }), ctx(), 'invalid:'],
  ['content: empty', maxContentLength(0), sign({ kind: 1, content: '' }), ctx(), 'accept'],
  ['NIP-70: protected, from sync', protectedEvents(), protectedEv, ctx({ type: 'sync' }), 'accept'],
  ['NIP-40: not expiring', rejectExpired(), small, ctx(), 'accept'],
  ['NIP-40: expires later', rejectExpired(), sign({ kind: 1, tags: [['expiration', String(T0 + 1)]] }), ctx(), 'accept'],
  ['NIP-40: expired', rejectExpired(), sign({ kind: 1, tags: [['expiration', String(T0)]] }), ctx(), 'invalid:'],
];

t.test('built-in rules', async (t) => {
  for (const [name, policy, event, c, expected] of rows) t.equal(short(await policy(event, c)), expected, name);
});

t.test('powOf counts leading zero bits (NIP-13 examples)', async (t) => {
  t.equal(powOf('000000000e9d97a1ab09fc381030b346cdd7a142ad57e6df0b46dc9bef6c7e2d'), 36);
  t.equal(powOf('0f' + '0'.repeat(62)), 4);
  t.equal(powOf('1' + '0'.repeat(63)), 3);
  t.equal(powOf('8' + '0'.repeat(63)), 0);
});

t.test('codePointLength counts characters, not UTF-16 units', async (t) => {
  t.equal(codePointLength(''), 0);
  t.equal(codePointLength('abc'), 3);
  t.equal(codePointLength('😀'), 1);
  t.equal(codePointLength('é😀x'), 3);
});
