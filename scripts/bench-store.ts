// `node --import=tsx scripts/bench-store.ts`: micro-benchmark of the relay's LMDB
// event store alone (no sockets, no signature checks): durable bulk insert through
// the batched writer, the same insert one put at a time, then the relay benchmark's
// query mix (ids, authors+kinds, #e, #p+kinds, kinds 5xxx since/until, #k on 31990,
// kinds 1 limit 500) with per-type latency percentiles and queries per CPU-second.
// Uses the relay benchmark's signed corpus (bench-results/corpus-v1.jsonl).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, type CommandSpec, type FlagValues } from '@bazaar/cli-kit/command';
import { loadOrGenerateCorpus } from './bench/corpus.ts';
import { buildQueryMix } from './bench/phases.ts';
import { round, summarise } from './bench/stats.ts';
import { openLmdbStore } from '../relay/src/store/lmdb-store.ts';

const cpuSec = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
};

const fmt = (n: number): string => String(round(n));

async function run(flags: FlagValues): Promise<number> {
  const count = flags.events as number;
  const inFlight = flags['in-flight'] as number;
  const batch = flags.batch as number;
  const { events, cached } = await loadOrGenerateCorpus(flags.corpus as string, { count, seed: 1 });
  console.log(`corpus: ${events.length} events (${cached ? 'cached' : 'generated'}) from ${flags.corpus as string}`);
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-bench-store-'));
  const store = await openLmdbStore({ path: dir, purgeIntervalMs: 0 });
  try {
    // 1. Durable bulk insert: `inFlight` concurrent put() calls of `batch` events each,
    //    as from many connections; the writer folds them into few transactions.
    let cpu0 = process.cpuUsage();
    let t0 = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < events.length) {
        const slice = events.slice(next, next + batch);
        next += slice.length;
        await store.put(slice);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    let wall = (performance.now() - t0) / 1000;
    let cpu = cpuSec(cpu0);
    const tx = store.writerStats().transactions;
    console.log(`bulk insert: ${events.length} events, ${inFlight} puts in flight x ${batch} event(s): ${fmt(events.length / wall)} events/s, ${fmt(events.length / cpu)} events/CPU-s, ${tx} transactions (${fmt(events.length / tx)} events each), ${store.size()} stored`);

    // 2. The same durable writes one at a time (no batching possible): what batching buys.
    const seqCount = Math.min(flags.sequential as number, events.length);
    const seqStore = await openLmdbStore({ path: join(dir, 'sequential'), purgeIntervalMs: 0 });
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    for (let i = 0; i < seqCount; i++) await seqStore.put([events[i]]);
    wall = (performance.now() - t0) / 1000;
    cpu = cpuSec(cpu0);
    console.log(`sequential insert: ${seqCount} events one awaited put at a time: ${fmt(seqCount / wall)} events/s, ${fmt(seqCount / cpu)} events/CPU-s`);
    await seqStore.close();

    // 3. Queries: the relay benchmark's mix, run back to back.
    const mix = buildQueryMix(events, flags.reqs as number);
    for (const q of mix.slice(0, 50)) await store.query([q.filter]); // warm up
    const byType = new Map<string, { ms: number[]; events: number; cpu: number }>();
    const all0 = process.cpuUsage();
    const allT0 = performance.now();
    for (const q of mix) {
      const c0 = process.cpuUsage();
      const s = performance.now();
      const out = await store.query([q.filter]);
      const ms = performance.now() - s;
      const entry = byType.get(q.type) ?? { ms: [], events: 0, cpu: 0 };
      entry.ms.push(ms);
      entry.events += out.length;
      entry.cpu += cpuSec(c0);
      byType.set(q.type, entry);
    }
    const allWall = (performance.now() - allT0) / 1000;
    const allCpu = cpuSec(all0);
    console.log(`queries: ${mix.length} over ${store.size()} events: ${fmt(mix.length / allWall)} queries/s, ${fmt(mix.length / allCpu)} queries/CPU-s`);
    console.log('  type                         p50 ms   p99 ms   avg events   queries/CPU-s');
    for (const [type, e] of byType) {
      const s = summarise(e.ms);
      console.log(`  ${type.padEnd(28)} ${fmt(s.p50).padStart(6)} ${fmt(s.p99).padStart(8)} ${fmt(e.events / e.ms.length).padStart(12)} ${fmt(e.ms.length / Math.max(e.cpu, 1e-9)).padStart(15)}`);
    }

    // 3b. What a relay pays to put results on the wire: strings framed and UTF-8 encoded
    //     (as a WebSocket library does with a string) vs queryFrames' ready-made bytes.
    const prefix = '["EVENT","bench-sub",';
    let c1 = process.cpuUsage();
    let bytes = 0;
    for (const q of mix) for (const row of await store.query([q.filter])) bytes += Buffer.byteLength(prefix + row + ']');
    const stringCpu = cpuSec(c1);
    const prefixBuf = Buffer.from(prefix);
    const suffixBuf = Buffer.from(']');
    c1 = process.cpuUsage();
    let frameBytes = 0;
    for (const q of mix) for (const f of await store.queryFrames([q.filter], prefixBuf, suffixBuf)) frameBytes += f.length;
    const frameCpu = cpuSec(c1);
    console.log(`framing for the wire: query()+frame+encode ${fmt(mix.length / stringCpu)} queries/CPU-s, queryFrames() ${fmt(mix.length / frameCpu)} queries/CPU-s (${bytes === frameBytes ? 'same bytes' : `BYTES DIFFER ${bytes} vs ${frameBytes}`})`);

    // 4. NIP-45 counts over the same mix (limits ignored).
    const counts = mix.slice(0, Math.min(700, mix.length));
    const c0 = process.cpuUsage();
    const cT0 = performance.now();
    let total = 0;
    for (const q of counts) total += await store.count([q.filter]);
    console.log(`counts: ${counts.length} in ${fmt(performance.now() - cT0)} ms (${fmt(counts.length / cpuSec(c0))} counts/CPU-s, avg ${fmt(total / counts.length)} events counted)`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}

export const benchStoreCommand: CommandSpec = {
  name: 'bench-store',
  summary: 'Micro-benchmark of the relay LMDB store: durable bulk insert, unbatched insert, the query mix, counts.',
  envPrefix: 'BAZAAR_BENCH_STORE_',
  details: 'Runs in-process on a fresh temporary LMDB directory (removed afterwards). CPU figures are this process\'s\nuser+system time, which includes lmdb-js\'s write thread.',
  flags: {
    events: { type: 'number', integer: true, min: 1, max: 2_000_000, default: 100_000, description: 'Events to insert before querying' },
    'in-flight': { type: 'number', integer: true, min: 1, max: 100_000, default: 256, description: 'Concurrent put() calls during the bulk insert' },
    batch: { type: 'number', integer: true, min: 1, max: 10_000, default: 1, description: 'Events per put() call during the bulk insert' },
    sequential: { type: 'number', integer: true, min: 1, max: 100_000, default: 500, description: 'Events for the one-put-at-a-time comparison' },
    reqs: { type: 'number', integer: true, min: 7, max: 1_000_000, default: 3500, description: 'Queries in the query phase (mix cycles through 7 types)' },
    corpus: { type: 'string', default: 'bench-results/corpus-v1.jsonl', description: 'Cached signed-event corpus (generated when missing or too short)' },
  },
  run,
};

process.exitCode = await runCommand(benchStoreCommand, process.argv.slice(2));
