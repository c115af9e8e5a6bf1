// RepoIndex, PatchGen and CodeReview end to end with a sample repository whose test fails.
// The "coding agent" is a small deterministic script configured exactly like a real agent
// CLI would be. A good agent's patch is offered (it applies and its tests pass); a broken
// patch, a patch outside the allowed paths, or a review of files not in the diff gets `error`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parsePatchGenRequest, parsePatchGenResult, verifyPatchGen } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { parseRepoIndexRequest, parseRepoIndexResult, verifyRepoIndex, verifyRepoIndexSample } from '@bazaar/dvm-kinds/kinds/repo-index';
import { parseCodeReviewRequest, parseCodeReviewResult, verifyCodeReview } from '@bazaar/dvm-kinds/kinds/code-review';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { AgentBackendConfig } from '../src/config.ts';
import { Customer, isFeedback, makeProviderDir, resultOrError, runProvider, startMarket, tempDir } from './helpers.ts';

/** A git repository with a bug, removed when `t` ends. */
function sampleRepo(t: Test): { dir: string; url: string; head: string } {
  const dir = tempDir(t, 'bazaar-sample-repo-');
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { cwd: dir, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  writeFileSync(join(dir, 'sum.mjs'), 'export function add(a, b) {\n  return a - b;\n}\n');
  writeFileSync(join(dir, 'test.mjs'), "import { add } from './sum.mjs';\nif (add(2, 3) !== 5) { console.error('add(2, 3) =', add(2, 3)); process.exit(1); }\nconsole.log('ok');\n");
  writeFileSync(join(dir, 'README.md'), '# sample\n');
  git('add', '-A');
  git('commit', '-q', '-m', 'sample with a bug');
  return { dir, url: `file://${dir}`, head: git('rev-parse', 'HEAD') };
}

const agent = (script: string): AgentBackendConfig => ({ command: ['/bin/sh', '-c', script], allowDomains: [], timeLimitSecs: 60 });
// Reads its task like a real agent CLI would, then edits the checkout.
const GOOD = "grep -q 'add' \"$BAZAAR_TASK_FILE\" && cat >/dev/null && sed -i 's/a - b/a + b/' sum.mjs";
const BROKEN = "cat >/dev/null; sed -i 's/a - b/a * b/' sum.mjs";
const OUTSIDE = "cat >/dev/null; sed -i 's/a - b/a + b/' sum.mjs; echo hacked >> README.md";

function patchJob(c: Customer, repo: string, extra: string[][] = []): NostrEvent {
  return c.sign({ kind: 5932, tags: [['i', repo, 'url'], ['i', 'add(2, 3) returns -1: the add function subtracts.', 'text'], ['param', 'repo_ref', 'main'], ['param', 'issue_title', 'add() is wrong'], ['param', 'test_cmd', 'node test.mjs'], ['param', 'time_limit_secs', '60'], ...extra] });
}

t.test('PatchGen: a fixing agent gets its verified patch offered', async (t) => {
  const repo = sampleRepo(t);
  const m = await startMarket(t);
  await runProvider(t, m, { kinds: [5932], backends: { patchGen: agent(GOOD) } }, { allowFileRepos: true });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const job = patchJob(c, repo.url, [['param', 'allow_path', '*.mjs']]);
  await c.publish(job);
  const res = await resultOrError(c, job.id);
  const req = parsePatchGenRequest(job);
  const parsed = parsePatchGenResult(res);
  t.ok(req.ok && parsed.ok, 'request and result parse');
  if (!req.ok || !parsed.ok) return;
  t.ok(verifyPatchGen(req.value, parsed.value).ok, 'the buyer-side pure checks pass');
  t.match(res.content, /-  return a - b;\n\+  return a \+ b;/, 'the patch is the fix');
  t.equal(parsed.value.output.test_exit_code, 0, 'test exit code 0');
  t.ok(c.feedbackFor(job.id, 'partial').some((e) => e.tags.some((x) => x[0] === 'progress' && x[1] === '0.6')), 'partial feedback while the patch is checked');
  t.equal(parsed.value.output.files_changed, 1);
  t.match(parsed.value.output.trajectory_sha256, /^[0-9a-f]{64}$/);
  // The buyer's own replay: apply to a fresh clone and run the tests.
  const check = tempDir(t, 'bazaar-buyer-check-');
  execFileSync('git', ['clone', '-q', repo.dir, check]);
  writeFileSync(join(check, 'fix.diff'), res.content);
  execFileSync('git', ['apply', 'fix.diff'], { cwd: check });
  t.equal(execFileSync('node', ['test.mjs'], { cwd: check, encoding: 'utf8' }).trim(), 'ok', 'the patch applies and the tests pass');
  t.equal(readFileSync(join(repo.dir, 'sum.mjs'), 'utf8').includes('a - b'), true, 'the source repository was never touched');
});

t.test('PatchGen: broken or out-of-bounds patches get an error, not a result', async (t) => {
  const repo = sampleRepo(t);
  const m = await startMarket(t);
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  for (const [name, script, extra, why] of [
    ['broken patch', BROKEN, [], /tests fail/],
    ['outside allowed paths', OUTSIDE, [['param', 'allow_path', '*.mjs']], /policy|allowed/],
  ] as const) {
    const running = await runProvider(t, m, { kinds: [5932], backends: { patchGen: agent(script) }, lookbackSecs: 0 }, { allowFileRepos: true, dataDir: await makeProviderDir(t, [m.relay.url], m.providerUri) });
    const job = patchJob(c, repo.url, extra as unknown as string[][]);
    await c.publish(job);
    const err = await c.waitEvent(isFeedback(job.id, 'error'), 60_000, `error for ${name}`);
    t.match(err.tags.find((x) => x[0] === 'status')?.[2], why, `${name}: the error says why`);
    t.same(c.resultsFor(job.id), [], `${name}: no result`);
    t.equal(running.provider.store.get(job.id)?.state, 'failed');
    await running.close();
  }
});

t.test('RepoIndex runs in the sandbox and verifies', async (t) => {
  const repo = sampleRepo(t);
  const m = await startMarket(t);
  await runProvider(t, m, { kinds: [5931] }, { allowFileRepos: true });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const job = c.sign({ kind: 5931, tags: [['i', repo.url, 'url'], ['param', 'repo_ref', 'main'], ['param', 'path', '*.mjs']] });
  await c.publish(job);
  const res = await resultOrError(c, job.id);
  const req = parseRepoIndexRequest(job);
  const parsed = parseRepoIndexResult(res);
  t.ok(req.ok && parsed.ok, 'parses');
  if (!req.ok || !parsed.ok) return;
  t.ok(verifyRepoIndex(req.value, parsed.value).ok, 'pure checks pass');
  t.same(parsed.value.index.files.map((f) => f.path).sort(), ['sum.mjs', 'test.mjs'], 'only the requested paths');
  t.equal(parsed.value.index.commit, repo.head, 'resolved commit');
  t.ok(parsed.value.index.symbols.some((s) => s.name === 'add' && s.kind === 'function' && s.path === 'sum.mjs' && s.line === 1), 'symbols extracted');
  const sample = await verifyRepoIndexSample(req.value, parsed.value, async (p) => readFileSync(join(repo.dir, p)), { seed: 'x', sample: 2 });
  t.ok(sample.ok, 'spot-check against our own checkout');
});

t.test('CodeReview: a review of the diff is checked before it is offered', async (t) => {
  const m = await startMarket(t);
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const diff = 'diff --git a/sum.mjs b/sum.mjs\n--- a/sum.mjs\n+++ b/sum.mjs\n@@ -1,3 +1,3 @@\n export function add(a, b) {\n-  return a + b;\n+  return a - b;\n }\n';
  const review = (file: string) => JSON.stringify({ summary: 'The change turns addition into subtraction, which breaks add().', approval: 'request_changes', issues: [{ file, line_start: 2, severity: 'critical', message: 'add() now subtracts' }], suggestions: ['Keep a + b.'] });
  for (const [name, file, ok] of [['good review', 'sum.mjs', true], ['review of a file not in the diff', 'other.mjs', false]] as const) {
    const script = `cat >/dev/null; cat > review.json <<'JSON'\n${review(file)}\nJSON`;
    const running = await runProvider(t, m, { kinds: [5933], backends: { codeReview: agent(script) }, lookbackSecs: 0 }, { dataDir: await makeProviderDir(t, [m.relay.url], m.providerUri) });
    const job = c.sign({ kind: 5933, tags: [['i', diff, 'text'], ['param', 'focus', 'correctness'], ['t', name]] });
    await c.publish(job);
    if (ok) {
      const res = await resultOrError(c, job.id);
      const req = parseCodeReviewRequest(job);
      const parsed = parseCodeReviewResult(res);
      t.ok(req.ok && parsed.ok && verifyCodeReview(req.value, parsed.value).ok, `${name}: verifies`);
    } else {
      const err = await c.waitEvent(isFeedback(job.id, 'error'), 60_000, 'review refused');
      t.match(err.tags.find((x) => x[0] === 'status')?.[2], /other\.mjs|not in the diff/, `${name}: refused with the reason`);
      t.same(c.resultsFor(job.id), []);
    }
    await running.close();
  }
});

t.test('TextGen through an OpenAI-compatible endpoint', async (t) => {
  // The model API is the one boundary that cannot exist here: a stub that speaks the real
  // OpenAI chat-completions wire protocol stands in for Ollama / llama.cpp / vLLM.
  const { createServer } = await import('node:http');
  const seen: { auth?: string; body: { model: string; messages: { role: string; content: string }[]; max_tokens?: number } }[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (d) => (raw += d));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(raw) as (typeof seen)[number]['body'];
      seen.push({ ...(req.headers.authorization ? { auth: req.headers.authorization } : {}), body });
      const content = `echo: ${body.messages.at(-1)!.content}`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: body.model, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: 1500, completion_tokens: 700, total_tokens: 2200 } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/v1`;
  process.env.BAZAAR_TEST_LLM_KEY = 'sk-test-123';
  const m = await startMarket(t);
  await runProvider(t, m, { kinds: [5050], backends: { textGen: { url, model: 'tiny-model', apiKeyEnv: 'BAZAAR_TEST_LLM_KEY' } } });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const job = c.sign({ kind: 5050, tags: [['i', 'Say hello', 'text'], ['param', 'max_tokens', '64'], ['param', 'system', 'Be brief.']] });
  await c.publish(job);
  const res = await resultOrError(c, job.id);
  t.equal(res.kind, 6050);
  t.equal(res.content, 'echo: Say hello');
  t.equal(seen[0].body.model, 'tiny-model');
  t.same(seen[0].body.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello' }]);
  t.equal(seen[0].body.max_tokens, 64);
  t.equal(seen[0].auth, 'Bearer sk-test-123', 'the API key is added by the provider');
  t.equal(res.tags.find((x) => x[0] === 'amount')?.[1], String(1000 + 100 * 3), 'priced per 1k tokens (2200 tokens → 3 units)');
  const other = c.sign({ kind: 5050, tags: [['i', 'Hi', 'text'], ['param', 'model', 'gpt-9']] });
  await c.publish(other);
  const err = await c.waitEvent(isFeedback(other.id, 'error'), 20_000, 'another model refused');
  t.match(err.tags.find((x) => x[0] === 'status')?.[2], /serves model tiny-model/);
});

t.test('SandboxRun in a checkout of a repo input: the commands may change it', async (t) => {
  const repo = sampleRepo(t);
  const m = await startMarket(t);
  await runProvider(t, m, {}, { allowFileRepos: true });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const job = c.sign({ kind: 5930, tags: [['i', repo.url, 'url'], ['param', 'repo_ref', repo.head], ['param', 'cmd', 'node test.mjs || echo failing'], ['param', 'cmd', "sed -i 's/a - b/a + b/' sum.mjs && node test.mjs"], ['param', 'cmd', 'git status --porcelain'], ['param', 'time_limit_secs', '30']] });
  await c.publish(job);
  const res = await resultOrError(c, job.id);
  const out = JSON.parse(res.content) as { commands: { stdout: string; exit_code: number }[] };
  t.equal(out.commands[0].stdout, 'failing\n', 'the checkout is at the requested commit (the bug is there)');
  t.equal(out.commands[1].stdout, 'ok\n', 'a command changed a tracked file and the tests pass');
  t.equal(out.commands[2].stdout, ' M sum.mjs\n', 'git works in the checkout');
  const bad = c.sign({ kind: 5930, tags: [['i', 'ssh://example.com/x.git', 'url'], ['param', 'cmd', 'true'], ['param', 'time_limit_secs', '5']] });
  await c.publish(bad);
  const err = await c.waitEvent(isFeedback(bad.id, 'error'), 20_000, 'ssh repo refused');
  t.match(err.tags.find((x) => x[0] === 'status')?.[2], /scheme ssh: is not allowed/);
});
