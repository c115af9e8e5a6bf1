// Patch policy: pure checks on real `git diff` output and hand-made hostile patches.
import t from 'tap';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filePaths, parseUnifiedDiff, type DiffFile } from '@bazaar/dvm-kinds/diff';
import { buildPatchGenRequest, buildPatchGenResult, parsePatchGenRequest, parsePatchGenResult, verifyPatchGen } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { checkPatch, pathMatches, symlinkStaysInside } from '../src/sandbox/patch.ts';
import { execHost } from '../src/sandbox/proc.ts';

/** The files dvm-kinds' reader sees (the provider's policy and the buyer's verifier both use it). */
const parsePatch = (diff: string): (DiffFile & { paths: string[] })[] => {
  const d = parseUnifiedDiff(diff);
  return d.ok ? d.value.files.map((f) => ({ ...f, paths: filePaths(f) })) : [];
};

/** A real patch from git: `edit` runs in a fresh repo after the first commit. */
async function gitDiff(edit: (dir: string) => Promise<void>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bazaar-patch-'));
  try {
    const git = (...a: string[]) => execHost('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a]);
    await git('init', '-q');
    await writeFile(join(dir, 'a.txt'), 'one\n');
    await git('add', '.');
    await git('commit', '-qm', 'init');
    await edit(dir);
    await git('add', '-A');
    return (await git('diff', '--cached', '--binary', '-M')).stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

t.test('real git diffs: edits pass, symlinks are judged by their target', async (t) => {
  const edit = await gitDiff((d) => writeFile(join(d, 'a.txt'), 'two\n'));
  t.match(checkPatch(edit), { ok: true, files: [{ oldPath: 'a.txt', newPath: 'a.txt' }] });

  const inside = await gitDiff((d) => symlink('a.txt', join(d, 'link')));
  t.match(parsePatch(inside), [{ paths: ['link'], newMode: '120000', symlinkTarget: 'a.txt' }]);
  t.equal(checkPatch(inside).ok, true, 'a symlink to a file in the tree is fine');

  const passwd = await gitDiff((d) => symlink('/etc/passwd', join(d, 'link')));
  t.match(checkPatch(passwd), { ok: false, reason: /^blocked: symlink "link" points outside the tree \("\/etc\/passwd"\)/ });

  const up = await gitDiff((d) => symlink('../../etc', join(d, 'up')));
  t.match(checkPatch(up), { ok: false, reason: /points outside the tree/ });

  const rename = await gitDiff(async (d) => {
    await execHost('git', ['-C', d, 'mv', 'a.txt', 'b.txt']);
  });
  t.match(parsePatch(rename), [{ paths: ['a.txt', 'b.txt'] }]);
  t.match(checkPatch(rename, { allowed: ['b.txt'] }), { ok: false, reason: /"a.txt" is outside the allowed paths/ });

  const spaced = await gitDiff((d) => writeFile(join(d, 'with space é.txt'), 'x\n'));
  t.match(parsePatch(spaced), [{ paths: ['with space é.txt'] }], 'quoted and spaced names are decoded');
});

t.test('hostile paths are rejected', async (t) => {
  const mk = (path: string) => `diff --git a/${path} b/${path}\n--- a/${path}\n+++ b/${path}\n@@ -1 +1 @@\n-a\n+b\n`;
  t.match(checkPatch(mk('../outside')), { ok: false, reason: /escapes the tree/ });
  t.match(checkPatch(mk('src/../../x')), { ok: false, reason: /escapes the tree/ });
  t.match(checkPatch(mk('.git/config')), { ok: false, reason: /inside \.git/ });
  t.match(checkPatch(mk('sub/.GIT/hooks/pre-commit')), { ok: false, reason: /inside \.git/ });
  t.match(checkPatch('--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n'), { ok: false, reason: /absolute path/ });
  t.match(checkPatch(mk('.github/workflows/ci.yml'), { disallowed: ['.github/'] }), { ok: false, reason: /matches disallowed path/ });
  t.match(checkPatch(mk('src/x.ts'), { allowed: ['src/**/*.ts', 'src/*.ts'] }), { ok: true });
  t.match(checkPatch(mk('lib/x.ts'), { allowed: ['src/**'] }), { ok: false, reason: /outside the allowed paths/ });
  t.match(checkPatch('diff --git a/m b/m\nnew file mode 160000\nindex 0000000..1234567\n--- /dev/null\n+++ b/m\n@@ -0,0 +1 @@\n+Subproject commit 1234567890123456789012345678901234567890\n'), { ok: false, reason: /submodule/ });
  t.match(checkPatch(''), { ok: false, reason: /^invalid: empty patch/ });
  t.match(checkPatch('just some text\n'), { ok: false, reason: /^invalid: content: no file headers/ });
  t.match(checkPatch('diff --git a/x b/x\n--- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-a\n+b\n'), { ok: false, reason: /^invalid: .*inconsistent old file names/ }, 'headers naming different files');
  t.match(checkPatch('--- src/passwd\n+++ src/passwd\n@@ -1 +1 @@\n-a\n+b\n', { allowed: ['src/**'] }), { ok: false, reason: /"passwd" is outside the allowed paths/ }, 'judged by the path git apply -p1 writes');
});

t.test('hunk bodies are not read as headers', async (t) => {
  // A removed SQL comment line ("-- x") looks like a '---' header; counted hunks keep it in the body.
  const p = 'diff --git a/q.sql b/q.sql\n--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,1 @@\n--- /etc/passwd\n select 1;\n';
  t.match(checkPatch(p), { ok: true, files: [{ newPath: 'q.sql' }] });
  const plain = '--- a/x.txt\t2024-01-01\n+++ b/x.txt\t2024-01-02\n@@ -1 +1 @@\n-a\n+b\n--- a/y.txt\n+++ b/y.txt\n@@ -1 +1 @@\n-a\n+b\n';
  t.match(parsePatch(plain), [{ paths: ['x.txt'] }, { paths: ['y.txt'] }], 'plain unified diffs (no git header)');
});

t.test('helpers', async (t) => {
  t.ok(pathMatches('docs/a/b.md', 'docs'));
  t.ok(pathMatches('docs/a/b.md', 'docs/**/*.md'));
  t.notOk(pathMatches('docsx/a.md', 'docs'));
  t.ok(symlinkStaysInside('a/b/link', '../c'));
  t.notOk(symlinkStaysInside('a/link', '../../c'));
  t.notOk(symlinkStaysInside('link', '/abs'));
  t.notOk(symlinkStaysInside('link', '.git/config'));
});

t.test("the provider's policy and the buyer's verifier see the same paths in one patch", async (t) => {
  const { generateSecretKey, finalizeEvent } = await import('nostr-tools/pure');
  const sk = generateSecretKey();
  const names = ['docs/with space.md', 'docs/café.md', 'src/naïve "q".ts'];
  const patch = await gitDiff(async (d) => {
    await execHost('mkdir', ['-p', join(d, 'docs'), join(d, 'src')]);
    for (const n of names) await writeFile(join(d, n), 'x\n');
  });
  t.match(patch, /"b\/docs\/caf\\303\\251\.md"/, 'git quotes the non-ASCII name');
  for (const allow of [['docs/**'], ['docs/**', 'src/**'], ['docs/with space.md', 'docs/café.md', 'src/naïve "q".ts']]) {
    const request = finalizeEvent(buildPatchGenRequest({ repoUrl: 'https://example.com/r.git', issueBody: 'b', params: { repo_ref: 'main', issue_title: 't', time_limit_secs: 60, allow_path: allow } }), sk);
    const result = finalizeEvent(buildPatchGenResult(request, { patch }), sk);
    const req = parsePatchGenRequest(request);
    const res = parsePatchGenResult(result);
    if (!req.ok || !res.ok) throw new Error('fixtures must parse');
    const provider = checkPatch(patch, { allowed: allow });
    const buyer = verifyPatchGen(req.value, res.value);
    t.equal(buyer.ok, provider.ok, `allow ${JSON.stringify(allow)}: both ${provider.ok ? 'accept' : 'refuse'}`);
  }
  t.same(parsePatch(patch).flatMap((f) => f.paths).sort(), [...names].sort(), 'every name decoded');
});
