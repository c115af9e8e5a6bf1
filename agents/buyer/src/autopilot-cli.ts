// `bazaar buyer autopilot --tasks FILE --budget SATS`: the Autopilot as a daemon. It works
// through the file's tasks, prints a line per task (or one JSON document with --json), and with
// --follow keeps watching the file for appended tasks until Ctrl-C.
import { readFileSync, watch } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FlagValues } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { untilSignal } from '@bazaar/cli-kit/signals';
import { Autopilot, type AutopilotEvent, type TaskRecord } from './autopilot.ts';
import { EXIT, effectiveConfig, exitCodeFor, openFromFlags, runOptionsFrom, stderrLogger } from './cli.ts';
import { ProgressPrinter, formatSats } from './progress.ts';
import { createRunner } from './runtime.ts';
import { TASK_TYPES, type TaskType } from './tasks.ts';

const sats = (msats: number) => `${formatSats(msats)} sat${msats === 1000 ? '' : 's'}`;

export async function runAutopilot(f: FlagValues): Promise<number> {
  if (!f.tasks) throw new UsageError('--tasks FILE is required');
  if (f.budget === undefined) throw new UsageError('--budget SATS is required');
  const file = resolve(f.tasks as string);
  const read = (): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --tasks: ${(err as Error).message}`);
    }
  };
  const text = read();
  const delegate = (Array.isArray(f.delegate) ? (f.delegate as string[]) : []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
  for (const d of delegate) if (!(TASK_TYPES as readonly string[]).includes(d)) throw new UsageError(`--delegate: ${JSON.stringify(d)} is not one of ${TASK_TYPES.join(', ')}`);
  const budgetMsats = (f.budget as number) * 1000;
  const log = stderrLogger(f['log-level'] as string);
  const config = await effectiveConfig(f);
  const runOptions = runOptionsFrom(f, f.budget as number, 0);
  const { budgetMsats: _unused, ...perRun } = runOptions;
  const b = await openFromFlags(f, log, config);
  const ac = new AbortController();
  const printers = new Map<string, ProgressPrinter>();
  const line = (s: string) => process.stderr.write(`${s}\n`);
  const onEvent = (e: AutopilotEvent) => {
    if (f.json) return;
    switch (e.type) {
      case 'task-start':
        line(`▶ ${e.task.description}  (budget ${sats(e.allocationMsats)}, complexity ${e.task.complexity}; ${sats(e.remainingMsats)} left unallocated)`);
        printers.set(e.task.id, new ProgressPrinter({ budgetMsats: e.allocationMsats, write: (l) => line(`    ${l}`) }));
        break;
      case 'progress':
        printers.get(e.task.id)?.on(e.event);
        break;
      case 'task-done':
        line(`■ ${e.task.description}: ${e.task.outcome}${e.task.outcome !== 'paid' && e.task.reason ? ` — ${e.task.reason}` : ''}; spent ${sats(e.task.spentMsats ?? 0)}, ${sats(e.remainingMsats)} of the budget left`);
        break;
      case 'task-local':
        line(`◆ ${e.task.description}: kept local — ${e.task.reason}${e.task.localExitCode !== undefined ? ` (exit ${e.task.localExitCode})` : ''}`);
        break;
      case 'task-invalid':
        line(`✗ line ${e.task.line}: ${e.task.reason}`);
        break;
    }
  };
  const autopilot = new Autopilot({
    client: b.client,
    store: b.store,
    runner: await createRunner(config, log),
    logger: log,
    workDir: join(b.paths.root, 'work'),
    budgetMsats,
    policy: {
      ...(delegate.length ? { delegate: delegate as TaskType[] } : {}),
      ...(f['max-per-task'] !== undefined ? { maxPerTaskMsats: (f['max-per-task'] as number) * 1000 } : {}),
      ...(f['keep-local-below'] !== undefined ? { keepLocalBelow: f['keep-local-below'] as number } : {}),
    },
    runOptions: perRun,
    concurrency: f.concurrency as number,
    onEvent,
  });
  let records: TaskRecord[] = [];
  try {
    await b.client.resume({ signal: ac.signal });
    if (!f.json) line(`autopilot: ${file}, budget ${sats(budgetMsats)} (${sats(autopilot.committedMsats(file))} already spent on this file)`);
    records = await autopilot.process(file, text, ac.signal);
    if (f.follow && !ac.signal.aborted) {
      if (!f.json) line('autopilot: all tasks done; watching the file for more (Ctrl-C to stop)');
      // Re-reads the file on change; finished tasks are skipped by id, new lines are worked on.
      let busy: Promise<unknown> = Promise.resolve();
      const watcher = watch(file, () => {
        busy = busy.then(async () => {
          if (ac.signal.aborted) return;
          try {
            records = await autopilot.process(file, read(), ac.signal);
          } catch (err) {
            log.error({ err: (err as Error).message }, 'could not process the task file');
          }
        });
      });
      await untilSignal(async () => {
        watcher.close();
        ac.abort();
        await busy;
      }, log, 'autopilot stopping');
    }
  } finally {
    await b.close();
  }
  const spent = records.reduce((s, t) => s + (t.spentMsats ?? 0), 0);
  if (f.json) process.stdout.write(`${JSON.stringify({ file, budgetMsats, spentMsats: spent, tasks: records }, null, 2)}\n`);
  else {
    const invalid = records.filter((r) => r.state === 'invalid').length;
    const n = records.length - invalid;
    line(`autopilot: ${n} task${n === 1 ? '' : 's'}${invalid ? ` (and ${invalid} invalid line${invalid === 1 ? '' : 's'})` : ''}, spent ${sats(spent)} of ${sats(budgetMsats)}`);
  }
  // The worst outcome decides the exit code (a daemon stopped by Ctrl-C included).
  const order = [EXIT.disputed, EXIT.budgetRefused, EXIT.noProvider, EXIT.paymentPending];
  const codes = records.map((t) => (t.state === 'invalid' ? EXIT.usage : t.outcome && t.outcome !== 'local' ? exitCodeFor(t.outcome) : EXIT.ok));
  if (codes.includes(EXIT.usage)) return EXIT.usage;
  return order.find((c) => codes.includes(c)) ?? EXIT.ok;
}
