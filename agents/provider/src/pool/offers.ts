// Offers: job requests a pool worker has seen but not claimed yet. Every worker sees every
// request; a worker claims one only while it has a free slot (capacity minus jobs running,
// queued, and claims in flight or won but not yet decided), oldest first. So a burst is
// spread over the workers as their slots free up — the pool's capacity is the sum — instead
// of going to whichever worker's claims reach NATS first. A request no worker took within
// `maxWaitMs` (every worker full) is claimed anyway, then queued or refused as at capacity by
// the worker that won it, so a customer always gets an answer.
import type { JobRecord } from '../store.ts';

interface Offer {
  readonly rec: JobRecord;
  readonly resolve: (won: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

export interface OffersOptions {
  /** Slots free now, not counting this desk's claims in flight. */
  readonly free: () => number;
  /** The claim itself (create-if-absent); false when another worker has the job. */
  readonly claim: (rec: JobRecord) => Promise<boolean>;
  readonly maxWaitMs: number;
}

export class Offers {
  readonly #o: OffersOptions;
  readonly #offers = new Map<string, Offer>();
  /** Claims in flight, or won and not yet decided (still `received`). */
  readonly #pending = new Set<string>();
  #stopped = false;

  constructor(o: OffersOptions) {
    this.#o = o;
  }

  /** Slots free once this desk's claims are counted. */
  free(): number {
    return this.#o.free() - this.#pending.size;
  }

  /** Resolves true when this worker claimed the job, false when another worker has it (or it was offered already). */
  offer(rec: JobRecord): Promise<boolean> {
    if (this.#stopped || this.#offers.has(rec.id) || this.#pending.has(rec.id)) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#take(rec.id), this.#o.maxWaitMs);
      this.#offers.set(rec.id, { rec, resolve, timer });
      this.pump();
    });
  }

  /** Claims the oldest offers while slots are free; call when a slot may have freed. */
  pump(): void {
    for (const id of this.#offers.keys()) {
      if (this.free() <= 0) return;
      this.#take(id);
    }
  }

  /** The job left `received` here (queued, refused, …): its slot is counted by the executor now. */
  decided(id: string): void {
    if (this.#pending.delete(id)) this.pump();
  }

  #take(id: string): void {
    const offer = this.#offers.get(id);
    if (!offer) return;
    this.#offers.delete(id);
    clearTimeout(offer.timer);
    this.#pending.add(id);
    this.#o.claim(offer.rec).then(
      (won) => {
        if (!won) this.decided(id);
        offer.resolve(won);
      },
      () => {
        this.decided(id);
        offer.resolve(false);
      },
    );
  }

  stop(): void {
    this.#stopped = true;
    for (const o of this.#offers.values()) {
      clearTimeout(o.timer);
      o.resolve(false);
    }
    this.#offers.clear();
  }
}
