// `npm run bench:relay`: ingest, query, live fan-out and idle-connection
// figures for the Bazaar relay (started here as a child process on loopback
// with a fresh data directory) or for any relay already running (--relay-url,
// with --pid for its CPU and memory). Prints a table beside strfry's figures on
// this machine class and writes JSON to bench-results/relay-<date>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, UsageError, type CommandSpec, type FlagValues } from '@bazaar/cli-kit/command';
import { loadOrGenerateCorpus } from './bench/corpus.ts';
import { buildQueryMix, publishAll, runFanout, runIdle, runQueries, type FanoutResult, type IdleResult, type PublishResult, type QueryResult } from './bench/phases.ts';
import { openFileLimits, rssKiB, startRelayChild, type RelayChild } from './bench/proc.ts';
import { round } from './bench/stats.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const PHASES = ['idle', 'ingest', 'queries', 'fanout'] as const;

/** strfry on this machine class, for comparison. */
export const TARGETS = {
  ingestPerSec: 2200,
  ingestPerRelayCpuSec: 1530,
  reqPerSec: 980,
  reqPerRelayCpuSec: 810,
  eoseP50Ms: 15,
  fanoutP50Ms: 56,
  fanoutP99Ms: 110,
  idleConnections: 5000,
  idleKibPerConnection: 0.9,
} as const;

const fmt = (n: number | null | undefined, unit = ''): string => {
  const r = round(n ?? null);
  return r === null ? 'n/a' : `${r.toLocaleString('en-US')}${unit}`;
};

interface Report {
  ingest?: PublishResult;
  load?: PublishResult & { storedApprox: number };
  queries?: QueryResult;
  fanout?: FanoutResult;
  idle?: IdleResult;
}

function printTable(r: Report, load: { start: number[]; end: number[] }): void {
  const rows: [string, string, string][] = [];
  if (r.ingest) {
    const i = r.ingest;
    rows.push(['ingest: accepted events/s', fmt(i.acceptedPerSec), `≈${TARGETS.ingestPerSec.toLocaleString('en-US')}`]);
    rows.push(['ingest: events per relay CPU-second', fmt(i.acceptedPerRelayCpuSec), `≈${TARGETS.ingestPerRelayCpuSec.toLocaleString('en-US')}`]);
    rows.push(['ingest: accepted / sent (rejected by prefix)', `${i.accepted}/${i.events} ${JSON.stringify(i.rejected)}${i.unanswered ? ` unanswered ${i.unanswered}` : ''}`, '']);
    rows.push(['ingest: OK latency p50 / p99', `${fmt(i.okLatencyMs.p50, ' ms')} / ${fmt(i.okLatencyMs.p99, ' ms')}`, '']);
  }
  if (r.load) rows.push(['bulk load before queries: events/s (per CPU-s)', `${fmt(r.load.acceptedPerSec)} (${fmt(r.load.acceptedPerRelayCpuSec)})`, '']);
  if (r.queries) {
    const q = r.queries;
    rows.push(['queries: REQ/s', fmt(q.reqPerSec), `≈${TARGETS.reqPerSec}`]);
    rows.push(['queries: REQs per relay CPU-second', fmt(q.reqPerRelayCpuSec), `≈${TARGETS.reqPerRelayCpuSec}`]);
    rows.push(['queries: time to EOSE p50 / p99', `${fmt(q.eoseMs.p50, ' ms')} / ${fmt(q.eoseMs.p99, ' ms')}`, `p50 ≈${TARGETS.eoseP50Ms} ms`]);
    rows.push(['queries: completed / closed / timeouts / id mismatches', `${q.completed} / ${q.closedByRelay} / ${q.timeouts} / ${q.idMismatches}`, '']);
  }
  if (r.fanout) {
    const f = r.fanout;
    rows.push([`fan-out: latency p50 / p99 (${f.subscriptions} subs, ${f.offeredRate}/s)`, `${fmt(f.latencyMs.p50, ' ms')} / ${fmt(f.latencyMs.p99, ' ms')}`, `≈${TARGETS.fanoutP50Ms} / ≈${TARGETS.fanoutP99Ms} ms`]);
    rows.push(['fan-out: delivered / expected (missing, dup, unexpected)', `${f.delivered}/${f.expectedDeliveries} (${f.missing}, ${f.duplicates}, ${f.unexpected})`, '']);
    rows.push(['fan-out: published / accepted (EVENT→OK p50 / p99)', `${f.published} / ${f.accepted} (${fmt(f.publishOkLatencyMs.p50, ' ms')} / ${fmt(f.publishOkLatencyMs.p99, ' ms')})`, '']);
  }
  if (r.idle) {
    const d = r.idle;
    rows.push([`idle: connections opened`, `${d.opened}/${d.connections}${d.error ? ` (${d.error})` : ''}`, TARGETS.idleConnections.toLocaleString('en-US')]);
    rows.push(['idle: relay RSS per connection', fmt(d.kibPerConnection, ' KiB'), `≈${TARGETS.idleKibPerConnection} KiB`]);
    rows.push(['idle: relay RSS before / with / after close', `${fmt(d.rssBeforeKiB)} / ${fmt(d.rssAfterKiB)} / ${fmt(d.rssAfterCloseKiB)} KiB`, '']);
  }
  // A relay that got little CPU (a shared machine) shows slow wall-clock figures: per-CPU-second ones still hold.
  const cpuRow = (name: string, x: { wallSec: number; relayCpuSec: number | null; benchCpuSec: number } | undefined): void => {
    if (!x) return;
    const share = x.relayCpuSec === null ? '' : ` (relay busy ${Math.round((100 * x.relayCpuSec) / x.wallSec)} % of one core)`;
    rows.push([`${name}: wall / relay CPU / bench CPU`, `${fmt(x.wallSec, ' s')} / ${fmt(x.relayCpuSec, ' s')} / ${fmt(x.benchCpuSec, ' s')}${share}`, '']);
  };
  cpuRow('ingest', r.ingest);
  cpuRow('queries', r.queries);
  cpuRow('fan-out', r.fanout);
  const w0 = Math.max(...rows.map((x) => x[0].length), 6);
  const w1 = Math.max(...rows.map((x) => x[1].length), 6);
  console.log(`\n${'metric'.padEnd(w0)}  ${'bazaar'.padEnd(w1)}  strfry (this machine class)`);
  console.log(`${'-'.repeat(w0)}  ${'-'.repeat(w1)}  ${'-'.repeat(27)}`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
  const la = (x: number[]): string => x.map((n) => n.toFixed(2)).join(' ');
  console.log(`\nload average at start ${la(load.start)}, at end ${la(load.end)} on ${availableParallelism()} cores${Math.max(...load.start, ...load.end) > availableParallelism() ? ' — the machine was busy with other work: trust the per-CPU-second figures over the wall-clock ones' : ''}`);
}

async function run(flags: FlagValues): Promise<number> {
  const phases = new Set((flags.phase as string[] | undefined)?.length ? (flags.phase as string[]) : PHASES);
  for (const p of phases) if (!(PHASES as readonly string[]).includes(p)) throw new UsageError(`--phase must be one of ${PHASES.join(', ')}, got ${JSON.stringify(p)}`);
  const relayUrl = flags['relay-url'] as string | undefined;
  const externalPid = flags.pid as number | undefined;
  if (relayUrl && !/^wss?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(relayUrl)) throw new UsageError('--relay-url must be a loopback ws:// URL (this benchmark only targets this machine)');
  if (externalPid !== undefined && !relayUrl) throw new UsageError('--pid only makes sense with --relay-url');
  if (relayUrl && (flags['relay-arg'] as string[] | undefined)?.length) throw new UsageError('--relay-arg only applies to the relay child, not to --relay-url');
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

  const ingestCount = flags['ingest-events'] as number;
  const storeCount = Math.max(flags['store-events'] as number, ingestCount);
  const preloaded = flags.preloaded as boolean;
  if (preloaded && !relayUrl) throw new UsageError('--preloaded needs --relay-url (a relay child always starts empty)');
  const needStore = phases.has('queries') && !preloaded;
  const corpusCount = phases.has('queries') ? storeCount : ingestCount;
  const corpusPath = resolve(ROOT, flags.corpus as string);
  console.log(`corpus: ${corpusCount} signed events (${corpusPath})…`);
  const tc = performance.now();
  const { events, cached } = await loadOrGenerateCorpus(corpusPath, { count: corpusCount, seed: 1, authors: 500 });
  console.log(`corpus ${cached ? 'loaded' : 'generated and cached'} in ${((performance.now() - tc) / 1000).toFixed(1)} s`);

  let child: RelayChild | undefined;
  let dataDir: string | undefined;
  let url = relayUrl;
  let pid = externalPid;
  const cleanup = async (): Promise<void> => {
    await child?.stop();
    child = undefined;
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  };
  const onSignal = (): void => {
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const report: Report = {};
  const loadStart = loadavg();
  try {
    if (!url) {
      dataDir = mkdtempSync(join(tmpdir(), 'bazaar-bench-relay-'));
      console.log(`starting relay (transport ${flags.transport as string}, data ${dataDir})…`);
      const extraArgs = (flags['relay-arg'] as string[] | undefined) ?? [];
      child = await startRelayChild({ bazaarScript: join(ROOT, 'scripts/bazaar.mjs'), dataDir, transport: flags.transport as string, extraArgs });
      url = child.url;
      pid = child.pid;
      console.log(`relay pid ${pid} at ${url}, RSS ${rssKiB(pid)} KiB`);
    }
    // Idle first, on the fresh relay: later phases leave freed heap and mapped LMDB pages
    // behind that new connections would reuse, hiding their cost in the RSS delta.
    if (phases.has('idle')) {
      console.log(`idle: opening ${idleCount} connections…`);
      report.idle = await runIdle(url, pid, { connections: idleCount });
    }
    const connections = flags.connections as number;
    const window = flags.window as number;
    const phaseTimeoutMs = (flags['phase-timeout'] as number) * 1000;
    if (phases.has('ingest') || needStore) {
      const ingestEvents = events.slice(0, ingestCount);
      console.log(`ingest: ${ingestEvents.length} events over ${connections} connections, window ${window}…`);
      report.ingest = await publishAll(url, pid, ingestEvents, { connections, window, timeoutMs: phaseTimeoutMs });
    }
    if (needStore && storeCount > ingestCount) {
      console.log(`loading the store to ${storeCount} events for the query phase…`);
      const load = await publishAll(url, pid, events.slice(ingestCount, storeCount), { connections, window, timeoutMs: phaseTimeoutMs * 4 });
      report.load = { ...load, storedApprox: (report.ingest?.accepted ?? 0) + load.accepted };
    }
    if (phases.has('queries')) {
      const mix = buildQueryMix(events.slice(0, storeCount), flags.reqs as number);
      console.log(`queries: ${mix.length} REQs from ${flags['query-connections'] as number} connections…`);
      report.queries = await runQueries(url, pid, mix, { connections: flags['query-connections'] as number, timeoutMs: phaseTimeoutMs });
    }
    if (phases.has('fanout')) {
      const fc = flags['fanout-connections'] as number;
      const spc = flags['subs-per-connection'] as number;
      console.log(`fan-out: ${fc * spc} subscriptions on ${fc} connections, ${flags['fanout-rate'] as number} events/s for ${flags['fanout-seconds'] as number} s…`);
      report.fanout = await runFanout(url, pid, { connections: fc, subsPerConn: spc, rate: flags['fanout-rate'] as number, seconds: flags['fanout-seconds'] as number });
    }
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }

  const load = { start: loadStart, end: loadavg() };
  printTable(report, load);
  const date = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = resolve(ROOT, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const outPath = join(outDir, `relay-${date}.json`);
  const json = {
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, memGiB: round(totalmem() / 2 ** 30), node: process.version, loadAverage: load },
    relay: relayUrl ? { url: relayUrl, pid: externalPid ?? null, started: false } : { transport: flags.transport, started: true },
    config: Object.fromEntries(Object.entries(flags).filter(([k]) => k !== 'corpus')),
    targets: TARGETS,
    results: report,
  };
  writeFileSync(outPath, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nresults written to ${outPath}`);
  return 0;
}

export const benchRelayCommand: CommandSpec = {
  name: 'bench:relay',
  summary: 'Benchmark a Nostr relay on loopback: ingest, queries, live fan-out, idle connections.',
  envPrefix: 'BAZAAR_BENCH_',
  details: `By default starts the Bazaar relay as a child process (node scripts/bazaar.mjs relay) on
127.0.0.1 with a fresh temporary data directory, and removes both afterwards.
With --relay-url it benchmarks a relay that is already running (e.g. strfry) and
reads that relay's CPU and RSS from /proc/<--pid>. Relay CPU is utime+stime from
/proc/PID/stat (all threads) divided by CLK_TCK. Results: bench-results/relay-<date>.json.`,
  flags: {
    transport: { type: 'string', choices: ['uws', 'ws'], default: 'uws', description: 'Transport of the relay child' },
    'relay-url': { type: 'string', description: 'Benchmark this already running relay (loopback only) instead of starting one' },
    pid: { type: 'number', integer: true, min: 1, description: 'PID of the --relay-url relay, for CPU and RSS figures' },
    'relay-arg': { type: 'string', multiple: true, description: 'Extra argument for the relay child (repeatable), e.g. --relay-arg=--verify-workers=0' },
    phase: { type: 'string', multiple: true, description: `Phase to run (repeatable; default all: ${PHASES.join(', ')})` },
    'ingest-events': { type: 'number', integer: true, min: 1, max: 1_000_000, default: 20_000, description: 'Events in the timed ingest phase' },
    'store-events': { type: 'number', integer: true, min: 1, max: 2_000_000, default: 110_000, description: 'Events in the store before the query phase' },
    connections: { type: 'number', integer: true, min: 1, max: 1000, default: 8, description: 'Publishing connections' },
    window: { type: 'number', integer: true, min: 1, max: 10_000, default: 32, description: 'EVENTs in flight per publishing connection' },
    reqs: { type: 'number', integer: true, min: 1, max: 1_000_000, default: 3000, description: 'REQs in the query phase' },
    'query-connections': { type: 'number', integer: true, min: 1, max: 1000, default: 8, description: 'Connections issuing REQs (one in flight each)' },
    'fanout-connections': { type: 'number', integer: true, min: 1, max: 10_000, default: 200, description: 'Subscriber connections in the fan-out phase' },
    'subs-per-connection': { type: 'number', integer: true, min: 1, max: 100, default: 5, description: 'Subscriptions per subscriber connection' },
    'fanout-rate': { type: 'number', integer: true, min: 1, max: 100_000, default: 500, description: 'Offered publish rate in the fan-out phase (events/s)' },
    'fanout-seconds': { type: 'number', min: 1, max: 600, default: 10, description: 'Duration of the fan-out publishing' },
    idle: { type: 'number', integer: true, min: 1, max: 100_000, default: 5000, description: 'Idle connections to open' },
    preloaded: { type: 'boolean', default: false, description: 'The --relay-url relay already holds the corpus (a previous run): query it without loading' },
    'phase-timeout': { type: 'number', min: 5, max: 3600, default: 120, description: 'Upper bound on each timed phase, seconds' },
    corpus: { type: 'string', default: 'bench-results/corpus-v1.jsonl', description: 'Cached signed-event file (generated when missing or too short)' },
  },
  run,
};

process.exitCode = await runCommand(benchRelayCommand, process.argv.slice(2));
