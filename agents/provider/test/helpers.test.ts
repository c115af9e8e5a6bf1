// The test fixtures' directories are removed when the test that made them ends (they piled
// up in /tmp as bazaar-prov-data-*, bazaar-try-uri-*, bazaar-prov-cli-* … before).
import { existsSync } from 'node:fs';
import t from 'tap';
import { makeProviderDir, tempDir } from './helpers.ts';

t.test('tempDir and makeProviderDir are removed when their test ends', async (t) => {
  const dirs: string[] = [];
  await t.test('a test that makes them', async (st) => {
    dirs.push(tempDir(st, 'bazaar-prov-helpers-'), await makeProviderDir(st, ['ws://127.0.0.1:9']));
    for (const d of dirs) st.ok(existsSync(d), `${d} exists while the test runs`);
  });
  t.equal(dirs.length, 2);
  for (const d of dirs) t.notOk(existsSync(d), `${d} is gone after it`);
});
