// The provider agent, wired as the stages of its pipeline (src/pipeline/):
//   intake   what we listen to (our kinds, pings, releases; deletions of our jobs) and the
//            durable once-only record of each request
//   decide   expiry, the request opened and parsed once, rate limit, capacity, price cap,
//            payment terms (escrow checked before work)
//   execute  a bounded queue in front of the backends (backends/registry.ts), in the sandbox
//   deliver  the signed result stored before it is published, with what is owed
//   settle   invoices and payments through the agent's Wallet, escrow releases redeemed
// Beside the pipeline, the dispute desk (dispute-desk.ts) answers disputes of our results.
// This class owns the lifecycle: start (recovering jobs a restart interrupted), the
// announcement and heartbeat, reconfiguration, status, stop. In a provider pool (pool/) it
// also claims each job before recording it, runs jobs taken over from dead workers, fences
// each result through the job's claim, and speaks for the pool only while it is the leader.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { finalizeEvent } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { paramSchemasFor } from '@bazaar/dvm-kinds/registry';
import { ANNOUNCEMENT_KIND, buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { buildHeartbeat, HEARTBEAT_KIND } from '@bazaar/dvm-kinds/market/heartbeat';
import { buildPong, parsePing } from '@bazaar/dvm-kinds/market/ping';
import { buildPaymentInfo, PAYMENT_INFO_KIND } from '@bazaar/dvm-kinds/market/payment-info';
import type { Identity } from '@bazaar/agents-common/identity/keystore';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { isTerminal, recoverJobState } from '@bazaar/agents-common/job-state';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import type { Wallet } from '@bazaar/agents-common/wallet/wallet';
import { termsFor, type ProviderConfig } from './config.ts';
import { ProviderStore, type JobRecord } from './store.ts';
import type { Claim, PoolView, ProviderPool } from './pool/pool.ts';
import { Offers } from './pool/offers.ts';
import { EscrowDesk } from './escrow-desk.ts';
import { DisputeDesk } from './dispute-desk.ts';
import { describeBackend } from './backends/registry.ts';
import { Publisher } from './pipeline/publisher.ts';
import { Intake, newJobRecord } from './pipeline/intake.ts';
import { Decider, openRequest } from './pipeline/decide.ts';
import { Executor } from './pipeline/execute.ts';
import { Deliverer } from './pipeline/deliver.ts';
import { Settler } from './pipeline/settle.ts';

/** A relay named only by a request's `relays` tag is disconnected after this long unused. */
const REQUESTED_RELAY_IDLE_MS = 60_000;
export const ANNOUNCEMENT_D = 'bazaar-provider';
/** In a pool, a request no worker had a free slot for is claimed anyway after this long (then queued or refused by its winner). */
const MAX_OFFER_WAIT_MS = 5000;

export interface ProviderOptions {
  readonly config: ProviderConfig;
  readonly identity: Identity;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly runner: Runner;
  /** The agent's wallet; its Lightning rail issues the invoices. Null (or no Lightning rail) runs without invoices: results carry only an amount. */
  readonly wallet: Wallet | null;
  readonly store?: ProviderStore;
  /** How often unpaid invoices are looked up (ms). */
  readonly invoicePollMs?: number;
  readonly publishTimeoutMs?: number;
  /** Allow file:// repo inputs (tests, local mirrors). */
  readonly allowFileRepos?: boolean;
  /** Relay pool reconnect backoff (tests shorten it). */
  readonly minBackoffMs?: number;
  /** A provider pool this process is a worker of (`serve --cluster`); connected, not yet started. */
  readonly pool?: ProviderPool;
}

export interface ProviderStatus {
  readonly pubkey: string;
  readonly startedAt: number;
  readonly relays: { url: string; connected: boolean }[];
  readonly active: number;
  readonly queued: number;
  readonly capacity: number;
  readonly kinds: readonly number[];
  readonly isolation: string;
  /** What serves each kind, e.g. `{ "5930": "sandbox (bwrap)", "5932": "agent: claude -p (bwrap)" }`. */
  readonly backends: Readonly<Record<string, string>>;
  readonly wallet: boolean;
  /** In a provider pool: this worker, the leader and the live workers. */
  readonly pool?: { readonly worker: string; readonly leader: string | undefined; readonly capacity: number; readonly running: number; readonly workers: readonly { worker: string; capacity: number; running: number; queued: number }[] };
}

export class Provider {
  readonly store: ProviderStore;
  readonly pool: RelayPool;
  readonly #o: ProviderOptions;
  readonly #log: Logger;
  readonly #id: Identity;
  #config: ProviderConfig;
  readonly #escrow: EscrowDesk | undefined;
  readonly #disputes: DisputeDesk;
  readonly #publisher: Publisher;
  readonly #intake: Intake;
  readonly #decider: Decider;
  readonly #executor: Executor;
  readonly #deliverer: Deliverer;
  readonly #settler: Settler;
  readonly #startedAt = Date.now();
  readonly #tasks = new Set<Promise<void>>();
  #poll: NodeJS.Timeout | undefined;
  #beat: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #pool: ProviderPool | undefined;
  readonly #offers: Offers | undefined;
  #offPool: (() => void)[] = [];
  /** The node our invoices come from (NWC get_info), announced so buyers can check the payee; null: the wallet does not say. */
  #lightningNode: string | null | undefined;
  #announcing = false;
  #announceAgain = false;

  constructor(o: ProviderOptions) {
    this.#pool = o.pool;
    this.#o = o;
    this.#config = o.config;
    this.#log = o.logger;
    this.#id = o.identity;
    const log = o.logger;
    const config = () => this.#config;
    const track = (p: Promise<void>) => this.#track(p);
    this.store = o.store ?? ProviderStore.open(join(o.dataDir, 'db'));
    this.#escrow = o.config.mints.length && o.config.arbiters.length ? new EscrowDesk({ dataDir: o.dataDir, logger: log.child({ part: 'escrow' }), identity: o.identity, mints: o.config.mints, arbiters: o.config.arbiters, disputeWindowSecs: o.config.disputeWindowSecs }) : undefined;
    this.pool = new RelayPool({
      relays: o.config.relays,
      logger: log.child({ part: 'pool' }),
      // NIP-42: relays that require AUTH get it, signed with our identity.
      auth: (template) => finalizeEvent(template, o.identity.secretKey) as NostrEvent,
      idleTimeoutMs: REQUESTED_RELAY_IDLE_MS,
      ...(o.minBackoffMs ? { minBackoffMs: o.minBackoffMs } : {}),
    });
    this.#disputes = new DisputeDesk({ pool: this.pool, secretKey: o.identity.secretKey, pubkey: o.identity.pubkey, logger: log.child({ part: 'disputes' }), trajectoriesDir: join(o.dataDir, 'trajectories'), job: (id) => this.store.get(id), arbiters: () => this.#config.arbiters });
    const publisher = (this.#publisher = new Publisher({ pool: this.pool, identity: o.identity, log, publishTimeoutMs: o.publishTimeoutMs ?? 10_000, followRequestRelays: () => this.#config.followRequestRelays }));
    const settler = (this.#settler = new Settler({
      store: this.store, log, config, publisher, escrow: this.#escrow, pollMs: o.invoicePollMs ?? 10_000, secretKey: o.identity.secretKey,
      wallet: o.wallet?.hasLightning ? o.wallet : null,
      onPrepaid: (id) => this.#executor.enqueue(id),
      pubkey: o.identity.pubkey,
      query: (filters) => this.pool.query(filters, { timeoutMs: 5000 }),
    }));
    const pool = o.pool;
    const deliverer = (this.#deliverer = new Deliverer({
      store: this.store, identity: o.identity, log, config, publisher, escrow: this.#escrow, invoice: (msats, id) => settler.invoice(msats, id), watch: (id) => settler.watch(id),
      ...(pool ? { fence: (rec: JobRecord, result: NostrEvent) => pool.claims.fence(rec.id, result), onPublished: (rec: JobRecord) => track(pool.claims.done(rec.id, 'delivered')) } : {}),
    }));
    const executor = (this.#executor = new Executor({
      store: this.store, log, runner: o.runner, dataDir: o.dataDir, allowFileRepos: o.allowFileRepos ?? false, config, publisher, track,
      open: (rec) => openRequest(rec, o.identity),
      deliver: (rec, produced, sha, jobLog) => deliverer.deliver(rec, produced, sha, jobLog),
      ...(pool ? { leaseSignal: (id: string) => pool.claims.signal(id) } : {}),
    }));
    this.#decider = new Decider({
      store: this.store, identity: o.identity, config, publisher, escrow: this.#escrow,
      load: () => ({ running: executor.running, queued: executor.queued }),
      enqueue: (id, job) => executor.enqueue(id, job),
      requestPrepayment: (rec, job, jobLog) => settler.requestPrepayment(rec, job, jobLog),
    });
    this.#intake = new Intake({
      pool: this.pool, store: this.store, pubkey: o.identity.pubkey, log, config, track,
      // In a pool the claim's slot is held until decide is done (then the executor counts the job, or it was refused).
      onRequest: async (rec, jobLog) => {
        try {
          await this.#decider.decide(rec, jobLog);
        } finally {
          this.#offers?.decided(rec.id);
        }
      },
      onPing: (e) => this.#onPing(e),
      onDeletion: (e) => this.#onDeletion(e),
      onRelease: (e) => settler.onRelease(e),
      ...(pool ? { claim: (rec: JobRecord) => this.#offers!.offer(rec) } : {}),
    });
    this.#offers = pool
      ? new Offers({ free: () => this.#config.capacity - executor.running - executor.queued, claim: (rec) => this.#claim(pool, rec), maxWaitMs: MAX_OFFER_WAIT_MS })
      : undefined;
  }

  get pubkey(): string {
    return this.#id.pubkey;
  }

  get config(): ProviderConfig {
    return this.#config;
  }

  status(): ProviderStatus {
    const c = this.#config;
    return {
      pubkey: this.#id.pubkey,
      startedAt: this.#startedAt,
      relays: this.pool.status().filter((r) => this.pool.urls.includes(r.url)).map(({ url, connected }) => ({ url, connected })),
      active: this.#executor.running,
      queued: this.#executor.queued,
      capacity: c.capacity,
      kinds: c.kinds,
      isolation: c.isolation,
      backends: Object.fromEntries(c.kinds.map((k) => [k, describeBackend(k, c, this.#o.runner.kind)])),
      wallet: this.#settler.hasWallet,
      ...(this.#pool ? { pool: this.#poolStatus(this.#pool.view()) } : {}),
    };
  }

  #poolStatus(v: PoolView): NonNullable<ProviderStatus['pool']> {
    return { worker: v.worker, leader: v.leader, capacity: v.capacity, running: v.running, workers: v.workers.map((w) => ({ worker: w.worker, capacity: w.capacity, running: w.running, queued: w.queued })) };
  }

  async start(): Promise<void> {
    await mkdir(join(this.#o.dataDir, 'work'), { recursive: true });
    if (this.#pool) await this.#joinPool(this.#pool);
    await this.#recover();
    this.#intake.start();
    this.#disputes.start();
    this.#settler.start();
    this.#poll = setInterval(() => void this.#tick(), this.#o.invoicePollMs ?? 10_000);
    this.#beat = setInterval(() => void this.#publishHeartbeat(), this.#config.heartbeatSecs * 1000);
    try {
      await this.pool.waitConnected({ timeoutMs: 10_000 });
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'no relay connected yet; will keep trying');
    }
    await this.announce();
    this.#executor.pump();
    this.#log.info({ pubkey: this.#id.pubkey, kinds: this.#config.kinds, relays: this.#config.relays, capacity: this.#config.capacity, isolation: this.#config.isolation }, 'provider started');
  }

  /** NIP-89 announcement, NIP-61 payment info, and a heartbeat. Called on start and on config change; in a pool, by its leader only, with the pool's capacity. */
  async announce(): Promise<void> {
    if (this.#stopped || (this.#pool && !this.#pool.isLeader)) return;
    const c = this.#config;
    const prices = Object.fromEntries(c.kinds.map((k) => [k, c.prices[k]]));
    const isolation = c.isolation === 'gvisor' ? 'gvisor' : c.isolation;
    // Payment terms per kind, the arbiters and dispute window escrow locks must respect, and the
    // heartbeat promise (no fresh heartbeat = offline), so a buyer knows all of it before posting.
    const escrow = c.kinds.some((k) => termsFor(c, k) === 'escrow');
    if (this.#lightningNode === undefined) this.#lightningNode = await this.#nodeId();
    const ann = buildAnnouncement({
      d: ANNOUNCEMENT_D, kinds: c.kinds, prices, capacity: this.#pool ? this.#pool.view().capacity : c.capacity, isolation, paramSchemas: paramSchemasFor(c.kinds), name: c.name, about: c.about,
      terms: Object.fromEntries(c.kinds.map((k) => [k, termsFor(c, k)])),
      ...(escrow ? { arbiters: c.arbiters.map((k) => '02' + k.slice(-64)), disputeWindowSecs: c.disputeWindowSecs } : {}),
      heartbeatSecs: c.heartbeatSecs,
      ...(this.#lightningNode ? { lightningNode: this.#lightningNode } : {}),
    });
    await this.#publisher.publish(ann, 'announcement');
    if (c.mints.length) await this.#publisher.publish(buildPaymentInfo({ relays: c.relays, mints: c.mints.map((url) => ({ url })), p2pkPubkey: this.#id.paymentPubkey }), 'payment info');
    else this.#log.info({}, 'no trusted mints configured: kind 10019 payment info not published');
    await this.#publishHeartbeat();
  }

  /** Our Lightning node id from the wallet (undefined on a failure: asked again at the next announcement). */
  async #nodeId(): Promise<string | null | undefined> {
    const w = this.#o.wallet;
    if (!w?.hasLightning) return null;
    try {
      return (await w.lightning.getInfo({ timeoutMs: 5000 })).pubkey ?? null;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'the wallet did not tell its node id (get_info): announced without lightning_node');
      return undefined;
    }
  }

  /** Announces again once, however many reasons arrive while one announcement is on its way (the pool's leader at start, workers joining). */
  #reannounce(): void {
    if (this.#announcing) {
      this.#announceAgain = true;
      return;
    }
    this.#announcing = true;
    this.#track((async () => {
      try {
        do {
          this.#announceAgain = false;
          await this.announce();
        } while (this.#announceAgain && !this.#stopped);
      } finally {
        this.#announcing = false;
      }
    })());
  }

  async reconfigure(config: ProviderConfig): Promise<void> {
    if (config.heartbeatSecs !== this.#config.heartbeatSecs && this.#beat) {
      clearInterval(this.#beat);
      this.#beat = setInterval(() => void this.#publishHeartbeat(), config.heartbeatSecs * 1000);
    }
    this.#config = config;
    await this.announce();
    this.#executor.pump();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const off of this.#offPool) off();
    this.#offers?.stop();
    clearInterval(this.#poll);
    clearInterval(this.#beat);
    this.#intake.stop();
    this.#settler.stop();
    await this.#disputes.stop();
    await Promise.allSettled([...this.#tasks]);
    await this.#executor.stop();
    await this.pool.close();
    await this.#escrow?.close();
    await rm(join(this.#o.dataDir, 'status.json'), { force: true }).catch(() => {});
    if (!this.#o.store) await this.store.close();
    this.#log.info({}, 'provider stopped');
  }

  /** Keep a background task so stop() can wait for it; its failure is logged, never unhandled. */
  #track(p: Promise<void>): void {
    const q = p.catch((err: unknown) => this.#log.error({ err }, 'background task failed'));
    this.#tasks.add(q);
    void q.finally(() => this.#tasks.delete(q));
  }

  /** Ping (kind 7007) to us: a pong with our load (a pool's leader answers for the pool). */
  async #onPing(e: NostrEvent): Promise<void> {
    const p = parsePing(e);
    if (!p.ok || p.value.provider !== this.#id.pubkey) return;
    if (p.value.expiration !== undefined && p.value.expiration <= Math.floor(Date.now() / 1000)) return;
    if (this.#pool && !this.#pool.isLeader) return;
    const load = this.#load();
    await this.#publisher.publish(buildPong(e, { active: load.active, capacity: load.capacity }), 'pong');
  }

  /** Our load, or the pool's when we are a worker of one. */
  #load(): { active: number; capacity: number; workers?: number } {
    if (!this.#pool) return { active: this.#executor.running, capacity: this.#config.capacity };
    const v = this.#pool.view();
    return { active: v.running, capacity: v.capacity, workers: v.workers.length };
  }

  /** The hooks a pool calls, the earnings book kept in step, and claims closed as jobs end here. */
  async #joinPool(pool: ProviderPool): Promise<void> {
    const log = this.#log;
    await pool.start({
      load: () => ({ capacity: this.#config.capacity, running: this.#executor.running, queued: this.#executor.queued, kinds: this.#config.kinds }),
      canTake: () => !this.#stopped && this.#offers!.free() > 0,
      onTakeover: (request, claim, from) => this.#takeOver(request, claim, from),
      onRepublish: async (request, result, claim) => {
        const res = await this.#publisher.result(newJobRecord(request, claim.terms), result);
        return res.some((r) => r.ok || r.message.startsWith('duplicate:'));
      },
      onLeader: (leader) => {
        if (!leader) return;
        this.#publisher.afterThisSecond([ANNOUNCEMENT_KIND, HEARTBEAT_KIND, PAYMENT_INFO_KIND]);
        this.#reannounce();
      },
      onPoolChange: () => {
        if (pool.isLeader) this.#reannounce();
      },
    });
    // A job finished here (refused, failed, expired, cancelled, settled) closes its claim; a delivered one closes when a relay took the result.
    const offers = this.#offers!;
    this.#offPool.push(this.store.onChange((rec) => {
      if (isTerminal(rec.state)) this.#track(pool.claims.done(rec.id, rec.state));
      // Any move may have freed a slot for an offer (a job taken over is decided when it is queued).
      if (rec.state !== 'received') offers.decided(rec.id);
      offers.pump();
    }));
    this.#offPool.push(this.store.onEarning((e) => this.#track(pool.bookEarning(e))));
    try {
      const added = await pool.syncEarnings(this.store.earnings());
      if (added) log.info({ added }, 'local earnings added to the pool book');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not compare the local earnings with the pool book; new ones are still booked');
    }
  }

  /** A claim on the pool's behalf (the offers desk decides when). */
  async #claim(pool: ProviderPool, rec: JobRecord): Promise<boolean> {
    if (this.#stopped) return false;
    const log = this.#log.child({ jobId: rec.id, kind: rec.kind });
    try {
      const r = await pool.claims.claim(rec.request, rec.terms);
      if (r.won) log.info({ worker: pool.worker, attempt: r.attempt }, 'job claimed');
      else log.debug({ holder: r.holder }, 'job claimed by another worker');
      return r.won;
    } catch (err) {
      // NATS unreachable: the job is left to workers that can claim it.
      log.warn({ err: (err as Error).message }, 'could not claim the job (NATS unreachable?); left to the other workers');
      return false;
    }
  }

  /**
   * A job whose worker let its lease expire: recorded here and decided again (the first worker
   * may have died before deciding; the rules are the same, so an accepted job is accepted again
   * unless it expired meanwhile), without taking a rate-limit token: the customer was counted once.
   */
  async #takeOver(request: NostrEvent, claim: Claim, from: string): Promise<void> {
    const rec = newJobRecord(request, claim.terms);
    const log = this.#log.child({ jobId: rec.id, kind: rec.kind });
    if (!(await this.store.adopt(rec))) {
      log.warn({ from }, 'taken-over job is already active here');
      return;
    }
    log.info({ from, attempt: claim.attempt }, 'job recorded after takeover');
    await this.#decider.decide(rec, log, { counted: true });
  }

  /** In a pool, a job this worker no longer holds ends here without a word to the customer: the holder answers. */
  async #dropLocally(rec: JobRecord, why: string): Promise<void> {
    const event = rec.state === 'received' ? ({ type: 'reject', reason: why } as const) : ({ type: 'fail', reason: why } as const);
    await this.store.transition(rec.id, event, { error: why });
    this.#log.info({ jobId: rec.id, why }, 'job left to the pool');
  }

  /** NIP-09: a customer deleting their own request cancels it if it has not started. */
  async #onDeletion(e: NostrEvent): Promise<void> {
    for (const t of e.tags) {
      if (t[0] !== 'e' || !t[1]) continue;
      const job = this.store.get(t[1]);
      if (!job || job.customer !== e.pubkey) continue;
      if (job.state === 'queued' || job.state === 'awaiting-payment' || job.state === 'received') {
        this.#executor.dequeue(job.id);
        await this.store.transition(job.id, { type: 'cancel' });
        this.#log.info({ jobId: job.id }, 'job cancelled by its customer');
      } else {
        this.#log.info({ jobId: job.id, state: job.state }, 'cancellation ignored: job already started');
      }
    }
  }

  /** The settle stage's polling, results no relay accepted yet, and the status file. */
  async #tick(): Promise<void> {
    await this.#settler.poll();
    await this.#deliverer.retryUnpublished();
    await this.#writeStatusFile();
  }

  /** Jobs a restart interrupted: each resumes where its state says. */
  async #recover(): Promise<void> {
    for (const rec of this.store.jobsIn(['received', 'queued', 'awaiting-payment', 'running', 'delivered', 'settled'])) {
      const log = this.#log.child({ jobId: rec.id });
      if (this.#pool && (rec.state === 'received' || rec.state === 'queued' || rec.state === 'awaiting-payment' || rec.state === 'running' || (rec.state === 'delivered' && rec.result && !rec.resultPublished))) {
        // A restarted worker takes back its jobs by name, unless another worker took them over meanwhile.
        const r = await this.#pool.claims.reclaim(rec.request, rec.terms).catch((err: unknown) => ({ ok: false as const, why: `NATS: ${(err as Error).message}` }));
        if (!r.ok) {
          if (rec.state === 'delivered') log.warn({ why: r.why }, 'a result stored here is not published: the job is no longer ours');
          else await this.#dropLocally(rec, r.why);
          continue;
        }
      }
      if (rec.result && !rec.resultPublished) this.#deliverer.pending(rec.id);
      if (rec.state === 'settled') continue;
      const r = recoverJobState(rec.state, rec.attempts);
      if (!r.ok) continue;
      if (rec.state === 'received') {
        await this.#decider.decide(rec, log);
        continue;
      }
      if (r.state === 'failed') {
        const failed = await this.store.transition(rec.id, { type: 'fail', reason: 'restart' }, { error: 'the provider restarted during the job twice' });
        await this.#publisher.feedback(failed, { status: 'error', message: 'the provider restarted during the job' });
        log.warn({}, 'job failed after a second restart');
        continue;
      }
      if (rec.state === 'running') await this.store.transition(rec.id, { type: 'restart' });
      if (r.state === 'queued') {
        // Queued without its prepared request: it is opened once, when it starts.
        this.#executor.enqueue(rec.id);
        log.info({ attempts: rec.attempts }, 'job resumed after restart');
      } else if (r.state === 'awaiting-payment' || r.state === 'delivered') {
        if (rec.invoice) this.#settler.watch(rec.id);
        if (r.state === 'delivered' && rec.result && !rec.resultPublished) this.#track(this.#deliverer.publish(rec, log));
        log.info({ state: r.state }, 'watching the invoice again after restart');
      }
    }
  }

  async #publishHeartbeat(): Promise<void> {
    if (this.#stopped) return;
    const c = this.#config;
    if (!this.#pool || this.#pool.isLeader) {
      const { active, capacity, workers } = this.#load();
      await this.#publisher.publish(buildHeartbeat({ status: active >= capacity ? 'busy' : 'online', active, capacity, kinds: c.kinds, ...(workers !== undefined ? { workers } : {}), ttlSecs: c.heartbeatSecs * 2 }), 'heartbeat');
    }
    await this.#writeStatusFile();
  }

  async #writeStatusFile(): Promise<void> {
    if (this.#stopped) return;
    const s = { ...this.status(), pid: process.pid, updatedAt: Date.now() };
    // Written to a temp file and renamed, so `status` never reads half a file.
    const path = join(this.#o.dataDir, 'status.json');
    const tmp = `${path}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, JSON.stringify(s) + '\n')
      .then(() => rename(tmp, path))
      .catch(() => {});
  }
}
