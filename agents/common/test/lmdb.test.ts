// The agents' LMDB environments reserve their map once (AGENT_LMDB_MAP_SIZE): a store that
// grows past lmdb-js's 128 KiB starting map keeps one mapping of its data file instead of
// one per growth step (lmdb-js keeps the earlier ones for readers), and reads back after a
// reopen.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AGENT_LMDB_MAP_SIZE, openLmdb } from '../src/lmdb.ts';

/** Sizes in bytes of this process's mappings of `file` (/proc/self/maps). */
function mappings(file: string): number[] {
  return readFileSync('/proc/self/maps', 'utf8').split('\n')
    .filter((l) => l.endsWith(` ${file}`))
    .map((l) => {
      const [from, to] = l.split(' ')[0]!.split('-');
      return parseInt(to!, 16) - parseInt(from!, 16);
    });
}

t.test('a store that grows past the old starting map is mapped once, at the agents\' map size', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-lmdb-map-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'store');
  const value = 'x'.repeat(1000);
  const N = 2000; // ≈2 MiB of values: four doublings past a 128 KiB map

  const root = openLmdb({ path, maxDbs: 2 });
  const db = root.openDB<string, number>({ name: 'rows' });
  for (let i = 0; i < N; i++) {
    root.transactionSync(() => {
      db.putSync(i, value);
    });
  }
  t.equal((root.getStats() as { mapSize?: number }).mapSize, AGENT_LMDB_MAP_SIZE, 'the environment reports the agents\' map size');
  const maps = mappings(join(path, 'data.mdb'));
  t.same(maps, [AGENT_LMDB_MAP_SIZE], 'data.mdb is mapped exactly once, at the full map size');
  await root.close();

  const again = openLmdb({ path, maxDbs: 2 });
  const rows = again.openDB<string, number>({ name: 'rows' });
  t.equal(rows.getKeysCount(), N, 'every row is there after a reopen');
  t.equal(rows.get(N - 1), value);
  await again.close();
});

t.test('an explicit mapSize still wins', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-lmdb-map-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = openLmdb({ path: join(dir, 'small'), mapSize: 2 ** 24 });
  t.equal((root.getStats() as { mapSize?: number }).mapSize, 2 ** 24);
  await root.close();
});
