// A provider pool: several `bazaar provider serve --cluster nats://…` processes, on one
// machine or many, under one identity (the same sealed keys.json and passphrase). What they
// share lives in three JetStream KV buckets named after the identity's pubkey:
//
//   bazaar-provider-<pubkey>-jobs      one claim per job request: who does it, under a lease (claims.ts)
//   bazaar-provider-<pubkey>-workers   `worker.<name>`: each worker's capacity and load, rewritten every lease/3;
//                                      `leader`: the worker that speaks for the pool (announcement, heartbeat, pongs)
//   bazaar-provider-<pubkey>-earnings  one entry per paid job: the pool's earnings book
//
// Liveness is judged the same way everywhere: an entry its owner stopped rewriting for a whole
// lease, as observed on the observer's own clock, belongs to a dead worker.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { Earning } from '../store.ts';
import { Claims, isCasConflict, type ClaimsOptions } from './claims.ts';

export type { Claim } from './claims.ts';
export { LeaseLostError } from './claims.ts';

export const DEFAULT_LEASE_MS = 30_000;
/** A worker's name: it names its registry entry and appears in logs and claims. */
export const WORKER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Claims and worker entries are dropped this long after their last write (requests are only looked back on for minutes). */
const CLAIM_MAX_AGE_MS = 7 * 86_400_000;

export class PoolError extends Error {
  override name = 'PoolError';
}

export interface WorkerInfo {
  readonly worker: string;
  readonly session: string;
  readonly capacity: number;
  readonly running: number;
  readonly queued: number;
  readonly kinds: readonly number[];
  readonly startedAt: number;
  readonly at: number;
}

export interface PoolView {
  readonly worker: string;
  readonly leader: string | undefined;
  readonly isLeader: boolean;
  /** Workers alive (rewrote their entry within a lease, as seen here), this one included. */
  readonly workers: readonly WorkerInfo[];
  readonly capacity: number;
  readonly running: number;
}

export interface PoolHooks {
  /** This worker's entry in the registry. */
  readonly load: () => { capacity: number; running: number; queued: number; kinds: readonly number[] };
  readonly canTake: ClaimsOptions['canTake'];
  readonly onTakeover: ClaimsOptions['onTakeover'];
  readonly onRepublish: ClaimsOptions['onRepublish'];
  /** This worker became (true) or stopped being (false) the pool's voice. */
  readonly onLeader: (leader: boolean) => void;
  /** The set of live workers or their total capacity changed. */
  readonly onPoolChange: (view: PoolView) => void;
}

export interface PoolOptions {
  /** NATS server URL(s), comma-separated (`nats://host:4222`). */
  readonly servers: string;
  readonly worker: string;
  /** The provider identity's pubkey: it names the pool's buckets. */
  readonly pubkey: string;
  readonly leaseMs?: number;
  readonly logger: Logger;
  /** How long to wait for NATS at connect (ms). */
  readonly connectTimeoutMs?: number;
}

export const bucketNames = (pubkey: string) => ({
  jobs: `bazaar-provider-${pubkey}-jobs`,
  workers: `bazaar-provider-${pubkey}-workers`,
  earnings: `bazaar-provider-${pubkey}-earnings`,
});

async function connectNats(servers: string, name: string, timeoutMs: number): Promise<NatsConnection> {
  const list = servers.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of list) if (!/^(nats|tls):\/\/[^\s/]+$/.test(s) && !/^[^\s/:]+:\d+$/.test(s)) throw new PoolError(`--cluster must be nats://host:port (comma-separated for several), got ${JSON.stringify(s)}`);
  try {
    // Reconnect forever once connected: leases make an outage safe, and work resumes after it.
    return await connect({ servers: list.map((s) => s.replace(/^nats:\/\//, '')), name, maxReconnectAttempts: -1, reconnectTimeWait: 1000, timeout: timeoutMs });
  } catch (err) {
    throw new PoolError(`cannot reach NATS at ${servers}: ${(err as Error).message}`);
  }
}

export class ProviderPool {
  readonly worker: string;
  readonly session = randomBytes(8).toString('hex');
  readonly leaseMs: number;
  readonly #nc: NatsConnection;
  readonly #jobsKv: KV;
  #claims: Claims | undefined;
  readonly #workersKv: KV;
  readonly #earningsKv: KV;
  readonly #log: Logger;
  readonly #startedAt = Date.now();
  readonly #seen = new Map<string, { info: WorkerInfo; rev: number; since: number }>();
  #leader: { worker: string; session: string; rev: number; since: number } | undefined;
  #isLeader = false;
  #leaderRev = 0;
  #hooks!: PoolHooks;
  #timer: NodeJS.Timeout | undefined;
  #watch: { stop(): void } | undefined;
  #lastView = '';
  #unbooked = new Map<string, Earning>();
  #ticking = false;
  #closed = false;

  private constructor(o: PoolOptions, nc: NatsConnection, kvs: { jobs: KV; workers: KV; earnings: KV }) {
    this.worker = o.worker;
    this.leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    this.#nc = nc;
    this.#jobsKv = kvs.jobs;
    this.#workersKv = kvs.workers;
    this.#earningsKv = kvs.earnings;
    this.#log = o.logger.child({ part: 'provider-pool' });
  }

  /** The job claims (after start()). */
  get claims(): Claims {
    if (!this.#claims) throw new Error('the pool is not started');
    return this.#claims;
  }

  /** Reaches NATS and makes sure the pool's buckets exist, so `serve` fails at start (not at its first job) when NATS is unusable. */
  static async connect(o: PoolOptions): Promise<ProviderPool> {
    if (!WORKER_NAME.test(o.worker)) throw new PoolError(`--worker must be 1–64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(o.worker)}`);
    const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    const nc = await connectNats(o.servers, `bazaar-provider-${o.worker}`, o.connectTimeoutMs ?? 5000);
    try {
      const kvm = new Kvm(nc);
      const names = bucketNames(o.pubkey);
      const jobs = await kvm.create(names.jobs, { history: 1, ttl: CLAIM_MAX_AGE_MS, timeout: 5000 });
      const workers = await kvm.create(names.workers, { history: 1, ttl: CLAIM_MAX_AGE_MS, timeout: 5000 });
      const earnings = await kvm.create(names.earnings, { history: 1, timeout: 5000 });
      const pool = new ProviderPool({ ...o, leaseMs }, nc, { jobs, workers, earnings });
      pool.#log.info({ servers: o.servers, leaseMs, session: pool.session }, 'joined the provider pool');
      return pool;
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw new PoolError(`NATS at ${o.servers} has no usable JetStream (run nats-server with -js): ${(err as Error).message}`);
    }
  }

  async start(hooks: PoolHooks): Promise<void> {
    this.#hooks = hooks;
    this.#claims = new Claims({ kv: this.#jobsKv, worker: this.worker, session: this.session, leaseMs: this.leaseMs, log: this.#log, canTake: hooks.canTake, onTakeover: hooks.onTakeover, onRepublish: hooks.onRepublish });
    await this.#register();
    const w = await this.#workersKv.watch({ key: '>' });
    this.#watch = w;
    void (async () => {
      for await (const e of w) this.#observe(e);
    })().catch((err: unknown) => {
      if (!this.#closed) this.#log.error({ err: (err as Error).message }, 'pool watch ended');
    });
    await this.#claims.start();
    await this.#tick();
    this.#timer = setInterval(() => void this.#tick(), Math.max(100, Math.floor(this.leaseMs / 3)));
  }

  get isLeader(): boolean {
    return this.#isLeader;
  }

  view(): PoolView {
    const now = performance.now();
    // Ourselves live, the others as they last registered.
    const workers = [...this.#seen.values()].filter((s) => s.info.worker !== this.worker && now - s.since <= this.leaseMs).map((s) => s.info);
    workers.push(this.#me());
    workers.sort((a, b) => a.worker.localeCompare(b.worker));
    return {
      worker: this.worker,
      leader: this.#isLeader ? this.worker : this.#leader?.worker,
      isLeader: this.#isLeader,
      workers,
      capacity: workers.reduce((s, w) => s + w.capacity, 0),
      running: workers.reduce((s, w) => s + w.running, 0),
    };
  }

  #me(): WorkerInfo {
    const l = this.#hooks.load();
    return { worker: this.worker, session: this.session, capacity: l.capacity, running: l.running, queued: l.queued, kinds: l.kinds, startedAt: this.#startedAt, at: Date.now() };
  }

  async #register(): Promise<void> {
    const me = this.#me();
    await this.#workersKv.put(`worker.${this.worker}`, JSON.stringify(me));
    this.#seen.set(this.worker, { info: me, rev: 0, since: performance.now() });
  }

  #observe(e: KvEntry): void {
    if (e.key === 'leader') {
      if (e.operation !== 'PUT') {
        this.#leader = undefined;
        return;
      }
      const l = e.json<{ worker: string; session: string }>();
      if (this.#leader?.rev === e.revision) return;
      this.#leader = { worker: l.worker, session: l.session, rev: e.revision, since: performance.now() };
      if (this.#isLeader && l.session !== this.session) this.#setLeader(false);
      return;
    }
    if (!e.key.startsWith('worker.')) return;
    const name = e.key.slice('worker.'.length);
    if (e.operation !== 'PUT') {
      this.#seen.delete(name);
      this.#viewChanged();
      return;
    }
    const prev = this.#seen.get(name);
    if (prev?.rev === e.revision) return;
    try {
      this.#seen.set(name, { info: e.json<WorkerInfo>(), rev: e.revision, since: performance.now() });
    } catch {
      return;
    }
    this.#viewChanged();
  }

  #viewChanged(): void {
    const v = this.view();
    const key = JSON.stringify([v.workers.map((w) => [w.worker, w.capacity]), v.capacity]);
    if (key === this.#lastView) return;
    const first = this.#lastView === '';
    this.#lastView = key;
    if (!first || v.workers.length > 1) this.#log.info({ workers: v.workers.map((w) => w.worker), capacity: v.capacity }, 'pool changed');
    this.#hooks.onPoolChange(v);
  }

  #setLeader(on: boolean): void {
    if (this.#isLeader === on) return;
    this.#isLeader = on;
    this.#log.info({ worker: this.worker }, on ? 'this worker now speaks for the pool (announcement, heartbeat, pongs)' : 'no longer the pool\'s voice');
    this.#hooks.onLeader(on);
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    try {
      await this.#register();
      await this.#lead();
      this.#viewChanged();
      for (const e of [...this.#unbooked.values()]) await this.bookEarning(e);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'pool tick failed (NATS unreachable?)');
    } finally {
      this.#ticking = false;
    }
  }

  /** The leader lease: renewed by compare-and-set; taken when absent or not rewritten for a whole lease. */
  async #lead(): Promise<void> {
    const value = JSON.stringify({ worker: this.worker, session: this.session, at: Date.now() });
    if (this.#isLeader) {
      try {
        this.#leaderRev = await this.#workersKv.update('leader', value, this.#leaderRev);
      } catch (err) {
        if (isCasConflict(err)) this.#setLeader(false);
        else throw err;
      }
      return;
    }
    try {
      if (!this.#leader) this.#leaderRev = await this.#workersKv.create('leader', value);
      else if (performance.now() - this.#leader.since > this.leaseMs) this.#leaderRev = await this.#workersKv.update('leader', value, this.#leader.rev);
      else return;
    } catch (err) {
      if (isCasConflict(err)) return;
      throw err;
    }
    this.#setLeader(true);
  }

  /** Books a paid job in the pool's earnings book (idempotent: keyed by job id); kept and retried while NATS is unreachable. */
  async bookEarning(e: Earning): Promise<void> {
    try {
      await this.#earningsKv.put(e.jobId, JSON.stringify({ ...e, worker: this.worker }));
      this.#unbooked.delete(e.jobId);
    } catch (err) {
      if (!this.#unbooked.has(e.jobId)) this.#log.warn({ jobId: e.jobId, err: (err as Error).message }, 'earning not yet in the pool book; will retry');
      this.#unbooked.set(e.jobId, e);
    }
  }

  /** At start: earnings in the local book that the pool's book lacks (booked while NATS was unreachable, or before joining). */
  async syncEarnings(local: Iterable<Earning>): Promise<number> {
    const have = new Set<string>();
    for await (const k of await this.#earningsKv.keys()) have.add(k);
    let added = 0;
    for (const e of local) {
      if (have.has(e.jobId)) continue;
      await this.bookEarning(e);
      added++;
    }
    return added;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#claims?.stop();
    this.#watch?.stop();
    // Without NATS (a partition) none of this can complete: give up after a few seconds.
    const bounded = (p: Promise<unknown>): Promise<unknown> => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    await bounded(this.#workersKv.delete(`worker.${this.worker}`));
    // Leaving the voice to the others at once rather than after a lease.
    if (this.#isLeader) await bounded(this.#workersKv.delete('leader', { previousSeq: this.#leaderRev }));
    await bounded(this.#nc.drain());
    if (!this.#nc.isClosed()) await this.#nc.close().catch(() => undefined);
    this.#log.info({}, 'left the provider pool');
  }
}

export interface PoolEarning extends Earning {
  readonly worker?: string;
}

/** The pool's earnings book, read without joining the pool (for `bazaar provider earnings --cluster`). */
export async function readPoolEarnings(o: { servers: string; pubkey: string; timeoutMs?: number }): Promise<PoolEarning[]> {
  const nc = await connectNats(o.servers, 'bazaar-provider-earnings', o.timeoutMs ?? 5000);
  try {
    let kv: KV;
    try {
      kv = await new Kvm(nc).open(bucketNames(o.pubkey).earnings, { bindOnly: true, timeout: o.timeoutMs ?? 5000 });
    } catch (err) {
      throw new PoolError(`no provider pool for this identity at ${o.servers} (no earnings bucket; has a worker run with --cluster?): ${(err as Error).message}`);
    }
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    const out: PoolEarning[] = [];
    for (let i = 0; i < keys.length; i += 64) {
      const got = await Promise.all(keys.slice(i, i + 64).map((k) => kv.get(k)));
      for (const e of got) if (e?.operation === 'PUT') out.push(e.json<PoolEarning>());
    }
    return out.sort((a, b) => b.paidAt - a.paidAt || (a.jobId < b.jobId ? -1 : 1));
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** What `doctor --cluster` reports: NATS and JetStream reachable, and the pool's workers as last registered (seconds ago by the server's clock). */
export async function probePool(o: { servers: string; pubkey: string; timeoutMs?: number }): Promise<{ workers: { worker: string; capacity: number; agoSecs: number }[]; leader?: string }> {
  const nc = await connectNats(o.servers, 'bazaar-provider-doctor', o.timeoutMs ?? 5000);
  try {
    try {
      await (await jetstreamManager(nc, { timeout: o.timeoutMs ?? 5000 })).getAccountInfo();
    } catch (err) {
      throw new PoolError(`NATS at ${o.servers} has no usable JetStream (run nats-server with -js): ${(err as Error).message}`);
    }
    let kv: KV;
    try {
      kv = await new Kvm(nc).open(bucketNames(o.pubkey).workers, { bindOnly: true, timeout: o.timeoutMs ?? 5000 });
    } catch {
      return { workers: [] }; // no worker of this identity ever ran here
    }
    const workers: { worker: string; capacity: number; agoSecs: number }[] = [];
    let leader: string | undefined;
    for await (const k of await kv.keys()) {
      const e = await kv.get(k);
      if (!e || e.operation !== 'PUT') continue;
      if (k === 'leader') leader = e.json<{ worker: string }>().worker;
      else if (k.startsWith('worker.')) workers.push({ worker: k.slice(7), capacity: e.json<WorkerInfo>().capacity, agoSecs: Math.max(0, Math.round((Date.now() - e.created.getTime()) / 1000)) });
    }
    return { workers: workers.sort((a, b) => a.worker.localeCompare(b.worker)), ...(leader ? { leader } : {}) };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
