// The body of a store writer thread (see lmdb-writer-thread.ts, which starts it): opens the
// environment, and applies each batch it is sent in one synchronous write transaction.
// Bundled into a single plain-JavaScript module for the worker (no TypeScript loader, no
// loader thread in the worker), so it imports only what a writer needs.
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from 'pino';
import { openTables, type EnvOptions } from './lmdb-tables.ts';
import { applyJobs, createWriteCore, type FailedJob, type WriteJob, type WriteResult } from './lmdb-write.ts';

/** Messages from a writer thread. */
export type FromWriter =
  | { readonly type: 'ready' }
  /** The batch's transaction holds the write lock: the next batch may be sent to the other thread. */
  | { readonly type: 'began'; readonly batch: number }
  /** Committed and synced: durable. */
  | { readonly type: 'done'; readonly batch: number; readonly results: (WriteResult | FailedJob)[]; readonly lastSeq: number }
  /** The transaction itself failed (nothing of it is stored). */
  | { readonly type: 'failed'; readonly batch: number; readonly message: string; readonly stack?: string }
  | { readonly type: 'log'; readonly level: 'error' | 'warn' | 'info' | 'debug'; readonly obj: Record<string, unknown>; readonly msg: string }
  | { readonly type: 'closed' };

/** Messages to a writer thread. */
export type ToWriter = { readonly type: 'batch'; readonly batch: number; readonly jobs: readonly WriteJob[] } | { readonly type: 'close' };

export interface WriterData {
  readonly env: EnvOptions;
  readonly debug: boolean;
}

/**
 * LMDB transaction flags for the writer threads: abortable, and MDB_NOSYNC, which with
 * lmdb-js's overlapping sync means "give the write lock up, then sync" — the commit still
 * returns only once the transaction is on disk.
 */
const TXN_FLAGS = 0x10003;

/** A writer thread's body (the bundled module lmdb-writer-thread.ts starts calls it). */
export function runWriterThread(): void {
  if (!parentPort) throw new Error('runWriterThread must run in a worker thread');
  const port = parentPort;
  const { env, debug } = workerData as WriterData;
  const send = (msg: FromWriter): void => port.postMessage(msg);
  const errObj = (err: unknown): Record<string, unknown> => (err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) });
  // Log records go to the relay's logger on the main thread.
  const logger = {
    error: (obj: Record<string, unknown>, msg: string) => send({ type: 'log', level: 'error', obj: { ...obj, ...(obj.err ? { err: errObj(obj.err) } : {}) }, msg }),
    warn: (obj: Record<string, unknown>, msg: string) => send({ type: 'log', level: 'warn', obj, msg }),
    info: (obj: Record<string, unknown>, msg: string) => send({ type: 'log', level: 'info', obj, msg }),
    debug: (obj: Record<string, unknown>, msg: string) => {
      if (debug) send({ type: 'log', level: 'debug', obj, msg });
    },
  } as unknown as Logger;
  const tables = openTables(env);
  const core = createWriteCore(tables);
  port.on('message', (msg: ToWriter) => {
    if (msg.type === 'batch') {
      let results: (WriteResult | FailedJob)[] = [];
      let lastSeq = 0;
      try {
        tables.root.transactionSync(() => {
          send({ type: 'began', batch: msg.batch });
          // (The other writer thread may have committed since: withSeq re-reads the next seq.)
          const a0 = performance.now();
          results = applyJobs(tables, core, msg.jobs, logger);
          lastSeq = core.lastSeq();
          if (debug) logger.debug({ jobs: msg.jobs.length, applyMs: performance.now() - a0 }, 'write batch applied');
        }, TXN_FLAGS as never);
      } catch (err) {
        send({ type: 'failed', batch: msg.batch, message: err instanceof Error ? err.message : String(err), ...(err instanceof Error && err.stack ? { stack: err.stack } : {}) });
        return;
      }
      send({ type: 'done', batch: msg.batch, results, lastSeq });
    } else if (msg.type === 'close') {
      void tables.root.close().then(() => send({ type: 'closed' }));
    }
  });
  send({ type: 'ready' });
}
