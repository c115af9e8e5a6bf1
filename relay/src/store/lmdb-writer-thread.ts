// The store's writer on a thread of its own (strfry's shape: one LMDB writer beside the
// threads that take connections). Every put's read-modify-write and LMDB's own work —
// B-tree descents, copy-on-write of pages, the commit — leave the relay's event loop,
// which keeps parsing, verifying and answering while a batch is applied and flushed.
// Reads stay where they are: the relay's thread opens the same environment (lmdb-js
// shares it between threads) and moves its snapshot forward when told of a commit.
import { parentPort, Worker, workerData } from 'node:worker_threads';
import type { Logger } from 'pino';
import { openTables, type EnvOptions } from './lmdb-tables.ts';
import { createBatchWriter, createWriteCore, type BatchWriter, type WriteJob, type WriteResult } from './lmdb-write.ts';

/** Messages from the writer thread. */
type FromWriter =
  | { readonly type: 'ready'; readonly lastSeq: number }
  /** After each commit, before its flush: the committed watermark. */
  | { readonly type: 'committed'; readonly lastSeq: number; readonly transactions: number; readonly jobs: number }
  | { readonly type: 'done'; readonly id: number; readonly result: WriteResult }
  | { readonly type: 'failed'; readonly id: number; readonly message: string; readonly stack?: string }
  | { readonly type: 'log'; readonly level: 'error' | 'warn' | 'info' | 'debug'; readonly obj: Record<string, unknown>; readonly msg: string }
  | { readonly type: 'closed' };

/** Messages to the writer thread: the jobs submitted in one event-loop turn travel together, so they share a transaction. */
type ToWriter = { readonly type: 'jobs'; readonly jobs: readonly { readonly id: number; readonly job: WriteJob }[] } | { readonly type: 'close' };

interface WriterData {
  readonly env: EnvOptions;
  readonly debug: boolean;
}

export interface ThreadWriter extends BatchWriter {
  /** Resolves once the thread has opened the environment (rejects if it could not). */
  readonly ready: Promise<void>;
  /** Finishes every queued job, then stops the thread. Idempotent. */
  close(): Promise<void>;
}

export interface ThreadWriterOptions {
  readonly env: EnvOptions;
  readonly logger?: Logger;
  /** After each commit (before its flush), with the committed watermark. */
  readonly onCommit: (lastSeq: number) => void;
  /** The thread stopped unexpectedly (its pending jobs have been rejected). */
  readonly onDeath?: (err: Error) => void;
}

// A plain .mjs entry: worker threads do not inherit a loader registered with tsx's
// register() API (as `bazaar` does), so the entry registers one before loading this file.
const WORKER_URL = new URL('./lmdb-writer-worker.mjs', import.meta.url);

/** Starts the writer thread for the environment at `opts.env.path`. */
export function startWriterThread(opts: ThreadWriterOptions): ThreadWriter {
  const log = opts.logger;
  const data: WriterData = { env: opts.env, debug: log?.isLevelEnabled('debug') ?? false };
  // No inherited node flags (e.g. --input-type from `node -e`, which a file entry refuses):
  // the entry registers the TypeScript loader it needs itself.
  const worker = new Worker(WORKER_URL, { workerData: data, execArgv: [] });
  const pending = new Map<number, { resolve(r: WriteResult): void; reject(e: Error): void }>();
  let nextId = 0;
  let stats = { transactions: 0, jobs: 0 };
  let dead: Error | undefined;
  let closing: Promise<void> | undefined;
  let onClosed: (() => void) | undefined;
  let idleWaiters: (() => void)[] = [];
  let markReady!: () => void;
  let failReady!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  ready.catch(() => undefined);

  const notifyIdle = (): void => {
    if (pending.size > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  worker.on('message', (msg: FromWriter) => {
    switch (msg.type) {
      case 'ready':
        markReady();
        return;
      case 'committed':
        stats = { transactions: msg.transactions, jobs: msg.jobs };
        opts.onCommit(msg.lastSeq);
        return;
      case 'done':
      case 'failed': {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (msg.type === 'done') p.resolve(msg.result);
        else {
          const err = new Error(msg.message);
          if (msg.stack) err.stack = msg.stack;
          p.reject(err);
        }
        notifyIdle();
        return;
      }
      case 'log':
        log?.[msg.level](msg.obj, msg.msg);
        return;
      case 'closed':
        onClosed?.();
    }
  });
  const die = (err: Error): void => {
    if (dead) return;
    dead = err;
    failReady(err);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    notifyIdle();
    onClosed?.();
    if (!closing) {
      log?.error({ err }, 'lmdb writer thread stopped');
      opts.onDeath?.(err);
    }
  };
  worker.on('error', (err) => die(err));
  worker.on('exit', (code) => die(new Error(`lmdb writer thread exited (code ${code})`)));

  const post = (msg: ToWriter): void => worker.postMessage(msg);
  let outbox: { id: number; job: WriteJob }[] = [];
  const flushOutbox = (): void => {
    const jobs = outbox;
    outbox = [];
    if (jobs.length > 0 && !dead) post({ type: 'jobs', jobs });
  };
  return {
    ready,
    submit(job) {
      if (dead) return Promise.reject(dead);
      const id = ++nextId;
      return new Promise<WriteResult>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (outbox.length === 0) setImmediate(flushOutbox);
        outbox.push({ id, job });
      });
    },
    idle() {
      if (pending.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    stats: () => stats,
    close() {
      closing ??= (async () => {
        if (!dead) {
          const closed = new Promise<void>((resolve) => (onClosed = resolve));
          flushOutbox();
          post({ type: 'close' });
          await closed;
        }
        await worker.terminate();
      })();
      return closing;
    },
  };
}

/** The writer thread's body (called by lmdb-writer-worker.mjs). */
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
  const writer: BatchWriter = createBatchWriter(tables, core, {
    logger,
    onCommit: (lastSeq) => send({ type: 'committed', lastSeq, ...writer.stats() }),
  });
  port.on('message', (msg: ToWriter) => {
    if (msg.type === 'jobs') {
      for (const { id, job } of msg.jobs) {
        writer.submit(job).then(
          (result) => send({ type: 'done', id, result }),
          (err: unknown) => send({ type: 'failed', id, message: err instanceof Error ? err.message : String(err), ...(err instanceof Error && err.stack ? { stack: err.stack } : {}) }),
        );
      }
    } else if (msg.type === 'close') {
      void writer.idle().then(async () => {
        await tables.root.close();
        send({ type: 'closed' });
      });
    }
  });
  send({ type: 'ready', lastSeq: core.lastSeq() });
}
