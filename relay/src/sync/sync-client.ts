// NIP-77 from the initiating side: reconcile a local store with a remote relay over one
// WebSocket, then download what we lack (REQ by ids, each event through the relay's ingest
// pipeline: signature, policies, replaceable and deletion rules) and, when asked, upload what
// the remote lacks (EVENT, counting its OKs). Used by `bazaar relay sync` and by cluster nodes
// catching up from a peer. Like `strfry sync`, the transfer runs while reconciliation goes on.
import type { Logger } from 'pino';
import WebSocket from 'ws';
import type { Filter } from '@bazaar/dvm-kinds/nostr';
import type { EventStore } from '../store/event-store.ts';
import { Negentropy, NegentropyProtocolError } from './negentropy.ts';
import { NegentropyStorageBuilder, type NegentropyStorage } from './negentropy-storage.ts';

export type SyncDirection = 'down' | 'up' | 'both';

/** The answer of the local ingest pipeline for one downloaded event (relay.addEvent's). */
export interface IngestResult {
  readonly ok: boolean;
  readonly message: string;
}

export interface SyncOptions {
  /** The remote relay, ws:// or wss://. */
  readonly url: string;
  /** The local side: its items for the filter, and the events to upload. */
  readonly store: EventStore;
  /** Stores one downloaded event locally (relay.addEvent with source 'sync'). */
  readonly ingest: (event: unknown) => Promise<IngestResult>;
  /** The events to reconcile: one filter (NIP-77), or an array whose union is reconciled (strfry's extension). Default {}. */
  readonly filter?: Filter | readonly Filter[];
  /** down (default): fetch what the remote has and we lack; up: send what we have and it lacks; both. */
  readonly direction?: SyncDirection;
  /** Largest negentropy message we send, bytes before hex (0 = none, else ≥ 4096). Default 60 000, as strfry sync. */
  readonly frameSizeLimit?: number;
  /** Give up when the remote sends nothing for this long while we wait on it. Default 30 000 ms. */
  readonly idleTimeoutMs?: number;
  /** Ids per download REQ. Default 100. */
  readonly batchSize?: number;
  /** Download REQs in flight. Default 4. */
  readonly parallelRequests?: number;
  /** Uploaded events awaiting their OK. Default 100. */
  readonly uploadWindow?: number;
  /** Most local events reconciled at once; more fail the sync (narrow the filter). Default 10 000 000. */
  readonly maxLocalEvents?: number;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Called as the sync moves on (at most every `progressMs`, and once at the end). */
  readonly onProgress?: (p: SyncProgress) => void;
  readonly progressMs?: number;
}

export interface SyncProgress {
  readonly phase: 'scanning' | 'connecting' | 'reconciling' | 'transferring' | 'done';
  /** Events matching the filter locally. */
  readonly localEvents: number;
  readonly rounds: number;
  /** Ids we have and the remote lacks / the remote has and we lack, found so far. */
  readonly have: number;
  readonly need: number;
  /** Downloaded events and what our pipeline said: stored, already had (duplicate), refused. */
  readonly downloaded: number;
  readonly stored: number;
  readonly duplicate: number;
  readonly rejected: number;
  /** Needed ids the remote did not send when asked (deleted or expired meanwhile, or refused). */
  readonly missing: number;
  /** Uploaded events and the remote's OKs. */
  readonly uploaded: number;
  readonly accepted: number;
  readonly refused: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly elapsedMs: number;
}

export type SyncSummary = SyncProgress;

/** Why a sync failed: the remote's NEG-ERR or NOTICE, a protocol error, a timeout, a closed socket. */
export class SyncError extends Error {
  override name = 'SyncError';
}

const SUB_ID = 'bazaar-sync';

/** Collects the local store's items for the filters (their union) in slices, yielding the event loop between them. */
export async function localItems(store: EventStore, filters: readonly Filter[], maxItems: number, signal?: AbortSignal): Promise<NegentropyStorage> {
  const builder = new NegentropyStorageBuilder();
  for (const filter of filters) {
    const cursor = store.openIdScan(filter, builder, { maxItems: maxItems - builder.size });
    while (!cursor.step(performance.now() + 20)) {
      signal?.throwIfAborted();
      await new Promise((r) => setImmediate(r));
    }
    if (cursor.result() < 0) throw new SyncError(`the filter matches more than ${maxItems} local events; narrow it (since/until) and sync in parts`);
  }
  const sealer = builder.sealer();
  while (!sealer.step(performance.now() + 20)) {
    signal?.throwIfAborted();
    await new Promise((r) => setImmediate(r));
  }
  return sealer.result();
}

export async function syncWithRelay(opts: SyncOptions): Promise<SyncSummary> {
  if (!/^wss?:\/\/./.test(opts.url)) throw new SyncError(`the relay URL must start with ws:// or wss:// (got ${JSON.stringify(opts.url)})`);
  const direction = opts.direction ?? 'down';
  const up = direction !== 'down';
  const down = direction !== 'up';
  const filter = opts.filter ?? {};
  const filters: readonly Filter[] = Array.isArray(filter) ? filter : [filter as Filter];
  if (filters.length === 0) throw new SyncError('at least one filter is needed');
  const log = opts.logger?.child({ syncWith: opts.url });
  const started = performance.now();
  const batchSize = opts.batchSize ?? 100;
  const parallel = opts.parallelRequests ?? 4;
  const window = opts.uploadWindow ?? 100;
  const idleMs = opts.idleTimeoutMs ?? 30_000;
  const progressMs = opts.progressMs ?? 250;

  const p = {
    phase: 'scanning' as SyncProgress['phase'], localEvents: 0, rounds: 0, have: 0, need: 0, downloaded: 0, stored: 0, duplicate: 0,
    rejected: 0, missing: 0, uploaded: 0, accepted: 0, refused: 0, bytesIn: 0, bytesOut: 0, elapsedMs: 0,
  };
  let lastProgress = 0;
  const progress = (force = false): void => {
    if (!opts.onProgress) return;
    const t = performance.now();
    if (!force && t - lastProgress < progressMs) return;
    lastProgress = t;
    opts.onProgress({ ...p, elapsedMs: Math.round(t - started) });
  };

  progress(true);
  const storage = await localItems(opts.store, filters, opts.maxLocalEvents ?? 10_000_000, opts.signal);
  p.localEvents = storage.size;
  const neg = new Negentropy(storage, opts.frameSizeLimit ?? 60_000);
  p.phase = 'connecting';
  progress(true);
  log?.info({ filter, localEvents: storage.size, direction }, 'sync: local set ready, connecting');

  const ws = new WebSocket(opts.url, { maxPayload: 256 * 1024 * 1024, perMessageDeflate: false });
  return await new Promise<SyncSummary>((resolve, reject) => {
    let finished = false;
    let reconciled = false;
    let sawNegMsg = false;
    const seenHave = new Set<string>();
    const seenNeed = new Set<string>();
    const needQueue: string[] = [];
    const haveQueue: string[] = [];
    /** Download REQs in flight: sub id → ids asked and the ones received. */
    const requests = new Map<string, { asked: Set<string>; got: number }>();
    let reqSeq = 0;
    let ingesting = 0;
    /** Uploads awaiting OK, by event id. */
    const awaitingOk = new Set<string>();
    let reading = false;
    let idleTimer: NodeJS.Timeout | undefined;

    const fail = (err: Error): void => {
      if (finished) return;
      finished = true;
      cleanup();
      reject(err);
    };
    const succeed = (): void => {
      if (finished) return;
      finished = true;
      p.phase = 'done';
      progress(true);
      cleanup();
      log?.info({ ...p, elapsedMs: Math.round(performance.now() - started) }, 'sync complete');
      resolve({ ...p, elapsedMs: Math.round(performance.now() - started) });
    };
    const cleanup = (): void => {
      clearTimeout(idleTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    };
    const onAbort = (): void => fail(new SyncError('sync aborted'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) return onAbort();

    const armIdle = (): void => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => fail(new SyncError(`no answer from ${opts.url} for ${idleMs / 1000} s`)), idleMs);
    };
    const send = (msg: string): void => {
      p.bytesOut += Buffer.byteLength(msg);
      ws.send(msg);
    };

    const maybeDone = (): void => {
      if (reconciled && needQueue.length === 0 && requests.size === 0 && ingesting === 0 && haveQueue.length === 0 && awaitingOk.size === 0 && !reading) succeed();
    };

    const pump = (): void => {
      if (finished) return;
      // Download: a few REQs of ids at a time, and no more while our pipeline is behind.
      while (down && needQueue.length > 0 && requests.size < parallel && ingesting < parallel * batchSize) {
        const ids = needQueue.splice(0, batchSize);
        const subId = `d${++reqSeq}`;
        requests.set(subId, { asked: new Set(ids), got: 0 });
        send(JSON.stringify(['REQ', subId, { ids, limit: ids.length }]));
      }
      // Upload: read a batch of what the remote lacks from our store, send it, wait for OKs.
      if (up && !reading && haveQueue.length > 0 && awaitingOk.size <= window / 2) {
        const ids = haveQueue.splice(0, window - awaitingOk.size);
        reading = true;
        opts.store.query([{ ids, limit: ids.length }], { now: Math.floor(Date.now() / 1000) }).then(
          (rows) => {
            reading = false;
            if (finished) return;
            for (const row of rows) {
              // Stored JSON starts with {"id":"<64 hex>" (store contract).
              awaitingOk.add(row.slice(7, 71));
              p.uploaded++;
              send(`["EVENT",${row}]`);
            }
            // Ids not found were removed locally since the scan (replaced, deleted, expired).
            pump();
            maybeDone();
          },
          (err: unknown) => fail(new SyncError(`reading local events failed: ${(err as Error).message}`)),
        );
      }
      progress();
      maybeDone();
    };

    const onNegMsg = (hex: unknown): void => {
      if (typeof hex !== 'string') return fail(new SyncError('NEG-MSG without a hex message'));
      sawNegMsg = true;
      p.phase = 'reconciling';
      p.rounds++;
      let r;
      try {
        r = neg.reconcile(Buffer.from(hex, 'hex'));
      } catch (err) {
        return fail(new SyncError(`the relay's negentropy message does not parse: ${err instanceof NegentropyProtocolError ? err.message : String(err)}`));
      }
      // With frame limits an id can come back in a later round: keep each once.
      for (const id of r.need) if (!seenNeed.has(id)) { seenNeed.add(id); p.need++; if (down) needQueue.push(id); }
      for (const id of r.have) if (!seenHave.has(id)) { seenHave.add(id); p.have++; if (up) haveQueue.push(id); }
      if (r.output === null) {
        reconciled = true;
        p.phase = 'transferring';
        send(JSON.stringify(['NEG-CLOSE', SUB_ID]));
        log?.info({ rounds: p.rounds, have: p.have, need: p.need }, 'sync: reconciliation complete');
      } else send(`["NEG-MSG","${SUB_ID}","${r.output.toString('hex')}"]`);
      pump();
    };

    const onEvent = (subId: unknown, event: unknown): void => {
      const req = typeof subId === 'string' ? requests.get(subId) : undefined;
      const id = typeof event === 'object' && event !== null ? (event as { id?: unknown }).id : undefined;
      if (!req || typeof id !== 'string' || !req.asked.has(id)) return; // not something we asked for
      req.asked.delete(id);
      req.got++;
      p.downloaded++;
      ingesting++;
      opts.ingest(event).then(
        (res) => {
          ingesting--;
          if (res.ok && res.message === '') p.stored++;
          else if (res.ok) p.duplicate++;
          else {
            p.rejected++;
            log?.debug({ id, reason: res.message }, 'sync: downloaded event refused');
          }
          pump();
        },
        (err: unknown) => fail(new SyncError(`storing a downloaded event failed: ${(err as Error).message}`)),
      );
    };

    const onEndOfRequest = (subId: unknown, closedReason?: unknown): void => {
      const req = typeof subId === 'string' ? requests.get(subId) : undefined;
      if (!req) return;
      requests.delete(subId as string);
      if (closedReason === undefined) send(JSON.stringify(['CLOSE', subId]));
      else log?.warn({ subId, reason: closedReason }, 'sync: the relay closed a download request');
      p.missing += req.asked.size;
      pump();
    };

    const onOk = (id: unknown, ok: unknown, message: unknown): void => {
      if (typeof id !== 'string' || !awaitingOk.delete(id)) return;
      if (ok === true) p.accepted++;
      else {
        p.refused++;
        log?.debug({ id, reason: message }, 'sync: uploaded event refused by the relay');
      }
      pump();
    };

    ws.on('open', () => {
      armIdle();
      send(JSON.stringify(['NEG-OPEN', SUB_ID, filter, neg.initiate().toString('hex')]));
      progress(true);
    });
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (finished) return;
      armIdle();
      const text = isBinary ? '' : data.toString();
      p.bytesIn += Buffer.isBuffer(data) ? data.length : Buffer.byteLength(text);
      let msg: unknown;
      try {
        msg = JSON.parse(text);
      } catch {
        return;
      }
      if (!Array.isArray(msg)) return;
      switch (msg[0]) {
        case 'NEG-MSG':
          if (msg[1] === SUB_ID) onNegMsg(msg[2]);
          return;
        case 'NEG-ERR':
          if (msg[1] === SUB_ID) fail(new SyncError(`the relay refused the sync: ${String(msg[2])}`));
          return;
        case 'EVENT':
          onEvent(msg[1], msg[2]);
          return;
        case 'EOSE':
          onEndOfRequest(msg[1]);
          return;
        case 'CLOSED':
          onEndOfRequest(msg[1], msg[2]);
          return;
        case 'OK':
          onOk(msg[1], msg[2], msg[3]);
          return;
        case 'NOTICE':
          // A NOTICE before any NEG-MSG is how relays without NIP-77 answer NEG-OPEN.
          if (!sawNegMsg) fail(new SyncError(`the relay does not speak NIP-77 (it answered NEG-OPEN with NOTICE ${JSON.stringify(msg[1])})`));
          else log?.warn({ notice: msg[1] }, 'sync: NOTICE from the relay');
          return;
        default:
      }
    });
    ws.on('error', (err: Error) => fail(new SyncError(`connection to ${opts.url} failed: ${err.message}`)));
    ws.on('close', (code: number) => fail(new SyncError(`the relay closed the connection (code ${code}) before the sync finished`)));
  });
}
