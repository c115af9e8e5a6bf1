// Policy costs on the relay's write path: `npm run bench:policies` (prints figures, asserts nothing).
// - defaultPolicy on a realistic mix (notes, job requests, results, feedback)
// - validJobRequest alone on PatchGen requests (the full schema parse)
// - the strfry plugin loop, in process, lines per second
import { PassThrough } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import { buildPatchGenRequest, buildPatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { defaultPolicy } from '@bazaar/policies/default-policy';
import { validJobRequest } from '@bazaar/policies/market/valid-job-request';
import { runStrfryPlugin } from '@bazaar/policies/strfry';
import { emptyStore } from '@bazaar/policies/relay-store';
import type { Policy, PolicyContext } from '@bazaar/policies/policy';

const N = Number(process.env.BENCH_EVENTS ?? 20_000);
const now = Math.floor(Date.now() / 1000);
const keys = Array.from({ length: 50 }, () => generateSecretKey());
const sign = (t: Omit<NostrEvent, 'id' | 'pubkey' | 'sig'>, i: number) => finalizeEvent(t, keys[i % keys.length]) as NostrEvent;

const events: NostrEvent[] = [];
for (let i = 0; events.length < 2000; i++) {
  const req = sign(buildPatchGenRequest({ repoUrl: 'https://git.example.com/r.git', issueBody: `issue ${i}`, params: { repo_ref: 'main', issue_title: 't', time_limit_secs: 60, allow_path: ['src/**'] }, bidMsats: 1000, createdAt: now }), i);
  events.push(sign({ kind: 1, created_at: now, content: `note ${i}`, tags: [['t', 'bench']] }, i), req);
  events.push(sign(buildPatchGenResult(req, { patch: 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n', testExitCode: 0 }, { createdAt: now }), i + 1));
  events.push(sign(buildFeedback({ request: req, status: 'processing', createdAt: now }), i + 1));
}
const jobRequests = events.filter((e) => e.kind === 5932);

async function run(name: string, policy: Policy, sample: NostrEvent[]): Promise<void> {
  const ctx = (i: number): PolicyContext => ({ source: { type: 'ws', ip: `10.0.${(i >> 8) & 255}.${i & 255}`, connectionId: `c${i % 100}` }, receivedAt: now, store: emptyStore });
  for (let i = 0; i < 2000; i++) await policy(sample[i % sample.length], ctx(i)); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await policy(sample[i % sample.length], ctx(i));
  const ms = performance.now() - t0;
  console.log(`${name.padEnd(40)} ${Math.round((N / ms) * 1000).toLocaleString('en').padStart(10)} decisions/s  ${((ms * 1000) / N).toFixed(2)} µs each`);
}

await run('defaultPolicy, mixed events', defaultPolicy({ ipPerSecond: 1e9, ipBurst: 1e9, pubkeyPerSecond: 1e9, pubkeyBurst: 1e9 }), events);
await run('validJobRequest, PatchGen requests', validJobRequest(), jobRequests);

{
  const input = new PassThrough();
  const output = new PassThrough();
  let answers = 0;
  output.on('data', (d: Buffer) => (answers += d.toString().split('\n').length - 1));
  const done = runStrfryPlugin({ input, output, policy: defaultPolicy({ ipPerSecond: 1e9, ipBurst: 1e9, pubkeyPerSecond: 1e9, pubkeyBurst: 1e9 }), store: emptyStore });
  const t0 = performance.now();
  for (let i = 0; i < N; i++) input.write(JSON.stringify({ type: 'new', event: events[i % events.length], receivedAt: now, sourceType: 'IP4', sourceInfo: `10.0.0.${i & 255}` }) + '\n');
  input.end();
  await done;
  const ms = performance.now() - t0;
  console.log(`${'strfry plugin loop (in process)'.padEnd(40)} ${Math.round((answers / ms) * 1000).toLocaleString('en').padStart(10)} lines/s      ${((ms * 1000) / answers).toFixed(2)} µs each`);
}

if (process.env.BENCH_RULES) {
  const { maxEventSize } = await import('@bazaar/policies/rules/max-event-size');
  const { maxTags } = await import('@bazaar/policies/rules/max-tags');
  const { createdAtWindow } = await import('@bazaar/policies/rules/created-at-window');
  const { rejectExpired } = await import('@bazaar/policies/rules/reject-expired');
  const { protectedEvents } = await import('@bazaar/policies/rules/protected-events');
  const { rateLimitByIp } = await import('@bazaar/policies/rules/rate-limit-by-ip');
  for (const [n, p] of [['maxEventSize', maxEventSize(131072)], ['maxTags', maxTags(2500)], ['createdAtWindow', createdAtWindow({ futureSecs: 900 })], ['rejectExpired', rejectExpired()], ['protectedEvents', protectedEvents()], ['rateLimitByIp', rateLimitByIp({ perSecond: 1e9, burst: 1e9 })], ['validJobRequest mixed', validJobRequest()]] as [string, Policy][]) await run(n, p, events);
}
