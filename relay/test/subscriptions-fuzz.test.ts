// Differential fuzz of the live-subscription index (as strfry's filter fuzz test): random
// subscriptions × random events, and SubscriptionIndex.match must return exactly the
// subscribers a deliberately naive NIP-01 matcher picks — no more, no fewer, each once —
// also after random removals. Reproduce with SUBS_FUZZ_SEED=<seed printed below>.
import t from 'tap';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { checkFilter } from '../src/filter.ts';
import { SubscriptionIndex, type Subscriber } from '../src/subscriptions.ts';
import { seeded } from './random.ts';

const seed = Number(process.env.SUBS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const SUBS = Number(process.env.SUBS_FUZZ_SUBS ?? 400);
const EVENTS = Number(process.env.SUBS_FUZZ_EVENTS ?? 4000);

const { int, pick, chance, hex: hexBytes, some: someOf } = seeded(seed);
const hex = (): string => hexBytes(32);
/** From none to `max` picks: empty lists (which match nothing) are part of the fuzz. */
const some = <T>(xs: readonly T[], max: number): T[] => someOf(xs, max, 0);

// Small pools, so that filters and events meet often.
const ids = Array.from({ length: 12 }, hex);
const pubkeys = Array.from({ length: 6 }, hex);
const kinds = [0, 1, 3, 7, 1059, 5050, 6050, 7000, 10002, 20001, 30023];
const letters = ['e', 'p', 't', 'd', 'k', 'E', 'P', 'T'];
const values = ['', 'nostr', 'x', 'ü', ...ids.slice(0, 3), ...pubkeys.slice(0, 3)];
const times = [100, 200, 200, 300, 400];

function randomEvent(): NostrEvent {
  const tags: string[][] = [];
  for (let i = int(6); i > 0; i--) {
    const name = chance(0.1) ? pick(['tt', 'expiration', '-']) : pick(letters);
    tags.push(chance(0.08) ? [name] : [name, pick(values), ...(chance(0.2) ? [pick(values)] : [])]);
  }
  return { id: pick(ids), pubkey: pick(pubkeys), created_at: pick(times), kind: pick(kinds), tags, content: '', sig: '' };
}

function randomFilter(): Filter {
  const f: Record<string, unknown> = {};
  if (chance(0.15)) f.ids = some(ids, 3);
  if (chance(0.5)) f.authors = some(pubkeys, 3);
  if (chance(0.6)) f.kinds = some(kinds, 3);
  for (let i = int(3); i > 0; i--) if (chance(0.6)) f[`#${pick(letters)}`] = some(values, 3);
  if (chance(0.3)) f.since = pick(times);
  if (chance(0.3)) f.until = pick(times);
  if (chance(0.2)) f.limit = int(10);
  // What the relay hands the index: a filter that passed checkFilter.
  const c = checkFilter(f);
  if (!c.ok) throw new Error(`generated an invalid filter: ${c.message}`);
  return c.filter;
}

/** NIP-01, written to be obviously right: every condition present must hold. */
function naiveMatch(f: Filter, e: NostrEvent): boolean {
  for (const [key, value] of Object.entries(f)) {
    if (key === 'ids' && !(value as string[]).includes(e.id)) return false;
    if (key === 'authors' && !(value as string[]).includes(e.pubkey)) return false;
    if (key === 'kinds' && !(value as number[]).includes(e.kind)) return false;
    if (key === 'since' && e.created_at < (value as number)) return false;
    if (key === 'until' && e.created_at > (value as number)) return false;
    if (key.startsWith('#') && !e.tags.some((tag) => tag.length >= 2 && tag[0] === key.slice(1) && (value as string[]).includes(tag[1]))) return false;
  }
  return true;
}

t.test(`SubscriptionIndex agrees with a naive matcher (seed ${seed})`, async (t) => {
  t.comment(`seed ${seed} (reproduce with SUBS_FUZZ_SEED=${seed})`);
  const index = new SubscriptionIndex<number>();
  const live = new Set<Subscriber<number>>();
  let nextId = 0;
  const subscribe = (): void => {
    const sub: Subscriber<number> = { conn: nextId % 7, subId: `s${nextId++}`, filters: Array.from({ length: 1 + int(3) }, randomFilter) };
    index.add(sub);
    live.add(sub);
  };
  for (let i = 0; i < SUBS; i++) subscribe();
  let mismatches = 0;
  let delivered = 0;
  for (let i = 0; i < EVENTS; i++) {
    // Churn: subscriptions come and go while events flow.
    if (chance(0.05) && live.size > 0) {
      const gone = pick([...live]);
      index.remove(gone);
      index.remove(gone); // removing twice is harmless
      live.delete(gone);
    }
    if (chance(0.05)) subscribe();
    const e = randomEvent();
    const got = index.match(e);
    const want = [...live].filter((s) => s.filters.some((f) => naiveMatch(f, e)));
    delivered += want.length;
    const gotIds = got.map((s) => s.subId).sort();
    const wantIds = want.map((s) => s.subId).sort();
    if (gotIds.length !== new Set(gotIds).size || JSON.stringify(gotIds) !== JSON.stringify(wantIds)) {
      mismatches++;
      if (mismatches <= 5) t.same(gotIds, wantIds, `seed ${seed}: event ${JSON.stringify(e)}`);
    }
  }
  t.equal(mismatches, 0, `seed ${seed}: every event reaches exactly the subscriptions that match it`);
  t.equal(index.size, live.size, 'size follows adds and removes');
  // The random workload must really exercise matching, or agreement proves little.
  const offered = EVENTS * SUBS;
  t.ok(delivered > EVENTS && delivered < offered / 4, `${delivered} deliveries over ${EVENTS} events: some match, most do not`);
  for (const s of live) index.remove(s);
  t.equal(index.size, 0);
  t.same(index.match(randomEvent()), [], 'an emptied index matches nothing');
});
