// The Autopilot: works through a queue of tasks within one total budget. For each task it
// decides — by the delegation policy — whether to buy it on the market or keep it local, gives
// a delegated task its share of the budget, runs it with the MarketClient, and takes back what
// the task did not spend. Every task's state is in the buyer's store, so a restarted autopilot
// skips finished tasks and resumes the one it was in (its payment included).
//
// Delegation policy (the Autopilot design): a task is delegated when its type is allowed to
// delegate, its complexity is at or above `keepLocalBelow`, and the market can do it within
// `maxPerTaskMsats`. Kept-local SandboxRun tasks run in our own sandbox; other kept-local tasks
// are recorded for the local agent (nothing is bought).
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import { runCommandSequence } from '@bazaar/agents-common/sandbox/replay';
import { checkoutRepo, fetchRepo } from '@bazaar/agents-common/sandbox/repo-cache';
import type { MarketClient, ProgressEvent, RunOptions, RunReport } from './market-client.ts';
import type { BuyerStore } from './job-store.ts';
import { describeTask, readTask, type TaskSpec, type TaskType } from './tasks.ts';

export interface DelegationPolicy {
  /** Task types that may be bought on the market (default: all). */
  readonly delegate?: readonly TaskType[];
  /** The most one delegated task may cost (msats; default: the whole budget). */
  readonly maxPerTaskMsats?: number;
  /** Tasks with a complexity below this are kept local (default 0: delegate everything allowed). */
  readonly keepLocalBelow?: number;
}

export type TaskState = 'pending' | 'running' | 'done' | 'kept-local' | 'invalid';

export interface TaskRecord extends Record<string, unknown> {
  readonly id: string;
  /** The task file it came from (budgets are per file). */
  readonly file: string;
  readonly line: number;
  readonly state: TaskState;
  readonly description: string;
  readonly complexity?: number;
  readonly allocationMsats?: number;
  readonly spentMsats?: number;
  readonly outcome?: RunReport['outcome'] | 'local';
  readonly reason?: string;
  readonly runId?: string;
  readonly provider?: string;
  /** Kept-local SandboxRun: the exit code of our own run. */
  readonly localExitCode?: number;
  readonly updatedAt: number;
}

export type AutopilotEvent =
  | { readonly type: 'task-start'; readonly task: TaskRecord; readonly allocationMsats: number; readonly remainingMsats: number }
  | { readonly type: 'task-local'; readonly task: TaskRecord }
  | { readonly type: 'task-done'; readonly task: TaskRecord; readonly remainingMsats: number }
  | { readonly type: 'task-invalid'; readonly task: TaskRecord }
  | { readonly type: 'progress'; readonly task: TaskRecord; readonly event: ProgressEvent };

export interface AutopilotOptions {
  readonly client: MarketClient;
  readonly store: BuyerStore;
  readonly runner: Runner;
  readonly logger: Logger;
  /** Scratch space for kept-local work. */
  readonly workDir: string;
  readonly budgetMsats: number;
  readonly policy?: DelegationPolicy;
  /** Options every delegated run gets (strategy, preference, pay, timeouts…). */
  readonly runOptions?: Omit<RunOptions, 'budgetMsats' | 'runId' | 'signal' | 'onProgress'>;
  readonly concurrency?: number;
  readonly onEvent?: (e: AutopilotEvent) => void;
}

/** A task's complexity when the task file does not say: a rough size of the work, 0..1. */
export function estimateComplexity(t: TaskSpec): number {
  const clamp = (x: number) => Math.max(0, Math.min(1, Math.round(x * 100) / 100));
  switch (t.type) {
    case 'sandbox':
      return clamp(0.05 * t.cmd.length + (t.repo ? 0.2 : 0) + t.timeLimitSecs / 3600);
    case 'index':
      return 0.3;
    case 'patch':
      return clamp(0.5 + t.body.length / 4000);
    case 'review':
      return clamp(0.2 + t.diff.split('\n').length / 500);
    case 'text':
      return clamp(t.prompt.length / 2000 + (t.maxTokens ?? 0) / 8000);
  }
}

/** Parses a task file (JSON lines; blank lines and lines starting with # ignored). */
export function parseTaskFile(text: string, file: string): { id: string; line: number; spec?: TaskSpec; raw: Record<string, unknown>; problems?: string[] }[] {
  const out: { id: string; line: number; spec?: TaskSpec; raw: Record<string, unknown>; problems?: string[] }[] = [];
  text.split('\n').forEach((l, i) => {
    const line = l.trim();
    if (!line || line.startsWith('#')) return;
    let raw: Record<string, unknown>;
    try {
      const v = JSON.parse(line) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      raw = v as Record<string, unknown>;
    } catch (err) {
      out.push({ id: hashId(file, line), line: i + 1, raw: {}, problems: [`not a JSON object: ${(err as Error).message}`] });
      return;
    }
    const id = typeof raw.id === 'string' && raw.id ? raw.id : hashId(file, line);
    const { id: _id, budget_sats: _b, complexity: _c, ...fields } = raw;
    const problems: string[] = [];
    if (raw.budget_sats !== undefined && (typeof raw.budget_sats !== 'number' || !Number.isSafeInteger(raw.budget_sats) || raw.budget_sats <= 0)) problems.push('budget_sats: must be a positive integer');
    if (raw.complexity !== undefined && (typeof raw.complexity !== 'number' || raw.complexity < 0 || raw.complexity > 1)) problems.push('complexity: must be a number from 0 to 1');
    const r = readTask(fields);
    if ('problems' in r) problems.push(...r.problems);
    out.push({ id, line: i + 1, raw, ...(problems.length ? { problems } : { spec: (r as { task: TaskSpec }).task }) });
  });
  return out;
}

const hashId = (file: string, line: string) => createHash('sha256').update(`${file}\n${line}`).digest('hex').slice(0, 32);

export class Autopilot {
  readonly #o: AutopilotOptions;
  readonly #log: Logger;
  /** Allocations of tasks in progress (msats), so concurrent tasks never overcommit the budget. */
  readonly #inFlight = new Map<string, number>();

  constructor(o: AutopilotOptions) {
    this.#o = o;
    this.#log = o.logger.child({ part: 'autopilot' });
  }

  #tasksOf(file: string): TaskRecord[] {
    return [...this.#o.store.tasks()].filter((t) => t.file === file) as TaskRecord[];
  }

  /** Msats committed for `file`: spent by finished tasks plus allocations in flight. */
  committedMsats(file: string): number {
    const spent = this.#tasksOf(file).reduce((s, t) => s + (t.spentMsats ?? 0), 0);
    return spent + [...this.#inFlight.values()].reduce((s, x) => s + x, 0);
  }

  /** Works through the tasks of `text` (the content of `file`); resolves when every task is finished. */
  async process(file: string, text: string, signal?: AbortSignal): Promise<TaskRecord[]> {
    const parsed = parseTaskFile(text, file);
    const queue: { id: string; line: number; spec: TaskSpec; raw: Record<string, unknown> }[] = [];
    for (const p of parsed) {
      const prior = this.#o.store.getTask<TaskRecord>(p.id);
      if (prior && prior.state !== 'pending' && prior.state !== 'running') continue; // finished before (a restart, or --follow re-reading)
      if (p.problems) {
        const rec = this.#save({ id: p.id, file, line: p.line, state: 'invalid', description: `line ${p.line}`, reason: p.problems.join('; '), updatedAt: Date.now() });
        this.#o.onEvent?.({ type: 'task-invalid', task: rec });
        continue;
      }
      queue.push({ id: p.id, line: p.line, spec: p.spec!, raw: p.raw });
    }
    const workers = Math.max(1, this.#o.concurrency ?? 1);
    let next = 0;
    const work = async () => {
      while (next < queue.length && !signal?.aborted) {
        const item = queue[next++];
        const left = queue.length - next;
        await this.#one(file, item, left, signal);
      }
    };
    await Promise.all(Array.from({ length: workers }, work));
    return this.#tasksOf(file).sort((a, b) => a.line - b.line);
  }

  #save(rec: TaskRecord): TaskRecord {
    this.#o.store.putTask(rec.id, rec);
    return rec;
  }

  async #one(file: string, item: { id: string; line: number; spec: TaskSpec; raw: Record<string, unknown> }, tasksAfter: number, signal?: AbortSignal): Promise<void> {
    const p = this.#o.policy ?? {};
    const complexity = typeof item.raw.complexity === 'number' ? item.raw.complexity : estimateComplexity(item.spec);
    const base = { id: item.id, file, line: item.line, description: describeTask(item.spec), complexity, updatedAt: Date.now() };
    const allowed = !p.delegate || p.delegate.includes(item.spec.type);
    if (!allowed || complexity < (p.keepLocalBelow ?? 0)) {
      const reason = !allowed ? `${item.spec.type} tasks are not delegated` : `complexity ${complexity} is below ${p.keepLocalBelow}`;
      const rec = await this.#keepLocal(base, item.spec, reason, signal);
      this.#o.onEvent?.({ type: 'task-local', task: rec });
      return;
    }
    const prior = this.#o.store.getTask<TaskRecord>(item.id);
    // Allocation: the task's own budget, else an even share of what is left over the tasks still
    // to do, capped by the policy's most per delegation, never more than what is left.
    const remaining = this.#o.budgetMsats - this.committedMsats(file);
    const share = Math.floor(remaining / (tasksAfter + 1));
    const own = typeof item.raw.budget_sats === 'number' ? item.raw.budget_sats * 1000 : undefined;
    const allocation = prior?.allocationMsats ?? Math.max(0, Math.min(own ?? share, p.maxPerTaskMsats ?? Number.MAX_SAFE_INTEGER, remaining));
    const runId = prior?.runId ?? createHash('sha256').update(`autopilot:${item.id}`).digest('hex').slice(0, 32);
    if (allocation <= 0) {
      const rec = this.#save({ ...base, state: 'done', outcome: 'budget-refused', reason: 'the total budget is spent', allocationMsats: 0, spentMsats: 0, updatedAt: Date.now() });
      this.#o.onEvent?.({ type: 'task-done', task: rec, remainingMsats: this.#o.budgetMsats - this.committedMsats(file) });
      return;
    }
    this.#inFlight.set(item.id, allocation);
    let rec = this.#save({ ...base, state: 'running', allocationMsats: allocation, runId, updatedAt: Date.now() });
    this.#o.onEvent?.({ type: 'task-start', task: rec, allocationMsats: allocation, remainingMsats: remaining - allocation });
    try {
      const report = await this.#o.client.run(item.spec, { ...this.#o.runOptions, budgetMsats: allocation, runId, ...(signal ? { signal } : {}), onProgress: (event) => this.#o.onEvent?.({ type: 'progress', task: rec, event }) });
      const pending = report.outcome === 'running';
      rec = this.#save({ ...rec, state: pending ? 'running' : 'done', outcome: report.outcome, spentMsats: report.spentMsats, ...(report.reason ? { reason: report.reason } : {}), ...(report.provider ? { provider: report.provider } : {}), updatedAt: Date.now() });
    } catch (err) {
      rec = this.#save({ ...rec, state: 'done', outcome: 'failed', reason: (err as Error).message, spentMsats: this.#o.store.spentMsats(runId), updatedAt: Date.now() });
      this.#log.error({ taskId: item.id, err: (err as Error).message }, 'task failed');
    } finally {
      this.#inFlight.delete(item.id);
    }
    this.#o.onEvent?.({ type: 'task-done', task: rec, remainingMsats: this.#o.budgetMsats - this.committedMsats(file) });
  }

  /** Kept local: a SandboxRun runs in our own sandbox; anything else is left for the local agent. */
  async #keepLocal(base: { id: string; file: string; line: number; description: string; complexity: number; updatedAt: number }, spec: TaskSpec, reason: string, signal?: AbortSignal): Promise<TaskRecord> {
    if (spec.type !== 'sandbox') return this.#save({ ...base, state: 'kept-local', outcome: 'local', reason: `${reason}; left for the local agent`, spentMsats: 0, updatedAt: Date.now() });
    const work = join(this.#o.workDir, `local-${base.id}`);
    await mkdir(work, { recursive: true });
    try {
      const checkout = spec.repo ? await checkoutRepo({ repo: await fetchRepo({ source: spec.repo, ...(spec.ref ? { ref: spec.ref } : {}), cacheDir: join(this.#o.workDir, 'repos'), log: this.#log, ...(signal ? { signal } : {}) }), parentDir: work, ...(signal ? { signal } : {}) }) : undefined;
      const out = await runCommandSequence(this.#o.runner, { cmds: spec.cmd, timeLimitSecs: spec.timeLimitSecs, workRoot: work, ...(checkout ? { checkout } : {}), ...(spec.memoryMb ? { memoryMb: spec.memoryMb } : {}), ...(signal ? { signal } : {}) });
      return this.#save({ ...base, state: 'kept-local', outcome: 'local', reason: `${reason}; ran in our own sandbox`, localExitCode: out.totals.exit_code, spentMsats: 0, updatedAt: Date.now() });
    } catch (err) {
      return this.#save({ ...base, state: 'kept-local', outcome: 'local', reason: `${reason}; our own run failed: ${(err as Error).message}`, spentMsats: 0, updatedAt: Date.now() });
    } finally {
      const { rm } = await import('node:fs/promises');
      await rm(work, { recursive: true, force: true }).catch(() => {});
    }
  }
}
