// A ReadStore over a relay's WebSocket (REQ … EOSE): how the strfry plugin gives market rules
// read access to strfry's own database. Every query has a timeout and honours an AbortSignal.
import WebSocket from 'ws';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { ReadStore } from './policy.ts';

export interface RelayReadStoreOptions {
  readonly url: string;
  /** Per-query timeout (connect + EOSE), ms. */
  readonly timeoutMs?: number;
}

/** Opens one short-lived connection per query: simple, and never leaves a socket behind. */
export class RelayReadStore implements ReadStore {
  private readonly url: string;
  private readonly timeoutMs: number;
  private seq = 0;

  constructor(opts: RelayReadStoreOptions) {
    this.url = opts.url;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  query(filters: Filter[], opts: { signal?: AbortSignal } = {}): Promise<NostrEvent[]> {
    if (opts.signal?.aborted) return Promise.reject(new Error('query aborted'));
    return new Promise<NostrEvent[]>((resolve, reject) => {
      const subId = `policy-${++this.seq}`;
      const events: NostrEvent[] = [];
      const ws = new WebSocket(this.url);
      // Attached first: terminating a socket that is still connecting emits 'error'.
      ws.on('error', (err) => finish(err));
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(['CLOSE', subId]));
        ws.terminate();
        if (err) reject(err);
        else resolve(events);
      };
      const onAbort = () => finish(new Error('query aborted'));
      const timer = setTimeout(() => finish(new Error(`relay query timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      ws.on('open', () => ws.send(JSON.stringify(['REQ', subId, ...filters])));
      ws.on('message', (data) => {
        let msg: unknown;
        try {
          msg = JSON.parse(String(data));
        } catch {
          return;
        }
        if (!Array.isArray(msg) || msg[1] !== subId) return;
        if (msg[0] === 'EVENT' && typeof msg[2] === 'object' && msg[2] !== null) events.push(msg[2] as NostrEvent);
        else if (msg[0] === 'EOSE') finish();
        else if (msg[0] === 'CLOSED') finish(new Error(`relay closed the query: ${String(msg[2] ?? '')}`));
      });
      ws.on('close', () => finish(new Error('relay connection closed before EOSE')));
    });
  }
}

/** For plugins run without a relay to read from: history-based rules see an empty store. */
export const emptyStore: ReadStore = { query: async () => [] };
