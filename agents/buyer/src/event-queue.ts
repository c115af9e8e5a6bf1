// Events of one job arrive on a relay subscription callback; the job is driven by one loop that
// takes them in order, so a feedback and a result are never handled concurrently.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';

export class EventQueue {
  readonly #items: NostrEvent[] = [];
  readonly #seen = new Set<string>();
  #wake: (() => void) | undefined;

  push(e: NostrEvent): void {
    if (this.#seen.has(e.id)) return;
    this.#seen.add(e.id);
    this.#items.push(e);
    this.#wake?.();
  }

  /** The next event, or undefined when `until` (unix ms) passes or `signal` aborts first. */
  async next(until: number, signal?: AbortSignal): Promise<NostrEvent | undefined> {
    for (;;) {
      const e = this.#items.shift();
      if (e) return e;
      if (signal?.aborted || Date.now() >= until) return undefined;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.#wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, until - Date.now()));
        signal?.addEventListener('abort', done, { once: true });
        this.#wake = done;
      });
    }
  }
}
