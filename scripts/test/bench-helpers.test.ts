// The relay benchmark's generation and measurement code: the corpus is valid
// and realistic, the query mix hits real data, /proc readings are sane.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyEventSync } from '../../relay/src/ingest/verify.ts';
import { generateCorpus, loadOrGenerateCorpus } from '../bench/corpus.ts';
import { rng } from '@bazaar/testkit/rng';
import { buildQueryMix, publishAll, runFlood } from '../bench/phases.ts';
import { clockTicksPerSecond, cpuSeconds, diskUsage, freePort, memoryKiB, openFileLimits, rssKiB, writeSyscallBytes } from '@bazaar/testkit/proc';
import { findStrfry, startStrfryChild, strfryConfig } from '@bazaar/testkit/strfry';
import { startRelay } from '../../relay/src/server.ts';
import { percentile, summarise } from '../bench/stats.ts';
import { validJobRequest } from '@bazaar/policies/market/valid-job-request';
import type { PolicyContext } from '@bazaar/policies/policy';

t.test('corpus: valid signed events with a NIP-90 mix and real references', async (t) => {
  const events = await generateCorpus({ count: 1500, seed: 3, authors: 60, now: 1_800_000_000, spanSecs: 86_400 });
  t.equal(events.length, 1500);
  t.ok(events.every(verifyEventSync), 'every event verifies');
  t.equal(new Set(events.map((e) => e.id)).size, events.length, 'ids are unique');
  const kinds = new Map<number, number>();
  for (const e of events) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
  for (const k of [0, 1, 3, 7, 7000, 31990]) t.ok(kinds.get(k), `has kind ${k}`);
  t.ok([...kinds.keys()].some((k) => k >= 5000 && k < 6000), 'has job requests');
  t.ok([...kinds.keys()].some((k) => k >= 6000 && k < 7000), 'has job results');
  const byId = new Map(events.map((e) => [e.id, e]));
  for (const e of events.filter((x) => x.kind >= 6000 && x.kind < 7000)) {
    const req = byId.get(e.tags.find((x) => x[0] === 'e')![1])!;
    t.equal(req.kind, e.kind - 1000, 'result refers to a request of its kind');
    t.equal(e.tags.find((x) => x[0] === 'p')![1], req.pubkey, 'result p-tags the buyer');
    t.same(JSON.parse(e.tags.find((x) => x[0] === 'request')![1]), req, 'request tag holds the request');
  }
  // Job requests are well-formed for our kinds, as the relay's default policy demands.
  const policy = validJobRequest();
  const requests = events.filter((e) => e.kind >= 5000 && e.kind < 6000);
  t.ok(requests.length > 100);
  t.same(new Set(requests.map((e) => e.kind)), new Set([5050, 5930, 5931, 5932, 5933]), 'all five job kinds');
  for (const e of requests) {
    const verdict = await policy(e, {} as PolicyContext);
    if (verdict.action !== 'accept') t.fail(`request ${e.kind} rejected: ${JSON.stringify(verdict)}`);
  }
  t.ok(events.every((e, i) => i === 0 || e.created_at >= events[i - 1].created_at), 'created_at ascending');
  t.ok(events.every((e) => e.created_at <= 1_800_000_000 && e.created_at >= 1_800_000_000 - 86_400), 'created_at within the span');
  // Same seed, same shape (keys are random, content/kinds are seeded).
  const again = await generateCorpus({ count: 50, seed: 3, authors: 60, now: 1_800_000_000, spanSecs: 86_400 });
  t.same(again.map((e) => e.kind), events.slice(0, 50).map((e) => e.kind));
});

t.test('corpus cache: written once, then read back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-corpus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'c.jsonl');
  const first = await loadOrGenerateCorpus(path, { count: 40, seed: 1, authors: 10 });
  t.equal(first.cached, false);
  const second = await loadOrGenerateCorpus(path, { count: 30, seed: 1, authors: 10 });
  t.equal(second.cached, true);
  t.same(second.events, first.events.slice(0, 30));
  const bigger = await loadOrGenerateCorpus(path, { count: 60, seed: 1, authors: 10 });
  t.equal(bigger.cached, false, 'too short a cache is regenerated');
  t.equal(bigger.events.length, 60);
});

t.test('query mix: fixed, seeded, every type hits stored data', async (t) => {
  const events = await generateCorpus({ count: 800, seed: 5, authors: 40 });
  const mix = buildQueryMix(events, 70, 1);
  t.same(buildQueryMix(events, 70, 1), mix, 'deterministic');
  const types = new Set(mix.map((q) => q.type));
  t.equal(types.size, 7);
  const ids = new Set(events.map((e) => e.id));
  for (const q of mix) {
    if (q.expectIds) t.ok(q.expectIds.every((id) => ids.has(id)));
    if (q.filter['#e']) t.ok(ids.has(q.filter['#e'][0]));
    if (q.type !== 'ids') t.equal(q.filter.limit, 500);
  }
});

t.test('stats', async (t) => {
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  t.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
  t.equal(percentile([7], 1), 7);
  t.ok(Number.isNaN(percentile([], 50)));
  const s = summarise([5, 1, 3]);
  t.same({ count: s.count, p50: s.p50, max: s.max, mean: s.mean }, { count: 3, p50: 3, max: 5, mean: 3 });
  const r = rng(1);
  const xs = Array.from({ length: 1000 }, r);
  t.ok(xs.every((x) => x >= 0 && x < 1));
  t.ok(Math.abs(xs.reduce((a, b) => a + b, 0) / xs.length - 0.5) < 0.05);
});

t.test('/proc readings', async (t) => {
  t.ok(clockTicksPerSecond() > 0);
  const c0 = cpuSeconds(process.pid);
  let x = 0;
  const end = process.cpuUsage().user + 200_000; // burn 0.2 s of CPU
  while (process.cpuUsage().user < end) x += Math.sqrt(x + 1);
  t.ok(cpuSeconds(process.pid) - c0 >= 0.1, 'CPU seconds grow when this process works');
  t.ok(rssKiB(process.pid) > 1000, 'RSS in KiB');
  const lim = openFileLimits();
  t.ok(lim.soft > 0 && lim.hard >= lim.soft);
  const port = await freePort();
  t.ok(port > 0 && port < 65536);
});

t.test('/proc memory and disk usage', async (t) => {
  const m = memoryKiB(process.pid);
  t.ok(m.rss > 1000 && m.peak >= m.rss, 'VmHWM is at least VmRSS');
  t.ok(m.anon > 0 && m.file > 0 && m.anon + m.file <= m.rss + 64, 'anon + file make up the RSS');
  const dir = mkdtempSync(join(tmpdir(), 'bench-du-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'a'), Buffer.alloc(10_000, 1));
  writeFileSync(join(dir, 'sub', 'b'), Buffer.alloc(5000, 1));
  const du = diskUsage(dir);
  t.equal(du.apparentBytes, 15_000, 'apparent sizes of every file, recursively');
  t.ok(du.bytes >= 15_000, 'allocated blocks cover the written bytes');
});

t.test('/proc bytes handed to write syscalls', { skip: writeSyscallBytes(process.pid) === null ? 'no /proc/PID/io here (task I/O accounting off)' : false }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-wchar-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const w0 = writeSyscallBytes(process.pid)!;
  writeFileSync(join(dir, 'c'), Buffer.alloc(300_000, 1));
  t.ok(writeSyscallBytes(process.pid)! - w0 >= 300_000, 'a 300 kB file write is counted');
});

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

t.test('strfry: config rewrite and lookup', async (t) => {
  const conf = 'db = "./strfry-db/"\nrelay {\n    bind = "0.0.0.0"\n    port = 7777\n    nofiles = 0\n}\n';
  const out = strfryConfig(conf, 4242, '/tmp/x/strfry-db');
  t.match(out, /^db = "\/tmp\/x\/strfry-db\/"$/m);
  t.match(out, /^ {4}bind = "127\.0\.0\.1"$/m);
  t.match(out, /^ {4}port = 4242$/m);
  t.throws(() => strfryConfig('relay {}', 1, '/x'), /no line matching/, 'a config without the lines we must set is refused');
  t.same(findStrfry(ROOT, '/nonexistent/strfry'), { reason: 'no strfry binary at /nonexistent/strfry' });
  const found = findStrfry(ROOT);
  t.ok(found.path !== undefined || /no strfry binary found/.test(found.reason ?? ''), 'either a binary or the reason');
});

/** Why the strfry test cannot run here, or undefined when it can. */
function strfrySkipReason(): string | undefined {
  const found = findStrfry(ROOT, process.env.BAZAAR_STRFRY);
  if (!found.path) return `strfry absent: ${found.reason}`;
  const v = spawnSync(found.path, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (v.status !== 0) return `strfry cannot run here: ${(v.stderr || v.stdout || String(v.error)).trim().split('\n')[0]}`;
  return undefined;
}

t.test('strfry: started side by side', { skip: strfrySkipReason() ?? false }, async (t) => {
  const binary = findStrfry(ROOT, process.env.BAZAAR_STRFRY).path!;
  const workDir = mkdtempSync(join(tmpdir(), 'bench-strfry-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  const child = await startStrfryChild({ binary, workDir });
  t.teardown(() => child.stop());
  const events = await generateCorpus({ count: 50, seed: 9, authors: 5 });
  const r = await publishAll(child.url, child.pid, events, { connections: 2, window: 8, timeoutMs: 30_000 });
  t.equal(r.unanswered, 0);
  t.equal(r.accepted + (r.rejected.replaced ?? 0), 50, 'strfry takes the corpus (an older replaceable version may arrive second)');
  t.ok(diskUsage(child.dbDir).bytes > 0, 'its database is where we measure it');
  t.ok(memoryKiB(child.pid).peak > 0);
});

t.test('query flood: an innocent client timed while another floods COUNTs', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-flood-'));
  const relay = await startRelay({ port: 0, dataDir, transport: 'ws' });
  t.teardown(async () => {
    await relay.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const events = await generateCorpus({ count: 300, seed: 4, authors: 20 });
  const ingest = await publishAll(relay.url, undefined, events, { connections: 2, window: 16, timeoutMs: 30_000 });
  t.equal(ingest.unanswered, 0);
  const notes = events.filter((e) => e.kind === 1);
  const r = await runFlood(relay.url, process.pid, { verb: 'COUNT', filters: [{ kinds: [1] }], messages: 5, innocentIds: notes.slice(0, 3).map((e) => e.id), baseline: 3, timeoutMs: 30_000 });
  t.equal(r.answered, 5, 'every flood message answered');
  t.same(r.counts, [notes.length], 'the COUNT answer is the number of notes');
  t.equal(r.baselineMs.count, 3);
  t.ok(r.duringMs.count >= 1 && r.firstMs !== null, 'at least the first innocent REQ is timed');
  t.equal(r.innocentErrors, 0, 'the innocent client got exactly the event it asked for');
  t.equal(r.timedOut, false);
  const q = await runFlood(relay.url, undefined, { verb: 'REQ', filters: [{ kinds: [1], limit: 10 }], messages: 3, innocentIds: [notes[0].id], baseline: 1, timeoutMs: 30_000 });
  t.equal(q.answered, 3);
  t.equal(q.floodEvents, 3 * Math.min(10, notes.length), 'flood REQ events counted');
  t.equal(q.innocentErrors, 0);
});
