// The relay benchmark's phases: ingest, queries, live fan-out, idle
// connections. Each is bounded in count and time, measures the relay's CPU
// from /proc when a pid is known, and closes every socket it opened.
import { performance } from 'node:perf_hooks';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { BenchConn, closeAll, openMany, type RelayMessage } from './ws-client.ts';
import { cpuSeconds, diskWriteBytes, rssKiB, writeSyscallBytes } from '@bazaar/testkit/proc';
import { makeKeys, signEvent, JOB_KINDS, type Key } from './corpus.ts';
import { rng } from '@bazaar/testkit/rng';
import { summarise, type Summary } from './stats.ts';

/** Relay CPU-seconds between two points, or null without a pid. */
function cpuMeter(pid: number | undefined): () => number | null {
  if (pid === undefined) return () => null;
  const c0 = cpuSeconds(pid);
  return () => cpuSeconds(pid) - c0;
}

const cpuOf = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

const perCpu = (n: number, cpu: number | null): number | null => (cpu === null || cpu <= 0 ? null : n / cpu);

/** "invalid: bad sig" → "invalid"; "" → "(empty)". */
const prefixOf = (msg: unknown): string => (typeof msg === 'string' && msg.includes(':') ? msg.slice(0, msg.indexOf(':')) : String(msg || '(no message)'));

// ---------------------------------------------------------------- ingest

export interface PublishResult {
  readonly events: number;
  readonly connections: number;
  readonly window: number;
  readonly accepted: number;
  readonly rejected: Record<string, number>;
  readonly unanswered: number;
  readonly timedOut: boolean;
  readonly wallSec: number;
  readonly relayCpuSec: number | null;
  /** CPU this benchmark process used (to spot a saturated client). */
  readonly benchCpuSec: number;
  readonly acceptedPerSec: number;
  readonly acceptedPerRelayCpuSec: number | null;
  readonly okLatencyMs: Summary;
  /** Bytes the relay wrote to storage during the phase, as the kernel accounts them (`write_bytes` of /proc/PID/io: whole folios dirtied), or null. */
  readonly diskWriteBytes: number | null;
  /** Bytes the relay handed to write syscalls during the phase (`wchar`), or null. */
  readonly writeSyscallBytes: number | null;
}

/**
 * Publishes `events` over `connections` sockets, each keeping at most
 * `window` EVENTs awaiting their OK. Counts OK true as accepted.
 */
export async function publishAll(url: string, pid: number | undefined, events: readonly NostrEvent[], opts: { connections: number; window: number; timeoutMs: number }): Promise<PublishResult> {
  const conns = await openMany(url, opts.connections);
  const frames = events.map((e) => JSON.stringify(['EVENT', e]));
  const rejected: Record<string, number> = {};
  const latencies: number[] = [];
  let accepted = 0;
  let answered = 0;
  const cpu = cpuMeter(pid);
  const written0 = pid === undefined ? null : diskWriteBytes(pid);
  const wchar0 = pid === undefined ? null : writeSyscallBytes(pid);
  const benchCpu0 = process.cpuUsage();
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await new Promise<boolean>((resolve) => {
    let finished = 0;
    if (events.length === 0) return resolve(false);
    timer = setTimeout(() => resolve(true), opts.timeoutMs);
    conns.forEach((conn, ci) => {
      // This connection's share: events ci, ci+n, ci+2n, …
      const mine: number[] = [];
      for (let i = ci; i < events.length; i += conns.length) mine.push(i);
      const inFlight = new Map<string, number>();
      let next = 0;
      const pump = (): void => {
        while (inFlight.size < opts.window && next < mine.length) {
          const idx = mine[next++];
          inFlight.set(events[idx].id, performance.now());
          conn.send(frames[idx]);
        }
        if (next >= mine.length && inFlight.size === 0) {
          finished++;
          if (finished === conns.length) resolve(false);
        }
      };
      conn.onMessage = (msg: RelayMessage) => {
        if (msg[0] !== 'OK' || typeof msg[1] !== 'string') return;
        const sentAt = inFlight.get(msg[1]);
        if (sentAt === undefined) return;
        inFlight.delete(msg[1]);
        answered++;
        latencies.push(performance.now() - sentAt);
        if (msg[2] === true) accepted++;
        else {
          const p = prefixOf(msg[3]);
          rejected[p] = (rejected[p] ?? 0) + 1;
        }
        pump();
      };
      if (mine.length === 0) {
        finished++;
        if (finished === conns.length) resolve(false);
      } else pump();
    });
  });
  clearTimeout(timer);
  const wallSec = (performance.now() - t0) / 1000;
  const relayCpuSec = cpu();
  const written1 = pid === undefined ? null : diskWriteBytes(pid);
  const wchar1 = pid === undefined ? null : writeSyscallBytes(pid);
  await closeAll(conns);
  return {
    events: events.length,
    connections: opts.connections,
    window: opts.window,
    accepted,
    rejected,
    unanswered: events.length - answered,
    timedOut,
    wallSec,
    relayCpuSec,
    benchCpuSec: cpuOf(process.cpuUsage(benchCpu0)),
    acceptedPerSec: accepted / wallSec,
    acceptedPerRelayCpuSec: perCpu(accepted, relayCpuSec),
    okLatencyMs: summarise(latencies),
    diskWriteBytes: written0 === null || written1 === null ? null : written1 - written0,
    writeSyscallBytes: wchar0 === null || wchar1 === null ? null : wchar1 - wchar0,
  };
}

// ---------------------------------------------------------------- queries

export interface Query {
  readonly type: string;
  readonly filter: Filter;
  /** For ids queries: exactly these ids must come back. */
  readonly expectIds?: readonly string[];
}

const isRegular = (k: number): boolean => k !== 0 && k !== 3 && !(k >= 10000 && k < 20000) && !(k >= 20000 && k < 40000);

/** A fixed, seeded mix of REQ filters that hit real data in `events`. */
export function buildQueryMix(events: readonly NostrEvent[], count: number, seed = 42): Query[] {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const regular = events.filter((e) => isRegular(e.kind));
  const requests = events.filter((e) => e.kind >= 5000 && e.kind < 6000);
  const noteAuthors = [...new Set(events.filter((e) => e.kind === 1).map((e) => e.pubkey))];
  const resultKinds = JOB_KINDS.map((k) => k + 1000);
  const minT = events[0]?.created_at ?? 0;
  const maxT = events[events.length - 1]?.created_at ?? 0;
  const makers: (() => Query)[] = [
    () => {
      const ids = Array.from({ length: 5 }, () => pick(regular).id);
      return { type: 'ids', filter: { ids }, expectIds: [...new Set(ids)] };
    },
    () => ({ type: 'authors+kinds', filter: { authors: [pick(noteAuthors)], kinds: [1, 7], limit: 500 } }),
    () => ({ type: '#e', filter: { '#e': [pick(requests).id], limit: 500 } }),
    () => ({ type: '#p+kinds 7000/6xxx', filter: { '#p': [pick(requests).pubkey], kinds: [7000, ...resultKinds], limit: 500 } }),
    () => {
      const since = Math.floor(minT + rand() * Math.max(1, maxT - minT - 21_600));
      return { type: 'kinds 5xxx since/until', filter: { kinds: [...JOB_KINDS], since, until: since + 21_600, limit: 500 } };
    },
    () => ({ type: '#k on 31990', filter: { kinds: [31990], '#k': [String(pick(JOB_KINDS))], limit: 500 } }),
    () => ({ type: 'kinds 1 limit 500', filter: { kinds: [1], limit: 500 } }),
  ];
  return Array.from({ length: count }, (_, i) => makers[i % makers.length]());
}

export interface QueryResult {
  readonly reqs: number;
  readonly connections: number;
  readonly completed: number;
  readonly closedByRelay: number;
  readonly timeouts: number;
  readonly idMismatches: number;
  readonly eventsReturned: number;
  readonly wallSec: number;
  readonly relayCpuSec: number | null;
  readonly benchCpuSec: number;
  readonly reqPerSec: number;
  readonly reqPerRelayCpuSec: number | null;
  readonly eoseMs: Summary;
  readonly eoseMsByType: Record<string, Summary & { avgEvents: number }>;
}

/** Runs the mix from `connections` sockets, each with one REQ in flight: REQ → events → EOSE → CLOSE. */
export async function runQueries(url: string, pid: number | undefined, mix: readonly Query[], opts: { connections: number; timeoutMs: number; reqTimeoutMs?: number }): Promise<QueryResult> {
  const conns = await openMany(url, opts.connections);
  const reqTimeoutMs = opts.reqTimeoutMs ?? 10_000;
  const eose: number[] = [];
  const byType = new Map<string, { ms: number[]; events: number }>();
  let next = 0;
  let completed = 0;
  let closedByRelay = 0;
  let timeouts = 0;
  let idMismatches = 0;
  let eventsReturned = 0;
  const deadline = performance.now() + opts.timeoutMs;
  const cpu = cpuMeter(pid);
  const benchCpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    conns.map(
      (conn, ci) =>
        new Promise<void>((done) => {
          let cur: { q: Query; subId: string; t: number; ids: Set<string>; n: number; timer: NodeJS.Timeout } | undefined;
          const issue = (): void => {
            if (next >= mix.length || performance.now() > deadline || conn.closed) return done();
            const q = mix[next];
            const subId = `q${ci}-${next++}`;
            const timer = setTimeout(() => {
              timeouts++;
              conn.send(['CLOSE', subId]);
              cur = undefined;
              issue();
            }, reqTimeoutMs);
            cur = { q, subId, t: performance.now(), ids: new Set(), n: 0, timer };
            conn.send(['REQ', subId, q.filter]);
          };
          conn.onMessage = (msg) => {
            if (!cur || msg[1] !== cur.subId) return;
            if (msg[0] === 'EVENT') {
              cur.n++;
              const ev = msg[2] as NostrEvent | undefined;
              if (cur.q.expectIds && ev && typeof ev.id === 'string') cur.ids.add(ev.id);
            } else if (msg[0] === 'EOSE' || msg[0] === 'CLOSED') {
              const c = cur;
              cur = undefined;
              clearTimeout(c.timer);
              const ms = performance.now() - c.t;
              if (msg[0] === 'CLOSED') closedByRelay++;
              else {
                completed++;
                eose.push(ms);
                eventsReturned += c.n;
                const bt = byType.get(c.q.type) ?? { ms: [], events: 0 };
                bt.ms.push(ms);
                bt.events += c.n;
                byType.set(c.q.type, bt);
                if (c.q.expectIds && (c.ids.size !== c.q.expectIds.length || c.q.expectIds.some((id) => !c.ids.has(id)))) idMismatches++;
                conn.send(['CLOSE', c.subId]);
              }
              issue();
            }
          };
          issue();
        }),
    ),
  );
  const wallSec = (performance.now() - t0) / 1000;
  const relayCpuSec = cpu();
  await closeAll(conns);
  const eoseMsByType: QueryResult['eoseMsByType'] = {};
  for (const [type, v] of byType) eoseMsByType[type] = { ...summarise(v.ms), avgEvents: v.events / v.ms.length };
  return {
    reqs: completed + closedByRelay + timeouts,
    connections: opts.connections,
    completed,
    closedByRelay,
    timeouts,
    idMismatches,
    eventsReturned,
    wallSec,
    relayCpuSec,
    benchCpuSec: cpuOf(process.cpuUsage(benchCpu0)),
    reqPerSec: completed / wallSec,
    reqPerRelayCpuSec: perCpu(completed, relayCpuSec),
    eoseMs: summarise(eose),
    eoseMsByType,
  };
}

// ---------------------------------------------------------------- query flood

export interface FloodResult {
  readonly verb: 'COUNT' | 'REQ';
  /** Messages the flooding connection sent at once. */
  readonly messages: number;
  readonly filters: readonly Filter[];
  /** Flood messages answered (COUNT result, EOSE or CLOSED). */
  readonly answered: number;
  /** From the burst to the last flood answer. */
  readonly floodSec: number;
  /** Distinct COUNT answers (a sanity check: every relay should count the same). */
  readonly counts: number[];
  /** Events the flood REQs received. */
  readonly floodEvents: number;
  /** The innocent REQ on the other connection, before the flood. */
  readonly baselineMs: Summary;
  /** The innocent REQ sent right after the burst. */
  readonly firstMs: number | null;
  /** Every innocent REQ while the flood ran (one in flight at a time). */
  readonly duringMs: Summary;
  /** Innocent REQs answered with the wrong events, closed or timed out. */
  readonly innocentErrors: number;
  readonly timedOut: boolean;
  readonly relayCpuSec: number | null;
}

/**
 * The noisy-neighbour scenario: one connection sends `messages` heavy COUNTs or REQs
 * at once; meanwhile another connection asks for one stored event by id, one REQ at a
 * time, and we time how long each answer (event + EOSE) takes. A fair relay answers the
 * innocent client in milliseconds whatever the flood costs.
 */
export async function runFlood(url: string, pid: number | undefined, opts: {
  verb: 'COUNT' | 'REQ';
  filters: readonly Filter[];
  messages: number;
  /** Ids of stored events: the innocent client asks for them one by one. */
  innocentIds: readonly string[];
  baseline?: number;
  timeoutMs: number;
}): Promise<FloodResult> {
  const [innocent, flooder] = await openMany(url, 2);
  const deadline = performance.now() + opts.timeoutMs;
  let seq = 0;
  let innocentErrors = 0;
  const ask = (): Promise<number> =>
    new Promise((resolve) => {
      const n = seq++;
      const subId = `innocent-${n}`;
      const want = opts.innocentIds[n % opts.innocentIds.length];
      const t = performance.now();
      let found = 0;
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        if (!ok) innocentErrors++;
        resolve(performance.now() - t);
      };
      const timer = setTimeout(() => finish(false), Math.max(1000, deadline - performance.now()));
      innocent.onMessage = (msg) => {
        if (msg[1] !== subId) return;
        if (msg[0] === 'EVENT') {
          if ((msg[2] as NostrEvent | undefined)?.id === want) found++;
          else found = -1e9;
        } else if (msg[0] === 'EOSE') {
          innocent.send(['CLOSE', subId]);
          finish(found === 1);
        } else if (msg[0] === 'CLOSED') finish(false);
      };
      innocent.send(['REQ', subId, { ids: [want] }]);
    });
  const baseline: number[] = [];
  for (let i = 0; i < (opts.baseline ?? 10); i++) baseline.push(await ask());

  let answered = 0;
  let floodEvents = 0;
  const counts = new Set<number>();
  let floodEnd = 0;
  let onFloodDone!: () => void;
  const floodDone = new Promise<void>((res) => (onFloodDone = res));
  flooder.onText = (text) => {
    if (text.startsWith('["EVENT"')) {
      floodEvents++;
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(msg)) return;
    if (msg[0] === 'COUNT') {
      const c = (msg[2] as { count?: unknown } | undefined)?.count;
      if (typeof c === 'number') counts.add(c);
    } else if (msg[0] === 'EOSE') flooder.send(['CLOSE', msg[1] as string]);
    else if (msg[0] !== 'CLOSED') return;
    if (++answered === opts.messages) {
      floodEnd = performance.now();
      onFloodDone();
    }
  };
  let done = false;
  void floodDone.then(() => (done = true));
  const cpu = cpuMeter(pid);
  const t0 = performance.now();
  for (let i = 0; i < opts.messages; i++) flooder.send([opts.verb, `flood-${i}`, ...opts.filters]);
  const during: number[] = [];
  do during.push(await ask());
  while (!done && performance.now() < deadline);
  if (!done) {
    await Promise.race([floodDone, new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - performance.now())).unref())]);
  }
  const relayCpuSec = cpu();
  await closeAll([innocent, flooder]);
  return {
    verb: opts.verb,
    messages: opts.messages,
    filters: opts.filters,
    answered,
    floodSec: ((done ? floodEnd : performance.now()) - t0) / 1000,
    counts: [...counts].sort((a, b) => a - b),
    floodEvents,
    baselineMs: summarise(baseline),
    firstMs: during[0] ?? null,
    duringMs: summarise(during),
    innocentErrors,
    timedOut: !done,
    relayCpuSec,
  };
}

// ---------------------------------------------------------------- live fan-out

export interface FanoutResult {
  readonly subscriptions: number;
  readonly connections: number;
  readonly offeredRate: number;
  readonly published: number;
  readonly accepted: number;
  readonly achievedRate: number;
  readonly expectedDeliveries: number;
  readonly delivered: number;
  readonly missing: number;
  readonly duplicates: number;
  readonly unexpected: number;
  readonly storedOnSubscribe: number;
  readonly latencyMs: Summary;
  /** Publisher's EVENT → OK latency. */
  readonly publishOkLatencyMs: Summary;
  readonly wallSec: number;
  readonly relayCpuSec: number | null;
  /** CPU this benchmark process used (to spot a saturated client). */
  readonly benchCpuSec: number;
  readonly deliveriesPerRelayCpuSec: number | null;
}

/**
 * Opens `connections` sockets with `subsPerConn` subscriptions each (filters on
 * authors, #p+kind 7000 and kinds, over keys and kinds no stored event uses),
 * then publishes at `rate` events/s for `seconds` from another socket. Each
 * event's content carries its send time; a naive matcher here says which
 * subscriptions must receive it, so missing deliveries are counted exactly.
 */
export async function runFanout(url: string, pid: number | undefined, opts: { connections: number; subsPerConn: number; rate: number; seconds: number; drainMs?: number }): Promise<FanoutResult> {
  const rand = rng(99);
  const publishers = await makeKeys(50);
  const recipients = (await makeKeys(100)).map((k) => k.pubkey);
  const fanKinds = Array.from({ length: 50 }, (_, i) => 5800 + i);
  // Subscription index: who must receive what.
  const byAuthor = new Map<string, string[]>();
  const byP7000 = new Map<string, string[]>();
  const byKind = new Map<number, string[]>();
  const add = <K>(m: Map<K, string[]>, k: K, v: string): void => {
    const l = m.get(k);
    if (l) l.push(v);
    else m.set(k, [v]);
  };
  const conns = await openMany(url, opts.connections);
  const expected = new Set<string>();
  const received = new Set<string>();
  const latencies: number[] = [];
  let duplicates = 0;
  let unexpected = 0;
  let storedOnSubscribe = 0;
  let eoseLeft = opts.connections * opts.subsPerConn;
  let onAllEose!: () => void;
  const allEose = new Promise<void>((res) => (onAllEose = res));
  let onDrained: (() => void) | undefined;
  let sending = true;
  for (let ci = 0; ci < conns.length; ci++) {
    const conn = conns[ci];
    const eosed = new Set<string>();
    conn.onMessage = (msg) => {
      const subId = msg[1];
      if (typeof subId !== 'string') return;
      if (msg[0] === 'EOSE' || msg[0] === 'CLOSED') {
        if (!eosed.has(subId)) {
          eosed.add(subId);
          if (--eoseLeft === 0) onAllEose();
        }
        return;
      }
      if (msg[0] !== 'EVENT') return;
      if (!eosed.has(subId)) {
        storedOnSubscribe++;
        return;
      }
      const ev = msg[2] as NostrEvent;
      const parts = typeof ev?.content === 'string' ? ev.content.split(' ') : [];
      const key = `${ci}:${subId}:${parts[1]}`;
      if (parts[0] !== 'fanout' || !expected.has(key)) {
        unexpected++;
        return;
      }
      if (received.has(key)) {
        duplicates++;
        return;
      }
      received.add(key);
      latencies.push(performance.now() - Number(parts[2]));
      if (!sending && received.size === expected.size) onDrained?.();
    };
    for (let s = 0; s < opts.subsPerConn; s++) {
      const j = ci * opts.subsPerConn + s;
      const subId = `f${s}`;
      const owner = `${ci}:${subId}`;
      let filter: Filter;
      if (j % 3 === 0) {
        const a = publishers[j % publishers.length].pubkey;
        filter = { authors: [a] };
        add(byAuthor, a, owner);
      } else if (j % 3 === 1) {
        const p = recipients[j % recipients.length];
        filter = { kinds: [7000], '#p': [p] };
        add(byP7000, p, owner);
      } else {
        const k = fanKinds[j % fanKinds.length];
        filter = { kinds: [k] };
        add(byKind, k, owner);
      }
      conn.send(['REQ', subId, filter]);
    }
  }
  const eoseTimeout = AbortSignal.timeout(30_000);
  await Promise.race([allEose, new Promise<void>((_, rej) => eoseTimeout.addEventListener('abort', () => rej(new Error(`fan-out: ${eoseLeft} subscriptions never got EOSE`))))]);

  // Publish at a fixed offered rate from one more connection.
  const pub = await BenchConn.open(url);
  let accepted = 0;
  let answered = 0;
  let onAllOk: (() => void) | undefined;
  const sentAtById = new Map<string, number>();
  const okLatencies: number[] = [];
  pub.onMessage = (msg) => {
    if (msg[0] !== 'OK') return;
    answered++;
    const sentAt = sentAtById.get(msg[1] as string);
    if (sentAt !== undefined) okLatencies.push(performance.now() - sentAt);
    if (msg[2] === true) accepted++;
    if (!sending && answered === published) onAllOk?.();
  };
  const total = Math.round(opts.rate * opts.seconds);
  const cpu = cpuMeter(pid);
  const benchCpu0 = process.cpuUsage();
  const t0 = performance.now();
  let published = 0;
  const publishOne = async (): Promise<void> => {
    const seq = published++;
    const key: Key = publishers[Math.floor(rand() * publishers.length)];
    const p = recipients[Math.floor(rand() * recipients.length)];
    const kind = rand() < 0.5 ? 7000 : fanKinds[Math.floor(rand() * fanKinds.length)];
    const tags = kind === 7000 ? [['status', 'processing'], ['p', p]] : [['p', p]];
    const owners = [...(byAuthor.get(key.pubkey) ?? []), ...(kind === 7000 ? (byP7000.get(p) ?? []) : (byKind.get(kind) ?? []))];
    for (const o of new Set(owners)) expected.add(`${o}:${seq}`);
    const sentAt = performance.now();
    const ev = await signEvent(key, { kind, created_at: Math.floor(Date.now() / 1000), tags, content: `fanout ${seq} ${sentAt.toFixed(3)}` });
    sentAtById.set(ev.id, sentAt);
    pub.send(['EVENT', ev]);
  };
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * opts.rate) / 1000) + 1);
      const batch: Promise<void>[] = [];
      while (published < due) batch.push(publishOne());
      void Promise.all(batch).then(() => {
        if (published >= total) return resolve();
        setTimeout(tick, Math.max(0, (published * 1000) / opts.rate - (performance.now() - t0)));
      });
    };
    tick();
  });
  sending = false;
  // Wait (bounded) for every expected delivery.
  if (received.size < expected.size) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, opts.drainMs ?? 10_000);
      onDrained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  // …and (bounded) for the OK of every published event.
  if (answered < published) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      onAllOk = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  const wallSec = (performance.now() - t0) / 1000;
  const relayCpuSec = cpu();
  await pub.close();
  await closeAll(conns);
  return {
    subscriptions: opts.connections * opts.subsPerConn,
    connections: opts.connections,
    offeredRate: opts.rate,
    published,
    accepted,
    achievedRate: published / opts.seconds,
    expectedDeliveries: expected.size,
    delivered: received.size,
    missing: expected.size - received.size,
    duplicates,
    unexpected,
    storedOnSubscribe,
    latencyMs: summarise(latencies),
    publishOkLatencyMs: summarise(okLatencies),
    wallSec,
    relayCpuSec,
    benchCpuSec: cpuOf(process.cpuUsage(benchCpu0)),
    deliveriesPerRelayCpuSec: perCpu(received.size, relayCpuSec),
  };
}

// ---------------------------------------------------------------- idle connections

export interface IdleResult {
  readonly connections: number;
  readonly opened: number;
  readonly rssBeforeKiB: number | null;
  readonly rssAfterKiB: number | null;
  readonly rssAfterCloseKiB: number | null;
  readonly kibPerConnection: number | null;
  readonly openSec: number;
  readonly error?: string;
}

/** Waits (bounded) until RSS stops moving: two samples 250 ms apart within 0.5 %. */
async function settledRss(pid: number, maxMs = 5000): Promise<number> {
  let prev = rssKiB(pid);
  const end = performance.now() + maxMs;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    const cur = rssKiB(pid);
    if (Math.abs(cur - prev) <= prev * 0.005) return cur;
    prev = cur;
  }
  return prev;
}

export async function runIdle(url: string, pid: number | undefined, opts: { connections: number }): Promise<IdleResult> {
  const before = pid === undefined ? null : await settledRss(pid);
  const t0 = performance.now();
  let conns: BenchConn[] = [];
  let error: string | undefined;
  try {
    conns = await openMany(url, opts.connections, 200);
  } catch (err) {
    error = (err as Error).message;
  }
  const openSec = (performance.now() - t0) / 1000;
  const after = pid === undefined || error ? null : await settledRss(pid);
  const opened = conns.length;
  await closeAll(conns);
  const afterClose = pid === undefined ? null : await settledRss(pid);
  return {
    connections: opts.connections,
    opened,
    rssBeforeKiB: before,
    rssAfterKiB: after,
    rssAfterCloseKiB: afterClose,
    kibPerConnection: before !== null && after !== null && opened ? (after - before) / opened : null,
    openSec,
    ...(error ? { error } : {}),
  };
}
