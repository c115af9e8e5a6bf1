// Public API snapshot: every module's export names. An accidental API change shows up here;
// an intended one is recorded by regenerating: `BAZAAR_UPDATE_EXPORTS=1 npx tap dvm-kinds/test/exports.test.ts`.
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

t.test('index re-exports the public API of each kind and market module', async (t) => {
  const index = await import('../src/index.ts');
  for (const name of ['buildSandboxRunRequest', 'parsePatchGenResult', 'verifyCodeReview', 'parseFeedback', 'buildAnnouncement', 'parseReceipt', 'priceFor', 'sealJobRequest', 'JOB_KINDS', 'dTag']) t.ok(name in index, name);
});
