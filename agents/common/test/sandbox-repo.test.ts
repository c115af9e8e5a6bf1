// Repos: fetch into the cache (path, file://, branch/tag/commit), check out per job,
// refuse unsafe sources and refs; the checkout is usable read-only inside the sandbox.
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { BwrapRunner } from '../src/sandbox/bwrap-runner.ts';
import { execHost } from '../src/sandbox/proc.ts';
import { checkoutRepo, fetchRepo, RepoError } from '../src/sandbox/repo-cache.ts';

const log = pino({ level: 'silent' });

t.test('fetch and checkout', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'bazaar-repo-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const src = join(root, 'src');
  const git = (...a: string[]) => execHost('git', ['-C', src, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a]);
  await execHost('git', ['init', '-q', '-b', 'main', src]);
  await writeFile(join(src, 'f.txt'), 'v1\n');
  await git('add', '.');
  await git('commit', '-qm', 'v1');
  await git('tag', 'v1');
  const c1 = (await git('rev-parse', 'HEAD')).stdout.trim();
  await writeFile(join(src, 'f.txt'), 'v2\n');
  await git('commit', '-qam', 'v2');
  const c2 = (await git('rev-parse', 'HEAD')).stdout.trim();
  const cacheDir = join(root, 'cache');
  const jobs = join(root, 'jobs');

  const byBranch = await fetchRepo({ source: src, ref: 'main', cacheDir, log });
  t.equal(byBranch.commit, c2);
  const byTag = await fetchRepo({ source: `file://${src}`, ref: 'v1', cacheDir, log });
  t.equal(byTag.commit, c1);
  const byHead = await fetchRepo({ source: src, cacheDir, log });
  t.equal(byHead.commit, c2, 'default ref is HEAD');

  const co1 = await checkoutRepo({ repo: byTag, parentDir: jobs });
  const co2 = await checkoutRepo({ repo: byBranch, parentDir: jobs });
  t.equal(await readFile(join(co1, 'f.txt'), 'utf8'), 'v1\n');
  t.equal(await readFile(join(co2, 'f.txt'), 'utf8'), 'v2\n');
  t.not(co1, co2, 'one checkout per job');

  // Parallel fetches of one repo serialize on its lock and agree.
  const both = await Promise.all([fetchRepo({ source: src, ref: c1, cacheDir, log }), fetchRepo({ source: src, ref: 'main', cacheDir, log })]);
  t.same(both.map((b) => b.commit), [c1, c2]);

  // A cached commit needs no source any more.
  await rm(src, { recursive: true, force: true });
  t.equal((await fetchRepo({ source: src, ref: c1, cacheDir, log })).commit, c1, 'served from the cache');
  await t.rejects(fetchRepo({ source: src, ref: 'main', cacheDir, log }), RepoError, 'a branch must be fetched: the source is gone');

  const runner = new BwrapRunner({ log });
  const r = await runner.run({ cmd: ['sh', '-c', 'cd /repo && git log --format=%s && git status --porcelain && touch x'], repo: co2 });
  t.equal(r.stdout, 'v2\nv1\n', 'git works on the read-only checkout inside the sandbox');
  t.match(r.stderr, /Read-only file system/);
});

t.test('unsafe sources and refs are refused', async (t) => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'bazaar-repo-cache-'));
  t.teardown(() => rm(cacheDir, { recursive: true, force: true }));
  for (const source of ['ssh://git@example.com/x.git', 'ext::sh -c touch% /tmp/pwned', 'git@example.com:x.git', '--upload-pack=touch /tmp/pwned', 'https://user:pw@example.com/x.git', 'relative/path', '']) {
    await t.rejects(fetchRepo({ source, cacheDir, log }), RepoError, `refused: ${source}`);
  }
  for (const ref of ['--upload-pack=x', 'a..b', 'a b', 'x:y', 'HEAD@{1}']) {
    await t.rejects(fetchRepo({ source: '/tmp', ref, cacheDir, log }), /invalid: ref/, `refused ref: ${ref}`);
  }
  await t.rejects(fetchRepo({ source: '/nonexistent/repo', ref: 'main', cacheDir, log, timeoutMs: 30_000 }), /git fetch failed/);
});
