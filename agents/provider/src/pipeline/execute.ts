// Execute: a bounded queue in front of `capacity` concurrent runs. A queued job keeps the
// request prepared by decide (parsed and decrypted once); a job recovered after a restart is
// opened once when it starts. A run re-checks expiry, sends `processing` (without waiting for
// the relays' OK, so it precedes the result on each relay), runs the kind's backend in the
// sandbox with a trajectory log, and hands the product to deliver. A failure is an `error`
// feedback with the reason; a run cut short by stop() stays `running`, to be retried once.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { formatProblems, type Problem } from '@bazaar/dvm-kinds/problem';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import type { ProviderConfig } from '../config.ts';
import type { JobRecord, ProviderStore } from '../store.ts';
import { Trajectory } from '../trajectory.ts';
import type { Produced } from '../backends/backend.ts';
import type { PreparedJob } from '../backends/registry.ts';
import type { Publisher } from './publisher.ts';

export interface ExecuteOptions {
  readonly store: ProviderStore;
  readonly log: Logger;
  readonly runner: Runner;
  readonly dataDir: string;
  readonly allowFileRepos: boolean;
  readonly config: () => ProviderConfig;
  readonly publisher: Publisher;
  /** Opens a stored request (for jobs queued before a restart). */
  readonly open: (rec: JobRecord) => { ok: true; job: PreparedJob } | { ok: false; problems: readonly Problem[] };
  readonly deliver: (rec: JobRecord, produced: Produced, trajectorySha256: string, log: Logger) => Promise<void>;
  /** Keeps a background task so stop() can wait for it. */
  readonly track: (p: Promise<void>) => void;
  /** In a provider pool: aborted when this worker loses the job's lease (another worker runs it; nothing more is published here). */
  readonly leaseSignal?: (id: string) => AbortSignal | undefined;
}

export class Executor {
  readonly #o: ExecuteOptions;
  readonly #queue: string[] = [];
  readonly #prepared = new Map<string, PreparedJob>();
  readonly #running = new Map<string, AbortController>();
  readonly #runs = new Set<Promise<void>>();
  #stopped = false;

  constructor(o: ExecuteOptions) {
    this.#o = o;
  }

  get running(): number {
    return this.#running.size;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Queues an accepted job; `job` is its prepared request when decide made it. */
  enqueue(id: string, job?: PreparedJob): void {
    if (job) this.#prepared.set(id, job);
    this.#queue.push(id);
    this.pump();
  }

  /** Takes a job out of the queue (a cancellation); false when it was not waiting. */
  dequeue(id: string): boolean {
    this.#prepared.delete(id);
    const i = this.#queue.indexOf(id);
    if (i < 0) return false;
    this.#queue.splice(i, 1);
    return true;
  }

  pump(): void {
    while (!this.#stopped && this.#running.size < this.#o.config().capacity && this.#queue.length) {
      const id = this.#queue.shift()!;
      const p = this.#execute(id).catch((err) => this.#o.log.error({ err, jobId: id }, 'job crashed'));
      this.#runs.add(p);
      void p.finally(() => {
        this.#runs.delete(p);
        this.pump();
      });
    }
  }

  /** Aborts running jobs and waits for them. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const ac of this.#running.values()) ac.abort();
    await Promise.allSettled([...this.#runs]);
  }

  async #execute(id: string): Promise<void> {
    const o = this.#o;
    const prepared = this.#prepared.get(id);
    this.#prepared.delete(id);
    let rec = o.store.get(id);
    if (!rec || rec.state !== 'queued') return;
    const log = o.log.child({ jobId: id, kind: rec.kind });
    if (rec.expiration !== undefined && rec.expiration <= Math.floor(Date.now() / 1000)) {
      await o.store.transition(id, { type: 'expire' });
      await o.publisher.feedback(rec, { status: 'error', errorCode: 'EXPIRED', message: 'the request expired before it could start' });
      return;
    }
    const ac = new AbortController();
    const lease = o.leaseSignal?.(id);
    const signal = lease ? AbortSignal.any([ac.signal, lease]) : ac.signal;
    this.#running.set(id, ac);
    try {
      if (lease?.aborted) throw lease.reason;
      rec = await o.store.transition(id, { type: 'start' }, { startedAt: Date.now(), attempts: rec.attempts + 1 });
      const started = rec;
      // Not awaited: the feedback is sent on the socket now (so it precedes the result on
      // each relay) and the job does not wait a relay round trip for its OK.
      o.track(o.publisher.feedback(started, { status: 'processing', message: 'job started' }));
      log.info({ attempt: rec.attempts }, 'job started');
      let job = prepared;
      if (!job) {
        const opened = o.open(rec);
        if (!opened.ok) throw new Error(formatProblems(opened.problems));
        job = opened.job;
      }
      const trajectory = new Trajectory();
      trajectory.add({ step: 'start', kind: rec.kind, requestId: id, isolation: o.runner.kind });
      const workRoot = join(o.dataDir, 'work', id);
      await mkdir(workRoot, { recursive: true });
      let produced: Produced;
      try {
        produced = await job.run({
          runner: o.runner,
          log,
          trajectory,
          workRoot,
          signal,
          allowFileRepos: o.allowFileRepos,
          config: o.config(),
          omitRequest: started.encrypted,
          onProgress: (fraction, message) => {
            if (fraction > 0) void o.publisher.feedback(started, { status: 'partial', progress: Math.round(fraction * 100) / 100, message });
          },
        });
      } finally {
        await rm(workRoot, { recursive: true, force: true }).catch(() => {});
      }
      trajectory.add({ step: 'done', units: produced.units });
      const trajectorySha256 = await trajectory.save(join(o.dataDir, 'trajectories'), id);
      await o.deliver(rec, produced, trajectorySha256, log);
    } catch (err) {
      const cur = o.store.get(id);
      if (lease?.aborted) {
        // Another worker holds the job now: it is over here, silently (the other one reports it).
        const why = `lease lost: ${(lease.reason as Error)?.message ?? 'another worker holds the job'}`;
        if (cur && (cur.state === 'running' || cur.state === 'queued')) await o.store.transition(id, { type: 'fail', reason: why }, { error: why, finishedAt: Date.now() });
        log.warn({ why }, 'job abandoned: lease lost, no result published here');
        return;
      }
      const message = this.#stopped ? 'the provider stopped during the job' : (err as Error).message;
      log.warn({ err: (err as Error).message }, 'job failed');
      if (cur?.state === 'running') {
        if (this.#stopped) return; // left `running`: the next start retries it once
        const failed = await o.store.transition(id, { type: 'fail', reason: message }, { error: message, finishedAt: Date.now() });
        await o.publisher.feedback(failed, { status: 'error', message: message.slice(0, 500) });
      }
    } finally {
      this.#running.delete(id);
    }
  }
}
