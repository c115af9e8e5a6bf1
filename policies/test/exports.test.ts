// Public API snapshot: every module's export names. An accidental API change shows up here;
// an intended one is recorded by regenerating: `BAZAAR_UPDATE_EXPORTS=1 npx tap policies/test/exports.test.ts`.
import t from 'tap';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const snapshotFile = new URL('./exports.json', import.meta.url);
const modules = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? modules(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));

t.test('export names per module match the snapshot', async (t) => {
  const actual: Record<string, string[]> = {};
  for (const file of modules(src).sort()) actual[relative(src, file).replace(/\.ts$/, '')] = Object.keys(await import(file)).sort();
  if (process.env.BAZAAR_UPDATE_EXPORTS) writeFileSync(snapshotFile, JSON.stringify(actual, null, 1) + '\n');
  t.same(actual, JSON.parse(readFileSync(snapshotFile, 'utf8')));
});

t.test('index re-exports every rule and combinator', async (t) => {
  const index = await import('../src/index.ts');
  for (const name of ['seq', 'any', 'not', 'when', 'withTimeout', 'shadow', 'maxEventSize', 'maxTags', 'createdAtWindow', 'restrictToKinds', 'rejectKinds', 'rateLimitByIp', 'rateLimitByPubkey', 'requirePow', 'requireAuthForKinds', 'protectedEvents', 'rejectExpired', 'validJobRequest', 'resultAnswersKnownRequest', 'feedbackFromTaggedProvider', 'minBid', 'verdictFromNamedArbiter', 'reputationFloor', 'loadPolicyFile', 'policyFromConfig', 'defaultPolicy', 'runStrfryPlugin']) t.ok(name in index, name);
});
