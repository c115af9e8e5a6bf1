// Token buckets keyed by a string (IP, pubkey), in bounded memory: the least recently seen key
// is forgotten first, and forgetting a key only ever refills its bucket (fail-open, never leaks).
import type { Clock } from '../clock.ts';

export interface BucketOptions {
  /** Sustained rate: tokens added per second. */
  readonly perSecond: number;
  /** Bucket size: how many events may arrive at once. */
  readonly burst: number;
  /** Most keys remembered at once. */
  readonly maxKeys?: number;
  readonly clock: Clock;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly maxKeys: number;
  private readonly opts: BucketOptions;

  constructor(opts: BucketOptions) {
    this.opts = opts;
    this.maxKeys = opts.maxKeys ?? 100_000;
  }

  /** Takes one token for `key`; false when the bucket is empty. */
  take(key: string): boolean {
    const now = this.opts.clock.now();
    let b = this.buckets.get(key);
    if (b) {
      this.buckets.delete(key); // re-insert below: Map order is recency order
      b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) / 1000) * this.opts.perSecond);
      b.at = now;
    } else {
      b = { tokens: this.opts.burst, at: now };
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}
