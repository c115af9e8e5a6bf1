// The provider agent: intake → decide → execute → deliver → settle.
//   intake   one subscription on every configured relay for our job kinds, pings and
//            cancellations; events verified and de-duplicated (pool + LMDB insert-if-absent)
//   decide   targeting (`p`), expiry (NIP-40), decryption (NIP-44), validation (dvm-kinds),
//            per-customer rate limit, capacity + bounded queue, payment terms
//   execute  the kind's backend in the sandbox, with a trajectory log
//   deliver  the signed result is stored first, then published (so a restart republishes the
//            same event id, never a second result)
//   settle   invoices watched through NWC notifications and lookup_invoice polling; an
//            earning is written with the job's move to `settled`
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { finalizeEvent } from 'nostr-tools/pure';
import type { EventTemplate, Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { expirationOf, isAddressableKind, isReplaceableKind } from '@bazaar/dvm-kinds/nostr';
import { buildFeedback, FEEDBACK_KIND, type ErrorCode, type FeedbackInput } from '@bazaar/dvm-kinds/feedback';
import { formatProblems, type Problem } from '@bazaar/dvm-kinds/problem';
import { openJobRequest, sealJobResult } from '@bazaar/dvm-kinds/private';
import { priceFor } from '@bazaar/dvm-kinds/pricing';
import { JOB_KINDS, paramSchemasFor } from '@bazaar/dvm-kinds/registry';
import { SANDBOX_RUN_KIND, buildSandboxRunResult, type SandboxRunRequest } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { buildHeartbeat } from '@bazaar/dvm-kinds/market/heartbeat';
import { PING_KIND, buildPong, parsePing } from '@bazaar/dvm-kinds/market/ping';
import { buildPaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import type { Identity } from '@bazaar/agents-common/identity/keystore';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { normalizeRelayUrl } from '@bazaar/agents-common/relay-url';
import { recoverJobState, type JobState } from '@bazaar/agents-common/job-state';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import { termsFor, type ProviderConfig } from './config.ts';
import { ProviderStore, type InvoiceRef, type JobRecord } from './store.ts';
import type { Wallet } from '@bazaar/agents-common/wallet/wallet';
import type { LightningWalletError } from '@bazaar/agents-common/wallet/lightning';
import { Trajectory } from './trajectory.ts';
import { EscrowDesk, ESCROW_CLAIM_TAG, ESCROW_TAG, type EscrowRef } from './escrow-desk.ts';
import { DisputeDesk } from './dispute-desk.ts';
import { openEscrowRelease } from '@bazaar/dvm-kinds/market/escrow';
import { RECEIPT_KIND } from '@bazaar/dvm-kinds/market/receipt';
import { VERDICT_KIND } from '@bazaar/dvm-kinds/market/verdict';
import { runSandboxRun, sandboxRunUnits } from './backends/sandbox-run.ts';
import { runRepoIndex } from './backends/repo-index.ts';
import { runPatchGen, UnverifiedResultError } from './backends/patch-gen.ts';
import { runCodeReview } from './backends/code-review.ts';
import { runTextGen } from './backends/text-gen.ts';
import { TEXT_GEN_KIND, buildTextGenResult, type TextGenRequest } from '@bazaar/dvm-kinds/kinds/text-gen';
import { REPO_INDEX_KIND, buildRepoIndexResult, verifyRepoIndex, type RepoIndexRequest, type RepoIndexResult } from '@bazaar/dvm-kinds/kinds/repo-index';
import { PATCH_GEN_KIND, buildPatchGenResult, verifyPatchGen, type PatchGenRequest, type PatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { CODE_REVIEW_KIND, buildCodeReviewResult, type CodeReviewRequest } from '@bazaar/dvm-kinds/kinds/code-review';

export const DELETION_KIND = 5;
const MAX_LOOKUPS_PER_TICK = 5;
const MAX_REQUESTED_RELAYS = 3;
/** A relay named only by a request's `relays` tag is disconnected after this long unused. */
const REQUESTED_RELAY_IDLE_MS = 60_000;
export const ANNOUNCEMENT_D = 'bazaar-provider';

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
}

interface Bucket {
  tokens: number;
  at: number;
}

/** What a backend produced, before it is priced and delivered. */
interface Produced {
  readonly template: EventTemplate;
  readonly units: number;
}

export class Provider {
  readonly store: ProviderStore;
  readonly pool: RelayPool;
  readonly #o: ProviderOptions;
  readonly #log: Logger;
  readonly #id: Identity;
  #config: ProviderConfig;
  readonly #queue: string[] = [];
  readonly #running = new Map<string, AbortController>();
  readonly #buckets = new Map<string, Bucket>();
  readonly #watching = new Set<string>();
  readonly #lastReplaceable = new Map<number, number>();
  readonly #escrow: EscrowDesk | undefined;
  readonly #disputes: DisputeDesk;
  readonly #nextCheck = new Map<string, { at: number; n: number }>();
  readonly #settling = new Set<string>();
  readonly #startedAt = Date.now();
  readonly #intake: Promise<void>[] = [];
  #timers: NodeJS.Timeout[] = [];
  #beat: NodeJS.Timeout | undefined;
  #paidSub: Promise<() => void> | undefined;
  #stopped = false;
  #sub: { close(): void } | undefined;
  /** Resolves when every in-flight job has finished (for stop()). */
  readonly #jobPromises = new Set<Promise<void>>();

  constructor(o: ProviderOptions) {
    this.#o = o;
    this.#config = o.config;
    this.#log = o.logger;
    this.#id = o.identity;
    this.store = o.store ?? ProviderStore.open(join(o.dataDir, 'db'));
    this.#escrow = o.config.mints.length && o.config.arbiters.length ? new EscrowDesk({ dataDir: o.dataDir, logger: o.logger.child({ part: 'escrow' }), identity: o.identity, mints: o.config.mints, arbiters: o.config.arbiters, disputeWindowSecs: o.config.disputeWindowSecs }) : undefined;
    this.pool = new RelayPool({
      relays: o.config.relays,
      logger: o.logger.child({ part: 'pool' }),
      // NIP-42: relays that require AUTH get it, signed with our identity.
      auth: (template) => finalizeEvent(template, o.identity.secretKey) as NostrEvent,
      idleTimeoutMs: REQUESTED_RELAY_IDLE_MS,
      ...(o.minBackoffMs ? { minBackoffMs: o.minBackoffMs } : {}),
    });
    this.#disputes = new DisputeDesk({ pool: this.pool, secretKey: o.identity.secretKey, pubkey: o.identity.pubkey, logger: o.logger.child({ part: 'disputes' }), trajectoriesDir: join(o.dataDir, 'trajectories'), job: (id) => this.store.get(id), arbiters: () => this.#config.arbiters });
  }

  get pubkey(): string {
    return this.#id.pubkey;
  }

  /** The wallet, when it has a Lightning rail to invoice with. */
  get #lightning(): Wallet | null {
    return this.#o.wallet?.hasLightning ? this.#o.wallet : null;
  }

  get config(): ProviderConfig {
    return this.#config;
  }

  status(): ProviderStatus {
    return {
      pubkey: this.#id.pubkey,
      startedAt: this.#startedAt,
      relays: this.pool.status().filter((r) => this.pool.urls.includes(r.url)).map(({ url, connected }) => ({ url, connected })),
      active: this.#running.size,
      queued: this.#queue.length,
      capacity: this.#config.capacity,
      kinds: this.#config.kinds,
      isolation: this.#config.isolation,
      backends: Object.fromEntries(this.#config.kinds.map((k) => [k, this.#backendName(k)])),
      wallet: this.#lightning !== null,
    };
  }

  #backendName(kind: number): string {
    const c = this.#config;
    const box = `(${this.#o.runner.kind})`;
    if (kind === SANDBOX_RUN_KIND || kind === REPO_INDEX_KIND) return `sandbox ${box}`;
    if (kind === PATCH_GEN_KIND && c.backends.patchGen) return `agent: ${c.backends.patchGen.command.join(' ').slice(0, 60)} ${box}`;
    if (kind === CODE_REVIEW_KIND && c.backends.codeReview) return `agent: ${c.backends.codeReview.command.join(' ').slice(0, 60)} ${box}`;
    if (kind === TEXT_GEN_KIND && c.backends.textGen) return `model ${c.backends.textGen.model} at ${c.backends.textGen.url}`;
    return 'none';
  }

  async start(): Promise<void> {
    await mkdir(join(this.#o.dataDir, 'work'), { recursive: true });
    await this.#recover();
    const since = () => Math.floor(Date.now() / 1000) - this.#config.lookbackSecs;
    const filters = (): Filter[] => [
      { kinds: [...this.#config.kinds], since: since() },
      { kinds: [PING_KIND], '#p': [this.#id.pubkey], since: Math.floor(Date.now() / 1000) - 60 },
      { kinds: [DELETION_KIND], since: since() },
      // Escrow releases: the buyer's receipt or the arbiter's verdict, naming us.
      { kinds: [RECEIPT_KIND, VERDICT_KIND], '#p': [this.#id.pubkey], since: Math.floor(Date.now() / 1000) - 30 * 24 * 3600 },
    ];
    this.#sub = this.pool.subscribe(filters(), (e, url) => this.#track(this.#onEvent(e, url)), { refilter: filters });
    this.#disputes.start();
    // Notifications are the fast path of settlement; not awaited (polling covers a slow wallet).
    this.#paidSub = this.#lightning?.onPaymentReceived((s) => void this.#onPaymentHash(s.paymentHash));
    this.#paidSub?.catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'payment notifications unavailable; polling only'));
    const poll = setInterval(() => void this.#pollInvoices(), this.#o.invoicePollMs ?? 10_000);
    this.#beat = setInterval(() => void this.#publishHeartbeat(), this.#config.heartbeatSecs * 1000);
    this.#timers.push(poll);
    try {
      await this.pool.waitConnected({ timeoutMs: 10_000 });
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'no relay connected yet; will keep trying');
    }
    await this.announce();
    this.#pump();
    this.#log.info({ pubkey: this.#id.pubkey, kinds: this.#config.kinds, relays: this.#config.relays, capacity: this.#config.capacity, isolation: this.#config.isolation }, 'provider started');
  }

  /** NIP-89 announcement, NIP-61 payment info, and a heartbeat. Called on start and on config change. */
  async announce(): Promise<void> {
    const c = this.#config;
    const prices = Object.fromEntries(c.kinds.map((k) => [k, c.prices[k]]));
    const isolation = c.isolation === 'gvisor' ? 'gvisor' : c.isolation;
    // Payment terms per kind, the arbiters and dispute window escrow locks must respect, and the
    // heartbeat promise (no fresh heartbeat = offline), so a buyer knows all of it before posting.
    const escrow = c.kinds.some((k) => termsFor(c, k) === 'escrow');
    const ann = buildAnnouncement({
      d: ANNOUNCEMENT_D, kinds: c.kinds, prices, capacity: c.capacity, isolation, paramSchemas: paramSchemasFor(c.kinds), name: c.name, about: c.about,
      terms: Object.fromEntries(c.kinds.map((k) => [k, termsFor(c, k)])),
      ...(escrow ? { arbiters: c.arbiters.map((k) => '02' + k.slice(-64)), disputeWindowSecs: c.disputeWindowSecs } : {}),
      heartbeatSecs: c.heartbeatSecs,
    });
    await this.#publish(ann, 'announcement');
    if (c.mints.length) await this.#publish(buildPaymentInfo({ relays: c.relays, mints: c.mints.map((url) => ({ url })), p2pkPubkey: this.#id.paymentPubkey }), 'payment info');
    else this.#log.info({}, 'no trusted mints configured: kind 10019 payment info not published');
    await this.#publishHeartbeat();
  }

  async reconfigure(config: ProviderConfig): Promise<void> {
    if (config.heartbeatSecs !== this.#config.heartbeatSecs && this.#beat) {
      clearInterval(this.#beat);
      this.#beat = setInterval(() => void this.#publishHeartbeat(), config.heartbeatSecs * 1000);
    }
    this.#config = config;
    await this.announce();
    this.#pump();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    clearInterval(this.#beat);
    this.#sub?.close();
    void this.#paidSub?.then((off) => off(), () => {});
    await this.#disputes.stop();
    await Promise.allSettled(this.#intake);
    for (const ac of this.#running.values()) ac.abort();
    await Promise.allSettled([...this.#jobPromises]);
    await this.pool.close();
    await this.#escrow?.close();
    await rm(join(this.#o.dataDir, 'status.json'), { force: true }).catch(() => {});
    if (!this.#o.store) await this.store.close();
    this.#log.info({}, 'provider stopped');
  }

  /** Keep a background task so stop() can wait for it; its failure is logged, never unhandled. */
  #track(p: Promise<void>): void {
    const q = p.catch((err: unknown) => this.#log.error({ err }, 'background task failed'));
    this.#intake.push(q);
    void q.finally(() => this.#intake.splice(this.#intake.indexOf(q), 1));
  }

  // ---- intake ----

  async #onEvent(e: NostrEvent, url: string): Promise<void> {
    if (this.#stopped) return;
    try {
      if (e.kind === PING_KIND) return await this.#onPing(e);
      if (e.kind === DELETION_KIND) return await this.#onDeletion(e);
      if (e.kind === RECEIPT_KIND || e.kind === VERDICT_KIND) return await this.#onRelease(e);
      if (this.#config.kinds.includes(e.kind)) return await this.#onRequest(e, url);
    } catch (err) {
      this.#log.error({ err, eventId: e.id, kind: e.kind }, 'intake failed');
    }
  }

  async #onPing(e: NostrEvent): Promise<void> {
    const p = parsePing(e);
    if (!p.ok || p.value.provider !== this.#id.pubkey) return;
    if (p.value.expiration !== undefined && p.value.expiration <= Math.floor(Date.now() / 1000)) return;
    await this.#publish(buildPong(e, { active: this.#running.size, capacity: this.#config.capacity }), 'pong');
  }

  /** NIP-09: a customer deleting their own request cancels it if it has not started. */
  async #onDeletion(e: NostrEvent): Promise<void> {
    for (const t of e.tags) {
      if (t[0] !== 'e' || !t[1]) continue;
      const job = this.store.get(t[1]);
      if (!job || job.customer !== e.pubkey) continue;
      if (job.state === 'queued' || job.state === 'awaiting-payment' || job.state === 'received') {
        const i = this.#queue.indexOf(job.id);
        if (i >= 0) this.#queue.splice(i, 1);
        await this.store.transition(job.id, { type: 'cancel' });
        this.#log.info({ jobId: job.id }, 'job cancelled by its customer');
      } else {
        this.#log.info({ jobId: job.id, state: job.state }, 'cancellation ignored: job already started');
      }
    }
  }

  async #onRequest(e: NostrEvent, relay: string): Promise<void> {
    const targets = e.tags.filter((t) => t[0] === 'p').map((t) => t[1]);
    if (targets.length && !targets.includes(this.#id.pubkey)) return;
    const log = this.#log.child({ jobId: e.id, kind: e.kind, customer: e.pubkey });
    const encrypted = e.tags.some((t) => t[0] === 'encrypted');
    const expiration = expirationOf(e);
    const rec: JobRecord = {
      id: e.id,
      kind: e.kind,
      customer: e.pubkey,
      state: 'received',
      request: e,
      encrypted,
      terms: termsFor(this.#config, e.kind),
      receivedAt: Date.now(),
      updatedAt: Date.now(),
      attempts: 0,
      ...(expiration !== undefined ? { expiration } : {}),
    };
    if (!(await this.store.insert(rec))) {
      log.debug({ relay }, 'duplicate request ignored');
      return;
    }
    log.info({ relay, encrypted }, 'job request received');
    await this.#decide(rec, log);
  }

  /** Open (decrypt) and parse a request; the parsed value or the problems. */
  #parse(rec: JobRecord): { ok: true; event: NostrEvent; value: unknown } | { ok: false; problems: readonly Problem[] } {
    let event = rec.request;
    if (rec.encrypted) {
      const opened = openJobRequest(rec.request, this.#id.secretKey);
      if (!opened.ok) return { ok: false, problems: opened.errors };
      event = opened.value as NostrEvent;
    }
    const spec = JOB_KINDS.get(rec.kind);
    if (!spec) return { ok: false, problems: [{ path: 'kind', code: 'kind', message: `kind ${rec.kind} is not served` }] };
    const parsed = spec.parseRequest(event);
    if (!parsed.ok) return { ok: false, problems: parsed.errors };
    return { ok: true, event, value: parsed.value };
  }

  async #decide(rec: JobRecord, log: Logger): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    if (rec.expiration !== undefined && rec.expiration <= now) {
      await this.store.transition(rec.id, { type: 'expire' });
      await this.#feedback(rec, { status: 'error', errorCode: 'EXPIRED', message: `the request expired at ${rec.expiration}` });
      log.info({ expiration: rec.expiration }, 'expired request refused');
      return;
    }
    const parsed = this.#parse(rec);
    if (!parsed.ok) {
      const code: ErrorCode = parsed.problems.some((p) => p.path.startsWith('tags.param')) ? 'INVALID_PARAMETER' : 'BAD_REQUEST';
      await this.store.transition(rec.id, { type: 'reject', reason: code }, { error: formatProblems(parsed.problems) });
      await this.#feedback(rec, { status: 'error', errorCode: code, message: formatProblems(parsed.problems), content: JSON.stringify({ problems: parsed.problems }) });
      log.info({ problems: parsed.problems.length }, 'invalid request refused');
      return;
    }
    if (!this.#takeToken(rec.customer)) {
      await this.store.transition(rec.id, { type: 'reject', reason: 'RATE_LIMITED' }, { error: 'rate limited' });
      await this.#feedback(rec, { status: 'error', errorCode: 'RATE_LIMITED', message: `at most ${this.#config.rateLimit.perMinute} jobs per minute per customer` });
      log.info({}, 'request rate-limited');
      return;
    }
    const waiting = this.#queue.length + this.#running.size;
    if (waiting >= this.#config.capacity + this.#config.queue) {
      await this.store.transition(rec.id, { type: 'reject', reason: 'SERVICE_UNAVAILABLE' }, { error: 'at capacity' });
      await this.#feedback(rec, { status: 'error', errorCode: 'SERVICE_UNAVAILABLE', message: `at capacity: ${this.#running.size} running, ${this.#queue.length} queued` });
      log.info({ running: this.#running.size, queued: this.#queue.length }, 'at capacity: request refused');
      return;
    }
    const maxCost = (parsed.value as { params?: { max_cost_msats?: number } }).params?.max_cost_msats;
    if (maxCost !== undefined && this.#maxPrice(rec, parsed.value) > maxCost) {
      const price = this.#maxPrice(rec, parsed.value);
      await this.store.transition(rec.id, { type: 'reject', reason: 'price' }, { error: `price ${price} msats exceeds max_cost_msats ${maxCost}` });
      await this.#feedback(rec, { status: 'error', errorCode: 'INVALID_PARAMETER', message: `this provider charges ${price} msats for the job, more than max_cost_msats ${maxCost}` });
      return;
    }
    let escrow: EscrowRef | undefined;
    if (rec.terms === 'escrow') {
      const token = parsed.event.tags.find((t) => t[0] === ESCROW_TAG)?.[1];
      const timeLimit = (parsed.value as { params?: { time_limit_secs?: number } }).params?.time_limit_secs ?? 300;
      const check = token && this.#escrow ? await this.#escrow.check(token, this.#maxPrice(rec, parsed.value), timeLimit) : { problems: [token ? 'this provider has no escrow desk' : `escrow terms: put a P2PK-locked Cashu token in an ["${ESCROW_TAG}", "<token>"] tag`] };
      if (!check.ref) {
        const message = `escrow refused: ${check.problems.join('; ')}`.slice(0, 1000);
        await this.store.transition(rec.id, { type: 'reject', reason: 'PAYMENT_FAILED' }, { error: message });
        await this.#feedback(rec, { status: 'error', errorCode: 'PAYMENT_FAILED', message });
        log.info({ problems: check.problems.length }, 'escrow refused');
        return;
      }
      escrow = check.ref;
      log.info({ mint: escrow.mint, sats: escrow.priceSats }, 'escrow checked: locked, unspent, terms as agreed');
    }
    await this.store.transition(rec.id, { type: 'accept' }, escrow ? { escrow, priceMsats: escrow.priceSats * 1000 } : {});
    if (rec.terms === 'prepay') {
      await this.#requestPrepayment(rec, parsed.value, log);
      return;
    }
    this.#queue.push(rec.id);
    this.#pump();
  }

  #takeToken(customer: string): boolean {
    const { burst, perMinute } = this.#config.rateLimit;
    const now = Date.now();
    const b = this.#buckets.get(customer) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 60_000) * perMinute);
    b.at = now;
    this.#buckets.set(customer, b);
    if (this.#buckets.size > 10_000) this.#buckets.delete(this.#buckets.keys().next().value as string);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** The most a job can cost before it runs: what prepay asks for. */
  #maxPrice(rec: JobRecord, value: unknown): number {
    const entry = this.#config.prices[rec.kind];
    let units = 1;
    if (rec.kind === SANDBOX_RUN_KIND) units = (value as SandboxRunRequest).params.time_limit_secs;
    const p = priceFor(rec.kind, this.#config.prices, units);
    return p.ok ? p.value.msats : entry?.baseMsats ?? 0;
  }

  async #requestPrepayment(rec: JobRecord, value: unknown, log: Logger): Promise<void> {
    if (!this.#lightning) {
      await this.store.transition(rec.id, { type: 'fail', reason: 'no wallet' }, { error: 'prepay terms need a wallet' });
      await this.#feedback(rec, { status: 'error', errorCode: 'SERVICE_UNAVAILABLE', message: 'the provider has no wallet to take payment' });
      return;
    }
    const msats = this.#maxPrice(rec, value);
    let invoice;
    try {
      invoice = await this.#makeInvoice(msats, rec.id);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'make_invoice failed');
      await this.store.transition(rec.id, { type: 'fail', reason: 'wallet' }, { error: 'make_invoice failed' });
      await this.#feedback(rec, { status: 'error', errorCode: 'SERVICE_UNAVAILABLE', message: 'the provider wallet is unavailable' });
      return;
    }
    await this.store.transition(rec.id, { type: 'request-payment' }, { invoice, priceMsats: msats });
    this.#watching.add(rec.id);
    await this.#feedback(rec, { status: 'payment-required', amount: { msats, bolt11: invoice.bolt11 }, message: 'pay this invoice to start the job' });
    log.info({ msats }, 'payment requested');
  }

  // ---- execute ----

  #pump(): void {
    while (!this.#stopped && this.#running.size < this.#config.capacity && this.#queue.length) {
      const id = this.#queue.shift()!;
      const p = this.#execute(id).catch((err) => this.#log.error({ err, jobId: id }, 'job crashed'));
      this.#jobPromises.add(p);
      void p.finally(() => {
        this.#jobPromises.delete(p);
        this.#pump();
      });
    }
  }

  async #execute(id: string): Promise<void> {
    let rec = this.store.get(id);
    if (!rec || rec.state !== 'queued') return;
    const log = this.#log.child({ jobId: id, kind: rec.kind });
    if (rec.expiration !== undefined && rec.expiration <= Math.floor(Date.now() / 1000)) {
      await this.store.transition(id, { type: 'expire' });
      await this.#feedback(rec, { status: 'error', errorCode: 'EXPIRED', message: 'the request expired before it could start' });
      return;
    }
    const ac = new AbortController();
    this.#running.set(id, ac);
    try {
      rec = await this.store.transition(id, { type: 'start' }, { startedAt: Date.now(), attempts: rec.attempts + 1 });
      // Not awaited: the feedback is sent on the socket now (so it precedes the result on
      // each relay) and the job does not wait a relay round trip for its OK.
      this.#track(this.#feedback(rec, { status: 'processing', message: 'job started' }));
      log.info({ attempt: rec.attempts }, 'job started');
      const parsed = this.#parse(rec);
      if (!parsed.ok) throw new Error(formatProblems(parsed.problems));
      const trajectory = new Trajectory();
      trajectory.add({ step: 'start', kind: rec.kind, requestId: id, isolation: this.#o.runner.kind });
      const workRoot = join(this.#o.dataDir, 'work', id);
      await mkdir(workRoot, { recursive: true });
      let produced: Produced;
      try {
        produced = await this.#runBackend(rec, parsed.event, parsed.value, { trajectory, workRoot, signal: ac.signal, log });
      } finally {
        await rm(workRoot, { recursive: true, force: true }).catch(() => {});
      }
      trajectory.add({ step: 'done', units: produced.units });
      const trajectorySha256 = await trajectory.save(join(this.#o.dataDir, 'trajectories'), id);
      await this.#deliver(rec, produced, trajectorySha256, log);
    } catch (err) {
      const message = this.#stopped ? 'the provider stopped during the job' : (err as Error).message;
      log.warn({ err: (err as Error).message }, 'job failed');
      const cur = this.store.get(id);
      if (cur?.state === 'running') {
        if (this.#stopped) return; // left `running`: the next start retries it once
        const failed = await this.store.transition(id, { type: 'fail', reason: message }, { error: message, finishedAt: Date.now() });
        await this.#feedback(failed, { status: 'error', message: message.slice(0, 500) });
      }
    } finally {
      this.#running.delete(id);
    }
  }

  async #runBackend(rec: JobRecord, event: NostrEvent, value: unknown, c: { trajectory: Trajectory; workRoot: string; signal: AbortSignal; log: Logger }): Promise<Produced> {
    const ctx = {
      runner: this.#o.runner,
      log: c.log,
      trajectory: c.trajectory,
      workRoot: c.workRoot,
      signal: c.signal,
      allowFileRepos: this.#o.allowFileRepos ?? false,
      onProgress: (fraction: number, message: string) => {
        if (fraction > 0) void this.#feedback(rec, { status: 'partial', progress: Math.round(fraction * 100) / 100, message });
      },
    };
    switch (rec.kind) {
      case SANDBOX_RUN_KIND: {
        const output = await runSandboxRun(value as SandboxRunRequest, ctx);
        return { template: buildSandboxRunResult(event, output, rec.encrypted ? { omitRequest: true } : {}), units: sandboxRunUnits(output) };
      }
      case REPO_INDEX_KIND: {
        const r = value as RepoIndexRequest;
        const { output, units } = await runRepoIndex(r, ctx);
        const template = buildRepoIndexResult(event, output, rec.encrypted ? { omitRequest: true } : {});
        this.#selfCheck(REPO_INDEX_KIND, template, (res) => verifyRepoIndex(r, res as RepoIndexResult));
        return { template, units };
      }
      case PATCH_GEN_KIND: {
        const agent = this.#config.backends.patchGen;
        if (!agent) throw new Error('no patch_gen backend configured');
        const r = value as PatchGenRequest;
        const out = await runPatchGen(r, agent, ctx);
        const template = buildPatchGenResult(event, out, rec.encrypted ? { omitRequest: true } : {});
        this.#selfCheck(PATCH_GEN_KIND, template, (res) => verifyPatchGen(r, res as PatchGenResult));
        return { template, units: 1 };
      }
      case CODE_REVIEW_KIND: {
        const agent = this.#config.backends.codeReview;
        if (!agent) throw new Error('no code_review backend configured');
        const review = await runCodeReview(value as CodeReviewRequest, agent, ctx);
        return { template: buildCodeReviewResult(event, review, rec.encrypted ? { omitRequest: true } : {}), units: 1 };
      }
      case TEXT_GEN_KIND: {
        const backend = this.#config.backends.textGen;
        if (!backend) throw new Error('no text_gen backend configured');
        const r = value as TextGenRequest;
        const { text, units } = await runTextGen(r, backend, ctx);
        return { template: buildTextGenResult(event, text, rec.encrypted ? { omitRequest: true } : {}), units };
      }
      default:
        throw new Error(`kind ${rec.kind} has no backend in this build`);
    }
  }

  /** The buyer's pure checks, run on our own result before it is offered. */
  #selfCheck(kind: number, template: EventTemplate, verify: (parsed: unknown) => { ok: boolean; problems: readonly Problem[] }): void {
    const parsed = JOB_KINDS.get(kind)!.parseResult(template);
    if (!parsed.ok) throw new UnverifiedResultError(`our own result does not parse: ${formatProblems(parsed.errors)}`);
    const v = verify(parsed.value);
    if (!v.ok) throw new UnverifiedResultError(`our own result fails verification: ${formatProblems(v.problems)}`);
  }

  // ---- deliver ----

  async #deliver(job: JobRecord, produced: Produced, trajectorySha256: string, log: Logger): Promise<void> {
    let rec = job;
    const price = priceFor(rec.kind, this.#config.prices, produced.units);
    const msats = rec.terms === 'after-verify' ? (price.ok ? price.value.msats : 0) : rec.priceMsats ?? 0;
    let invoice = rec.invoice;
    if (rec.terms === 'after-verify' && msats > 0 && this.#lightning) {
      try {
        invoice = await this.#makeInvoice(msats, rec.id);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'make_invoice failed; the result carries the amount without an invoice');
      }
    }
    let claimTag: string[] | undefined;
    if (rec.terms === 'escrow' && rec.escrow && this.#escrow) {
      const claim = await this.#escrow.prepare(rec.escrow);
      rec = await this.store.update(rec.id, { escrow: { ...rec.escrow, claimId: claim.claimId } });
      claimTag = [ESCROW_CLAIM_TAG, claim.signedPackage];
    }
    const template = produced.template;
    // The amount tag: what is owed and, after-verify, the invoice to pay it with.
    const withAmount: EventTemplate = {
      ...template,
      tags: [...template.tags.filter((t) => t[0] !== 'amount' && t[0] !== 'trajectory_sha256'), ...(rec.terms === 'after-verify' ? [invoice ? ['amount', String(msats), invoice.bolt11] : ['amount', String(msats)]] : []), ...(claimTag ? [['amount', String(rec.escrow!.priceSats * 1000)], claimTag] : []), ['trajectory_sha256', trajectorySha256]],
    };
    const sealed = rec.encrypted ? sealJobResult(withAmount, this.#id.secretKey, rec.customer) : ({ ok: true, value: withAmount } as const);
    if (!sealed.ok) throw new Error(formatProblems(sealed.errors));
    const result = finalizeEvent(sealed.value, this.#id.secretKey) as NostrEvent;
    const settledAlready = rec.terms === 'prepay';
    const next = await this.store.transition(rec.id, { type: 'finish' }, { result, resultPublished: false, trajectorySha256, priceMsats: msats, finishedAt: Date.now(), ...(invoice ? { invoice } : {}) });
    await this.#publishResult(next, log);
    if (settledAlready) {
      await this.store.transition(rec.id, { type: 'paid' }, { paidAt: rec.paidAt ?? Date.now() });
    } else if (invoice) {
      this.#watching.add(rec.id);
    }
    await this.#feedback(next, { status: 'success', message: 'result delivered' });
    log.info({ msats, resultId: result.id, terms: rec.terms }, 'result delivered');
  }

  /** make_invoice, retried on a wallet's rate limit (3 attempts, 250 ms then 1 s apart). */
  async #makeInvoice(msats: number, jobId: string): Promise<InvoiceRef> {
    const wallet = this.#lightning!;
    for (let attempt = 0; ; attempt++) {
      try {
        const inv = await wallet.makeInvoice({ amountMsat: msats, description: `bazaar job ${jobId}`, expirySecs: this.#config.invoiceExpirySecs });
        return { bolt11: inv.bolt11, paymentHash: inv.paymentHash, msats: inv.amountMsat, expiresAt: inv.expiresAt };
      } catch (err) {
        if ((err as LightningWalletError).nip47Code !== 'RATE_LIMITED' || attempt >= 2 || this.#stopped) throw err;
        await new Promise((r) => setTimeout(r, attempt === 0 ? 250 : 1000));
      }
    }
  }

  async #publishResult(rec: JobRecord, log: Logger): Promise<void> {
    if (!rec.result) return;
    const [res] = await Promise.all([this.pool.publish(rec.result, { timeoutMs: this.#o.publishTimeoutMs ?? 10_000 }), this.#publishToRequested(rec, rec.result)]);
    if (res.some((r) => r.ok || r.message.startsWith('duplicate:'))) await this.store.update(rec.id, { resultPublished: true });
    else log.warn({ relays: res.map((r) => `${r.url}: ${r.message}`) }, 'no relay accepted the result yet; it will be republished');
  }

  // ---- settle ----

  /** A co-signed escrow claim came back (buyer's receipt or arbiter's verdict): redeem it. The mint enforces who could sign. */
  async #onRelease(e: NostrEvent): Promise<void> {
    // A buyer's receipt carries the release in clear; an arbiter's verdict seals it to the winner.
    const opened = openEscrowRelease(e, this.#id.secretKey);
    const pkg = opened.ok ? opened.value?.raw : undefined;
    const jobId = e.tags.find((t) => t[0] === 'd')?.[1];
    if (!pkg || !jobId || !this.#escrow) return;
    const rec = this.store.get(jobId);
    if (!rec?.escrow?.claimId || (rec.state !== 'delivered' && rec.state !== 'unpaid') || this.#settling.has(jobId)) return;
    const log = this.#log.child({ jobId, from: e.pubkey, kind: e.kind });
    this.#settling.add(jobId);
    try {
      const sats = await this.#escrow.redeem(rec.escrow, pkg);
      await this.store.transition(jobId, { type: 'paid' }, { paidAt: Date.now() }, { source: 'cashu', msats: sats * 1000, paidAt: Date.now() });
      log.info({ sats }, 'escrow redeemed: job settled');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'escrow release not redeemable');
    } finally {
      this.#settling.delete(jobId);
    }
  }

  async #onPaymentHash(hash: string): Promise<void> {
    for (const id of this.#watching) {
      const rec = this.store.get(id);
      if (rec?.invoice?.paymentHash === hash) await this.#checkPaid(rec);
    }
  }

  /**
   * Notifications are the fast path; polling is the safety net, so it is gentle on the
   * wallet (NWC services rate-limit per connection): each invoice is looked up with
   * exponential backoff (poll interval × 2^n, at most 5 min) and a bounded number per tick.
   */
  async #pollInvoices(): Promise<void> {
    const now = Date.now();
    const base = this.#o.invoicePollMs ?? 10_000;
    const due = [...this.#watching].filter((id) => (this.#nextCheck.get(id)?.at ?? 0) <= now).slice(0, MAX_LOOKUPS_PER_TICK);
    for (const id of due) {
      const rec = this.store.get(id);
      if (!rec) {
        this.#watching.delete(id);
        continue;
      }
      const n = this.#nextCheck.get(id)?.n ?? 0;
      this.#nextCheck.set(id, { at: now + Math.min(300_000, base * 2 ** n), n: n + 1 });
      await this.#checkPaid(rec);
      if (!this.#watching.has(id)) this.#nextCheck.delete(id);
    }
    // Results that no relay accepted yet are retried on the same tick.
    for (const rec of this.store.jobsIn(['delivered', 'settled'])) if (rec.result && !rec.resultPublished) await this.#publishResult(rec, this.#log.child({ jobId: rec.id }));
    await this.#writeStatusFile();
  }

  async #checkPaid(rec: JobRecord): Promise<void> {
    if (!rec.invoice || !this.#lightning || this.#settling.has(rec.id)) return;
    this.#settling.add(rec.id);
    try {
      const look = await this.#lightning.lookupInvoice(rec.invoice.paymentHash);
      const cur = this.store.get(rec.id);
      if (!cur) return;
      if (look?.settlement) {
        this.#watching.delete(rec.id);
        const paidAt = look.settlement.settledAt ? look.settlement.settledAt * 1000 : Date.now();
        const earning = { source: 'lightning' as const, msats: cur.invoice!.msats, paidAt, paymentHash: cur.invoice!.paymentHash };
        if (cur.state === 'awaiting-payment') {
          // Prepaid: the earning is booked now, the job runs next.
          await this.store.transition(cur.id, { type: 'paid' }, { paidAt }, earning);
          this.#log.info({ jobId: cur.id, msats: earning.msats }, 'prepayment received');
          this.#queue.push(cur.id);
          this.#pump();
        } else if (cur.state === 'delivered' || cur.state === 'unpaid') {
          await this.store.transition(cur.id, { type: 'paid' }, { paidAt }, earning);
          this.#log.info({ jobId: cur.id, msats: earning.msats }, 'invoice paid: job settled');
        }
      } else if (look?.state === 'expired' || look?.state === 'failed' || rec.invoice.expiresAt < Date.now() / 1000) {
        this.#watching.delete(rec.id);
        if (cur.state === 'delivered') await this.store.transition(cur.id, { type: 'unpaid' });
        else if (cur.state === 'awaiting-payment') {
          await this.store.transition(cur.id, { type: 'fail', reason: 'PAYMENT_TIMEOUT' }, { error: 'the invoice expired unpaid' });
          await this.#feedback(cur, { status: 'error', errorCode: 'PAYMENT_TIMEOUT', message: 'the invoice expired unpaid' });
        }
        this.#log.info({ jobId: cur.id }, 'invoice expired unpaid');
      }
    } catch (err) {
      this.#log.warn({ jobId: rec.id, err: (err as Error).message }, 'invoice lookup failed; will retry');
    } finally {
      this.#settling.delete(rec.id);
    }
  }

  // ---- restart ----

  async #recover(): Promise<void> {
    const open: JobState[] = ['received', 'queued', 'awaiting-payment', 'running', 'delivered'];
    for (const rec of this.store.jobsIn(open)) {
      const log = this.#log.child({ jobId: rec.id });
      const r = recoverJobState(rec.state, rec.attempts);
      if (!r.ok) continue;
      if (rec.state === 'received') {
        await this.#decide(rec, log);
        continue;
      }
      if (r.state === 'failed') {
        const failed = await this.store.transition(rec.id, { type: 'fail', reason: 'restart' }, { error: 'the provider restarted during the job twice' });
        await this.#feedback(failed, { status: 'error', message: 'the provider restarted during the job' });
        log.warn({}, 'job failed after a second restart');
        continue;
      }
      if (rec.state === 'running') await this.store.transition(rec.id, { type: 'restart' });
      if (r.state === 'queued') {
        this.#queue.push(rec.id);
        log.info({ attempts: rec.attempts }, 'job resumed after restart');
      } else if (r.state === 'awaiting-payment' || r.state === 'delivered') {
        if (rec.invoice) this.#watching.add(rec.id);
        if (r.state === 'delivered' && rec.result && !rec.resultPublished) this.#track(this.#publishResult(rec, log));
        log.info({ state: r.state }, 'watching the invoice again after restart');
      }
    }
  }

  // ---- publishing ----

  async #feedback(rec: JobRecord, f: Omit<FeedbackInput, 'request'>): Promise<void> {
    const template = buildFeedback({ ...f, request: { id: rec.id, pubkey: rec.customer } });
    const t = rec.encrypted ? sealJobResult(template, this.#id.secretKey, rec.customer) : ({ ok: true, value: template } as const);
    if (!t.ok) return;
    const event = await this.#publish({ ...t.value, kind: FEEDBACK_KIND }, `feedback ${f.status}`);
    await this.#publishToRequested(rec, event);
  }

  /**
   * NIP-90 `relays`: the customer asks for responses there too. At most MAX_REQUESTED_RELAYS
   * relays we are not configured with, through the same pool (connected on demand, closed
   * when idle); a relay that is down only costs its publish deadline.
   */
  async #publishToRequested(rec: JobRecord, event: NostrEvent): Promise<void> {
    if (!this.#config.followRequestRelays) return;
    const ours = new Set(this.pool.urls);
    const wanted = [...new Set(rec.request.tags.filter((t) => t[0] === 'relays').flatMap((t) => t.slice(1)).map((u) => normalizeRelayUrl(u)))]
      .filter((u): u is string => u !== undefined && !ours.has(u))
      .slice(0, MAX_REQUESTED_RELAYS);
    if (!wanted.length) return;
    const res = await this.pool.publish(event, { relays: wanted, timeoutMs: this.#o.publishTimeoutMs ?? 10_000 });
    for (const r of res) if (!r.ok) this.#log.info({ jobId: rec.id, relay: r.url, message: r.message }, 'requested relay did not accept the event');
  }

  async #publish(template: EventTemplate, what: string): Promise<NostrEvent> {
    let t = template;
    if (isReplaceableKind(t.kind) || isAddressableKind(t.kind)) {
      // A replacement in the same second as its predecessor may lose the tie (NIP-01: lowest
      // id wins), so each replaceable event gets a created_at after the previous one's.
      const last = this.#lastReplaceable.get(t.kind) ?? 0;
      if (t.created_at <= last) {
        const shift = last + 1 - t.created_at;
        t = { ...t, created_at: last + 1, tags: t.tags.map((x) => (x[0] === 'expiration' && /^\d+$/.test(x[1] ?? '') ? ['expiration', String(Number(x[1]) + shift)] : x)) };
      }
      this.#lastReplaceable.set(t.kind, t.created_at);
    }
    const event = finalizeEvent(t, this.#id.secretKey) as NostrEvent;
    const res = await this.pool.publish(event, { timeoutMs: this.#o.publishTimeoutMs ?? 10_000 });
    if (!res.some((r) => r.ok)) this.#log.warn({ what, eventId: event.id, relays: res.map((r) => `${r.url}: ${r.message}`) }, 'publish failed on every relay');
    return event;
  }

  async #publishHeartbeat(): Promise<void> {
    if (this.#stopped) return;
    const c = this.#config;
    const active = this.#running.size;
    await this.#publish(buildHeartbeat({ status: active >= c.capacity ? 'busy' : 'online', active, capacity: c.capacity, kinds: c.kinds, ttlSecs: c.heartbeatSecs * 2 }), 'heartbeat');
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
