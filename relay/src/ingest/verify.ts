// NIP-01 event verification: shape, id (sha256 of the canonical serialisation)
// and BIP-340 Schnorr signature. This is the ingest hot path: the signature
// check uses the system libsecp256k1 through FFI when it is there (≈40 µs),
// else libsecp256k1 compiled to WASM (tiny-secp256k1, ≈210 µs), and can run on
// a small worker_threads pool while the cheap checks (shape, id) stay inline.
// See relay/README.md "Signature verification" for the measurements behind it.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { loadSchnorrBackend, type BackendName, type SchnorrBackend } from './verify-backend.mjs';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { eventShapeProblem } from './parse-event.ts';

/** Why an event passed or failed verification. */
export type VerifyOutcome =
  /** id and signature are correct. */
  | 'valid'
  /** A field is missing, of the wrong type, or not lowercase hex of the right length. */
  | 'malformed'
  /** `id` is not the sha256 of the canonical serialisation. */
  | 'bad-id'
  /** The signature does not verify (or the pubkey is not a valid x-only point). */
  | 'bad-sig';

/** The NIP-01 `OK false` message for a failed outcome. */
export function invalidReason(outcome: Exclude<VerifyOutcome, 'valid'>): string {
  switch (outcome) {
    case 'malformed':
      return 'invalid: malformed event';
    case 'bad-id':
      return 'invalid: event id does not match';
    case 'bad-sig':
      return 'invalid: signature verification failed';
  }
}

/** True when `value` has the NIP-01 event shape (see eventShapeProblem). Never throws. */
export function isWellFormedEvent(value: unknown): value is NostrEvent {
  return eventShapeProblem(value) === null;
}

/**
 * The NIP-01 event id: lowercase hex sha256 of the UTF-8 JSON
 * `[0,pubkey,created_at,kind,tags,content]`. JSON.stringify produces exactly
 * NIP-01's escapes (\n \" \\ \r \t \b \f), writes every other character
 * verbatim (including U+2028/U+2029 and non-ASCII), and writes the remaining
 * C0 controls as \u00XX, as every mainstream implementation does.
 */
export function computeEventId(event: Pick<NostrEvent, 'pubkey' | 'created_at' | 'kind' | 'tags' | 'content'>): string {
  return createHash('sha256')
    .update(JSON.stringify([0, event.pubkey, event.created_at, event.kind, event.tags, event.content]), 'utf8')
    .digest('hex');
}

/** The process-wide backend (BAZAAR_VERIFY_BACKEND=auto|native|wasm; default auto). */
const defaultBackend: SchnorrBackend = loadSchnorrBackend();

/** Which BIP-340 implementation verifyEventSync uses, and why native was skipped if it was. */
export const signatureBackend: { readonly name: BackendName; readonly fallbackReason?: string } = {
  name: defaultBackend.name,
  ...(defaultBackend.fallbackReason ? { fallbackReason: defaultBackend.fallbackReason } : {}),
};

/** Shape and id checks only (the cheap part). Returns the outcome so far: 'valid' means "go check the signature". */
function checkCheap(event: unknown): VerifyOutcome {
  if (!isWellFormedEvent(event)) return 'malformed';
  if (computeEventId(event) !== event.id) return 'bad-id';
  return 'valid';
}

/** Full verification on the calling thread, with the reason. Never throws. */
export function checkEventSync(event: unknown): VerifyOutcome {
  const cheap = checkCheap(event);
  if (cheap !== 'valid') return cheap;
  const e = event as NostrEvent;
  return defaultBackend.verify(Buffer.from(e.id, 'hex'), Buffer.from(e.pubkey, 'hex'), Buffer.from(e.sig, 'hex')) ? 'valid' : 'bad-sig';
}

/** Full verification on the calling thread, for low-volume paths. Never throws. */
export function verifyEventSync(event: unknown): boolean {
  return checkEventSync(event) === 'valid';
}

export interface VerifierOptions {
  /**
   * Worker threads for the signature check; 0 verifies inline on the calling
   * thread. Default (defaultVerifierWorkers): 0 with native libsecp256k1, whose
   * ≈40 µs check costs less than the hop to a worker; with the WASM backend
   * (≈210 µs) availableParallelism() - 1, at least 1, at most 4.
   */
  readonly workers?: number;
  /** Signatures per message to a worker (amortises postMessage). Default 256. */
  readonly maxBatch?: number;
  /** BIP-340 implementation: 'auto' (native libsecp256k1 if available, else WASM), 'native' (fail if absent) or 'wasm'. Default: BAZAAR_VERIFY_BACKEND or 'auto'. */
  readonly backend?: 'auto' | BackendName;
  readonly logger?: Logger;
}

export interface Verifier {
  /** Resolves to the outcome; rejects only after close(). */
  check(event: unknown): Promise<VerifyOutcome>;
  verify(event: unknown): Promise<boolean>;
  /** Outcomes in input order. */
  checkBatch(events: readonly unknown[]): Promise<VerifyOutcome[]>;
  /** Signatures queued or in a worker, for backpressure decisions. */
  readonly pending: number;
  readonly workers: number;
  /** The BIP-340 implementation in use. */
  readonly backend: BackendName;
  /** Finishes every queued check, then stops the workers. Idempotent. */
  close(): Promise<void>;
}

/** See VerifierOptions.workers; the measurements are in relay/README.md. */
export const defaultVerifierWorkers = (backend: BackendName = defaultBackend.name): number =>
  backend === 'native' ? 0 : Math.max(1, Math.min(4, availableParallelism() - 1));

/** Bytes per signature job in a batch: id (32) + pubkey (32) + sig (64). */
const JOB_BYTES = 128;

interface Batch {
  readonly seq: number;
  readonly count: number;
  /** The batch bytes, kept so a crashed worker's batches can be re-run inline. */
  readonly bytes: Uint8Array;
  readonly resolvers: ((ok: boolean) => void)[];
  /** Resolved once every resolver has been called. */
  readonly done: Promise<void>;
  readonly markDone: () => void;
}

interface PoolWorker {
  worker: Worker;
  inFlight: Map<number, Batch>;
  jobs: number;
  alive: boolean;
}

const WORKER_URL = new URL('./verify-worker.mjs', import.meta.url);

function verifyBytesInline(backend: SchnorrBackend, bytes: Uint8Array, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const o = i * JOB_BYTES;
    out[i] = backend.verify(bytes.subarray(o, o + 32), bytes.subarray(o + 32, o + 64), bytes.subarray(o + 64, o + 128)) ? 1 : 0;
  }
  return out;
}

/**
 * How long a worker asked to stop may take before it is terminated. Generous: a worker still
 * starting up (loading its modules under a busy machine can take seconds) answers only then.
 */
const WORKER_STOP_MS = 60_000;

/**
 * Asks a worker to exit on its own and waits for it. `worker.terminate()` is only the last
 * resort: terminating a thread that is inside (or just leaving) a koffi call into libsecp256k1
 * aborts the whole process ("FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw", a
 * napi_throw into a terminating environment — Koromix/koffi#190, nodejs/node-addon-api#902).
 * The worker handles the stop message between batches, never inside a native call.
 */
function stopWorker(worker: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => void worker.terminate(), WORKER_STOP_MS).unref();
    worker.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    worker.ref(); // the exit must be awaited even though idle workers are unref'd
    worker.postMessage({ stop: true });
  });
}

/**
 * A verifier for the relay's ingest path. Shape and id are checked inline
 * (cheap: a few µs); with workers, signatures are batched per event-loop turn
 * and posted to a pool of worker threads as one 128-bytes-per-event buffer per
 * batch; with none (the default for the native backend) they are checked inline.
 */
export function createVerifier(opts: VerifierOptions = {}): Verifier {
  if (opts.workers !== undefined && (!Number.isInteger(opts.workers) || opts.workers < 0)) throw new RangeError(`workers must be a non-negative integer, got ${opts.workers}`);
  const maxBatch = opts.maxBatch ?? 256;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  const log = opts.logger;
  // Resolved here, once, so a 'native' request fails now rather than in a worker,
  // and every worker is told the same concrete backend.
  const backend: SchnorrBackend = opts.backend === undefined ? defaultBackend : loadSchnorrBackend({ backend: opts.backend });
  const workerCount = opts.workers ?? defaultVerifierWorkers(backend.name);
  if (backend.fallbackReason) log?.warn({ reason: backend.fallbackReason }, 'native libsecp256k1 unavailable; verifying signatures with WASM');
  log?.info({ backend: backend.name, workers: workerCount }, 'signature verifier ready');

  let closed = false;
  let closing: Promise<void> | undefined;
  let pending = 0;
  let seq = 0;
  const pool: PoolWorker[] = [];

  // The batch being filled during this event-loop turn.
  const fill = new Uint8Array(maxBatch * JOB_BYTES);
  const fillBuf = Buffer.from(fill.buffer, fill.byteOffset, fill.byteLength);
  let fillCount = 0;
  let fillResolvers: ((ok: boolean) => void)[] = [];
  let flushScheduled: NodeJS.Immediate | undefined;

  const settle = (batch: Batch, results: Uint8Array): void => {
    pending -= batch.count;
    for (let i = 0; i < batch.count; i++) batch.resolvers[i](results[i] === 1);
    batch.markDone();
  };
  // A worker that keeps dying (e.g. its module cannot load) is not respawned
  // forever: after a few deaths the pool shrinks and checks run inline.
  let deaths = 0;
  const MAX_RESPAWNS = 3;

  // execArgv: [] — the worker is plain JavaScript and needs none of the parent's loaders (tsx, test
  // hooks), which would otherwise load in every worker and slow its start-up by seconds.
  const spawn = (): PoolWorker => {
    const pw: PoolWorker = { worker: new Worker(WORKER_URL, { workerData: { backend: backend.name }, execArgv: [] }), inFlight: new Map(), jobs: 0, alive: true };
    pw.worker.unref(); // referenced only while it holds work, so a forgotten verifier never keeps a process alive
    pw.worker.on('message', (msg: { seq: number; results: Uint8Array }) => {
      const batch = pw.inFlight.get(msg.seq);
      if (!batch) return;
      pw.inFlight.delete(msg.seq);
      pw.jobs -= batch.count;
      if (pw.inFlight.size === 0) pw.worker.unref();
      settle(batch, msg.results);
    });
    const onDeath = (err?: Error): void => {
      if (!pw.alive) return;
      pw.alive = false;
      const orphans = [...pw.inFlight.values()];
      pw.inFlight.clear();
      pw.jobs = 0;
      if (!closed || orphans.length) log?.error({ err, orphanBatches: orphans.length }, 'verify worker died; re-running its batches inline');
      // Never lose an event: the batches it held are verified here instead.
      for (const b of orphans) settle(b, verifyBytesInline(backend, b.bytes, b.count));
      const idx = pool.indexOf(pw);
      if (idx >= 0) {
        if (closed || ++deaths > MAX_RESPAWNS) pool.splice(idx, 1);
        else pool[idx] = spawn();
      }
    };
    pw.worker.on('error', (err) => onDeath(err));
    pw.worker.on('exit', (code) => onDeath(code === 0 ? undefined : new Error(`verify worker exited with code ${code}`)));
    return pw;
  };
  for (let i = 0; i < workerCount; i++) pool.push(spawn());

  const flush = (): void => {
    if (flushScheduled) {
      clearImmediate(flushScheduled);
      flushScheduled = undefined;
    }
    if (fillCount === 0) return;
    let markDone!: () => void;
    const done = new Promise<void>((res) => (markDone = res));
    const batch: Batch = { seq: ++seq, count: fillCount, bytes: fill.slice(0, fillCount * JOB_BYTES), resolvers: fillResolvers, done, markDone };
    fillCount = 0;
    fillResolvers = [];
    let target: PoolWorker | undefined;
    for (const pw of pool) if (pw.alive && (!target || pw.jobs < target.jobs)) target = pw;
    if (!target) {
      settle(batch, verifyBytesInline(backend, batch.bytes, batch.count));
      return;
    }
    target.inFlight.set(batch.seq, batch);
    target.jobs += batch.count;
    target.worker.ref();
    // The batch is copied (structured clone), not transferred, so it stays
    // available for inline re-verification should the worker die.
    target.worker.postMessage({ seq: batch.seq, count: batch.count, bytes: batch.bytes });
  };

  const enqueue = (e: NostrEvent): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const o = fillCount * JOB_BYTES;
      fillBuf.write(e.id, o, 32, 'hex');
      fillBuf.write(e.pubkey, o + 32, 32, 'hex');
      fillBuf.write(e.sig, o + 64, 64, 'hex');
      fillResolvers.push(resolve);
      fillCount++;
      pending++;
      if (fillCount === maxBatch) flush();
      else flushScheduled ??= setImmediate(flush);
    });

  const check = async (event: unknown): Promise<VerifyOutcome> => {
    if (closed) throw new Error('verifier is closed');
    const cheap = checkCheap(event);
    if (cheap !== 'valid') return cheap;
    const e = event as NostrEvent;
    if (pool.length === 0) return backend.verify(Buffer.from(e.id, 'hex'), Buffer.from(e.pubkey, 'hex'), Buffer.from(e.sig, 'hex')) ? 'valid' : 'bad-sig';
    return (await enqueue(e)) ? 'valid' : 'bad-sig';
  };

  return {
    check,
    verify: async (event) => (await check(event)) === 'valid',
    checkBatch: (events) => Promise.all(events.map(check)),
    get pending() {
      return pending;
    },
    workers: workerCount,
    backend: backend.name,
    close() {
      if (closing) return closing;
      closed = true;
      flush();
      closing = (async () => {
        // Let every in-flight batch finish (or be re-run inline if its worker dies).
        await Promise.all(pool.flatMap((pw) => [...pw.inFlight.values()].map((b) => b.done)));
        await Promise.all(pool.map((pw) => stopWorker(pw.worker)));
      })();
      return closing;
    },
  };
}
