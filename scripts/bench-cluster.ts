// `npm run bench:cluster`: what the relay cluster costs and what NIP-77 sync moves.
//  - ingest: the same signed events published to one relay without a cluster, to a one-node
//    cluster and to a two-node cluster (clients split between the nodes), each on a fresh
//    nats-server -js: accepted events/s, per CPU-second of every process involved (relays +
//    nats-server), OK latency; for two nodes also the time until both hold every event.
//  - fanout: live delivery latency, publisher on node A, subscribers on A (local) and on B
//    (across the cluster), against the same on a relay without a cluster.
//  - sync: a 100 000-event difference reconciled and transferred by NIP-77, side by side with
//    strfry in the same run: ours pulling from strfry, strfry pulling from ours, strfry from strfry.
// On 2 cores the cluster is not expected to go faster than one relay: the figures show its
// overhead per event. Prints tables, writes bench-results/cluster-<date>.json.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { runCommand, UsageError, type CommandSpec, type FlagValues } from '@bazaar/cli-kit/command';
import { loadOrGenerateCorpus, makeKeys, signEvent } from './bench/corpus.ts';
import { findNatsServer, startNatsServer, type NatsServer } from '@bazaar/testkit/nats';
import { publishAll, type PublishResult } from './bench/phases.ts';
import { cpuSeconds, startRelayChild, type RelayChild } from '@bazaar/testkit/proc';
import { round, summarise, type Summary } from './bench/stats.ts';
import { findStrfry, startStrfryChild, type StrfryChild } from '@bazaar/testkit/strfry';
import { openMany, closeAll } from './bench/ws-client.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const BAZAAR = join(ROOT, 'scripts/bazaar.mjs');
const PHASES = ['ingest', 'fanout', 'sync'] as const;
const run = promisify(execFile);

const fmt = (n: number | null | undefined, unit = ''): string => {
  const r = round(n ?? null);
  return r === null ? 'n/a' : `${r.toLocaleString('en-US')}${unit}`;
};
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

interface Setup {
  readonly name: string;
  readonly nodes: RelayChild[];
  readonly nats: NatsServer | undefined;
  /** Every process whose CPU the figure counts. */
  readonly pids: number[];
  stop(): Promise<void>;
}

/** A relay without a cluster, or `nodes` cluster nodes on a fresh nats-server. */
async function startSetup(kind: 'single' | 'cluster', nodes: number, work: string, natsBin: string | undefined, transport: string): Promise<Setup> {
  const dir = mkdtempSync(join(work, `${kind}${nodes}-`));
  if (kind === 'single') {
    const relay = await startRelayChild({ bazaarScript: BAZAAR, dataDir: join(dir, 'relay'), transport, extraArgs: ['--no-market'] });
    return { name: 'relay, no cluster', nodes: [relay], nats: undefined, pids: [relay.pid], stop: () => relay.stop() };
  }
  if (!natsBin) throw new Error('nats-server is not installed');
  const nats = await startNatsServer({ binary: natsBin, workDir: dir });
  const started: RelayChild[] = [];
  try {
    for (let i = 0; i < nodes; i++) {
      started.push(await startRelayChild({
        bazaarScript: BAZAAR, dataDir: join(dir, `node${i}`), transport,
        extraArgs: ['--no-market', '--cluster', nats.url, '--node', `n${i}`],
      }));
    }
  } catch (err) {
    for (const r of started) await r.stop();
    await nats.stop();
    throw err;
  }
  return {
    name: `cluster, ${nodes} node${nodes > 1 ? 's' : ''}`,
    nodes: started,
    nats,
    pids: [...started.map((r) => r.pid), nats.pid],
    stop: async () => {
      for (const r of started) await r.stop();
      await nats.stop();
    },
  };
}

const cpuOfAll = (pids: readonly number[]): number => pids.reduce((s, p) => s + cpuSeconds(p), 0);

/** Resolves when every url holds `marker` (a live subscription, stored or live). */
async function waitForEvent(urls: readonly string[], marker: NostrEvent, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  const conns = await Promise.all(urls.map((u) => openMany(u, 1).then((c) => c[0])));
  try {
    await Promise.all(conns.map((c) => new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${marker.id} not replicated within ${timeoutMs} ms`)), timeoutMs);
      c.onMessage = (m) => {
        if (m[0] === 'EVENT' && (m[2] as NostrEvent).id === marker.id) {
          clearTimeout(timer);
          res();
        }
      };
      c.send(JSON.stringify(['REQ', 'm', { ids: [marker.id] }]));
    })));
  } finally {
    await closeAll(conns);
  }
  return performance.now() - t0;
}

interface IngestRow {
  readonly setup: string;
  readonly events: number;
  readonly accepted: number;
  readonly wallSec: number;
  readonly acceptedPerSec: number;
  readonly cpuSec: number;
  readonly acceptedPerCpuSec: number;
  /** Of cpuSec, what nats-server used. */
  readonly natsCpuSec: number;
  readonly okLatencyMs: Summary;
  /** Two nodes: seconds from the first EVENT until every node holds the last event. */
  readonly replicatedSec?: number;
  readonly loadAvg: string;
}

async function ingest(setup: Setup, events: readonly NostrEvent[], marker: NostrEvent, f: FlagValues): Promise<IngestRow> {
  const loadAvg = load();
  const cpu0 = cpuOfAll(setup.pids);
  const nats0 = setup.nats ? cpuSeconds(setup.nats.pid) : 0;
  const t0 = performance.now();
  // Clients split between the nodes, each with its share of the events.
  const shares = setup.nodes.map((_, i) => events.filter((_, j) => j % setup.nodes.length === i));
  const results: PublishResult[] = await Promise.all(setup.nodes.map((n, i) => publishAll(n.url, undefined, shares[i], {
    connections: Math.max(1, Math.floor((f.connections as number) / setup.nodes.length)),
    window: f.window as number,
    timeoutMs: Math.max(120_000, events.length * 10),
  })));
  const publishedSec = (performance.now() - t0) / 1000;
  let replicatedSec: number | undefined;
  if (setup.nodes.length > 1) {
    // The marker goes last into the stream: a node holding it holds everything before it.
    await publishAll(setup.nodes[0].url, undefined, [marker], { connections: 1, window: 1, timeoutMs: 60_000 });
    await waitForEvent(setup.nodes.map((n) => n.url), marker, 600_000);
    replicatedSec = (performance.now() - t0) / 1000;
  }
  const cpuSec = cpuOfAll(setup.pids) - cpu0;
  const natsCpuSec = setup.nats ? cpuSeconds(setup.nats.pid) - nats0 : 0;
  const accepted = results.reduce((s, r) => s + r.accepted, 0);
  const latencies = results.flatMap((r) => [r.okLatencyMs]);
  return {
    setup: setup.name,
    events: events.length,
    accepted,
    wallSec: publishedSec,
    acceptedPerSec: accepted / publishedSec,
    cpuSec,
    acceptedPerCpuSec: accepted / cpuSec,
    natsCpuSec,
    okLatencyMs: latencies.length === 1 ? latencies[0] : { count: latencies.reduce((s, l) => s + l.count, 0), p50: Math.max(...latencies.map((l) => l.p50)), p90: Math.max(...latencies.map((l) => l.p90)), p99: Math.max(...latencies.map((l) => l.p99)), max: Math.max(...latencies.map((l) => l.max)), mean: latencies.reduce((s, l) => s + l.mean, 0) / latencies.length } as Summary,
    ...(replicatedSec !== undefined ? { replicatedSec } : {}),
    loadAvg,
  };
}

interface FanoutRow {
  readonly setup: string;
  readonly subscriberNode: string;
  readonly subscriptions: number;
  readonly published: number;
  readonly expected: number;
  readonly delivered: number;
  readonly latencyMs: Summary;
  readonly cpuSec: number;
  readonly deliveriesPerCpuSec: number;
  readonly loadAvg: string;
}

/** Subscribers (one author each) on `subUrls`, a publisher on `pubUrl` at `rate`/s for `seconds`; latency send → delivery. */
async function fanout(setup: Setup, subUrls: { label: string; url: string }[], f: FlagValues): Promise<FanoutRow[]> {
  const loadAvg = load();
  const authors = await makeKeys(20);
  const perNode = f['fanout-connections'] as number;
  const rate = f['fanout-rate'] as number;
  const seconds = f['fanout-seconds'] as number;
  const groups = await Promise.all(subUrls.map(async ({ label, url }) => {
    const conns = await openMany(url, perNode);
    const latencies: number[] = [];
    let delivered = 0;
    let eose = 0;
    let onEose!: () => void;
    const allEose = new Promise<void>((r) => (onEose = r));
    conns.forEach((c, i) => {
      c.onMessage = (m) => {
        if (m[0] === 'EOSE' && ++eose === conns.length) onEose();
        if (m[0] !== 'EVENT') return;
        delivered++;
        const sentAt = Number((m[2] as NostrEvent).content);
        latencies.push(performance.timeOrigin + performance.now() - sentAt);
      };
      // Each connection follows one author (round robin): every event reaches perNode/20 connections per node.
      c.send(JSON.stringify(['REQ', 's', { authors: [authors[i % authors.length].pubkey], limit: 0 }]));
    });
    await allEose;
    return { label, conns, latencies, get delivered() { return delivered; } };
  }));
  const pub = (await openMany(setup.nodes[0].url, 1))[0];
  const cpu0 = cpuOfAll(setup.pids);
  const total = Math.round(rate * seconds);
  let oks = 0;
  let onOks!: () => void;
  const allOk = new Promise<void>((r) => (onOks = r));
  pub.onMessage = (m) => {
    if (m[0] === 'OK' && ++oks === total) onOks();
  };
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const e = await signEvent(authors[i % authors.length], { kind: 1, created_at: Math.floor(Date.now() / 1000), tags: [], content: String(performance.timeOrigin + performance.now()) });
    pub.send(JSON.stringify(['EVENT', e]));
  }
  await allOk;
  // Deliveries after the last OK: every subscriber has its events or never will (bounded wait).
  const expectedPerGroup = total * (perNode / authors.length);
  const drainUntil = performance.now() + 30_000;
  while (groups.some((g) => g.delivered < expectedPerGroup) && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
  const cpuSec = cpuOfAll(setup.pids) - cpu0;
  await closeAll([pub, ...groups.flatMap((g) => g.conns)]);
  const allDelivered = groups.reduce((s, g) => s + g.delivered, 0);
  return groups.map((g) => ({
    setup: setup.name,
    subscriberNode: g.label,
    subscriptions: perNode,
    published: total,
    expected: expectedPerGroup,
    delivered: g.delivered,
    latencyMs: summarise(g.latencies),
    cpuSec,
    deliveriesPerCpuSec: allDelivered / cpuSec,
    loadAvg,
  }));
}

interface SyncRow {
  readonly what: string;
  readonly client: string;
  readonly server: string;
  readonly need: number;
  readonly stored: number;
  readonly wallSec: number;
  readonly eventsPerSec: number;
  readonly clientCpuSec: number | null;
  readonly serverCpuSec: number;
  readonly eventsPerCpuSec: number | null;
  readonly loadAvg: string;
}

/** bash's `times` reports the CPU of the commands it ran: user and system seconds of its children. */
async function timed(cmd: string, args: readonly string[], cwd: string): Promise<{ wallSec: number; cpuSec: number; stdout: string }> {
  const quoted = [cmd, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const t0 = performance.now();
  const { stdout } = await run('bash', ['-c', `${quoted} >/tmp/bench-cluster-$$.out 2>&1; rc=$?; times; cat /tmp/bench-cluster-$$.out; rm -f /tmp/bench-cluster-$$.out; exit $rc`], { cwd, maxBuffer: 64 * 1024 * 1024 });
  const wallSec = (performance.now() - t0) / 1000;
  const lines = stdout.split('\n');
  const children = lines[1] ?? '';
  const secs = (s: string): number => {
    const m = /(\d+)m([\d.]+)s/.exec(s);
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
  };
  const [u, sy] = children.trim().split(/\s+/);
  return { wallSec, cpuSec: secs(u ?? '') + secs(sy ?? ''), stdout: lines.slice(2).join('\n') };
}

async function syncPhase(events: readonly NostrEvent[], strfryBin: string | undefined, work: string, transport: string, reasons: string[]): Promise<SyncRow[]> {
  const rows: SyncRow[] = [];
  if (!strfryBin) {
    reasons.push('sync: strfry is absent; only bazaar ↔ bazaar measured');
  }
  const dir = mkdtempSync(join(work, 'sync-'));
  const jsonl = events.map((e) => JSON.stringify(e)).join('\n') + '\n';
  // The source relays: strfry holding the events (loaded with strfry import, untimed), ours holding them.
  let strfrySrc: StrfryChild | undefined;
  if (strfryBin) {
    const w = join(dir, 'strfry-src');
    mkdirSync(w, { recursive: true });
    strfrySrc = await startStrfryChild({ binary: strfryBin, workDir: w });
    const child = execFile(strfryBin, [`--config=${join(w, 'strfry.conf')}`, 'import', '--no-verify'], { cwd: w, maxBuffer: 64 * 1024 * 1024 });
    child.stdin!.end(jsonl);
    await new Promise<void>((res, rej) => child.on('close', (code) => (code === 0 ? res() : rej(new Error(`strfry import exited ${code}`)))));
  }
  try {
    // 1. ours pulls everything from strfry (or, without strfry, loads by publishing), into an empty directory.
    const oursDir = join(dir, 'ours-src');
    if (strfrySrc) {
      const loadAvg = load();
      const s0 = cpuSeconds(strfrySrc.pid);
      const r = await timed(process.execPath, [BAZAAR, 'relay', 'sync', '--data', oursDir, '--from', strfrySrc.url, '--json', '--policies', 'none'], ROOT);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { need: number; stored: number };
      const serverCpu = cpuSeconds(strfrySrc.pid) - s0;
      rows.push({ what: 'bazaar relay sync ← strfry', client: 'bazaar', server: 'strfry', need: out.need, stored: out.stored, wallSec: r.wallSec, eventsPerSec: out.stored / r.wallSec, clientCpuSec: r.cpuSec, serverCpuSec: serverCpu, eventsPerCpuSec: out.stored / (r.cpuSec + serverCpu), loadAvg });
    } else {
      const seed = await startRelayChild({ bazaarScript: BAZAAR, dataDir: oursDir, transport, extraArgs: ['--no-market'] });
      await publishAll(seed.url, undefined, events, { connections: 8, window: 32, timeoutMs: events.length * 10 });
      await seed.stop();
    }
    const ours = await startRelayChild({ bazaarScript: BAZAAR, dataDir: oursDir, transport, extraArgs: ['--no-market'] });
    try {
      // 2. ours pulls from ours.
      {
        const loadAvg = load();
        const s0 = cpuSeconds(ours.pid);
        const r = await timed(process.execPath, [BAZAAR, 'relay', 'sync', '--data', join(dir, 'ours-dst'), '--from', ours.url, '--json', '--policies', 'none'], ROOT);
        const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { need: number; stored: number };
        const serverCpu = cpuSeconds(ours.pid) - s0;
        rows.push({ what: 'bazaar relay sync ← bazaar', client: 'bazaar', server: 'bazaar', need: out.need, stored: out.stored, wallSec: r.wallSec, eventsPerSec: out.stored / r.wallSec, clientCpuSec: r.cpuSec, serverCpuSec: serverCpu, eventsPerCpuSec: out.stored / (r.cpuSec + serverCpu), loadAvg });
      }
      if (strfryBin && strfrySrc) {
        // 3. strfry pulls from ours, 4. strfry pulls from strfry: each into an empty strfry database.
        for (const [what, src, pid] of [['strfry sync ← bazaar', ours.url, ours.pid], ['strfry sync ← strfry', strfrySrc.url, strfrySrc.pid]] as const) {
          const w = join(dir, `strfry-dst-${rows.length}`);
          mkdirSync(join(w, 'strfry-db'), { recursive: true });
          const { strfryConfig } = await import('@bazaar/testkit/strfry');
          const { readFileSync } = await import('node:fs');
          writeFileSync(join(w, 'strfry.conf'), strfryConfig(readFileSync(join(resolve(strfryBin, '..'), 'strfry.conf'), 'utf8'), 1, join(w, 'strfry-db')));
          const loadAvg = load();
          const s0 = cpuSeconds(pid);
          const r = await timed(strfryBin, [`--config=${join(w, 'strfry.conf')}`, 'sync', src, '--dir', 'down'], w);
          const serverCpu = cpuSeconds(pid) - s0;
          const count = Number((await run(strfryBin, [`--config=${join(w, 'strfry.conf')}`, 'scan', '--count', '{}'], { cwd: w })).stdout.trim().split('\n').at(-1));
          rows.push({ what, client: 'strfry', server: what.endsWith('bazaar') ? 'bazaar' : 'strfry', need: count, stored: count, wallSec: r.wallSec, eventsPerSec: count / r.wallSec, clientCpuSec: r.cpuSec, serverCpuSec: serverCpu, eventsPerCpuSec: count / (r.cpuSec + serverCpu), loadAvg });
        }
      }
    } finally {
      await ours.stop();
    }
  } finally {
    await strfrySrc?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

async function runBench(f: FlagValues): Promise<number> {
  const phases = (f.phase as string[] | undefined) ?? [...PHASES];
  for (const p of phases) if (!(PHASES as readonly string[]).includes(p)) throw new UsageError(`unknown phase ${JSON.stringify(p)} (phases: ${PHASES.join(', ')})`);
  const nats = findNatsServer();
  const strfry = findStrfry(ROOT, f.strfry as string | undefined);
  const reasons: string[] = [];
  if (!nats.path) reasons.push(`cluster setups skipped: ${nats.reason}`);
  if (!strfry.path && phases.includes('sync')) reasons.push(`strfry: ${strfry.reason}`);
  const ingestN = f.events as number;
  const syncN = f['sync-events'] as number;
  const need = Math.max(phases.includes('ingest') ? ingestN + 1 : 0, phases.includes('sync') ? syncN : 0);
  const corpusPath = resolve(ROOT, f.corpus as string);
  console.log(`bench:cluster — ${cpus().length} CPUs (${availableParallelism()} available), load ${load()}; corpus ${corpusPath}`);
  const { events } = await loadOrGenerateCorpus(corpusPath, { count: Math.max(need, 1), seed: 1, authors: 500 });
  const work = mkdtempSync(join(tmpdir(), 'bazaar-bench-cluster-'));
  const transport = f.transport as string;
  const report: Record<string, unknown> = { date: new Date().toISOString(), cpus: cpus().length, loadAvgStart: load(), flags: f, skipped: reasons };
  try {
    if (phases.includes('ingest')) {
      const rows: IngestRow[] = [];
      const slice = events.slice(0, ingestN);
      const marker = events[ingestN];
      for (const [kind, n] of [['single', 1], ['cluster', 1], ['cluster', 2]] as const) {
        if (kind === 'cluster' && !nats.path) continue;
        const setup = await startSetup(kind, n, work, nats.path, transport);
        try {
          rows.push(await ingest(setup, slice, marker, f));
        } finally {
          await setup.stop();
        }
      }
      report.ingest = rows;
      console.log(`\ningest: ${ingestN.toLocaleString('en-US')} signed events, ${f.connections as number} connections × ${f.window as number} in flight (split between nodes)`);
      console.table(rows.map((r) => ({
        setup: r.setup, accepted: r.accepted, 'events/s': fmt(r.acceptedPerSec), 'CPU s (all processes)': fmt(r.cpuSec), 'of which NATS': r.setup.startsWith('relay') ? '—' : fmt(r.natsCpuSec), 'events/CPU-s': fmt(r.acceptedPerCpuSec),
        'OK p50/p99 ms': `${fmt(r.okLatencyMs.p50)} / ${fmt(r.okLatencyMs.p99)}`, 'on every node after s': r.replicatedSec === undefined ? '—' : fmt(r.replicatedSec), load: r.loadAvg,
      })));
    }
    if (phases.includes('fanout')) {
      const rows: FanoutRow[] = [];
      for (const [kind, n] of [['single', 1], ['cluster', 1], ['cluster', 2]] as const) {
        if (kind === 'cluster' && !nats.path) continue;
        const setup = await startSetup(kind, n, work, nats.path, transport);
        try {
          const subs = setup.nodes.map((node, i) => ({ label: i === 0 ? 'A (publisher\'s node)' : 'B (other node)', url: node.url }));
          rows.push(...await fanout(setup, subs, f));
        } finally {
          await setup.stop();
        }
      }
      report.fanout = rows;
      console.log(`\nfan-out: ${f['fanout-rate'] as number} events/s for ${f['fanout-seconds'] as number} s published on node A; ${f['fanout-connections'] as number} subscriber connections per node, each following 1 of 20 authors`);
      console.table(rows.map((r) => ({
        setup: r.setup, subscribers: r.subscriberNode, delivered: `${r.delivered}/${r.expected}`, 'p50 / p99 ms': `${fmt(r.latencyMs.p50)} / ${fmt(r.latencyMs.p99)}`,
        'deliveries/CPU-s': fmt(r.deliveriesPerCpuSec), load: r.loadAvg,
      })));
    }
    if (phases.includes('sync')) {
      const rows = await syncPhase(events.slice(0, syncN), strfry.path, work, transport, reasons);
      report.sync = rows;
      console.log(`\nNIP-77 sync of a ${syncN.toLocaleString('en-US')}-event difference (into an empty store; client and server CPU)`);
      console.table(rows.map((r) => ({
        sync: r.what, stored: r.stored, 's': fmt(r.wallSec), 'events/s': fmt(r.eventsPerSec), 'client CPU s': fmt(r.clientCpuSec), 'server CPU s': fmt(r.serverCpuSec), 'events/CPU-s': fmt(r.eventsPerCpuSec), load: r.loadAvg,
      })));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const r of reasons) console.log(`note: ${r}`);
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  const out = join(ROOT, 'bench-results', `cluster-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`\nJSON: ${out}`);
  return 0;
}

const benchClusterCommand: CommandSpec = {
  name: 'bench:cluster',
  summary: 'The relay cluster\'s cost per event (1 relay vs 1 and 2 cluster nodes) and NIP-77 sync throughput side by side with strfry.',
  details: `Starts every process itself on 127.0.0.1 with fresh directories: relays (node scripts/bazaar.mjs
relay), nats-server -js (scripts/setup.sh installs it; cluster setups are skipped without it) and
strfry (shared/bin/strfry beside the project root or its parent, or --strfry; the sync rows with
strfry are skipped without it). CPU is utime+stime from /proc of every process involved (relays,
nats-server) or, for a sync client, bash's times of the command. Events come from the bench corpus
(bench-results/corpus-v1.jsonl, shared with bench:relay; generated when missing).`,
  flags: {
    phase: { type: 'string', multiple: true, description: `Phase to run (repeatable; default all: ${PHASES.join(', ')})` },
    events: { type: 'number', integer: true, min: 100, max: 1_000_000, default: 20_000, description: 'Events published in the ingest phase' },
    connections: { type: 'number', integer: true, min: 1, max: 1000, default: 8, description: 'Publishing connections (split between nodes)' },
    window: { type: 'number', integer: true, min: 1, max: 10_000, default: 32, description: 'EVENTs in flight per publishing connection' },
    'fanout-connections': { type: 'number', integer: true, min: 20, max: 10_000, default: 100, description: 'Subscriber connections per node' },
    'fanout-rate': { type: 'number', integer: true, min: 1, max: 10_000, default: 200, description: 'Events per second published on node A' },
    'fanout-seconds': { type: 'number', min: 1, max: 600, default: 10, description: 'Seconds of publishing' },
    'sync-events': { type: 'number', integer: true, min: 100, max: 2_000_000, default: 100_000, description: 'Size of the NIP-77 difference' },
    strfry: { type: 'string', env: 'BAZAAR_STRFRY', description: 'The strfry binary (default: shared/bin/strfry beside the project root or its parent)' },
    transport: { type: 'string', choices: ['uws', 'ws'], default: 'uws', description: 'Transport of the relays' },
    corpus: { type: 'string', default: 'bench-results/corpus-v1.jsonl', description: 'Cached signed-event file (generated when missing or too short)' },
  },
  run: runBench,
};

process.exitCode = await runCommand(benchClusterCommand, process.argv.slice(2));
