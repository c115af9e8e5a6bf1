// A provider pool for real: `nats-server -js` on loopback, our relay, and two `bazaar provider
// serve --cluster` processes sharing one sealed identity (the same keys.json and passphrase,
// each its own data directory). 50 jobs → each claimed, run and answered exactly once, by both
// workers between them; the heartbeat and announcement speak for the pool. Then a worker is
// SIGKILLed mid-job → the other takes the job over after the lease, one result; the dead
// worker restarts and does not answer the job again; a worker frozen (SIGSTOP) mid-job loses
// its lease, and when it wakes it publishes nothing for the job the other one finished. Paid
// jobs land in the pool's one earnings book, whichever worker delivered them; a worker that
// cannot reach NATS refuses to start with the reason.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { parseHeartbeat } from '@bazaar/dvm-kinds/market/heartbeat';
import { parseAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { buildPing, isPong, parsePong } from '@bazaar/dvm-kinds/market/ping';
import { readKeystoreFile } from '@bazaar/agents-common/identity/keystore';
import { startRelay } from '@bazaar/relay/server';
import { findNatsServer, startNatsServer } from '@bazaar/testkit/nats';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { ProviderStore } from '../src/store.ts';
import { bucketNames } from '../src/pool/pool.ts';
import type { Claim } from '../src/pool/claims.ts';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import { parseJobResult } from '@bazaar/dvm-kinds/job';
import { freePort } from '@bazaar/testkit/proc';
import { readPoolEarnings } from '../src/pool/pool.ts';
import { bazaar, cliJson, Customer, isResult, logger, makeProviderDir, query, runProvider, sandboxJob, startMarket, tempDir, waitFor } from './helpers.ts';

const natsBin = findNatsServer();
/** Short, so a dead worker's job is re-run quickly; long enough that 50 queued jobs keep their leases on a loaded machine. */
const LEASE_MS = 3000;
// Five provider processes start and stop in turn: minutes on a loaded 2-core machine.
t.setTimeout(10 * 60_000);

type Worker = ReturnType<typeof bazaar>;

interface LogLine {
  msg: string;
  worker?: string;
  jobId?: string;
  from?: string;
  [k: string]: unknown;
}

const logLines = (w: Worker): LogLine[] =>
  w.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

t.test('a worker that cannot reach NATS does not start, and says why', async (t) => {
  const dir = await makeProviderDir(t, ['ws://127.0.0.1:9']);
  const url = `nats://127.0.0.1:${await freePort()}`;
  const p = bazaar(['provider', 'serve', '--data', dir, '--cluster', url, '--worker', 'a']);
  t.equal(await p.exited, 1, 'exit 1');
  t.match(p.out(), `error: cannot reach NATS at ${url}`, 'the error names the NATS URL');
  const e = bazaar(['provider', 'earnings', '--data', dir, '--cluster', url]);
  t.equal(await e.exited, 1);
  t.match(e.out(), 'cannot reach NATS', 'earnings --cluster too');
});

if (!natsBin.path) {
  t.test('provider pool', { skip: `provider pool: ${natsBin.reason}` }, () => {});
} else {
  t.test('provider pool: two workers on one identity', async (t) => {
    const work = tempDir(t, 'bazaar-pool-');
    const nats = await startNatsServer({ binary: natsBin.path!, workDir: work });
    const relayDir = tempDir(t, 'bazaar-pool-relay-');
    const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: relayDir, transport: 'ws', verifyWorkers: 0, logger });
    const dirA = await makeProviderDir(t, [relay.url]);
    const dirB = tempDir(t, 'bazaar-pool-b-');
    // One identity: the second worker gets the same sealed key file; its own LMDB and trajectories.
    copyFileSync(join(dirA, 'keys.json'), join(dirB, 'keys.json'));
    const config = { relays: [relay.url], kinds: [5930], capacity: 2, queue: 48, rate_limit: { burst: 200, per_minute: 6000 }, heartbeat_secs: 3600 };
    for (const d of [dirA, dirB]) writeFileSync(join(d, 'config.jsonc'), JSON.stringify(config), { mode: 0o600 });
    const { pubkey } = await readKeystoreFile(join(dirA, 'keys.json'));
    const c = await new Customer(relay.url).ready();
    c.ws.send(JSON.stringify(['REQ', 'pool', { kinds: [11998, 31990], authors: [pubkey] }]));

    const workers = new Set<Worker>();
    const serve = (dir: string, name: string): Worker => {
      const w = bazaar(['provider', 'serve', '--data', dir, '--cluster', nats.url, '--worker', name, '--cluster-lease-ms', String(LEASE_MS), '--invoice-poll-ms', '300']);
      workers.add(w);
      return w;
    };
    const stop = async (w: Worker) => {
      w.kill('SIGTERM');
      await w.exited;
      workers.delete(w);
    };
    t.teardown(async () => {
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all([...workers].map((w) => w.exited));
      c.close();
      await relay.close();
      await nats.stop();
    });
    const claims = async (): Promise<Map<string, Claim>> => {
      const nc = await connect({ servers: nats.url.replace('nats://', '') });
      try {
        const kv = await new Kvm(nc).open(bucketNames(pubkey).jobs);
        const out = new Map<string, Claim>();
        for await (const k of await kv.keys()) out.set(k, (await kv.get(k))!.json<Claim>());
        return out;
      } finally {
        await nc.close();
      }
    };

    let a = serve(dirA, 'a');
    let b = serve(dirB, 'b');
    await Promise.all([a.waitFor(/"msg":"provider started"/), b.waitFor(/"msg":"provider started"/)]);
    // The leader speaks for both: a heartbeat with 2 workers and the summed capacity.
    const beat = await c.waitEvent((e) => e.kind === 11998 && e.tags.some((x) => x[0] === 'workers' && x[1] === '2'), 30_000, 'a pool heartbeat');
    const hb = parseHeartbeat(beat);
    t.ok(hb.ok && hb.value.capacity === 4 && hb.value.workers === 2, 'heartbeat: 2 workers, capacity 2 + 2');
    const ann = await c.waitEvent((e) => e.kind === 31990 && e.tags.some((x) => x[0] === 'capacity' && x[1] === '4'), 30_000, 'the pool announcement');
    t.ok(parseAnnouncement(ann).ok, 'one announcement with the pool capacity');

    await t.test('50 jobs: each claimed, run and answered exactly once', async (t) => {
      const jobs = Array.from({ length: 50 }, (_, i) => sandboxJob(c, [`echo job ${i}`]));
      await Promise.all(jobs.map((j) => c.publish(j)));
      await Promise.all(jobs.map((j) => c.waitEvent(isResult(j.id), 120_000, `result of job ${j.id}`)));
      const ids = new Set(jobs.map((j) => j.id));
      const claimedBy = new Map<string, string[]>();
      const started = new Map<string, number>();
      const readLogs = () => {
        claimedBy.clear();
        started.clear();
        for (const [name, w] of [['a', a], ['b', b]] as const) {
          for (const l of logLines(w)) {
            if (!l.jobId || !ids.has(l.jobId)) continue;
            if (l.msg === 'job claimed') claimedBy.set(l.jobId, [...(claimedBy.get(l.jobId) ?? []), name]);
            if (l.msg === 'job started') started.set(l.jobId, (started.get(l.jobId) ?? 0) + 1);
          }
        }
        return claimedBy.size === 50 && started.size === 50;
      };
      // A worker's log may reach us a moment after its result reached the customer.
      await waitFor(readLogs, 30_000, 'the workers to log every claim and start');
      t.equal(claimedBy.size, 50, 'every job was claimed');
      t.ok([...claimedBy.values()].every((w) => w.length === 1), 'by exactly one worker');
      const twice = [...started].filter(([, n]) => n > 1).map(([id]) => id);
      t.same(twice, [], 'and run exactly once');
      if (twice.length) t.comment(['a', 'b'].map((n, i) => `${n}: ${JSON.stringify(logLines([a, b][i]!).filter((l) => twice.includes(l.jobId ?? '') || /lease|taken over/.test(l.msg)))}`).join('\n'));
      const byA = [...claimedBy.values()].filter((w) => w[0] === 'a').length;
      t.ok(byA > 0 && byA < 50, `both workers took jobs (a ${byA}, b ${50 - byA})`);
      const kv = await claims();
      t.ok(jobs.every((j) => kv.get(j.id)?.state === 'done' && kv.get(j.id)?.outcome === 'delivered'), 'every claim closed as delivered');
      // Each worker's own book (LMDB is multi-process): every job in exactly one of them, delivered there once.
      const books = [ProviderStore.open(join(dirA, 'db')), ProviderStore.open(join(dirB, 'db'))];
      const holders = jobs.map((j) => books.map((s) => s.get(j.id)).filter((r) => r !== undefined));
      t.ok(holders.every((h) => h.length === 1 && h[0]!.state === 'delivered' && h[0]!.attempts === 1), 'each job is in one worker\'s book, delivered after one run');
      for (const s of books) await s.close();
      // Each worker's own book: every job in exactly one of them, delivered there.
      const results = await query(relay.url, { kinds: [6930], '#e': [...ids] });
      const perJob = new Map<string, number>();
      for (const r of results) for (const x of r.tags) if (x[0] === 'e' && ids.has(x[1]!)) perJob.set(x[1]!, (perJob.get(x[1]!) ?? 0) + 1);
      t.ok(perJob.size === 50 && [...perJob.values()].every((n) => n === 1), 'the relay holds exactly one result per job');
      const status = await cliJson<{ running: boolean; pool?: { worker: string; capacity: number; workers: { worker: string }[] } }>(['provider', 'status', '--json', '--data', dirB]);
      t.same({ worker: status.pool?.worker, capacity: status.pool?.capacity, workers: status.pool?.workers.map((w) => w.worker) }, { worker: 'b', capacity: 4, workers: ['a', 'b'] }, 'status shows the pool');
      const doctor = bazaar(['provider', 'doctor', '--data', dirA, '--cluster', nats.url]);
      await doctor.exited;
      t.match(doctor.out(), /ok +cluster +nats:\/\/127\.0\.0\.1:\d+: JetStream ok; workers a \(capacity 2, seen \d+s ago\), b \(capacity 2, seen \d+s ago\); leader [ab]/, 'doctor --cluster sees NATS and both workers');
    });

    await t.test('a worker SIGKILLed mid-job: the other re-runs it after the lease, one result', async (t) => {
      // The job's own work (2 s of sleep) is what gets interrupted; the test waits on logs and events.
      const job = sandboxJob(c, ['sleep 2', 'echo survived']);
      await c.publish(job);
      const startedRe = new RegExp(`"jobId":"${job.id}"[^\\n]*"msg":"job started"`);
      const victim = await Promise.race([a.waitFor(startedRe, 60_000).then(() => a), b.waitFor(startedRe, 60_000).then(() => b)]);
      const survivor = victim === a ? b : a;
      const victimName = victim === a ? 'a' : 'b';
      const victimDir = victim === a ? dirA : dirB;
      victim.kill('SIGKILL');
      await victim.exited;
      workers.delete(victim);
      const result = await c.waitEvent(isResult(job.id), 60_000, 'the re-run result');
      t.match(result.content, /survived/, 'the job ran to the end on the survivor');
      const takeover = logLines(survivor).find((l) => l.msg === 'job taken over: its worker let the lease expire' && l.jobId === job.id);
      t.equal(takeover?.from, victimName, `the survivor logged taking the job over from worker ${victimName}`);
      t.equal((await claims()).get(job.id)?.attempt, 2, 'the claim records the second attempt');

      // The dead worker comes back (same name, same data): its local copy of the job is dropped, not re-run.
      const back = serve(victimDir, victimName);
      if (victim === a) a = back;
      else b = back;
      await back.waitFor(/"msg":"provider started"/);
      t.ok(logLines(back).some((l) => l.msg === 'job left to the pool' && l.jobId === job.id), 'the restarted worker leaves the job to its new holder');
      await stop(back);
      await stop(survivor);
      const onRelay = await query(relay.url, { kinds: [6930], '#e': [job.id] });
      t.equal(onRelay.length, 1, 'exactly one result was published for the job');
      const store = ProviderStore.open(join(victimDir, 'db'));
      t.equal(store.get(job.id)?.state, 'failed', "the dead worker's record of the job is closed");
      t.notOk(store.get(job.id)?.result, 'with no result of its own');
      await store.close();
    });

    const ping = c.sign(buildPing({ provider: pubkey }));
    await t.test('a worker frozen mid-job loses its lease and publishes nothing when it wakes', async (t) => {
      const restartedAt = Math.floor(Date.now() / 1000);
      a = serve(dirA, 'a');
      b = serve(dirB, 'b');
      await Promise.all([a.waitFor(/"msg":"provider started"/), b.waitFor(/"msg":"provider started"/)]);
      await c.waitEvent((e) => e.kind === 11998 && e.created_at >= restartedAt && e.tags.some((x) => x[0] === 'workers' && x[1] === '2'), 30_000, 'the pool heartbeat after the restart');
      await c.publish(ping);
      // Pinged once both are up (a worker started later answers pings of the last minute again, as a lone provider does).
      const pong = parsePong(await c.waitEvent((e) => isPong(e) && e.tags.some((x) => x[0] === 'e' && x[1] === ping.id), 30_000, 'a pong'));
      t.ok(pong.ok && pong.value.capacity === 4, 'a ping is answered with the pool capacity');
      const job = sandboxJob(c, ['sleep 2', 'echo done']);
      await c.publish(job);
      const startedRe = new RegExp(`"jobId":"${job.id}"[^\\n]*"msg":"job started"`);
      const frozen = await Promise.race([a.waitFor(startedRe, 60_000).then(() => a), b.waitFor(startedRe, 60_000).then(() => b)]);
      const other = frozen === a ? b : a;
      frozen.kill('SIGSTOP');
      const result = await c.waitEvent(isResult(job.id), 60_000, 'the result of the worker that took over');
      t.ok(logLines(other).some((l) => l.msg === 'job taken over: its worker let the lease expire' && l.jobId === job.id), 'the other worker took the job over');
      frozen.kill('SIGCONT');
      await frozen.waitFor(new RegExp(`"jobId":"${job.id}"[^\\n]*"msg":"job abandoned: lease lost, no result published here"`), 30_000);
      await stop(frozen);
      await stop(other);
      const onRelay = await query(relay.url, { kinds: [6930], '#e': [job.id] });
      t.same(onRelay.map((e: NostrEvent) => e.id), [result.id], 'the only result is the one of the worker holding the lease');
    });

    // Every worker has stopped: whatever they were going to say has been said.
    t.equal((await query(relay.url, { kinds: [7000], '#e': [ping.id] })).length, 1, 'the ping got one pong, from the leader');
  });

  t.test('the earnings book is the pool\'s: every worker\'s paid jobs in one place', async (t) => {
    const work = tempDir(t, 'bazaar-pool-earn-');
    const nats = await startNatsServer({ binary: natsBin.path!, workDir: work });
    t.teardown(() => nats.stop());
    const m = await startMarket(t);
    const dirB = tempDir(t, 'bazaar-pool-earn-b-');
    copyFileSync(join(m.providerDir, 'keys.json'), join(dirB, 'keys.json'));
    copyFileSync(join(m.providerDir, 'config.jsonc'), join(dirB, 'config.jsonc'));
    const cluster = (worker: string) => ({ servers: nats.url, worker, leaseMs: LEASE_MS });
    const pa = await runProvider(t, m, { capacity: 1 }, { cluster: cluster('a') });
    const pb = await runProvider(t, m, { capacity: 1 }, { dataDir: dirB, cluster: cluster('b') });
    const c = await new Customer(m.relay.url).ready();
    t.teardown(() => c.close());
    const { NWCClient } = await loadNwcSdk();
    const wallet = new NWCClient({ nostrWalletConnectUrl: m.customerUri });
    t.teardown(() => wallet.close());
    const jobs = Array.from({ length: 4 }, (_, i) => sandboxJob(c, [`echo paid ${i}`]));
    await Promise.all(jobs.map((j) => c.publish(j)));
    let paidMsats = 0;
    for (const j of jobs) {
      const r = parseJobResult(await c.waitEvent(isResult(j.id), 60_000, `result of ${j.id}`));
      if (!r.ok || !r.value.amount?.bolt11) throw new Error('a result without an invoice');
      await wallet.payInvoice({ invoice: r.value.amount.bolt11 });
      paidMsats += r.value.amount.msats;
    }
    await waitFor(async () => (await readPoolEarnings({ servers: nats.url, pubkey: pa.identity.pubkey })).length === 4, 30_000, 'four earnings in the pool book');
    const local = [pa, pb].map((p) => p.provider.store.earnings().filter((e) => jobs.some((j) => j.id === e.jobId)).length);
    t.ok(local[0]! > 0 && local[1]! > 0 && local[0]! + local[1]! === 4, `each worker booked the jobs it delivered (a ${local[0]}, b ${local[1]})`);
    const book = await cliJson<{ totalMsats: number; count: number; byWorker: Record<string, number> }>(['provider', 'earnings', '--json', '--data', dirB, '--cluster', nats.url]);
    t.equal(book.count, 4, 'earnings --cluster: every paid job, from either worker');
    t.equal(book.totalMsats, paidMsats, 'the total is what the customer paid');
    t.same(Object.keys(book.byWorker).sort(), ['a', 'b'], 'by worker');
    // Stopped before the teardowns remove their directories (a running provider keeps writing there).
    await pa.close();
    await pb.close();
  });
}
