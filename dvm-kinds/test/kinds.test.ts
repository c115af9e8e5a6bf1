// Golden fixtures per kind: our builders reproduce the committed wire format byte for byte,
// the fixtures (real signatures) parse, verify, and tampering is caught with the right problems.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { verifyEvent } from 'nostr-tools/pure';
import type { NostrEvent } from '../src/nostr.ts';
import { buyer, provider, sign, T0, template } from './helpers.ts';
import { golden, PATCH } from './fixtures/inputs.ts';
import { buildFeedback, parseFeedback } from '../src/feedback.ts';
import { sha256Hex } from '../src/hash.ts';
import { buildTextGenRequest, buildTextGenResult, parseTextGenRequest, parseTextGenResult, verifyTextGen } from '../src/kinds/text-gen.ts';
import { buildSandboxRunRequest, commandResult, parseSandboxRunRequest, parseSandboxRunResult, sandboxRunOutput, verifySandboxRun, verifySandboxRunByRerun, buildSandboxRunResult } from '../src/kinds/sandbox-run.ts';
import { buildRepoIndexRequest, buildRepoIndexResult, parseRepoIndexRequest, parseRepoIndexResult, sampleFiles, verifyRepoIndex, verifyRepoIndexSample } from '../src/kinds/repo-index.ts';
import { buildPatchGenRequest, buildPatchGenResult, parsePatchGenRequest, parsePatchGenResult, verifyPatchGen, verifyPatchGenWithRunner } from '../src/kinds/patch-gen.ts';
import { buildCodeReviewRequest, buildCodeReviewResult, parseCodeReviewRequest, parseCodeReviewResult, verifyCodeReview } from '../src/kinds/code-review.ts';
import type { Parsed } from '../src/problem.ts';
import { JOB_KINDS } from '../src/registry.ts';
import { decodeParams } from '../src/job.ts';

interface Fixture { request: NostrEvent; result: NostrEvent; feedback: NostrEvent }
const load = (name: string): Fixture => JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'));
const common = { createdAt: T0, bidMsats: 21000, relays: ['wss://relay.example.com'], providers: [provider.pk], expiration: T0 + 600 };
const value = <T>(p: Parsed<T>): T => {
  if (!p.ok) throw new Error(`expected ok, got ${JSON.stringify(p.errors)}`);
  return p.value;
};
const paths = (p: Parsed<unknown> | { problems: readonly { path: string }[] }): string[] => ('problems' in p ? p.problems : p.ok ? [] : p.errors).map((x) => x.path);
const retag = (e: NostrEvent, f: (tags: string[][]) => string[][], content?: string) => sign({ kind: e.kind, created_at: e.created_at, content: content ?? e.content, tags: f(e.tags.map((x) => [...x])) }, provider.sk);

t.test('every fixture carries a valid signature', async (t) => {
  for (const name of ['5050-text-gen', '5930-sandbox-run', '5931-repo-index', '5932-patch-gen', '5933-code-review']) {
    const f = load(name);
    for (const e of [f.request, f.result, f.feedback]) t.ok(verifyEvent(e), `${name} ${e.kind}`);
  }
});

t.test('feedback builders reproduce the golden feedback', async (t) => {
  const T = (name: string) => load(name);
  t.same(buildFeedback({ request: T('5050-text-gen').request, status: 'processing', progress: 0.5, createdAt: T0 + 1 }), template(T('5050-text-gen').feedback));
  t.same(buildFeedback({ request: T('5930-sandbox-run').request, status: 'payment-required', amount: { msats: 21000 }, createdAt: T0 + 1 }), template(T('5930-sandbox-run').feedback));
  t.same(buildFeedback({ request: T('5931-repo-index').request, status: 'error', errorCode: 'RATE_LIMITED', message: 'too many jobs, retry in 60s', createdAt: T0 + 1 }), template(T('5931-repo-index').feedback));
  t.same(buildFeedback({ request: T('5932-patch-gen').request, status: 'partial', progress: 0.25, content: 'tests written', createdAt: T0 + 1 }), template(T('5932-patch-gen').feedback));
  t.same(buildFeedback({ request: T('5933-code-review').request, status: 'success', createdAt: T0 + 6 }), template(T('5933-code-review').feedback));
});

t.test('5050 TextGen', async (t) => {
  const f = load('5050-text-gen');
  t.same(buildTextGenRequest({ ...golden.textGen.request, ...common }), template(f.request), 'builder reproduces the golden request');
  t.same(buildTextGenResult(f.request, golden.textGen.result, { createdAt: T0 + 5, amount: { msats: 21000 } }), template(f.result), 'and the golden result');
  const req = value(parseTextGenRequest(f.request));
  t.same(req.prompt, { data: 'Write a haiku about relays.', type: 'text' });
  t.same(req.params, { model: 'llama3', max_tokens: 100, temperature: 0.7 });
  t.equal(req.envelope.bidMsats, 21000);
  t.equal(req.envelope.expiration, T0 + 600);
  const res = value(parseTextGenResult(f.result));
  t.equal(res.text, golden.textGen.result);
  t.same(res.envelope.amount, { msats: 21000 });
  t.equal(res.envelope.request?.id, f.request.id);
  t.ok(verifyTextGen(req, res).ok);
  t.same(paths(verifyTextGen(req, value(parseTextGenResult(retag(f.result, (x) => x, ' '))))), ['content'], 'empty text fails');
  const fb = value(parseFeedback(f.feedback));
  t.equal(fb.status, 'processing');
  t.equal(fb.progress, 0.5);
  t.same(paths(parseTextGenRequest({ ...f.request, tags: f.request.tags.filter((x) => x[0] !== 'i').concat([['param', 'temperature', 'hot']]) })), ['tags.param[temperature]', 'tags.i']);
});

t.test('5930 SandboxRun', async (t) => {
  const f = load('5930-sandbox-run');
  t.same(buildSandboxRunRequest({ ...golden.sandboxRun.request, ...common }), template(f.request));
  const req = value(parseSandboxRunRequest(f.request));
  t.same(req.params.cmd, ['echo hello', 'ls'], 'cmd is repeatable and ordered');
  const golden5930 = sandboxRunOutput([
    commandResult({ cmd: 'echo hello', exitCode: 0, stdout: 'hello\n', stderr: '', wallMs: 3, cpuMs: 1 }),
    commandResult({ cmd: 'ls', exitCode: 0, stdout: 'README.md\nsrc\n', stderr: '', wallMs: 4, cpuMs: 2 }),
  ]);
  t.same(buildSandboxRunResult(f.request, golden5930, { createdAt: T0 + 5 }), template(f.result), 'builder reproduces the golden result');
  t.same(req.repo, { url: 'https://git.example.com/acme/calc.git', ref: 'main' });
  t.equal(req.params.time_limit_secs, 60);
  const res = value(parseSandboxRunResult(f.result));
  t.equal(res.output.commands[0].stdout_sha256, sha256Hex('hello\n'));
  t.equal(res.output.totals.commands_run, 2);
  t.ok(verifySandboxRun(req, res).ok, 'honest result verifies');
  t.equal(value(parseFeedback(f.feedback)).status, 'payment-required');

  // tampering: stdout edited without its hash, totals that do not add up
  const out = JSON.parse(f.result.content);
  out.commands[0].stdout = 'goodbye\n';
  out.totals.wall_ms = 1;
  const bad = value(parseSandboxRunResult(retag(f.result, (x) => x, JSON.stringify(out))));
  t.same(paths(verifySandboxRun(req, bad)).sort(), ['content.commands[0].stdout_bytes', 'content.totals.wall_ms'].sort());
  out.commands[0].stdout = 'hellp\n';
  out.totals.wall_ms = 7;
  t.same(paths(verifySandboxRun(req, value(parseSandboxRunResult(retag(f.result, (x) => x, JSON.stringify(out)))))), ['content.commands[0].stdout_sha256']);

  // stopping early is only allowed after a failure
  const failed = sandboxRunOutput([commandResult({ cmd: 'echo hello', exitCode: 2, stdout: '', stderr: 'boom', wallMs: 1, cpuMs: 1 })]);
  t.ok(verifySandboxRun(req, value(parseSandboxRunResult(sign(buildSandboxRunResult(f.request, failed), provider.sk)))).ok);
  const lazy = sandboxRunOutput([commandResult({ cmd: 'echo hello', exitCode: 0, stdout: '', stderr: '', wallMs: 1, cpuMs: 1 })]);
  t.same(paths(verifySandboxRun(req, value(parseSandboxRunResult(sign(buildSandboxRunResult(f.request, lazy), provider.sk))))), ['content.commands']);

  // capped output: hash covers the full stream, text is cut at the cap
  const big = commandResult({ cmd: 'x', exitCode: 0, stdout: 'a'.repeat(100), stderr: '', wallMs: 0, cpuMs: 0, maxOutputBytes: 10 });
  t.equal(big.stdout, 'a'.repeat(10));
  t.equal(big.stdout_sha256, sha256Hex('a'.repeat(100)));
  t.ok(big.stdout_truncated);

  // re-run comparison through a caller-supplied runner
  t.ok((await verifySandboxRunByRerun(req, res, async () => res.output)).ok);
  const differs = { ...res.output, commands: [res.output.commands[0], { ...res.output.commands[1], stdout_sha256: '0'.repeat(64) }] };
  t.same(paths(await verifySandboxRunByRerun(req, res, async () => differs)), ['content.commands[1].stdout_sha256']);

  // params it does not know (image) are ignored; what it knows is checked
  const weird = { ...f.request, tags: [['param', 'cmd', 'ls'], ['param', 'time_limit_secs', '0'], ['param', 'image', 'ubuntu'], ['param', 'repo_ref', 'main']] };
  t.same(paths(parseSandboxRunRequest(weird)), ['tags.param[time_limit_secs]', 'tags.param[repo_ref]']);
  const noCmd = { ...f.request, tags: [['param', 'time_limit_secs', '0']] };
  t.same(paths(parseSandboxRunRequest(noCmd)).sort(), ['tags.param[cmd]', 'tags.param[time_limit_secs]']);
});

t.test('5931 RepoIndex', async (t) => {
  const f = load('5931-repo-index');
  t.same(buildRepoIndexRequest({ ...golden.repoIndex.request, ...common }), template(f.request));
  t.same(buildRepoIndexResult(f.request, golden.repoIndex.result, { createdAt: T0 + 5 }), template(f.result));
  const req = value(parseRepoIndexRequest(f.request));
  t.same(req.repo, { url: 'https://git.example.com/acme/calc.git', ref: 'v1.2.0' });
  t.same(req.params.path, ['src/**', 'README.md']);
  const res = value(parseRepoIndexResult(f.result));
  t.ok(verifyRepoIndex(req, res).ok);
  const fb = value(parseFeedback(f.feedback));
  t.equal(fb.status, 'error');
  t.equal(fb.errorCode, 'RATE_LIMITED');
  t.equal(fb.message, 'too many jobs, retry in 60s');

  const idx = JSON.parse(f.result.content);
  idx.files.push({ path: 'secrets/key.pem', bytes: 1, sha256: 'd'.repeat(64) });
  idx.symbols.push({ name: 'ghost', kind: 'function', path: 'nowhere.ts', line: 3 });
  const tampered = retag(f.result, (x) => x, JSON.stringify(idx));
  t.same(paths(parseRepoIndexResult(tampered)), ['tags.index_sha256'], 'content no longer matches its hash tag');
  const rehashed = retag(f.result, (x) => x.map((tag) => (tag[0] === 'index_sha256' ? ['index_sha256', sha256Hex(JSON.stringify(idx))] : tag)), JSON.stringify(idx));
  t.same(paths(verifyRepoIndex(req, value(parseRepoIndexResult(rehashed)))), ['content.files[2].path', 'content.symbols[1].path']);

  t.same(sampleFiles(res.index, 1, 'seed'), sampleFiles(res.index, 1, 'seed'), 'sampling is deterministic');
  const reader = async (path: string) => (path === 'README.md' ? new TextEncoder().encode('x') : undefined);
  const spot = await verifyRepoIndexSample(req, res, reader, { sample: 2, seed: 's' });
  t.notOk(spot.ok, 'files that are not in the checkout fail the spot-check');
  t.equal(spot.problems.length, 2);
});

t.test('5932 PatchGen', async (t) => {
  const f = load('5932-patch-gen');
  t.same(buildPatchGenRequest({ ...golden.patchGen.request, ...common }), template(f.request));
  const req = value(parsePatchGenRequest(f.request));
  t.same(req.issue, { title: 'add() subtracts', body: 'add(2, 2) returns 0 instead of 4.' });
  t.same(req.params.allow_path, ['src/**', 'test/**']);
  const res = value(parsePatchGenResult(f.result));
  t.same({ ...res.output, patch: undefined }, { patch: undefined, patch_sha256: sha256Hex(PATCH), test_exit_code: 0, files_changed: 2, additions: 3, deletions: 1, trajectory_sha256: sha256Hex('trajectory') });
  t.ok(verifyPatchGen(req, res).ok);
  t.equal(value(parseFeedback(f.feedback)).status, 'partial');

  // a patch touching a denied path, with stats that lie and a failing test
  const evil = PATCH + `diff --git a/.github/ci.yml b/.github/ci.yml\n--- a/.github/ci.yml\n+++ b/.github/ci.yml\n@@ -1 +1 @@\n-on: push\n+on: never\n`;
  const lying = retag(f.result, (x) => x.map((tag) => (tag[0] === 'test_exit_code' ? ['test_exit_code', '1'] : tag[0] === 'patch_sha256' ? ['patch_sha256', sha256Hex(evil)] : tag)), evil);
  t.same(paths(verifyPatchGen(req, value(parsePatchGenResult(lying)))).sort(), ['additions', 'deletions', 'files_changed', 'patch..github/ci.yml', 'patch..github/ci.yml', 'test_exit_code'].sort());
  const wrongHash = retag(f.result, (x) => x, PATCH.replace('a + b', 'a * b'));
  t.same(paths(verifyPatchGen(req, value(parsePatchGenResult(wrongHash)))), ['patch_sha256']);

  // replay through a caller-supplied runner
  t.ok((await verifyPatchGenWithRunner(req, res, async (job) => ({ applied: job.patch === PATCH, testExitCode: 0 }))).ok);
  t.same(paths(await verifyPatchGenWithRunner(req, res, async () => ({ applied: false, detail: 'hunk 1 failed' }))), ['patch']);
  t.same(paths(await verifyPatchGenWithRunner(req, res, async () => ({ applied: true, testExitCode: 1 }))), ['test_exit_code']);

  t.same(buildPatchGenResult(f.request, { patch: PATCH, testExitCode: 0, trajectorySha256: sha256Hex('trajectory') }, { createdAt: T0 + 5, amount: { msats: 21000 } }), template(f.result));
});

t.test('a malformed 5932 request lists every problem', async (t) => {
  const bad = sign({
    kind: 5932,
    created_at: T0,
    content: '',
    tags: [['i', 'not a url at all', 'link'], ['param', 'time_limit_secs', 'soon'], ['param', 'test_cmd', 'npm test'], ['param', 'test_cmd', 'make'], ['bid', '-5'], ['p', 'npub1xyz']],
  }, buyer.sk);
  const r = parsePatchGenRequest(bad);
  t.notOk(r.ok);
  t.same(paths(r).sort(), ['tags.bid', 'tags.i[0]', 'tags.p', 'tags.param[time_limit_secs]', 'tags.param[test_cmd]', 'tags.param[repo_ref]', 'tags.param[issue_title]', 'tags.i', 'tags.i'].sort(), 'envelope, params and inputs problems, all at once');
  const bad2 = sign({ kind: 5932, created_at: T0, content: '', tags: [['param', 'time_limit_secs', 'soon'], ['param', 'test_cmd', 'npm test'], ['param', 'test_cmd', 'make'], ['param', 'colour', 'red']] }, buyer.sk);
  const r2 = parsePatchGenRequest(bad2);
  t.same(paths(r2).sort(), ['tags.i', 'tags.i', 'tags.param[issue_title]', 'tags.param[repo_ref]', 'tags.param[test_cmd]', 'tags.param[time_limit_secs]'].sort(), 'an unknown param is not a problem');
  t.doesNotThrow(() => parsePatchGenRequest({ kind: 5932, created_at: 0, content: '', tags: [[] as string[], ['i'], ['param'], ['bid']] }), 'never throws on garbage tags');
  const huge = { ...bad2, tags: [['param', 'max_cost_msats', '9999999999999999']] };
  t.ok(paths(parsePatchGenRequest(huge)).includes('tags.param[max_cost_msats]'), 'integers beyond 2^53 are refused, not rounded');
});

t.test('5933 CodeReview', async (t) => {
  const f = load('5933-code-review');
  t.same(buildCodeReviewRequest({ ...golden.codeReview.request, ...common }), template(f.request));
  t.same(buildCodeReviewResult(f.request, golden.codeReview.result, { createdAt: T0 + 5 }), template(f.result));
  const req = value(parseCodeReviewRequest(f.request));
  t.same(req.params, { focus: ['correctness', 'tests'], depth: 'standard' });
  t.ok('diff' in req.subject);
  const res = value(parseCodeReviewResult(f.result));
  t.equal(res.review.approval, 'approve');
  t.ok(verifyCodeReview(req, res).ok);
  t.equal(value(parseFeedback(f.feedback)).status, 'success');

  const review = { ...golden.codeReview.result, summary: 'ok', approval: 'request_changes', issues: [{ file: 'src/other.ts', line_start: 9, line_end: 3, severity: 'major', message: 'no' }], suggestions: [] };
  const c = JSON.stringify(review);
  const bad = retag(f.result, (x) => x.map((tag) => (tag[0] === 'review_sha256' ? ['review_sha256', sha256Hex(c)] : tag)), c);
  t.same(paths(verifyCodeReview(req, value(parseCodeReviewResult(bad)))).sort(), ['content.issues[0].file', 'content.issues[0].line_end', 'content.summary'].sort());
  const trivial = JSON.stringify({ summary: 'This change needs more work before merging.', approval: 'request_changes', issues: [], suggestions: [] });
  const triv = retag(f.result, (x) => x.map((tag) => (tag[0] === 'review_sha256' ? ['review_sha256', sha256Hex(trivial)] : tag)), trivial);
  t.same(paths(verifyCodeReview(req, value(parseCodeReviewResult(triv)))), ['content.issues']);
  t.same(paths(parseCodeReviewResult(retag(f.result, (x) => x, '{"summary": 3}'))).sort(), ['content.approval', 'content.issues', 'content.suggestions', 'content.summary'].sort());

  const repoReq = value(parseCodeReviewRequest(sign(buildCodeReviewRequest({ repoUrl: 'https://git.example.com/a.git', params: { base_ref: 'main', head_ref: 'feature' }, createdAt: T0 }), buyer.sk)));
  t.same(repoReq.subject, { repo: { url: 'https://git.example.com/a.git', baseRef: 'main', headRef: 'feature' } });
  const repoRes = { ...res, envelope: { ...res.envelope, requestId: repoReq.envelope.id! } };
  t.ok(verifyCodeReview(repoReq, repoRes).ok, 'repo review without a diff: file check skipped');
  t.ok(verifyCodeReview(repoReq, repoRes, { diff: PATCH }).ok, 'with the buyer-computed diff: files checked');
  t.same(paths(verifyCodeReview(repoReq, repoRes, { diff: PATCH.split('diff --git a/test')[0] })), ['content.issues[0].file'], 'a file outside the buyer-computed diff is caught');
  t.same(paths(parseCodeReviewRequest(sign(buildCodeReviewRequest({ repoUrl: 'https://git.example.com/a.git', createdAt: T0 }), buyer.sk))).sort(), ['tags.param[base_ref]', 'tags.param[head_ref]']);
});

t.test('params a kind does not know are accepted and ignored; what it requires is still required', async (t) => {
  // `model` as real NIP-90 clients send it (TextGen knows it; the others do not), an unknown
  // param twice, and tags nobody here knows.
  const extra = [['param', 'model', 'gpt-4o'], ['param', 'x-hint', 'a'], ['param', 'x-hint', 'b'], ['x-client', 'amethyst'], ['alt', 'a job']];
  for (const name of ['5930-sandbox-run', '5931-repo-index', '5932-patch-gen', '5933-code-review', '5050-text-gen']) {
    const f = load(name);
    const spec = JOB_KINDS.get(f.request.kind)!;
    const plain = spec.parseRequest(f.request);
    t.ok(plain.ok, `${name}: the fixture parses`);
    // (TextGen's fixture already has its model: one model param is what a client sends.)
    const added = extra.filter((x) => !(x[0] === 'param' && f.request.tags.some((y) => y[0] === 'param' && y[1] === x[1])));
    const withExtra = sign({ kind: f.request.kind, created_at: T0, content: f.request.content, tags: [...f.request.tags, ...added] }, buyer.sk);
    const parsed = spec.parseRequest(withExtra);
    t.ok(parsed.ok, `${name}: accepted with unknown params and tags`);
    if (parsed.ok && plain.ok && f.request.kind !== 5050) {
      t.same((parsed.value as { params: unknown }).params, (plain.value as { params: unknown }).params, `${name}: unknown params do not reach the decoded params`);
    }
    const required = (spec.paramsSchema as { required?: string[] }).required ?? [];
    if (required.length) {
      const missing = sign({ kind: f.request.kind, created_at: T0, content: f.request.content, tags: [...f.request.tags.filter((tag) => !(tag[0] === 'param' && tag[1] === required[0])), ['param', `${required[0]}_typo`, 'x'], ...added] }, buyer.sk);
      const m = spec.parseRequest(missing);
      t.notOk(m.ok, `${name}: still refused without its required ${required[0]}`);
      t.ok(paths(m).includes(`tags.param[${required[0]}]`), `${name}: the problem names ${required[0]}`);
    }
  }
  const decoded = decodeParams([['cmd', 'ls'], ['model', 'x'], ['model', 'y'], ['time_limit_secs', '5']], JOB_KINDS.get(5930)!.paramsSchema);
  t.same(decoded, { value: { cmd: ['ls'], time_limit_secs: 5 }, problems: [], ignored: ['model'] });
});
