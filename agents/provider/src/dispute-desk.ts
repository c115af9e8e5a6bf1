// The provider's side of a dispute (dvm-kinds "Arbitration"): it answers a buyer's dispute
// (39300) of one of its results with a dispute response (39303) — it stands by a result it
// checked before offering it, restating the trajectory hash and its escrow claim — and it serves
// the job's trajectory log to the arbiter who asks (39304), NIP-44 encrypted to that arbiter in
// parts (39305). A small module of its own beside the job pipeline: it reads the job store and
// the trajectory files, and owns one subscription.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { finalizeEvent } from 'nostr-tools/pure';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { RelayPool } from '@bazaar/agents-common/relay-pool';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { DISPUTE_KIND, parseDispute, type Dispute } from '@bazaar/dvm-kinds/market/dispute';
import { DISPUTE_RESPONSE_KIND, buildDisputeResponse } from '@bazaar/dvm-kinds/market/dispute-response';
import { PAYMENT_INFO_KIND, parsePaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import { TRAJECTORY_REQUEST_KIND, buildTrajectoryParts, buildTrajectoryRefusal, parseTrajectoryRequest } from '@bazaar/dvm-kinds/market/trajectory';
import { xOnlyKey } from '@bazaar/dvm-kinds/market/escrow';
import type { JobRecord } from './store.ts';

export interface DisputeDeskOptions {
  readonly pool: RelayPool;
  readonly secretKey: Uint8Array;
  readonly pubkey: string;
  readonly logger: Logger;
  /** Where the job's trajectory logs are (`<dir>/<job id>.jsonl`). */
  readonly trajectoriesDir: string;
  readonly job: (id: string) => JobRecord | undefined;
  /** Payment keys of arbiters this provider accepts (its announcement's `arbiter` tags). */
  readonly arbiters: () => readonly string[];
  /** How far back disputes and trajectory requests are read at start (seconds). */
  readonly lookbackSecs?: number;
  readonly publishTimeoutMs?: number;
}

const DELIVERED = new Set(['delivered', 'settled', 'unpaid']);

export class DisputeDesk {
  readonly #o: DisputeDeskOptions;
  readonly #log: Logger;
  /** Dispute / trajectory-request event ids already answered by this process. */
  readonly #answered = new Set<string>();
  readonly #pending = new Set<Promise<void>>();
  #sub: { close(): void } | undefined;

  constructor(o: DisputeDeskOptions) {
    this.#o = o;
    this.#log = o.logger;
  }

  start(): void {
    const since = () => Math.floor(Date.now() / 1000) - (this.#o.lookbackSecs ?? 30 * 24 * 3600);
    const filters = () => [{ kinds: [DISPUTE_KIND, TRAJECTORY_REQUEST_KIND], '#p': [this.#o.pubkey], since: since() }];
    this.#sub = this.#o.pool.subscribe(filters(), (e) => {
      const p = (e.kind === DISPUTE_KIND ? this.#onDispute(e) : this.#onTrajectoryRequest(e)).catch((err: unknown) => this.#log.warn({ err: (err as Error).message, kind: e.kind }, 'dispute desk: could not answer'));
      this.#pending.add(p);
      void p.finally(() => this.#pending.delete(p));
    }, { refilter: filters });
  }

  async stop(): Promise<void> {
    this.#sub?.close();
    await Promise.allSettled([...this.#pending]);
  }

  #sign(t: EventTemplate): NostrEvent {
    return finalizeEvent(t, this.#o.secretKey) as NostrEvent;
  }

  async #publish(e: NostrEvent): Promise<boolean> {
    const res = await this.#o.pool.publish(e, { timeoutMs: this.#o.publishTimeoutMs ?? 10_000 });
    return res.some((r) => r.ok || r.message.startsWith('duplicate:'));
  }

  /** A buyer disputes one of our results: we stand by it (it passed our own checks before we offered it). */
  async #onDispute(e: NostrEvent): Promise<void> {
    if (this.#answered.has(e.id)) return;
    const d = parseDispute(e);
    if (!d.ok || d.value.provider !== this.#o.pubkey) return;
    const job = this.#o.job(d.value.requestId);
    const log = this.#log.child({ jobId: d.value.requestId, buyer: e.pubkey });
    // Only the job's own customer can dispute it, and only a result we delivered.
    if (!job || job.customer !== e.pubkey || !job.result || job.result.id !== d.value.resultId) {
      log.info({}, 'dispute of no result of ours: not answered');
      return;
    }
    // One answer per dispute version: a restart re-reads the dispute but finds our response.
    const [mine] = await this.#o.pool.query([{ kinds: [DISPUTE_RESPONSE_KIND], authors: [this.#o.pubkey], '#d': [job.id] }], { timeoutMs: 5000 });
    if (mine && mine.created_at >= e.created_at) {
      this.#answered.add(e.id);
      return;
    }
    const claim = job.result.tags.find((t) => t[0] === 'escrow_claim')?.[1];
    const stand = DELIVERED.has(job.state);
    const response = this.#sign(buildDisputeResponse({
      requestId: job.id,
      resultId: job.result.id,
      buyer: e.pubkey,
      ...(d.value.arbiter ? { arbiter: d.value.arbiter } : {}),
      position: stand ? 'stand' : 'concede',
      message: stand
        ? `The result passed this provider's own checks before it was offered (the ${job.kind} verifier, in its sandbox). The buyer reports: ${d.value.failedChecks.join(', ')}.`.slice(0, 4000)
        : `This job is ${job.state} here; the provider does not stand by it.`,
      checks: stand ? [{ name: 'checked by the provider before delivery', passed: true }] : [],
      ...(job.trajectorySha256 ? { trajectorySha256: job.trajectorySha256 } : {}),
      ...(claim ? { escrowClaim: claim } : {}),
      createdAt: Math.max(Math.floor(Date.now() / 1000), e.created_at),
    }));
    if (await this.#publish(response)) {
      this.#answered.add(e.id);
      log.info({ position: stand ? 'stand' : 'concede', arbiter: d.value.arbiter }, 'dispute answered');
    }
  }

  /** An arbiter asks for a job's trajectory: served, encrypted to it, if it arbitrates this job. */
  async #onTrajectoryRequest(e: NostrEvent): Promise<void> {
    const key = `${e.id}`;
    if (this.#answered.has(key)) return;
    const q = parseTrajectoryRequest(e);
    if (!q.ok || q.value.provider !== this.#o.pubkey) return;
    const jobId = q.value.requestId;
    const log = this.#log.child({ jobId, arbiter: e.pubkey });
    const job = this.#o.job(jobId);
    const refuse = async (reason: string) => {
      log.info({ reason }, 'trajectory request refused');
      if (await this.#publish(this.#sign(buildTrajectoryRefusal({ requestId: jobId, arbiter: e.pubkey, reason })))) this.#answered.add(key);
    };
    if (!job || !job.result || job.customer !== q.value.buyer) return refuse('no delivered job of this provider for that request and buyer');
    if (!(await this.#arbitrates(e.pubkey, job))) return refuse('the requester is not an arbiter of this job (named in the buyer\'s dispute, or one this provider accepts)');
    let text: string;
    try {
      text = await readFile(join(this.#o.trajectoriesDir, `${jobId}.jsonl`), 'utf8');
    } catch {
      return refuse('no trajectory kept for this job');
    }
    if (job.trajectorySha256 && sha256Hex(text) !== job.trajectorySha256) log.warn({}, 'the kept trajectory does not hash to the one in the result; serving it anyway');
    const parts = buildTrajectoryParts({ requestId: jobId, arbiter: e.pubkey, text }, this.#o.secretKey);
    if (!parts.ok) return refuse(parts.errors.map((p) => p.message).join('; '));
    let all = true;
    for (const p of parts.value) all = (await this.#publish(this.#sign(p))) && all;
    if (all) {
      this.#answered.add(key);
      log.info({ parts: parts.value.length, bytes: Buffer.byteLength(text) }, 'trajectory served');
    }
  }

  /** The buyer named `pubkey` as arbiter in its dispute of this job, or its payment key (kind 10019) is the escrow's arbiter / one we accept. */
  async #arbitrates(pubkey: string, job: JobRecord): Promise<boolean> {
    const [dispute, info] = await Promise.all([
      this.#o.pool.query([{ kinds: [DISPUTE_KIND], authors: [job.customer], '#d': [job.id] }], { timeoutMs: 5000 }),
      this.#o.pool.query([{ kinds: [PAYMENT_INFO_KIND], authors: [pubkey] }], { timeoutMs: 5000 }),
    ]);
    const named = dispute.map((x) => parseDispute(x)).some((d): d is { ok: true; value: Dispute } => d.ok && d.value.arbiter === pubkey && d.value.requestId === job.id);
    if (named) return true;
    // Escrowed: the arbiter the lock names; otherwise any arbiter we accept.
    const accepted = new Set(job.escrow ? [xOnlyKey(job.escrow.arbiter)] : this.#o.arbiters().map(xOnlyKey));
    return info.some((x) => {
      const p = parsePaymentInfo(x);
      return p.ok && x.pubkey === pubkey && accepted.has(xOnlyKey(p.value.p2pkPubkey));
    });
  }
}
