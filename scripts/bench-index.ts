// `npm run bench:index`: what the market index costs on ingest. Runs bench:relay's ingest phase
// (our relay only) with the market off (`--no-market`) and on, alternately, several rounds (the
// machine is shared: alternating exposes both to the same noise), and compares events per relay
// CPU-second and bytes written per event.
// Results: bench-results/index-<date>.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, type CommandSpec } from '@bazaar/cli-kit/command';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

interface Run {
  readonly market: boolean;
  readonly perRelayCpuSec: number;
  readonly perSec: number;
  readonly relayCpuSec: number;
  readonly diskBytesPerEvent?: number;
  readonly load: number;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

export const benchIndexCommand: CommandSpec = {
  name: 'bench:index',
  summary: 'Ingest with the market index on vs off (bench:relay ingest phase, alternating rounds).',
  envPrefix: 'BAZAAR_BENCH_INDEX_',
  flags: {
    rounds: { type: 'number', integer: true, min: 1, default: 3, description: 'Off/on pairs to run' },
    'ingest-events': { type: 'number', integer: true, min: 1000, default: 20000, description: 'Events in each ingest phase' },
    transport: { type: 'string', choices: ['uws', 'ws'], default: 'uws', description: 'Relay transport' },
  },
  async run(f) {
    const runs: Run[] = [];
    for (let r = 0; r < (f.rounds as number); r++) {
      for (const market of [false, true]) {
        const load = loadavg()[0];
        const out = spawnSync(process.execPath, ['--import=tsx', join(ROOT, 'scripts/bench-relay.ts'), '--relay', 'bazaar', '--phase', 'ingest', '--ingest-events', String(f['ingest-events']), '--transport', f.transport as string, `--relay-arg=${market ? '--market' : '--no-market'}`], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
        const path = /results written to (\S+)/.exec(out.stdout ?? '')?.[1];
        if (out.status !== 0 || !path) {
          process.stderr.write(`bench:relay failed (exit ${out.status}):\n${(out.stderr ?? '').slice(-2000)}\n`);
          return 1;
        }
        type Ingest = { acceptedPerRelayCpuSec: number; acceptedPerSec: number; relayCpuSec: number; accepted: number; writeSyscallBytes?: number | null };
        const results = (JSON.parse(readFileSync(path, 'utf8')) as { results: { bazaar?: { ingest: Ingest }; ingest?: Ingest } }).results;
        const ingest = (results.bazaar?.ingest ?? results.ingest)!;
        runs.push({
          market, perRelayCpuSec: ingest.acceptedPerRelayCpuSec, perSec: ingest.acceptedPerSec, relayCpuSec: ingest.relayCpuSec, load,
          ...(typeof ingest.writeSyscallBytes === 'number' ? { diskBytesPerEvent: ingest.writeSyscallBytes / ingest.accepted } : {}),
        });
        process.stdout.write(`round ${r + 1} market ${market ? 'on ' : 'off'}: ${Math.round(ingest.acceptedPerRelayCpuSec)} events per relay CPU-second, ${Math.round(ingest.acceptedPerSec)} events/s (load ${load.toFixed(1)})\n`);
      }
    }
    const off = median(runs.filter((x) => !x.market).map((x) => x.perRelayCpuSec));
    const on = median(runs.filter((x) => x.market).map((x) => x.perRelayCpuSec));
    const change = (on / off - 1) * 100;
    process.stdout.write(`\nmedian events per relay CPU-second: index off ${Math.round(off)}, on ${Math.round(on)} (${change >= 0 ? '+' : ''}${change.toFixed(1)} %)\n`);
    const disk = (m: boolean) => median(runs.filter((x) => x.market === m && x.diskBytesPerEvent !== undefined).map((x) => x.diskBytesPerEvent!));
    if (!Number.isNaN(disk(false))) process.stdout.write(`median bytes written per event (write syscalls): off ${Math.round(disk(false))}, on ${Math.round(disk(true))}\n`);
    const dir = resolve(ROOT, 'bench-results');
    mkdirSync(dir, { recursive: true });
    const outPath = join(dir, `index-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(outPath, JSON.stringify({ date: new Date().toISOString(), config: f, runs, median: { off, on, changePercent: change } }, null, 2) + '\n');
    process.stdout.write(`results written to ${outPath}\n`);
    return 0;
  },
};

process.exitCode = await runCommand(benchIndexCommand, process.argv.slice(2));
