// `npm run bench:relay`: the Bazaar relay and strfry side by side, in the same run, on
// the same pre-signed corpus: full-corpus ingest (events/s, per relay CPU-second, peak
// RSS, database size), a query mix, the query flood (an innocent REQ while another
// connection floods COUNTs or heavy REQs), live fan-out and idle connections. Both are
// started here as child processes on loopback with fresh data directories (strfry is
// skipped, with the reason, when its binary is absent), or one relay already running is
// measured (--relay-url). Prints a table and writes JSON to bench-results/relay-<date>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { runCommand, UsageError, type CommandSpec, type FlagValues } from '@bazaar/cli-kit/command';
import { loadOrGenerateCorpus } from './bench/corpus.ts';
import { rng } from '@bazaar/testkit/rng';
import {
  buildQueryMix, publishAll, runFanout, runFlood, runIdle, runQueries,
  type FanoutResult, type FloodResult, type IdleResult, type PublishResult, type QueryResult,
} from './bench/phases.ts';
import { diskUsage, memoryKiB, openFileLimits, startRelayChild, type MemoryKiB, type RelayChild } from '@bazaar/testkit/proc';
import { findStrfry, startStrfryChild } from '@bazaar/testkit/strfry';
import { round } from './bench/stats.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PHASES = ['idle', 'ingest', 'queries', 'flood', 'fanout'] as const;
const RELAYS = ['bazaar', 'strfry'] as const;

/** The COUNT flood: every kind-1 note, counted 20 times over. */
const COUNT_FLOOD: Filter[] = [{ kinds: [1] }];
/** The REQ flood: up to 1 500 stored events per REQ. */
const REQ_FLOOD: Filter[] = [{ kinds: [1], limit: 500 }, { kinds: [7], limit: 500 }, { kinds: [7000], limit: 500 }];

interface Target {
  readonly name: string;
  readonly url: string;
  readonly pid: number | undefined;
  /** Where its database lives (for the size on disk), when known. */
  readonly dbDir: string | undefined;
  readonly child: RelayChild | undefined;
  readonly workDir: string | undefined;
}

interface TargetReport {
  idle?: IdleResult;
  ingest?: PublishResult;
  /** Right after the ingest phase. */
  memoryAfterIngestKiB?: MemoryKiB;
  diskAfterIngest?: { bytes: number; apparentBytes: number };
  queries?: QueryResult;
  floodCount?: FloodResult;
  floodReq?: FloodResult;
  fanout?: FanoutResult;
  /** At the end of the run. */
  memoryAtEndKiB?: MemoryKiB;
}

const fmt = (n: number | null | undefined, unit = ''): string => {
  const r = round(n ?? null);
  return r === null ? 'n/a' : `${r.toLocaleString('en-US')}${unit}`;
};
const mib = (kib: number | undefined): string => (kib === undefined ? 'n/a' : `${fmt(kib / 1024)} MiB`);

function printTable(targets: readonly Target[], reports: ReadonlyMap<string, TargetReport>, skipped: readonly string[], load: { start: number[]; end: number[] }): void {
  const rows: string[][] = [];
  const row = (label: string, f: (r: TargetReport) => string | undefined): void => {
    const cells = targets.map((t) => f(reports.get(t.name) ?? {}));
    if (cells.some((c) => c !== undefined)) rows.push([label, ...cells.map((c) => c ?? '')]);
  };
  row('ingest: accepted events/s (wall clock)', (r) => r.ingest && fmt(r.ingest.acceptedPerSec));
  row('ingest: events per relay CPU-second', (r) => r.ingest && fmt(r.ingest.acceptedPerRelayCpuSec));
  row('ingest: accepted / sent', (r) => r.ingest && `${r.ingest.accepted}/${r.ingest.events}${r.ingest.unanswered ? ` (${r.ingest.unanswered} unanswered)` : ''}`);
  row('ingest: refused (by prefix)', (r) => r.ingest && (Object.keys(r.ingest.rejected).length ? JSON.stringify(r.ingest.rejected) : 'none'));
  row('ingest: OK latency p50 / p99', (r) => r.ingest && `${fmt(r.ingest.okLatencyMs.p50, ' ms')} / ${fmt(r.ingest.okLatencyMs.p99, ' ms')}`);
  row('ingest: wall / relay CPU / bench CPU', (r) => r.ingest && `${fmt(r.ingest.wallSec, ' s')} / ${fmt(r.ingest.relayCpuSec, ' s')} / ${fmt(r.ingest.benchCpuSec, ' s')}`);
  const perEvent = (bytes: number | null, accepted: number): string => (bytes === null ? 'n/a' : `${fmt(bytes / Math.max(1, accepted) / 1024)} KiB (${fmt(bytes / 2 ** 20)} MiB)`);
  row('ingest: written per accepted event (write syscalls)', (r) => r.ingest && perEvent(r.ingest.writeSyscallBytes, r.ingest.accepted));
  row('ingest: kernel write_bytes per accepted event', (r) => r.ingest && perEvent(r.ingest.diskWriteBytes, r.ingest.accepted));
  row('peak RSS after ingest (VmHWM)', (r) => r.memoryAfterIngestKiB && mib(r.memoryAfterIngestKiB.peak));
  row('RSS after ingest: anon + file', (r) => r.memoryAfterIngestKiB && `${mib(r.memoryAfterIngestKiB.anon)} + ${mib(r.memoryAfterIngestKiB.file)}`);
  row('database size on disk', (r) => r.diskAfterIngest && `${fmt(r.diskAfterIngest.bytes / 2 ** 20)} MiB (files ${fmt(r.diskAfterIngest.apparentBytes / 2 ** 20)} MiB)`);
  row('queries: REQ/s', (r) => r.queries && fmt(r.queries.reqPerSec));
  row('queries: REQs per relay CPU-second', (r) => r.queries && fmt(r.queries.reqPerRelayCpuSec));
  row('queries: time to EOSE p50 / p99', (r) => r.queries && `${fmt(r.queries.eoseMs.p50, ' ms')} / ${fmt(r.queries.eoseMs.p99, ' ms')}`);
  row('queries: done / closed / timeouts / id mismatches', (r) => r.queries && `${r.queries.completed} / ${r.queries.closedByRelay} / ${r.queries.timeouts} / ${r.queries.idMismatches}`);
  for (const [key, label] of [['floodCount', `flood: ${COUNT_FLOOD.length === 1 ? 'COUNT' : 'COUNTs'}`], ['floodReq', 'flood: heavy REQ']] as const) {
    row(`${label} — innocent REQ first / max`, (r) => r[key] && `${fmt(r[key].firstMs, ' ms')} / ${fmt(r[key].duringMs.max, ' ms')}`);
    row(`${label} — innocent REQ p50 (baseline)`, (r) => r[key] && `${fmt(r[key].duringMs.p50, ' ms')} (${fmt(r[key].baselineMs.p50, ' ms')}), ${r[key].duringMs.count} REQs${r[key].innocentErrors ? `, ${r[key].innocentErrors} wrong` : ''}`);
    row(`${label} — flood answered in`, (r) => r[key] && `${fmt(r[key].floodSec, ' s')} (${r[key].answered}/${r[key].messages}${r[key].timedOut ? ', timed out' : ''}${r[key].verb === 'COUNT' ? `, count ${r[key].counts.join('|')}` : `, ${r[key].floodEvents} events`})`);
  }
  row('fan-out: deliveries per relay CPU-second', (r) => r.fanout && fmt(r.fanout.deliveriesPerRelayCpuSec));
  row('fan-out: latency p50 / p99', (r) => r.fanout && `${fmt(r.fanout.latencyMs.p50, ' ms')} / ${fmt(r.fanout.latencyMs.p99, ' ms')}`);
  row('fan-out: delivered/expected (missing, dup, unexpected)', (r) => r.fanout && `${r.fanout.delivered}/${r.fanout.expectedDeliveries} (${r.fanout.missing}, ${r.fanout.duplicates}, ${r.fanout.unexpected})`);
  row('fan-out: published / accepted, EVENT→OK p50 / p99', (r) => r.fanout && `${r.fanout.published} / ${r.fanout.accepted}, ${fmt(r.fanout.publishOkLatencyMs.p50, ' ms')} / ${fmt(r.fanout.publishOkLatencyMs.p99, ' ms')}`);
  row('idle: connections opened', (r) => r.idle && `${r.idle.opened}/${r.idle.connections}${r.idle.error ? ` (${r.idle.error})` : ''}`);
  row('idle: RSS per connection', (r) => r.idle && fmt(r.idle.kibPerConnection, ' KiB'));
  row('peak RSS over the run (VmHWM)', (r) => r.memoryAtEndKiB && mib(r.memoryAtEndKiB.peak));
  const header = ['metric', ...targets.map((t) => t.name)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  console.log('');
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
  for (const s of skipped) console.log(`\n${s}`);
  const la = (x: number[]): string => x.map((n) => n.toFixed(2)).join(' ');
  console.log(`\nload average at start ${la(load.start)}, at end ${la(load.end)} on ${availableParallelism()} cores${Math.max(...load.start, ...load.end) > availableParallelism() ? ' — the machine was busy with other work: trust the per-CPU-second figures over the wall-clock ones' : ''}`);
}

async function run(flags: FlagValues): Promise<number> {
  const phases = new Set((flags.phase as string[] | undefined)?.length ? (flags.phase as string[]) : PHASES);
  for (const p of phases) if (!(PHASES as readonly string[]).includes(p)) throw new UsageError(`--phase must be one of ${PHASES.join(', ')}, got ${JSON.stringify(p)}`);
  const relays = new Set((flags.relay as string[] | undefined)?.length ? (flags.relay as string[]) : RELAYS);
  for (const r of relays) if (!(RELAYS as readonly string[]).includes(r)) throw new UsageError(`--relay must be one of ${RELAYS.join(', ')}, got ${JSON.stringify(r)}`);
  const relayUrl = flags['relay-url'] as string | undefined;
  const externalPid = flags.pid as number | undefined;
  if (relayUrl && !/^wss?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(relayUrl)) throw new UsageError('--relay-url must be a loopback ws:// URL (this benchmark only targets this machine)');
  if (externalPid !== undefined && !relayUrl) throw new UsageError('--pid only makes sense with --relay-url');
  if (relayUrl && (flags['relay-arg'] as string[] | undefined)?.length) throw new UsageError('--relay-arg only applies to the relay child, not to --relay-url');
  if (relayUrl && (flags.relay as string[] | undefined)?.length) throw new UsageError('--relay chooses the relays started here; with --relay-url only that relay is measured');
  const preloaded = flags.preloaded as boolean;
  if (preloaded && !relayUrl) throw new UsageError('--preloaded needs --relay-url (a relay started here always starts empty)');
  const idleCount = flags.idle as number;

  // ulimit -n is per process: re-run under the hard limit when the soft one is too low for the idle phase.
  const need = (phases.has('idle') ? idleCount : 0) + (flags['fanout-connections'] as number) + 512;
  const lim = openFileLimits();
  if (lim.soft < need) {
    if (lim.hard >= need && !process.env.BAZAAR_BENCH_FD_RAISED) {
      console.log(`raising the open-file limit from ${lim.soft} to ${lim.hard} and re-running`);
      const r = spawnSync('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
        stdio: 'inherit',
        env: { ...process.env, BAZAAR_BENCH_FD_RAISED: '1' },
      });
      return r.status ?? 1;
    }
    throw new UsageError(`open-file limit ${lim.soft} (hard ${lim.hard}) is below the ${need} this run needs: lower --idle or raise 'ulimit -n'`);
  }

  const skipped: string[] = [];
  let strfryBinary: string | undefined;
  if (!relayUrl && relays.has('strfry')) {
    const found = findStrfry(ROOT, flags.strfry as string | undefined);
    if (found.path) strfryBinary = found.path;
    else skipped.push(`strfry: skipped — ${found.reason}`);
  }

  const ingestCount = flags['ingest-events'] as number;
  const needData = (phases.has('queries') || phases.has('flood')) && !preloaded;
  const corpusPath = resolve(ROOT, flags.corpus as string);
  console.log(`corpus: ${ingestCount} signed events (${corpusPath})…`);
  const tc = performance.now();
  const { events, cached } = await loadOrGenerateCorpus(corpusPath, { count: ingestCount, seed: 1, authors: 500 });
  console.log(`corpus ${cached ? 'loaded' : 'generated and cached'} in ${((performance.now() - tc) / 1000).toFixed(1)} s`);

  const targets: Target[] = [];
  const reports = new Map<string, TargetReport>();
  const cleanup = async (): Promise<void> => {
    for (const t of targets.splice(0)) {
      await t.child?.stop();
      if (t.workDir) rmSync(t.workDir, { recursive: true, force: true });
    }
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const loadStart = loadavg();
  const phaseLoad: Record<string, number[]> = {};
  const report = (t: Target): TargetReport => reports.get(t.name) ?? (reports.set(t.name, {}), reports.get(t.name)!);
  /** Runs a phase on every target; the order alternates between phases so neither relay always goes first. */
  let phaseNo = 0;
  const eachTarget = async (phase: string, fn: (t: Target, r: TargetReport) => Promise<void>): Promise<void> => {
    phaseLoad[phase] = loadavg();
    const order = phaseNo++ % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) await fn(t, report(t));
  };
  try {
    if (relayUrl) {
      targets.push({ name: 'relay', url: relayUrl, pid: externalPid, dbDir: undefined, child: undefined, workDir: undefined });
    } else {
      if (relays.has('bazaar')) {
        const workDir = mkdtempSync(join(tmpdir(), 'bazaar-bench-relay-'));
        const extraArgs = (flags['relay-arg'] as string[] | undefined) ?? [];
        console.log(`starting bazaar (transport ${flags.transport as string}, data ${workDir})…`);
        try {
          const child = await startRelayChild({ bazaarScript: join(ROOT, 'scripts/bazaar.mjs'), dataDir: workDir, transport: flags.transport as string, extraArgs });
          targets.push({ name: 'bazaar', url: child.url, pid: child.pid, dbDir: workDir, child, workDir });
        } catch (err) {
          rmSync(workDir, { recursive: true, force: true });
          throw err;
        }
      }
      if (strfryBinary) {
        const workDir = mkdtempSync(join(tmpdir(), 'bazaar-bench-strfry-'));
        console.log(`starting strfry (${strfryBinary}, data ${workDir})…`);
        try {
          const child = await startStrfryChild({ binary: strfryBinary, workDir });
          targets.push({ name: 'strfry', url: child.url, pid: child.pid, dbDir: child.dbDir, child, workDir });
        } catch (err) {
          rmSync(workDir, { recursive: true, force: true });
          throw err;
        }
      }
    }
    if (targets.length === 0) throw new UsageError('no relay to measure');
    for (const t of targets) console.log(`${t.name}: pid ${t.pid ?? '?'} at ${t.url}`);

    // Idle first, on fresh relays: later phases leave freed heap and mapped LMDB pages
    // behind that new connections would reuse, hiding their cost in the RSS delta.
    if (phases.has('idle')) {
      await eachTarget('idle', async (t, r) => {
        console.log(`${t.name} idle: opening ${idleCount} connections…`);
        r.idle = await runIdle(t.url, t.pid, { connections: idleCount });
      });
    }
    const connections = flags.connections as number;
    const window = flags.window as number;
    const phaseTimeoutMs = (flags['phase-timeout'] as number) * 1000;
    if (phases.has('ingest') || needData) {
      // The full corpus, timed; every later phase runs on what it stored.
      const ingestTimeoutMs = Math.max(phaseTimeoutMs, events.length * 5);
      await eachTarget('ingest', async (t, r) => {
        console.log(`${t.name} ingest: ${events.length} events over ${connections} connections, window ${window}…`);
        r.ingest = await publishAll(t.url, t.pid, events, { connections, window, timeoutMs: ingestTimeoutMs });
        if (t.pid !== undefined) r.memoryAfterIngestKiB = memoryKiB(t.pid);
        if (t.dbDir !== undefined) r.diskAfterIngest = diskUsage(t.dbDir);
      });
    }
    if (phases.has('queries')) {
      const mix = buildQueryMix(events, flags.reqs as number);
      await eachTarget('queries', async (t, r) => {
        console.log(`${t.name} queries: ${mix.length} REQs from ${flags['query-connections'] as number} connections…`);
        r.queries = await runQueries(t.url, t.pid, mix, { connections: flags['query-connections'] as number, timeoutMs: phaseTimeoutMs });
      });
    }
    if (phases.has('flood')) {
      const messages = flags['flood-messages'] as number;
      const rand = rng(7);
      const regular = events.filter((e) => isStoredForever(e));
      const innocentIds = Array.from({ length: 500 }, () => regular[Math.floor(rand() * regular.length)].id);
      await eachTarget('flood', async (t, r) => {
        console.log(`${t.name} flood: ${messages} × COUNT ${JSON.stringify(COUNT_FLOOD)} while another connection asks for one event at a time…`);
        r.floodCount = await runFlood(t.url, t.pid, { verb: 'COUNT', filters: COUNT_FLOOD, messages, innocentIds, timeoutMs: phaseTimeoutMs });
        console.log(`${t.name} flood: ${messages} × REQ ${JSON.stringify(REQ_FLOOD)}…`);
        r.floodReq = await runFlood(t.url, t.pid, { verb: 'REQ', filters: REQ_FLOOD, messages, innocentIds, timeoutMs: phaseTimeoutMs });
      });
    }
    if (phases.has('fanout')) {
      const fc = flags['fanout-connections'] as number;
      const spc = flags['subs-per-connection'] as number;
      await eachTarget('fanout', async (t, r) => {
        console.log(`${t.name} fan-out: ${fc * spc} subscriptions on ${fc} connections, ${flags['fanout-rate'] as number} events/s for ${flags['fanout-seconds'] as number} s…`);
        r.fanout = await runFanout(t.url, t.pid, { connections: fc, subsPerConn: spc, rate: flags['fanout-rate'] as number, seconds: flags['fanout-seconds'] as number });
      });
    }
    for (const t of targets) if (t.pid !== undefined) report(t).memoryAtEndKiB = memoryKiB(t.pid);
    const load = { start: loadStart, end: loadavg() };
    printTable(targets, reports, skipped, load);
    const date = new Date().toISOString().replace(/[:.]/g, '-');
    const outDir = resolve(ROOT, 'bench-results');
    mkdirSync(outDir, { recursive: true });
    const outPath = join(outDir, `relay-${date}.json`);
    const json = {
      date: new Date().toISOString(),
      machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, memGiB: round(totalmem() / 2 ** 30), node: process.version, loadAverage: load, loadAverageAtPhaseStart: phaseLoad },
      relays: targets.map((t) => ({ name: t.name, url: t.url, pid: t.pid ?? null, started: t.child !== undefined, ...(t.name === 'strfry' ? { binary: strfryBinary } : {}) })),
      skipped,
      config: Object.fromEntries(Object.entries(flags).filter(([k]) => k !== 'corpus')),
      results: Object.fromEntries(reports),
    };
    writeFileSync(outPath, JSON.stringify(json, null, 2) + '\n');
    console.log(`\nresults written to ${outPath}`);
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  return 0;
}

/** Regular events (not replaceable, addressable or ephemeral) stay stored: safe targets for id lookups. */
function isStoredForever(e: NostrEvent): boolean {
  const k = e.kind;
  return k !== 0 && k !== 3 && k !== 5 && !(k >= 10000 && k < 40000);
}

export const benchRelayCommand: CommandSpec = {
  name: 'bench:relay',
  summary: 'Benchmark the Bazaar relay and strfry side by side on loopback: ingest, memory, disk, queries, query flood, live fan-out, idle connections.',
  envPrefix: 'BAZAAR_BENCH_',
  details: `By default starts the Bazaar relay (node scripts/bazaar.mjs relay) and strfry as child
processes on 127.0.0.1, each with a fresh temporary data directory, runs every phase
on both (alternating which goes first) and removes them afterwards. strfry is found
with --strfry / BAZAAR_STRFRY, else as shared/bin/strfry beside the project root or
its parent; when it is absent its column is skipped and the reason printed.
With --relay-url it measures one relay that is already running and reads its CPU
and memory from /proc/<--pid>. Relay CPU is utime+stime from /proc/PID/stat (all
threads) divided by CLK_TCK; peak RSS is VmHWM from /proc/PID/status; database size
is the allocated size of the data directory (as du). Results: bench-results/relay-<date>.json.`,
  flags: {
    relay: { type: 'string', multiple: true, description: `Relay to start and measure (repeatable; default: ${RELAYS.join(', ')})` },
    strfry: { type: 'string', env: 'BAZAAR_STRFRY', description: 'The strfry binary (default: shared/bin/strfry beside the project root or its parent)' },
    transport: { type: 'string', choices: ['uws', 'ws'], default: 'uws', description: 'Transport of the Bazaar relay child' },
    'relay-url': { type: 'string', description: 'Measure this already running relay (loopback only) instead of starting any' },
    pid: { type: 'number', integer: true, min: 1, description: 'PID of the --relay-url relay, for CPU and memory figures' },
    'relay-arg': { type: 'string', multiple: true, description: 'Extra argument for the Bazaar relay child (repeatable), e.g. --relay-arg=--verify-workers=1' },
    phase: { type: 'string', multiple: true, description: `Phase to run (repeatable; default all: ${PHASES.join(', ')})` },
    'ingest-events': { type: 'number', integer: true, min: 1, max: 2_000_000, default: 200_000, description: 'Events in the timed full-corpus ingest (the store every later phase queries)' },
    connections: { type: 'number', integer: true, min: 1, max: 1000, default: 8, description: 'Publishing connections' },
    window: { type: 'number', integer: true, min: 1, max: 10_000, default: 32, description: 'EVENTs in flight per publishing connection' },
    reqs: { type: 'number', integer: true, min: 1, max: 1_000_000, default: 3000, description: 'REQs in the query phase' },
    'query-connections': { type: 'number', integer: true, min: 1, max: 1000, default: 8, description: 'Connections issuing REQs (one in flight each)' },
    'flood-messages': { type: 'number', integer: true, min: 1, max: 1000, default: 20, description: 'COUNTs (then heavy REQs) the flooding connection sends at once' },
    'fanout-connections': { type: 'number', integer: true, min: 1, max: 10_000, default: 200, description: 'Subscriber connections in the fan-out phase' },
    'subs-per-connection': { type: 'number', integer: true, min: 1, max: 100, default: 5, description: 'Subscriptions per subscriber connection' },
    'fanout-rate': { type: 'number', integer: true, min: 1, max: 100_000, default: 500, description: 'Offered publish rate in the fan-out phase (events/s)' },
    'fanout-seconds': { type: 'number', min: 1, max: 600, default: 10, description: 'Duration of the fan-out publishing' },
    idle: { type: 'number', integer: true, min: 1, max: 100_000, default: 5000, description: 'Idle connections to open' },
    preloaded: { type: 'boolean', default: false, description: 'The --relay-url relay already holds the corpus (a previous run): query it without loading' },
    'phase-timeout': { type: 'number', min: 5, max: 3600, default: 120, description: 'Upper bound on each timed phase, seconds (the ingest gets at least 5 ms per event)' },
    corpus: { type: 'string', default: 'bench-results/corpus-v1.jsonl', description: 'Cached signed-event file (generated when missing or too short)' },
  },
  run,
};

process.exitCode = await runCommand(benchRelayCommand, process.argv.slice(2));
