// The other kinds end to end, with what `bazaar up` runs: RepoIndex (a sample of files checked
// against the buyer's own checkout), CodeReview by the sample review agent (every issue about a
// file in the diff), TextGen from the devnet's stand-in model (accepted on reputation), and
// PatchGen by the sample patch agent following the issue's instruction.
import t from 'tap';
import { startDevModel } from '@bazaar/devnet/dev-model';
import { SAMPLE_PATCH_AGENT, SAMPLE_REVIEW_AGENT } from '@bazaar/provider/sample-agents';
import { logger, makeBuyer, patchTask, runProvider, sampleRepo, startMarket } from './helpers.ts';

const DIFF = 'diff --git a/sum.mjs b/sum.mjs\n--- a/sum.mjs\n+++ b/sum.mjs\n@@ -1,3 +1,3 @@\n export function add(a, b) {\n-  return a - b;\n+  return a + b;\n }\n';

t.test('RepoIndex, CodeReview, TextGen and the sample PatchGen agent: verified and paid', async (t) => {
  const m = await startMarket(t, { mint: false });
  const repo = sampleRepo(t);
  const model = await startDevModel({ logger });
  t.teardown(() => model.close());
  await runProvider(t, m, 'prov-all', { kinds: [5050, 5931, 5932, 5933], backends: { patchGen: SAMPLE_PATCH_AGENT, codeReview: SAMPLE_REVIEW_AGENT, textGen: { url: model.url, model: model.model } } });
  const buyer = await makeBuyer(t, m);

  const index = await buyer.client.run({ type: 'index', repo: repo.url, ref: 'main', paths: ['*.mjs'] }, { budgetMsats: 100_000 });
  t.equal(index.outcome, 'paid', index.reason ?? '');
  t.ok(index.verification?.checks.some((c) => /sampled files against our checkout/.test(c.name) && c.passed), 'files sampled against our own checkout');
  t.same((JSON.parse(index.result!.content) as { files: { path: string }[] }).files.map((f) => f.path).sort(), ['sum.mjs', 'test.mjs']);

  const review = await buyer.client.run({ type: 'review', diff: DIFF, focus: ['correctness'] }, { budgetMsats: 100_000 });
  t.equal(review.outcome, 'paid', review.reason ?? '');
  const r = JSON.parse(review.result!.content) as { summary: string; issues: { file: string; line_start: number }[] };
  t.match(r.summary, /1 changed file \(\+1 \/ -1 lines\)/, 'the sample agent summarises the diff');
  t.same(r.issues.map((i) => [i.file, i.line_start]), [['sum.mjs', 1]]);

  const text = await buyer.client.run({ type: 'text', prompt: 'Say hello to the market' }, { budgetMsats: 100_000 });
  t.equal(text.outcome, 'paid', text.reason ?? '');
  t.match(text.result?.content, /devnet echo model.*"Say hello to the market"/);

  const patch = await buyer.client.run(patchTask(repo.url, { body: 'add(2, 3) returns -1.\n\nIn sum.mjs, replace `a - b` with `a + b`.' }), { budgetMsats: 100_000 });
  t.equal(patch.outcome, 'paid', patch.reason ?? '');
  t.ok(patch.verification?.checks.some((c) => c.name === 'tests pass on our replay' && c.passed));
});
