// Test helpers: an in-process relay on an ephemeral port with a temp data dir, and a
// raw WebSocket client that waits on frames (never on time).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { startRelay, type RelayOptions, type RunningRelay } from '../src/server.ts';

export const TRANSPORTS = ['uws', 'ws'] as const;
export type TransportName = (typeof TRANSPORTS)[number];

export interface TestRelay extends RunningRelay {
  dataDir: string;
}

export async function startTestRelay(transport: TransportName, opts: Partial<RelayOptions> = {}): Promise<TestRelay> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-relay-test-'));
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir, transport, verifyWorkers: 1, ...opts }).catch((err: unknown) => {
    // A relay that did not start (e.g. its port is taken, as listen.test.ts tries) leaves no directory.
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  });
  return {
    ...relay,
    dataDir,
    close: async () => {
      await relay.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export type Frame = unknown[];

/** A raw NIP-01 client: every frame is kept in order; waits resolve on frames, with a safety timeout. */
export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  private waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  closed = false;
  closeCode: number | undefined;
  private readonly closedPromise: Promise<void>;

  constructor(url: string, headers?: Record<string, string>) {
    this.ws = new WebSocket(url, headers ? { headers } : {});
    this.ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString()) as Frame;
      } catch {
        frame = ['UNPARSABLE', data.toString()];
      }
      this.frames.push(frame);
      for (const w of [...this.waiters]) {
        if (w.pred(frame)) {
          clearTimeout(w.timer);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(frame);
        }
      }
    });
    this.ws.on('error', () => {});
    this.closedPromise = new Promise((r) =>
      this.ws.on('close', (code) => {
        this.closed = true;
        this.closeCode = code;
        for (const w of this.waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`connection closed (code ${code}) while waiting`));
        }
        this.waiters = [];
        r();
      }),
    );
  }

  static async connect(url: string, headers?: Record<string, string>): Promise<TestClient> {
    const c = new TestClient(url, headers);
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve());
      c.ws.once('error', reject);
    });
    return c;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Resolves with the first frame (already received or future) matching `pred` after index `from`. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs = 10_000, from = 0): Promise<Frame> {
    for (let i = from; i < this.frames.length; i++) if (pred(this.frames[i])) return Promise.resolve(this.frames[i]);
    if (this.closed) return Promise.reject(new Error('connection is closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`timed out waiting for a frame; got: ${JSON.stringify(this.frames.slice(-5)).slice(0, 500)}`));
      }, timeoutMs);
      this.waiters.push({ pred, resolve, reject, timer });
    });
  }

  /** Next frame matching `pred` that arrives after now. */
  next(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame> {
    return this.waitFor(pred, timeoutMs, this.frames.length);
  }

  async publish(event: NostrEvent): Promise<[boolean, string]> {
    const from = this.frames.length;
    this.send(['EVENT', event]);
    const f = await this.waitFor((f) => f[0] === 'OK' && f[1] === event.id, 10_000, from);
    return [f[2] as boolean, f[3] as string];
  }

  /** REQ and collect stored events up to EOSE (or the CLOSED reason). */
  async req(subId: string, ...filters: unknown[]): Promise<NostrEvent[]> {
    const from = this.frames.length;
    this.send(['REQ', subId, ...filters]);
    const end = await this.waitFor((f) => (f[0] === 'EOSE' || f[0] === 'CLOSED') && f[1] === subId, 10_000, from);
    if (end[0] === 'CLOSED') throw new Error(`CLOSED: ${String(end[2])}`);
    const idx = this.frames.indexOf(end);
    return this.frames.slice(from, idx).filter((f) => f[0] === 'EVENT' && f[1] === subId).map((f) => f[2] as NostrEvent);
  }

  /** One-shot query: REQ, collect to EOSE, then CLOSE the subscription. */
  async query(subId: string, ...filters: unknown[]): Promise<NostrEvent[]> {
    const evs = await this.req(subId, ...filters);
    this.send(['CLOSE', subId]);
    return evs;
  }

  async count(subId: string, ...filters: unknown[]): Promise<number> {
    const from = this.frames.length;
    this.send(['COUNT', subId, ...filters]);
    const f = await this.waitFor((f) => (f[0] === 'COUNT' || f[0] === 'CLOSED') && f[1] === subId, 10_000, from);
    if (f[0] === 'CLOSED') throw new Error(`CLOSED: ${String(f[2])}`);
    return (f[2] as { count: number }).count;
  }

  async close(): Promise<void> {
    if (!this.closed) this.ws.close();
    await this.closedPromise;
  }
}

export interface Signer {
  sk: Uint8Array;
  pubkey: string;
  sign(t: { kind: number; content?: string; tags?: string[][]; created_at?: number }): NostrEvent;
}

export function signer(): Signer {
  const sk = generateSecretKey();
  return {
    sk,
    pubkey: getPublicKey(sk),
    sign: (t) => {
      // A plain object with exactly the NIP-01 fields (nostr-tools adds a symbol marker).
      const e = finalizeEvent({ kind: t.kind, content: t.content ?? '', tags: t.tags ?? [], created_at: t.created_at ?? Math.floor(Date.now() / 1000) }, sk);
      return { id: e.id, pubkey: e.pubkey, created_at: e.created_at, kind: e.kind, tags: e.tags, content: e.content, sig: e.sig };
    },
  };
}

export const now = (): number => Math.floor(Date.now() / 1000);
