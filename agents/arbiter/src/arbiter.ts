// The arbiter agent: disputes in, verdicts out, every step durable (DESIGN §5; dvm-kinds
// "Arbitration"). For each dispute it takes:
//   intake   a 39300 naming it (its payment key in the escrow lock) or any dispute when public;
//            the request and result fetched and checked to belong together and to the parties
//   gather   the provider's answer (39303) and its trajectory (39304 → 39305 parts, hash-checked
//            against the result's trajectory_sha256), until both are in or the response window ends
//   replay   the kind's verification in the arbiter's own sandbox and checkout (agents-common's
//            verifyResult, the buyer's own implementation); a replay it cannot run leaves the case
//            `unavailable` — no verdict, retried with backoff — never a guess
//   decide   the ruling (ruling.ts), its evidence bundle and hash, the winner's escrow claim
//            co-signed, the verdict signed — all persisted in one transaction before anything leaves
//   publish  the stored verdict (same id on every retry), its release sealed to the winner
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { bytesToHex } from '@noble/hashes/utils.js';
import { finalizeEvent } from 'nostr-tools/pure';
import type { Filter } from 'nostr-tools/filter';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { DISPUTE_KIND, parseDispute, type Dispute } from '@bazaar/dvm-kinds/market/dispute';
import { DISPUTE_RESPONSE_KIND, parseDisputeResponse } from '@bazaar/dvm-kinds/market/dispute-response';
import { TRAJECTORY_KIND, assembleTrajectory, buildTrajectoryRequest, resultTrajectorySha256 } from '@bazaar/dvm-kinds/market/trajectory';
import { buildSealedEscrowReleaseTag, escrowPackageDigest, parseEscrow, parseEscrowClaim, readEscrowPackage, verifyEscrowPackage, xOnlyKey, type EscrowPackage } from '@bazaar/dvm-kinds/market/escrow';
import { buildVerdict, reputationDeltaFor } from '@bazaar/dvm-kinds/market/verdict';
import { buildArbiterAnnouncement } from '@bazaar/dvm-kinds/market/arbiter';
import { buildPaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import type { Identity } from '@bazaar/agents-common/identity/keystore';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import type { Wallet } from '@bazaar/agents-common/wallet/wallet';
import { signClaim } from '@bazaar/agents-common/wallet/escrow';
import { ReplayUnavailableError, verifyResult } from '@bazaar/agents-common/verify/verify-result';
import type { ArbiterConfig } from './config.ts';
import { OPEN_STATES, type Case, type Decision, type EscrowFacts } from './case.ts';
import { rule } from './ruling.ts';
import { ArbiterStore } from './store.ts';

export interface ArbiterOptions {
  readonly config: ArbiterConfig;
  readonly identity: Identity;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly runner: Runner;
  /** Issues fee invoices (Lightning rail); none = no fee asked. */
  readonly wallet?: Wallet | null;
  readonly store?: ArbiterStore;
  /** How often open cases are looked at (windows, answers, retries). Default 5 s. */
  readonly pollMs?: number;
  /** Accept file:// repositories in replays (local mirrors, tests). */
  readonly allowFileRepos?: boolean;
  readonly minBackoffMs?: number;
  /** Observes durable steps (tests kill the process here to prove a restart publishes the same verdict). */
  readonly onStep?: (step: 'decided', caseId: string) => void;
}

export interface ArbiterStatus {
  readonly pubkey: string;
  readonly paymentPubkey: string;
  readonly startedAt: number;
  readonly relays: { url: string; connected: boolean }[];
  readonly kinds: readonly number[];
  readonly public: boolean;
  readonly responseWindowSecs: number;
  readonly isolation: string;
  readonly replaying?: string;
}

const MAX_RETRY_MS = 3600_000;
const ASK_AGAIN_MS = 300_000;
/** How long a fee invoice is good for. */
const FEE_INVOICE_SECS = 7 * 24 * 3600;

export class Arbiter {
  readonly store: ArbiterStore;
  readonly pool: RelayPool;
  readonly #o: ArbiterOptions;
  readonly #log: Logger;
  readonly #id: Identity;
  readonly #c: ArbiterConfig;
  readonly #startedAt = Date.now();
  readonly #busy = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  /** One replay at a time: the sandbox is the expensive part. */
  #replays: Promise<void> = Promise.resolve();
  #replaying: string | undefined;
  #sub: { close(): void } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #lastReplaceable = 0;
  /** The wallet's node (get_info), announced as lightning_node; null: the wallet does not say. */
  #lightningNode: string | null | undefined;
  #offPaid: (() => void) | undefined;

  constructor(o: ArbiterOptions) {
    this.#o = o;
    this.#c = o.config;
    this.#log = o.logger;
    this.#id = o.identity;
    this.store = o.store ?? ArbiterStore.open(join(o.dataDir, 'db'));
    this.pool = new RelayPool({
      relays: o.config.relays,
      logger: o.logger.child({ part: 'pool' }),
      auth: (t) => finalizeEvent(t, o.identity.secretKey) as NostrEvent,
      ...(o.minBackoffMs ? { minBackoffMs: o.minBackoffMs } : {}),
    });
  }

  get pubkey(): string {
    return this.#id.pubkey;
  }

  /** The payment key buyers name in escrow locks ("02" + x-only). */
  get paymentPubkey(): string {
    return '02' + xOnlyKey(this.#id.paymentPubkey);
  }

  status(): ArbiterStatus {
    return {
      pubkey: this.#id.pubkey,
      paymentPubkey: this.paymentPubkey,
      startedAt: this.#startedAt,
      relays: this.pool.status().filter((r) => this.pool.urls.includes(r.url)).map(({ url, connected }) => ({ url, connected })),
      kinds: this.#c.kinds,
      public: this.#c.public,
      responseWindowSecs: this.#c.responseWindowSecs,
      isolation: this.#o.runner.kind,
      ...(this.#replaying ? { replaying: this.#replaying } : {}),
    };
  }

  async start(): Promise<void> {
    await mkdir(join(this.#o.dataDir, 'evidence'), { recursive: true });
    const since = () => Math.floor(Date.now() / 1000) - this.#c.lookbackSecs;
    const filters = (): Filter[] => [this.#c.public ? { kinds: [DISPUTE_KIND], since: since() } : { kinds: [DISPUTE_KIND], '#p': [this.#id.pubkey], since: since() }, { kinds: [DISPUTE_RESPONSE_KIND, TRAJECTORY_KIND], '#p': [this.#id.pubkey], since: since() }];
    this.#sub = this.pool.subscribe(filters(), (e) => this.#track(this.#onEvent(e)), { refilter: filters });
    try {
      await this.pool.waitConnected({ timeoutMs: 10_000 });
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'no relay connected yet; will keep trying');
    }
    await this.announce();
    if (this.#c.feeSats > 0 && this.#o.wallet?.hasLightning) {
      // The fast path for "the fee was paid"; #checkFees (lookup_invoice) is the safety net.
      this.#o.wallet.onPaymentReceived((p) => {
        const c = this.store.inState(['decided', 'published']).find((x) => x.decision?.fee?.paymentHash === p.paymentHash);
        if (c) this.#feePaid(c.id, p.paymentHash);
      }).then((off) => (this.#stopped ? off() : (this.#offPaid = off)), (err: unknown) => this.#log.warn({ err: (err as Error).message }, 'payment notifications unavailable: fees are looked up instead'));
    }
    this.#timer = setInterval(() => this.#track(this.#tickAll()), this.#o.pollMs ?? 5000);
    this.#track(this.#tickAll());
    this.#log.info({ pubkey: this.#id.pubkey, paymentPubkey: this.paymentPubkey, kinds: this.#c.kinds, public: this.#c.public, responseWindowSecs: this.#c.responseWindowSecs }, 'arbiter started');
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#offPaid?.();
    this.#sub?.close();
    await Promise.allSettled([...this.#pending]);
    await this.#replays.catch(() => {});
    await this.pool.close();
    await rm(join(this.#o.dataDir, 'status.json'), { force: true }).catch(() => {});
    if (!this.#o.store) await this.store.close();
    this.#log.info({}, 'arbiter stopped');
  }

  /** NIP-89 (31990: handles 39300 for the kinds it replays, window, fee) and NIP-61 (10019: the payment key). */
  async announce(): Promise<void> {
    const c = this.#c;
    const fee = c.feeSats > 0 && this.#o.wallet?.hasLightning ? { msats: c.feeSats * 1000, payer: 'loser' as const } : undefined;
    // The node our fee invoices are signed by: losers refuse a fee invoice to any other payee.
    if (fee && this.#lightningNode === undefined) {
      try {
        this.#lightningNode = (await this.#o.wallet!.lightning.getInfo({ timeoutMs: 10_000 })).pubkey ?? null;
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'the wallet did not say its node (get_info): announced without lightning_node, so losers will refuse the fee');
      }
      if (this.#lightningNode === null) this.#log.warn({}, 'the wallet does not tell its node pubkey: announced without lightning_node, so losers will refuse the fee');
    }
    await this.#publishReplaceable(buildArbiterAnnouncement({ kinds: c.kinds, responseWindowSecs: c.responseWindowSecs, public: c.public, isolation: this.#o.runner.kind === 'container' ? 'container' : 'bwrap', ...(fee ? { fee } : {}), ...(fee && this.#lightningNode ? { lightningNode: this.#lightningNode } : {}), name: c.name, about: c.about }), 'announcement');
    if (c.mints.length) await this.#publishReplaceable(buildPaymentInfo({ relays: c.relays, mints: c.mints.map((url) => ({ url })), p2pkPubkey: this.paymentPubkey }), 'payment info');
    else this.#log.warn({}, 'no mints configured: kind 10019 not published, so buyers cannot name this arbiter in escrow locks');
  }

  async #publishReplaceable(t: EventTemplate, what: string): Promise<void> {
    // Never the same second twice: a same-second replacement can lose NIP-01's lowest-id tie-break.
    const at = Math.max(t.created_at, this.#lastReplaceable + 1);
    this.#lastReplaceable = at;
    const res = await this.pool.publish(this.#sign({ ...t, created_at: at }), { timeoutMs: 10_000 });
    if (!res.some((r) => r.ok)) this.#log.warn({ what, relays: res.map((r) => `${r.url}: ${r.message}`) }, 'not accepted by any relay');
  }

  #sign(t: EventTemplate): NostrEvent {
    return finalizeEvent(t, this.#id.secretKey) as NostrEvent;
  }

  #track(p: Promise<void>): void {
    const q = p.catch((err: unknown) => this.#log.error({ err }, 'background task failed'));
    this.#pending.add(q);
    void q.finally(() => this.#pending.delete(q));
  }

  async #onEvent(e: NostrEvent): Promise<void> {
    if (this.#stopped) return;
    if (e.kind === DISPUTE_KIND) return this.#onDispute(e);
    // An answer or a trajectory part for one of our cases: look at it now rather than at the next tick.
    const id = e.tags.find((t) => t[0] === 'e' && t[3] === 'request')?.[1] ?? e.tags.find((t) => t[0] === 'd')?.[1];
    const c = id ? this.store.get(id) : undefined;
    if (c && OPEN_STATES.has(c.state)) await this.#tick(c.id);
  }

  // ---- intake ----

  async #onDispute(e: NostrEvent): Promise<void> {
    const parsed = parseDispute(e);
    if (!parsed.ok) return;
    const d = parsed.value;
    if (d.arbiter !== undefined && d.arbiter !== this.#id.pubkey) return; // another arbiter's case
    if (d.arbiter === undefined && !this.#c.public) return;
    const existing = this.store.get(d.requestId);
    if (existing) return this.#onRepeatedDispute(existing, e, d);
    const log = this.#log.child({ caseId: d.requestId, buyer: e.pubkey });
    const reject = (reason: string) => {
      // Disputes naming us are recorded with the reason (so `cases` shows them); others are just ignored.
      if (d.arbiter === this.#id.pubkey) this.store.create(this.#newCase(e, d, { state: 'rejected', rejected: reason }));
      log.info({ reason }, 'dispute not taken');
    };
    const [request, result] = await Promise.all([this.#fetch(d.requestId), this.#fetch(d.resultId)]);
    if (!request) return reject('the job request is not on our relays');
    if (!result) return reject('the disputed result is not on our relays');
    if (request.pubkey !== e.pubkey) return reject('the dispute is not by the job\'s customer');
    if (result.pubkey !== d.provider) return reject('the result is not by the provider the dispute names');
    if (result.kind !== request.kind + 1000 || !result.tags.some((t) => t[0] === 'e' && t[1] === request.id)) return reject('the result does not answer the request');
    if (!this.#c.kinds.includes(request.kind)) return reject(`kind ${request.kind} is not one this arbiter replays (${this.#c.kinds.join(', ')})`);
    if (request.tags.some((t) => t[0] === 'encrypted') || result.tags.some((t) => t[0] === 'encrypted')) return reject('a private (NIP-44) job: the arbiter cannot read its request and result');
    const esc = parseEscrow(request);
    if (!esc.ok) return reject(`the escrow does not parse: ${esc.errors.map((p) => p.message).join('; ')}`);
    let escrow: EscrowFacts | undefined;
    if (esc.value) {
      const lock = esc.value.lock;
      if (!lock.pubkeys.map(xOnlyKey).includes(xOnlyKey(this.#id.paymentPubkey))) return reject('the escrow lock names another arbiter');
      escrow = { mint: esc.value.mint, amount: esc.value.amount, ...(lock.locktime !== undefined ? { locktime: lock.locktime } : {}), providerKey: lock.data, buyerKey: lock.refund[0] ?? lock.pubkeys.find((k) => xOnlyKey(k) !== xOnlyKey(this.#id.paymentPubkey)) ?? '' };
    } else if (!this.#c.public) return reject('no escrow names this arbiter (only a public arbiter takes unescrowed disputes)');
    const committed = resultTrajectorySha256(result);
    const created = this.store.create(this.#newCase(e, d, { state: 'open', request, result, ...(escrow ? { escrow } : {}), ...(committed ? { trajectory: { status: 'requested', committed, requestedAt: Date.now() } } : {}) }));
    if (!created) return;
    log.info({ kind: request.kind, provider: d.provider, escrow: !!escrow, failedChecks: d.failedChecks }, 'dispute taken');
    if (committed) await this.#askTrajectory(d.requestId, d.provider, e.pubkey);
    await this.#tick(d.requestId);
  }

  #newCase(e: NostrEvent, d: Dispute, extra: Partial<Case> & { state: Case['state'] }): Case {
    const now = Date.now();
    return {
      id: d.requestId,
      kind: extra.request?.kind ?? 0,
      buyer: e.pubkey,
      provider: d.provider,
      dispute: e,
      failedChecks: d.failedChecks,
      buyerEvidenceSha256: d.evidenceSha256,
      openedAt: now,
      windowEndsAt: now + this.#c.responseWindowSecs * 1000,
      updatedAt: now,
      ...extra,
    };
  }

  /** The same job disputed again (a new version, or a re-publish): one case; a decided one is re-published, never re-decided. */
  async #onRepeatedDispute(c: Case, e: NostrEvent, d: Dispute): Promise<void> {
    if (e.pubkey !== c.buyer || e.id === c.dispute.id) return;
    if (c.verdict && (c.state === 'decided' || c.state === 'published')) {
      // Recorded (the decision keeps the dispute it ruled on in its evidence), then the same verdict again.
      if (e.created_at > c.dispute.created_at) this.store.update(c.id, { dispute: e });
      this.#log.info({ caseId: c.id }, 'repeated dispute of a decided case: the same verdict again');
      await this.#publishVerdict(c.id);
      return;
    }
    if (OPEN_STATES.has(c.state) && e.created_at > c.dispute.created_at) this.store.update(c.id, { dispute: e, failedChecks: d.failedChecks, buyerEvidenceSha256: d.evidenceSha256 });
  }

  async #fetch(id: string): Promise<NostrEvent | undefined> {
    const [e] = await this.pool.query([{ ids: [id] }], { timeoutMs: 8000 });
    return e?.id === id ? e : undefined;
  }

  async #askTrajectory(requestId: string, provider: string, buyer: string): Promise<void> {
    const res = await this.pool.publish(this.#sign(buildTrajectoryRequest({ requestId, provider, buyer })), { timeoutMs: 10_000 });
    if (!res.some((r) => r.ok)) this.#log.warn({ caseId: requestId }, 'trajectory request not accepted by any relay; asked again later');
  }

  // ---- the case loop ----

  async #tickAll(): Promise<void> {
    if (this.#stopped) return;
    for (const c of this.store.inState(['open', 'unavailable', 'decided'])) await this.#tick(c.id);
    await this.#checkFees();
    await this.#writeStatusFile();
  }

  async #tick(id: string): Promise<void> {
    if (this.#busy.has(id) || this.#stopped) return;
    this.#busy.add(id);
    try {
      let c = this.store.get(id);
      if (!c) return;
      if (c.state === 'decided') return void (await this.#publishVerdict(id));
      if (!OPEN_STATES.has(c.state)) return;
      c = await this.#gather(c);
      if (!c.replay && c.response?.position !== 'concede' && this.#replayDue(c)) this.#queueReplay(c.id);
      if (this.#ready(c)) await this.#decide(c);
    } finally {
      this.#busy.delete(id);
    }
  }

  #replayDue(c: Case): boolean {
    return c.state === 'open' ? !this.#queued.has(c.id) : !!c.unavailable && Date.now() >= c.unavailable.nextAttemptAt && !this.#queued.has(c.id);
  }

  /** Evidence in: the provider's answer and its trajectory, whichever has arrived. */
  async #gather(c: Case): Promise<Case> {
    if (!c.response) {
      const events = await this.pool.query([{ kinds: [DISPUTE_RESPONSE_KIND], authors: [c.provider], '#d': [c.id] }], { timeoutMs: 5000 });
      const answers = events.map((e) => ({ e, r: parseDisputeResponse(e) })).filter((x) => x.r.ok && x.r.value.requestId === c.id && x.r.value.buyer === c.buyer && x.e.created_at * 1000 <= c.windowEndsAt + 5000);
      const newest = answers.sort((a, b) => b.e.created_at - a.e.created_at)[0];
      if (newest?.r.ok) {
        const r = newest.r.value;
        c = this.store.update(c.id, { response: { id: newest.e.id, position: r.position, message: r.message, at: newest.e.created_at * 1000, ...(r.escrowClaim ? { escrowClaim: r.escrowClaim.raw } : {}) } });
        this.#log.info({ caseId: c.id, position: r.position }, 'the provider answered the dispute');
      }
    }
    if (c.trajectory?.status === 'requested') {
      const events = await this.pool.query([{ kinds: [TRAJECTORY_KIND], authors: [c.provider], '#e': [c.id] }], { timeoutMs: 5000 });
      const mine = events.filter((e) => e.tags.some((t) => t[0] === 'p' && t[1] === this.#id.pubkey));
      // Nothing yet: ask again now and then (a relay may have dropped the request; the provider may have been away).
      if (!mine.length && Date.now() - c.trajectory.requestedAt > ASK_AGAIN_MS) {
        c = this.store.update(c.id, { trajectory: { ...c.trajectory, requestedAt: Date.now() } });
        await this.#askTrajectory(c.id, c.provider, c.buyer);
      }
      const a = assembleTrajectory(mine, this.#id.secretKey);
      const t = c.trajectory!;
      if (!a.ok) c = this.store.update(c.id, { trajectory: { ...t, status: 'mismatch', detail: a.errors.map((p) => p.message).join('; ') } });
      else if (a.value.complete && 'refused' in a.value) c = this.store.update(c.id, { trajectory: { ...t, status: 'refused', detail: a.value.refused } });
      else if (a.value.complete && 'text' in a.value) {
        const matched = a.value.sha256 === t.committed;
        c = this.store.update(c.id, { trajectory: { ...t, status: matched ? 'matched' : 'mismatch', served: a.value.sha256, bytes: Buffer.byteLength(a.value.text) } });
        await this.#keepTrajectory(c.id, a.value.text);
        this.#log.info({ caseId: c.id, matched, bytes: Buffer.byteLength(a.value.text) }, 'trajectory received over Nostr');
      }
    }
    return c;
  }

  async #keepTrajectory(id: string, text: string): Promise<void> {
    const dir = join(this.#o.dataDir, 'trajectories');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${id}.jsonl`), text, { mode: 0o600 });
  }

  /** Every piece of evidence in (replay, answer, trajectory), or the window is over with a replay (or a concession) in hand. */
  #ready(c: Case): boolean {
    const conceded = c.response?.position === 'concede';
    if (!c.replay && !conceded) return false;
    const trajectoryDone = !c.trajectory || c.trajectory.status !== 'requested';
    return (!!c.response && trajectoryDone) || Date.now() >= c.windowEndsAt;
  }

  readonly #queued = new Set<string>();

  #queueReplay(id: string): void {
    this.#queued.add(id);
    this.#replays = this.#replays.then(async () => {
      try {
        if (!this.#stopped) await this.#replay(id);
      } catch (err) {
        this.#log.error({ caseId: id, err }, 'replay failed unexpectedly');
      } finally {
        this.#queued.delete(id);
        this.#replaying = undefined;
      }
      if (!this.#stopped) this.#track(this.#tick(id));
    });
  }

  async #replay(id: string): Promise<void> {
    const c = this.store.get(id);
    if (!c || !OPEN_STATES.has(c.state) || c.replay || !c.request || !c.result) return;
    this.#replaying = id;
    const log = this.#log.child({ caseId: id, kind: c.kind });
    log.info({}, 'replaying the verification in our sandbox');
    try {
      const v = await verifyResult(c.request, c.result, {
        runner: this.#o.runner,
        logger: log,
        workDir: join(this.#o.dataDir, 'work'),
        repoCacheDir: join(this.#o.dataDir, 'repos'),
        rerun: true,
        sample: 10,
        allowFileRepos: this.#o.allowFileRepos ?? false,
      });
      const patch = { replay: { ok: v.ok, checks: v.checks, problems: v.problems, replay: v.replay, at: Date.now() } };
      if (c.state === 'unavailable') this.store.step(id, 'retry', patch);
      else this.store.update(id, patch);
      log.info({ ok: v.ok, failed: v.checks.filter((x) => !x.passed).map((x) => x.name) }, 'replay done');
    } catch (err) {
      if (!(err instanceof ReplayUnavailableError)) throw err;
      const attempts = (c.unavailable?.attempts ?? 0) + 1;
      const wait = Math.min(MAX_RETRY_MS, this.#c.retryBaseSecs * 1000 * 2 ** (attempts - 1));
      this.store.step(id, 'replay-unavailable', { unavailable: { reason: err.reason, message: err.message, attempts, nextAttemptAt: Date.now() + wait } });
      log.warn({ reason: err.reason, err: err.message, attempts, retryInSecs: Math.round(wait / 1000) }, 'the replay cannot run: no verdict until it can');
    }
  }

  // ---- decide and publish ----

  async #decide(c: Case): Promise<void> {
    const log = this.#log.child({ caseId: c.id });
    const out = rule({ kind: c.kind, ...(c.replay ? { replay: c.replay } : {}), ...(c.response ? { response: c.response } : {}), ...(c.trajectory ? { trajectory: c.trajectory } : {}), splitProviderShare: this.#c.splitProviderShare });
    const reasons = [...out.reasons];
    // The escrow: the winner's own claim, co-signed. A split goes to the side with the larger share
    // (one SIG_ALL signature moves the whole escrow; see README).
    let releaseTag: string[] | undefined;
    let release: Decision['release'];
    if (c.escrow && c.request) {
      const to: 'buyer' | 'provider' = out.ruling === 'provider' || (out.ruling === 'split' && (out.providerShare ?? 0.5) >= 0.5) ? 'provider' : 'buyer';
      const pkg = this.#claimOf(c, to);
      const esc = parseEscrow(c.request);
      const signer = to === 'provider' ? c.escrow.providerKey : c.escrow.buyerKey;
      const check = pkg && esc.ok && esc.value ? verifyEscrowPackage(pkg, esc.value, [signer]) : undefined;
      if (pkg && check?.ok) {
        const signed = signClaim(pkg.raw, bytesToHex(this.#id.paymentSecretKey));
        releaseTag = buildSealedEscrowReleaseTag(signed, this.#id.secretKey, to === 'provider' ? c.provider : c.buyer);
        release = { to, digest: escrowPackageDigest(pkg) };
        reasons.push(`The escrow (${c.escrow.amount} sat) is released to the ${to}: its claim, co-signed by the arbiter, is sealed to it in this verdict.`);
      } else {
        const why = !pkg ? `the ${to} sent no claim` : `the ${to}'s claim does not spend this escrow with its signature (${check?.problems.map((p) => p.message).join('; ') ?? 'unreadable'})`;
        reasons.push(to === 'buyer' ? `No release: ${why}; the buyer takes the escrow back after its locktime.` : `No release: ${why}.`);
      }
    }
    const fee = await this.#feeInvoice(c, out.ruling, log);
    const evidence = {
      version: 1,
      arbiter: this.#id.pubkey,
      case: c.id,
      kind: c.kind,
      request: c.request?.id,
      result: c.result?.id,
      dispute: { id: c.dispute.id, failedChecks: c.failedChecks, buyerEvidenceSha256: c.buyerEvidenceSha256 },
      replay: c.replay ?? null,
      response: c.response ?? null,
      trajectory: c.trajectory ?? null,
      ruling: out.ruling,
      ...(out.providerShare !== undefined ? { providerShare: out.providerShare } : {}),
      reasons,
      release: release ?? null,
    };
    const text = JSON.stringify(evidence, null, 1) + '\n';
    const evidenceSha256 = sha256Hex(text);
    await writeFile(join(this.#o.dataDir, 'evidence', `${c.id}.json`), text, { mode: 0o600 });
    const decision: Decision = { ruling: out.ruling, ...(out.providerShare !== undefined ? { providerShare: out.providerShare } : {}), reasons, checks: out.checks, evidenceSha256, ...(release ? { release } : {}), ...(fee ? { fee } : {}), decidedAt: Date.now() };
    const verdict = this.#sign(buildVerdict({
      requestId: c.id,
      buyer: c.buyer,
      provider: c.provider,
      ruling: out.ruling,
      ...(out.providerShare !== undefined ? { providerShare: out.providerShare } : {}),
      reason: reasons.join(' ').slice(0, 4000),
      checks: out.checks,
      ...(releaseTag ? { releaseTag } : {}),
      evidenceSha256,
      reputationDelta: reputationDeltaFor(out.ruling, out.providerShare),
      ...(fee ? { fee: { msats: fee.msats, bolt11: fee.bolt11 } } : {}),
    }));
    // Durable before it leaves: a restart publishes this very event, and no second decision is possible.
    this.store.decide(c.id, decision, verdict);
    log.info({ ruling: out.ruling, providerShare: out.providerShare, release: release?.to, evidenceSha256 }, 'decided');
    this.#o.onStep?.('decided', c.id);
    await this.#publishVerdict(c.id);
  }

  #claimOf(c: Case, to: 'buyer' | 'provider'): EscrowPackage | undefined {
    if (to === 'buyer') {
      const d = parseDispute(c.dispute);
      return d.ok ? d.value.escrowClaim : undefined;
    }
    if (c.response?.escrowClaim) {
      const p = readEscrowPackage(c.response.escrowClaim);
      if (p.ok) return p.value;
    }
    const r = c.result ? parseEscrowClaim(c.result) : undefined;
    return r?.ok ? r.value : undefined;
  }

  /** The fee, when configured: a bolt11 from our wallet for the losing side (none for a split). */
  async #feeInvoice(c: Case, ruling: string, log: Logger): Promise<Decision['fee']> {
    const w = this.#o.wallet;
    if (this.#c.feeSats <= 0 || !w?.hasLightning) return undefined;
    // Loser pays; a split has no loser, so it asks no fee (README "The fee").
    if (ruling === 'split') return undefined;
    const payer = ruling === 'provider' ? c.buyer : c.provider;
    try {
      const inv = await w.makeInvoice({ amountMsat: this.#c.feeSats * 1000, description: `arbitration fee, job ${c.id.slice(0, 16)}`, expirySecs: FEE_INVOICE_SECS });
      return { msats: inv.amountMsat, bolt11: inv.bolt11, paymentHash: inv.paymentHash, payer };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'no fee invoice: the verdict asks no fee');
      return undefined;
    }
  }

  /**
   * Fees asked and not yet seen paid: looked up in our wallet (NIP-47 lookup_invoice), a few per
   * tick, each with backoff, until paid or its invoice expired. The payment_received notification
   * (subscribed at start) is the fast path.
   */
  async #checkFees(): Promise<void> {
    const w = this.#o.wallet;
    if (!w?.hasLightning || this.#stopped) return;
    const now = Date.now();
    const due = this.store.inState(['decided', 'published']).filter((c) => c.decision?.fee && !c.feePaidAt && now < c.decision.decidedAt + FEE_INVOICE_SECS * 1000 + 60_000 && now >= (this.#feeNextCheck.get(c.id)?.at ?? 0));
    for (const c of due.slice(0, 5)) {
      const fee = c.decision!.fee!;
      try {
        const r = await w.lookupInvoice(fee.paymentHash);
        if (r?.settlement) {
          this.#feePaid(c.id, fee.paymentHash);
          continue;
        }
      } catch (err) {
        this.#log.debug({ caseId: c.id, err: (err as Error).message }, 'fee lookup failed; retried');
      }
      const n = (this.#feeNextCheck.get(c.id)?.n ?? 0) + 1;
      this.#feeNextCheck.set(c.id, { n, at: now + Math.min(MAX_RETRY_MS, (this.#o.pollMs ?? 5000) * 2 ** Math.min(n, 10)) });
    }
  }

  readonly #feeNextCheck = new Map<string, { at: number; n: number }>();

  #feePaid(caseId: string, paymentHash: string): void {
    const c = this.store.get(caseId);
    if (!c?.decision?.fee || c.decision.fee.paymentHash !== paymentHash || c.feePaidAt) return;
    this.store.update(caseId, { feePaidAt: Date.now() });
    this.#feeNextCheck.delete(caseId);
    this.#log.info({ caseId, feeMsats: c.decision.fee.msats, payer: c.decision.fee.payer }, 'the fee was paid');
  }

  async #publishVerdict(id: string): Promise<void> {
    const c = this.store.get(id);
    if (!c?.verdict) return;
    const res = await this.pool.publish(c.verdict, { timeoutMs: 10_000 });
    if (res.some((r) => r.ok || r.message.startsWith('duplicate:'))) {
      if (c.state === 'decided') {
        this.store.step(id, 'published', { publishedAt: Date.now() });
        this.#log.info({ caseId: id, verdict: c.verdict.id, ruling: c.decision?.ruling }, 'verdict published');
      }
    } else this.#log.warn({ caseId: id, relays: res.map((r) => `${r.url}: ${r.message}`) }, 'no relay took the verdict yet; retried');
  }

  async #writeStatusFile(): Promise<void> {
    if (this.#stopped) return;
    const path = join(this.#o.dataDir, 'status.json');
    const tmp = `${path}.${Math.random().toString(36).slice(2)}.tmp`;
    await writeFile(tmp, JSON.stringify({ ...this.status(), pid: process.pid, updatedAt: Date.now() }) + '\n')
      .then(() => rename(tmp, path))
      .catch(() => {});
  }
}
