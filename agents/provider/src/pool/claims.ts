// Job claims of a provider pool: one JetStream KV entry per job request (key = request id),
// created if absent — the worker whose create succeeds does the job, every other worker drops
// it. A claim is a lease: its holder rewrites it (compare-and-set on the entry's revision)
// every lease/3. A claim that no one rewrote for a whole lease, as another worker observes it
// on its own clock (no clock is compared across machines), is taken over by that worker — again
// by compare-and-set, so of several takers exactly one wins. The holder learns it lost the
// lease when a rewrite fails (or it could not rewrite for a whole lease): the job is aborted
// and nothing more is published for it. A result is fenced: it is written into the claim by
// compare-and-set before it is published, so of two workers that both believed they held a
// job at most one result ever exists; and since it is in the claim, any worker republishes
// that same event if its author died before a relay took it.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { PaymentTerms } from '@bazaar/agents-common/job-state';

export const CLAIM_STATES = ['claimed', 'delivered', 'done'] as const;
export type ClaimState = (typeof CLAIM_STATES)[number];

/** Results larger than this are fenced by id only (KV values are capped by the server's max_payload, 1 MiB by default). */
const MAX_STORED_RESULT_BYTES = 256 * 1024;

export interface Claim {
  readonly v: 1;
  readonly state: ClaimState;
  /** The worker holding (or that last held) the job, and its process session: the fencing identity. */
  readonly worker: string;
  readonly session: string;
  /** 1 for the first claim, +1 on each takeover. */
  readonly attempt: number;
  /** The request as received (still sealed for private jobs): what a taker needs. Dropped when done, so a closed claim is small. */
  readonly request?: NostrEvent;
  readonly terms: PaymentTerms;
  /** False when the job's payment state lives in its holder's wallet (prepay, escrow): it waits for that worker instead. */
  readonly transferable: boolean;
  /** Once delivered: the signed result (or only its id when too large to keep here). */
  readonly result?: NostrEvent;
  readonly resultId?: string;
  /** Once done: the job's final local state (settled, delivered, rejected, failed, …). */
  readonly outcome?: string;
  /** The writer's clock (ms), for people reading the bucket; never used to decide a lease. */
  readonly at: number;
}

/** Thrown into a job's abort signal when its lease is lost. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
}

export type ClaimOutcome = { readonly won: true; readonly attempt: number } | { readonly won: false; readonly holder: string };

interface Held {
  claim: Claim;
  rev: number;
  /** performance.now() of the last successful write. */
  wroteAt: number;
  readonly lost: AbortController;
  /** Writes to one key are serialised, so a renewal never races the fence with the same revision. */
  chain: Promise<unknown>;
  /** The job ended here with this outcome; closing the claim is retried until it is written. */
  closing?: string;
}

interface Observed {
  claim: Claim;
  rev: number;
  /** performance.now() when this revision was first seen here. */
  since: number;
  warned?: boolean;
}

export interface ClaimsOptions {
  readonly kv: KV;
  readonly worker: string;
  readonly session: string;
  readonly leaseMs: number;
  readonly log: Logger;
  /** Whether this worker has room for a job taken over from a dead one. */
  readonly canTake: () => boolean;
  /** A job taken over: run it. */
  readonly onTakeover: (request: NostrEvent, claim: Claim, from: string) => Promise<void>;
  /** A delivered claim whose author vanished: publish its stored result; true once a relay took it. */
  readonly onRepublish: (request: NostrEvent, result: NostrEvent, claim: Claim) => Promise<boolean>;
}

/** A compare-and-set that found another revision (or an existing key, for a create). */
export const isCasConflict = (err: unknown): boolean =>
  err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);

const decode = (e: KvEntry): Claim | undefined => {
  if (e.operation !== 'PUT') return undefined;
  try {
    const c = e.json<Claim>();
    return c && c.v === 1 && typeof c.worker === 'string' && typeof c.session === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
};

/** A claim closed with `outcome`: no request or result kept (a bucket of a week's jobs stays small). */
function closed(c: Claim, outcome: string): Claim {
  const { request: _request, result: _result, ...rest } = c;
  return { ...rest, state: 'done', outcome, at: Date.now() };
}

export class Claims {
  readonly #o: ClaimsOptions;
  readonly #held = new Map<string, Held>();
  readonly #observed = new Map<string, Observed>();
  #timer: NodeJS.Timeout | undefined;
  #watch: { stop(): void } | undefined;
  #ticking = false;
  #stopped = false;

  constructor(o: ClaimsOptions) {
    this.#o = o;
  }

  get held(): number {
    return this.#held.size;
  }

  async start(): Promise<void> {
    const w = await this.#o.kv.watch({ key: '>' });
    this.#watch = w;
    void (async () => {
      for await (const e of w) this.#observe(e);
    })().catch((err: unknown) => {
      if (!this.#stopped) this.#o.log.error({ err: (err as Error).message }, 'claims watch ended');
    });
    this.#timer = setInterval(() => void this.#tick(), Math.max(100, Math.floor(this.#o.leaseMs / 3)));
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#watch?.stop();
  }

  #claim(request: NostrEvent, terms: PaymentTerms, attempt: number, state: ClaimState = 'claimed'): Claim {
    return { v: 1, state, worker: this.#o.worker, session: this.#o.session, attempt, request, terms, transferable: terms === 'after-verify', at: Date.now() };
  }

  #hold(id: string, claim: Claim, rev: number): Held {
    const h: Held = { claim, rev, wroteAt: performance.now(), lost: new AbortController(), chain: Promise.resolve() };
    this.#held.set(id, h);
    this.#observed.delete(id);
    return h;
  }

  /** Claims a job for this worker: create-if-absent. A claim we already hold (the same request from a second relay) counts as won. */
  async claim(request: NostrEvent, terms: PaymentTerms): Promise<ClaimOutcome> {
    if (this.#held.has(request.id)) return { won: true, attempt: this.#held.get(request.id)!.claim.attempt };
    const claim = this.#claim(request, terms, 1);
    try {
      const rev = await this.#o.kv.create(request.id, JSON.stringify(claim));
      this.#hold(request.id, claim, rev);
      return { won: true, attempt: 1 };
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
    const cur = await this.#o.kv.get(request.id);
    const c = cur && decode(cur);
    if (c && c.session === this.#o.session && cur) {
      this.#hold(request.id, c, cur.revision);
      return { won: true, attempt: c.attempt };
    }
    return { won: false, holder: c?.worker ?? 'unknown' };
  }

  /**
   * After a restart of this worker (same name, new session): takes back a job its previous
   * session held, at once — the name says it is ours. Anything else (taken over meanwhile,
   * already done) is reported, and the caller drops its local copy without publishing.
   */
  async reclaim(request: NostrEvent, terms: PaymentTerms): Promise<{ ok: true; claim: Claim } | { ok: false; why: string }> {
    const cur = await this.#o.kv.get(request.id);
    const c = cur && decode(cur);
    if (!cur || !c) {
      // Gone (the bucket's max age passed, or NATS lost it): claim it afresh.
      const r = await this.claim(request, terms);
      return r.won ? { ok: true, claim: this.#held.get(request.id)!.claim } : { ok: false, why: `claimed by worker ${r.holder}` };
    }
    if (c.worker !== this.#o.worker) return { ok: false, why: `taken over by worker ${c.worker}` };
    if (c.state === 'done') return { ok: false, why: `already ${c.outcome ?? 'done'}` };
    const next: Claim = { ...c, session: this.#o.session, at: Date.now() };
    try {
      const rev = await this.#o.kv.update(request.id, JSON.stringify(next), cur.revision);
      this.#hold(request.id, next, rev);
      return { ok: true, claim: next };
    } catch (err) {
      if (isCasConflict(err)) return { ok: false, why: 'taken over by another worker meanwhile' };
      throw err;
    }
  }

  /** Aborted when this worker loses the job's lease; undefined for a job it does not hold. */
  signal(id: string): AbortSignal | undefined {
    return this.#held.get(id)?.lost.signal;
  }

  #serial<T>(h: Held, fn: () => Promise<T>): Promise<T> {
    const p = h.chain.then(fn, fn);
    h.chain = p.catch(() => undefined);
    return p;
  }

  #lose(id: string, h: Held, why: string): void {
    if (this.#held.get(id) !== h) return;
    this.#held.delete(id);
    this.#o.log.warn({ jobId: id, worker: this.#o.worker, why }, 'lease lost: the job is withheld here');
    h.lost.abort(new LeaseLostError(why));
  }

  async #write(id: string, h: Held, next: Claim): Promise<string | undefined> {
    return this.#serial(h, async () => {
      if (this.#held.get(id) !== h) return 'the lease was lost';
      try {
        h.rev = await this.#o.kv.update(id, JSON.stringify(next), h.rev);
        h.claim = next;
        h.wroteAt = performance.now();
        return undefined;
      } catch (err) {
        if (isCasConflict(err)) {
          const cur = await this.#o.kv.get(id).catch(() => null);
          const c = cur && decode(cur);
          const why = c ? `worker ${c.worker} holds it now (attempt ${c.attempt})` : 'the claim changed';
          this.#lose(id, h, why);
          return why;
        }
        if (performance.now() - h.wroteAt > this.#o.leaseMs) {
          const why = `could not renew within the lease: ${(err as Error).message}`;
          this.#lose(id, h, why);
          return why;
        }
        return `claim write failed: ${(err as Error).message}`;
      }
    });
  }

  /**
   * The fence: the result goes into the claim by compare-and-set before anyone sees it.
   * Undefined when this worker may publish; otherwise why not (the lease is lost).
   */
  async fence(id: string, result: NostrEvent): Promise<string | undefined> {
    const h = this.#held.get(id);
    if (!h) return 'this worker does not hold the job';
    const small = JSON.stringify(result).length <= MAX_STORED_RESULT_BYTES;
    const why = await this.#write(id, h, { ...h.claim, state: 'delivered', ...(small ? { result } : {}), resultId: result.id, at: Date.now() });
    // A write that failed without losing the lease (NATS unreachable) withholds the result too;
    // the job is failed locally and, once the lease runs out, re-run by a worker that can reach NATS.
    if (why && this.#held.get(id) === h) this.#lose(id, h, why);
    return why;
  }

  /** The job is finished here (result published, or refused/failed/expired/cancelled): the claim is closed and never re-offered. */
  async done(id: string, outcome: string): Promise<void> {
    const h = this.#held.get(id);
    if (!h) return;
    h.closing = outcome;
    const why = await this.#write(id, h, closed(h.claim, outcome));
    if (!why) this.#held.delete(id);
    else if (this.#held.get(id) === h) this.#o.log.warn({ jobId: id, why }, 'could not close the claim; will retry');
  }

  #observe(e: KvEntry): void {
    const c = decode(e);
    if (!c || c.state === 'done') {
      this.#observed.delete(e.key);
      return;
    }
    if (this.#held.has(e.key) && c.session === this.#o.session) return;
    const prev = this.#observed.get(e.key);
    if (prev?.rev === e.revision) return;
    this.#observed.set(e.key, { claim: c, rev: e.revision, since: performance.now() });
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    try {
      // Renew what we hold (claims still being worked on; a delivered one is closed right after
      // publishing), all at once: one after the other, a worker holding many queued jobs would
      // renew the last ones a round trip per claim late, and lose them under load.
      await Promise.all([...this.#held].map(([id, h]) => (h.closing ? this.done(id, h.closing) : h.claim.state === 'claimed' ? this.#write(id, h, { ...h.claim, at: Date.now() }) : undefined)));
      // Claims nobody rewrote for a whole lease, as seen from here.
      const now = performance.now();
      for (const [id, ob] of [...this.#observed]) {
        if (this.#stopped) return;
        if (now - ob.since < this.#o.leaseMs || this.#held.has(id)) continue;
        if (ob.claim.state === 'claimed') await this.#takeOver(id, ob);
        else if (ob.claim.state === 'delivered') await this.#republish(id, ob);
      }
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, 'claims tick failed');
    } finally {
      this.#ticking = false;
    }
  }

  async #takeOver(id: string, ob: Observed): Promise<void> {
    const from = ob.claim.worker;
    if (!ob.claim.transferable || !ob.claim.request) {
      if (!ob.warned) this.#o.log.warn({ jobId: id, worker: from, terms: ob.claim.terms }, 'a job of a silent worker waits for it: its payment state lives in that worker\'s wallet');
      ob.warned = true;
      return;
    }
    if (!this.#o.canTake()) return;
    const request = ob.claim.request;
    const next = this.#claim(request, ob.claim.terms, ob.claim.attempt + 1);
    let rev: number;
    try {
      rev = await this.#o.kv.update(id, JSON.stringify(next), ob.rev);
    } catch (err) {
      if (isCasConflict(err)) return; // someone else took it, or its holder came back: the watch shows which
      throw err;
    }
    this.#hold(id, next, rev);
    this.#o.log.info({ jobId: id, worker: this.#o.worker, from, attempt: next.attempt }, 'job taken over: its worker let the lease expire');
    await this.#o.onTakeover(request, next, from);
  }

  async #republish(id: string, ob: Observed): Promise<void> {
    if (!ob.claim.result || !ob.claim.request) {
      if (!ob.warned) this.#o.log.warn({ jobId: id, worker: ob.claim.worker, resultId: ob.claim.resultId }, 'a delivered result too large to keep in the claim waits for its worker to publish it');
      ob.warned = true;
      return;
    }
    if (!(await this.#o.onRepublish(ob.claim.request, ob.claim.result, ob.claim))) return;
    try {
      await this.#o.kv.update(id, JSON.stringify(closed(ob.claim, 'delivered')), ob.rev);
      this.#o.log.info({ jobId: id, worker: this.#o.worker, from: ob.claim.worker, resultId: ob.claim.result.id }, 'result republished for a worker that vanished after delivering');
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
  }
}
