// The store's writer off the relay's event loop (strfry's shape: one LMDB writer beside
// the threads that take connections). Every put's read-modify-write and LMDB's own work
// — B-tree descents, copy-on-write of pages, the commit — leave the relay's event loop,
// which keeps parsing, verifying and answering while a batch is applied and flushed.
// Reads stay where they are: the relay's thread opens the same environment (lmdb-js
// shares it between threads) and moves its snapshot forward when told of a commit.
//
// Two writer threads take turns, so applying one batch overlaps syncing the previous one:
// LMDB admits one write transaction at a time, and with overlapping sync a commit gives the
// write lock up before it syncs. The next batch is sent only once the previous one holds
// the lock, so transactions commit in the order their jobs were submitted.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { build, stop as stopEsbuild } from 'esbuild';
import type { Logger } from 'pino';
import type { EnvOptions } from './lmdb-tables.ts';
import { isFailedJob, MAX_BATCH_EVENTS, sizeOfJob, type BatchWriter, type WriteJob, type WriteResult } from './lmdb-write.ts';
import type { FromWriter, ToWriter, WriterData } from './lmdb-writer-body.ts';

export interface ThreadWriter extends BatchWriter {
  /** Resolves once every thread has opened the environment (rejects if one could not). */
  readonly ready: Promise<void>;
  /** Finishes every queued job, then stops the threads. Idempotent. */
  close(): Promise<void>;
}

export interface ThreadWriterOptions {
  readonly env: EnvOptions;
  readonly logger?: Logger;
  /** Writer threads taking turns (1 or 2). Default 2. */
  readonly threads?: number;
  /** After each durable commit, with the committed watermark. */
  readonly onCommit: (lastSeq: number) => void;
  /** A thread stopped unexpectedly (every pending job has been rejected). */
  readonly onDeath?: (err: Error) => void;
  /** The threads' module, from `writerModule()`. */
  readonly module: URL;
}

let writerModuleP: Promise<URL> | undefined;
/**
 * The writer threads' code: lmdb-writer-body.ts and what it imports, bundled once per process
 * by esbuild (tsx's own transpiler) into one plain ES module, handed to the workers as a data:
 * URL, with `lmdb` imported from its absolute location. Worker threads do not inherit the
 * TypeScript loader `bazaar` registers; registering tsx in each worker instead cost ≈25–35 MiB
 * of RSS (a loader thread and the transpiler in every worker).
 */
export function writerModule(): Promise<URL> {
  writerModuleP ??= (async () => {
    let code: string;
    try {
      const result = await build({
        stdin: { contents: "import { runWriterThread } from './lmdb-writer-body.ts';\nrunWriterThread();\n", resolveDir: fileURLToPath(new URL('.', import.meta.url)), sourcefile: 'lmdb-writer-entry.ts', loader: 'ts' },
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        external: ['lmdb'],
        write: false,
        logLevel: 'silent',
      });
      code = result.outputFiles[0].text;
    } finally {
      // Nothing else here asks esbuild for work: end its service process (≈15 MiB) now.
      // (The async API's child is reaped by this event loop; buildSync's worker thread would leave a zombie.)
      await stopEsbuild();
    }
    const lmdbUrl = import.meta.resolve('lmdb');
    let imports = 0;
    code = code.replace(/(from\s*)"lmdb"/g, (_m, from: string) => {
      imports++;
      return `${from}${JSON.stringify(lmdbUrl)}`;
    });
    if (imports === 0) throw new Error('lmdb writer bundle does not import lmdb where expected');
    return new URL(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
  })();
  return writerModuleP;
}

interface Queued {
  readonly job: WriteJob;
  resolve(result: WriteResult): void;
  reject(err: Error): void;
}

interface Slot {
  readonly worker: Worker;
  /** The batch this thread is working on. */
  busy: { readonly id: number; readonly jobs: Queued[]; began: boolean; readonly started: number } | undefined;
}

/** Starts the writer threads for the environment at `opts.env.path`. */
export function startWriterThread(opts: ThreadWriterOptions): ThreadWriter {
  const log = opts.logger;
  const data: WriterData = { env: opts.env, debug: log?.isLevelEnabled('debug') ?? false };
  const queue: Queued[] = [];
  let nextBatch = 0;
  let transactions = 0;
  let jobsWritten = 0;
  let dead: Error | undefined;
  let closing: Promise<void> | undefined;
  let closedCount = 0;
  let onAllClosed: (() => void) | undefined;
  let idleWaiters: (() => void)[] = [];
  let scheduled = false;
  let readyCount = 0;
  let markReady!: () => void;
  let failReady!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  ready.catch(() => undefined);
  const slots: Slot[] = [];

  const isIdle = (): boolean => queue.length === 0 && slots.every((s) => s.busy === undefined);
  const notifyIdle = (): void => {
    if (!isIdle()) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  /** Sends the next batch when a thread is free and every batch in flight holds (or held) the lock. */
  const dispatch = (): void => {
    scheduled = false;
    if (dead || queue.length === 0) return;
    if (slots.some((s) => s.busy !== undefined && !s.busy.began)) return;
    const slot = slots.find((s) => s.busy === undefined);
    if (!slot) return;
    let take = 0;
    for (let n = 0; take < queue.length && (take === 0 || n < MAX_BATCH_EVENTS); take++) n += sizeOfJob(queue[take].job);
    const jobs = queue.splice(0, take);
    const id = ++nextBatch;
    slot.busy = { id, jobs, began: false, started: performance.now() };
    const msg: ToWriter = { type: 'batch', batch: id, jobs: jobs.map((q) => q.job) };
    slot.worker.postMessage(msg);
  };
  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    // setImmediate: every job submitted in this event-loop turn joins the batch.
    setImmediate(dispatch);
  };

  const die = (err: Error): void => {
    if (dead) return;
    dead = err;
    failReady(err);
    for (const s of slots) {
      for (const q of s.busy?.jobs ?? []) q.reject(err);
      s.busy = undefined;
    }
    for (const q of queue.splice(0)) q.reject(err);
    notifyIdle();
    onAllClosed?.();
    if (!closing) {
      log?.error({ err }, 'lmdb writer thread stopped');
      opts.onDeath?.(err);
    }
    for (const s of slots) void s.worker.terminate();
  };

  const threads = Math.max(1, Math.min(2, opts.threads ?? 2));
  for (let i = 0; i < threads; i++) {
    // No inherited node flags (e.g. --import=tsx, or --input-type from `node -e`): the module is plain JavaScript.
    const worker = new Worker(opts.module, { workerData: data, execArgv: [] });
    const slot: Slot = { worker, busy: undefined };
    slots.push(slot);
    worker.on('message', (msg: FromWriter) => {
      switch (msg.type) {
        case 'ready':
          if (++readyCount === threads) markReady();
          return;
        case 'began':
          if (slot.busy?.id === msg.batch) slot.busy.began = true;
          dispatch();
          return;
        case 'done':
        case 'failed': {
          const b = slot.busy;
          if (!b || b.id !== msg.batch) return;
          slot.busy = undefined;
          if (msg.type === 'done') {
            transactions++;
            jobsWritten += b.jobs.length;
            opts.onCommit(msg.lastSeq);
            log?.debug({ jobs: b.jobs.length, durableMs: performance.now() - b.started }, 'write batch durable');
            b.jobs.forEach((q, i) => {
              const r = msg.results[i];
              if (isFailedJob(r)) {
                const err = new Error(r.failed);
                if (r.stack) err.stack = r.stack;
                q.reject(err);
              } else q.resolve(r);
            });
          } else {
            const err = new Error(msg.message);
            if (msg.stack) err.stack = msg.stack;
            log?.error({ err, jobs: b.jobs.length }, 'write transaction failed');
            for (const q of b.jobs) q.reject(err);
          }
          dispatch();
          notifyIdle();
          return;
        }
        case 'log':
          log?.[msg.level](msg.obj, msg.msg);
          return;
        case 'closed':
          if (++closedCount === threads) onAllClosed?.();
      }
    });
    worker.on('error', (err) => die(err));
    worker.on('exit', (code) => die(new Error(`lmdb writer thread exited (code ${code})`)));
  }

  const idle = (): Promise<void> => {
    if (isIdle() || dead) return Promise.resolve();
    return new Promise<void>((resolve) => idleWaiters.push(resolve));
  };
  return {
    ready,
    submit(job) {
      if (dead) return Promise.reject(dead);
      return new Promise<WriteResult>((resolve, reject) => {
        queue.push({ job, resolve, reject });
        schedule();
      });
    },
    idle,
    stats: () => ({ transactions, jobs: jobsWritten }),
    close() {
      closing ??= (async () => {
        if (!dead) {
          await idle();
          const closed = new Promise<void>((resolve) => (onAllClosed = resolve));
          for (const s of slots) s.worker.postMessage({ type: 'close' } satisfies ToWriter);
          await closed;
        }
        await Promise.all(slots.map((s) => s.worker.terminate()));
      })();
      return closing;
    },
  };
}
