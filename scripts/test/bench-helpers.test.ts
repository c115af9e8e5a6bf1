// The relay benchmark's generation and measurement code: the corpus is valid
// and realistic, the query mix hits real data, /proc readings are sane.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyEventSync } from '../../relay/src/ingest/verify.ts';
import { generateCorpus, loadOrGenerateCorpus, rng } from '../bench/corpus.ts';
import { buildQueryMix } from '../bench/phases.ts';
import { clockTicksPerSecond, cpuSeconds, freePort, openFileLimits, rssKiB } from '../bench/proc.ts';
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
