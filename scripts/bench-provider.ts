// npm run bench:provider — throughput and request→result latency of the provider for
// trivial SandboxRun jobs (`true` in bubblewrap) on loopback, at capacity 1 and 4.
// Real parts: our relay (ws transport), the devnet NWC wallet (pay-after-verify invoices are
// made for every result unless --no-wallet), the provider, and a raw ws customer.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import WebSocket from 'ws';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { startRelay } from '../relay/src/server.ts';
import { startDevnet } from '../agents/devnet/src/devnet.ts';
import { createKeystoreFile } from '../agents/common/src/identity/keystore.ts';
import { configTemplate } from '../agents/provider/src/config.ts';
import { startProvider } from '../agents/provider/src/runtime.ts';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '60' },
    capacities: { type: 'string', default: '1,4' },
    cmd: { type: 'string', default: 'true' },
    'no-wallet': { type: 'boolean', default: false },
    'disk-relay': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`Usage: npm run bench:provider -- [--jobs N] [--capacities 1,4] [--cmd 'true'] [--no-wallet] [--disk-relay]

Posts N SandboxRun jobs at once per capacity setting and measures jobs per minute and
request→result latency (p50/p99) as the customer sees it. The relay keeps its data on
/dev/shm unless --disk-relay (then its fsync latency is part of every figure).
`);
  process.exit(0);
}
const N = Number(values.jobs);
const capacities = values.capacities!.split(',').map(Number);
if (!Number.isInteger(N) || N < 1 || capacities.some((c) => !Number.isInteger(c) || c < 1)) {
  process.stderr.write('error: --jobs and --capacities must be positive integers\n');
  process.exit(2);
}

const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'silent' });
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

async function run(): Promise<void> {
  const dirs: string[] = [];
  const tmp = (p: string) => {
    const d = mkdtempSync(join(tmpdir(), p));
    dirs.push(d);
    return d;
  };
  // The relay acknowledges an event only once it is durable; on tmpfs (/dev/shm) that costs
  // nothing, so the figures are the provider's own, not this machine's disk flush latency.
  const shm = existsSync('/dev/shm') && !values['disk-relay'];
  const relayDir = shm ? mkdtempSync('/dev/shm/bench-prov-relay-') : tmp('bench-prov-relay-');
  if (shm) dirs.push(relayDir);
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: relayDir, transport: 'ws', logger });
  const devnet = values['no-wallet'] ? undefined : await startDevnet({ dataDir: tmp('bench-prov-devnet-'), relayUrl: relay.url, logger, mint: false, nwc: { rateLimit: { burst: 100_000, perSecond: 100_000 } } });
  const nwcUri = devnet?.account('provider').uri;
  await devnet?.nwc.refresh();
  process.stdout.write(`provider bench: ${N} jobs per run, cmd ${JSON.stringify(values.cmd)}, bwrap, ${devnet ? 'NWC invoices (pay-after-verify)' : 'no wallet'}, relay ${relay.url} (data on ${shm ? 'tmpfs' : 'disk'})\n\n`);
  process.stdout.write('capacity  jobs/min   p50 ms   p99 ms   max ms   cpu ms/job\n');
  try {
    for (const capacity of capacities) {
      const dir = tmp('bench-prov-data-');
      await createKeystoreFile(join(dir, 'keys.json'), 'bench passphrase', { logN: 10 });
      writeFileSync(join(dir, 'config.jsonc'), configTemplate({ relays: [relay.url], ...(nwcUri ? { nwcUri } : {}) }));
      const p = await startProvider({ dataDir: dir, passphrase: 'bench passphrase', logger, overrides: { capacity, queue: N, rateLimit: { burst: N * 2, perMinute: N * 2 }, heartbeatSecs: 3600, lookbackSecs: 0 } });
      try {
        const sk = generateSecretKey();
        const me = getPublicKey(sk);
        const ws = new WebSocket(relay.url);
        await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
        const sent = new Map<string, number>();
        const lat: number[] = [];
        let resolveAll!: () => void;
        const all = new Promise<void>((r) => (resolveAll = r));
        ws.on('message', (d) => {
          const m = JSON.parse(d.toString()) as [string, string, { kind: number; tags: string[][] }];
          if (m[0] !== 'EVENT' || m[2].kind !== 6930) return;
          const id = m[2].tags.find((x) => x[0] === 'e')?.[1];
          const t0 = id ? sent.get(id) : undefined;
          if (t0 === undefined) return;
          sent.delete(id!);
          lat.push(performance.now() - t0);
          if (lat.length === N) resolveAll();
        });
        ws.send(JSON.stringify(['REQ', 'r', { kinds: [6930], '#p': [me] }]));
        // Warm-up job (first bwrap spawn, JIT) outside the measurement.
        const warm = finalizeEvent({ kind: 5930, created_at: Math.floor(Date.now() / 1000), content: '', tags: [['param', 'cmd', values.cmd!], ['param', 'time_limit_secs', '30'], ['t', 'warm']] }, sk);
        await new Promise<void>((r) => {
          const on = (d: WebSocket.RawData) => {
            const m = JSON.parse(d.toString()) as [string, string, { kind: number; tags: string[][] }];
            if (m[0] === 'EVENT' && m[2].tags.some((x) => x[0] === 'e' && x[1] === warm.id)) {
              ws.off('message', on);
              r();
            }
          };
          ws.on('message', on);
          ws.send(JSON.stringify(['EVENT', warm]));
        });
        const start = performance.now();
        const cpu0 = process.cpuUsage();
        for (let i = 0; i < N; i++) {
          const e = finalizeEvent({ kind: 5930, created_at: Math.floor(Date.now() / 1000), content: '', tags: [['param', 'cmd', values.cmd!], ['param', 'time_limit_secs', '30'], ['t', String(i)]] }, sk);
          sent.set(e.id, performance.now());
          ws.send(JSON.stringify(['EVENT', e]));
        }
        const timeout = setTimeout(() => { process.stderr.write(`timed out with ${lat.length}/${N} results\n`); resolveAll(); }, 10 * 60_000);
        await all;
        clearTimeout(timeout);
        const elapsed = performance.now() - start;
        const cpu = process.cpuUsage(cpu0);
        ws.close();
        // CPU of this whole process (provider, relay, NWC service, customer) per job; the
        // sandboxed command itself runs in child processes and is not counted.
        const cpuPerJob = (cpu.user + cpu.system) / 1000 / lat.length;
        process.stdout.write(`${String(capacity).padStart(8)}  ${((lat.length / elapsed) * 60_000).toFixed(0).padStart(8)}  ${pct(lat, 50).toFixed(0).padStart(7)}  ${pct(lat, 99).toFixed(0).padStart(7)}  ${Math.max(...lat).toFixed(0).padStart(7)}  ${cpuPerJob.toFixed(1).padStart(11)}\n`);
      } finally {
        await p.close();
      }
    }
    // Latency of one job at a time (no queueing): the request→result figure the issue targets.
    const dir = tmp('bench-prov-data-');
    await createKeystoreFile(join(dir, 'keys.json'), 'bench passphrase', { logN: 10 });
    writeFileSync(join(dir, 'config.jsonc'), configTemplate({ relays: [relay.url], ...(nwcUri ? { nwcUri } : {}) }));
    const p = await startProvider({ dataDir: dir, passphrase: 'bench passphrase', logger, overrides: { capacity: 1, rateLimit: { burst: 1000, perMinute: 1000 }, heartbeatSecs: 3600, lookbackSecs: 0 } });
    try {
      const sk = generateSecretKey();
      const ws = new WebSocket(relay.url);
      await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
      ws.send(JSON.stringify(['REQ', 'r', { kinds: [6930], '#p': [getPublicKey(sk)] }]));
      const lat: number[] = [];
      let cpu0 = process.cpuUsage();
      for (let i = 0; i < Math.min(N, 30) + 1; i++) {
        if (i === 1) cpu0 = process.cpuUsage();
        const e = finalizeEvent({ kind: 5930, created_at: Math.floor(Date.now() / 1000), content: '', tags: [['param', 'cmd', values.cmd!], ['param', 'time_limit_secs', '30'], ['t', `s${i}`]] }, sk);
        const t0 = performance.now();
        await new Promise<void>((r) => {
          const on = (d: WebSocket.RawData) => {
            const m = JSON.parse(d.toString()) as [string, string, { tags: string[][] }];
            if (m[0] === 'EVENT' && m[2].tags.some((x) => x[0] === 'e' && x[1] === e.id)) {
              ws.off('message', on);
              r();
            }
          };
          ws.on('message', on);
          ws.send(JSON.stringify(['EVENT', e]));
        });
        if (i > 0) lat.push(performance.now() - t0); // first one is warm-up
      }
      const cpu = process.cpuUsage(cpu0);
      ws.close();
      process.stdout.write(`\nsequential (one job in flight): request→result p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms over ${lat.length} jobs (target p50 < 200 ms); ${((cpu.user + cpu.system) / 1000 / lat.length).toFixed(1)} cpu ms/job\n`);
    } finally {
      await p.close();
    }
  } finally {
    await devnet?.close();
    await relay.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

await run();
