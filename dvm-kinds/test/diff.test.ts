// The one unified-diff reader, on diffs made by real `git diff` (quoted, spaced and non-ASCII
// names, renames, copies, new and deleted files, mode changes, binary files, symlinks) and
// checked against git itself: `git apply --numstat` says which paths git would touch and how
// many lines it adds and removes; our reading must agree, file by file.
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffPaths, parseUnifiedDiff, unquoteGitPath, unsafeDiffPath, type DiffFile } from '../src/diff.ts';

const git = (cwd: string, args: string[], input?: string): string =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'core.quotePath=true', ...args], { cwd, input, encoding: 'utf8', timeout: 30_000, stdio: ['pipe', 'pipe', 'pipe'] });

/** A diff from a real repo: `before` sets up and commits files, `change` edits them; `git diff --cached <flags>`. */
function gitDiff(before: (dir: string) => void, change: (dir: string) => void, flags: string[] = ['-M']): string {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-diff-'));
  try {
    git(dir, ['init', '-q']);
    writeFileSync(join(dir, 'keep.txt'), 'keep\n');
    before(dir);
    git(dir, ['add', '-A']);
    git(dir, ['commit', '-qm', 'before']);
    change(dir);
    git(dir, ['add', '-A']);
    return git(dir, ['diff', '--cached', ...flags]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What git would do with the diff: [path, additions, deletions] per file ('-' counts for binary). */
function numstat(diff: string): [string, number | '-', number | '-'][] {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-numstat-'));
  try {
    writeFileSync(join(dir, 'p.diff'), diff);
    const out = git(dir, ['apply', '--numstat', '-z', 'p.diff']);
    const rows: [string, number | '-', number | '-'][] = [];
    const parts = out.split('\0');
    for (let i = 0; i < parts.length - 1; i++) {
      const [, add, del, path] = /^([^\t]*)\t([^\t]*)\t(.*)$/s.exec(parts[i]) ?? [];
      // -z prints a rename/copy as "add\tdel\t" then the old and the new name.
      const name = path === '' ? parts[(i += 2)] : path;
      rows.push([name, add === '-' ? '-' : Number(add), del === '-' ? '-' : Number(del)]);
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function read(tt: Test, diff: string): DiffFile[] {
  const d = parseUnifiedDiff(diff);
  if (!d.ok) {
    tt.fail(`parses: ${JSON.stringify(d.errors)}`);
    return [];
  }
  const ours = d.value.files.map((f) => [f.newPath ?? f.oldPath, f.binary ? '-' : f.additions, f.binary ? '-' : f.deletions]);
  tt.same(ours, numstat(diff), 'paths and line counts agree with git apply --numstat');
  return [...d.value.files];
}

t.test('names: spaces, non-ASCII (octal-escaped by git), quotes and backslashes', async (t) => {
  const names = ['with space.txt', 'café ünï.txt', 'q"uote.txt', 'back\\slash.txt', 'tab\there.txt', 'dir with space/naïve file.md'];
  const diff = gitDiff(
    (d) => {
      execFileSync('mkdir', ['-p', join(d, 'dir with space')]);
      for (const n of names) writeFileSync(join(d, n), 'one\n');
    },
    (d) => {
      for (const n of names) writeFileSync(join(d, n), 'one\ntwo\n');
    },
  );
  t.match(diff, /"a\/caf\\303\\251 \\303\\274n\\303\\257\.txt"/, 'git octal-escapes non-ASCII names');
  t.match(diff, /--- a\/with space\.txt\t\n/, 'git ends spaced names with a tab on ---/+++ lines');
  const files = read(t, diff);
  t.same(files.map((f) => f.newPath).sort(), [...names].sort(), 'every name read exactly');
  t.ok(files.every((f) => f.status === 'modified' && f.oldPath === f.newPath && f.additions === 1 && f.deletions === 0));
});

t.test('new, deleted, renamed (also with spaces), copied, mode change', async (t) => {
  const diff = gitDiff(
    (d) => {
      writeFileSync(join(d, 'old name.txt'), 'a\nb\nc\nd\n');
      writeFileSync(join(d, 'gone.txt'), 'x\ny\n');
      writeFileSync(join(d, 'tool.sh'), 'echo hi\n');
      writeFileSync(join(d, 'src.txt'), 'alpha\nbeta\ngamma\ndelta\nepsilon\n');
    },
    (d) => {
      execFileSync('mv', [join(d, 'old name.txt'), join(d, 'new näme.txt')]);
      unlinkSync(join(d, 'gone.txt'));
      writeFileSync(join(d, 'fresh.txt'), '1\n2\n3\n');
      chmodSync(join(d, 'tool.sh'), 0o755);
      writeFileSync(join(d, 'copy.txt'), 'alpha\nbeta\ngamma\ndelta\nepsilon\n');
    },
    ['-M', '-C', '--find-copies-harder'],
  );
  const files = read(t, diff);
  const by = (p: string): DiffFile | undefined => files.find((f) => f.newPath === p || f.oldPath === p);
  t.match(by('new näme.txt'), { oldPath: 'old name.txt', newPath: 'new näme.txt', status: 'renamed' }, 'rename with spaces and non-ASCII');
  t.match(by('gone.txt'), { oldPath: 'gone.txt', newPath: null, status: 'deleted', oldMode: '100644', deletions: 2 });
  t.match(by('fresh.txt'), { oldPath: null, newPath: 'fresh.txt', status: 'added', newMode: '100644', additions: 3 });
  t.match(by('tool.sh'), { status: 'modified', oldMode: '100644', newMode: '100755', additions: 0, deletions: 0 }, 'mode change only');
  t.match(by('copy.txt'), { oldPath: 'src.txt', newPath: 'copy.txt', status: 'copied' });
  t.same(diffPaths({ files, additions: 0, deletions: 0 }).sort(), ['copy.txt', 'fresh.txt', 'gone.txt', 'new näme.txt', 'old name.txt', 'src.txt', 'tool.sh'].sort());
});

t.test('binary files (with and without --binary) and symlinks', async (t) => {
  const before = (d: string): void => writeFileSync(join(d, 'blob.bin'), Buffer.from([0, 1, 2, 3]));
  const change = (d: string): void => {
    writeFileSync(join(d, 'blob.bin'), Buffer.from([0, 9, 9, 9]));
    symlinkSync('keep.txt', join(d, 'link'));
  };
  for (const flags of [['--binary'], []]) {
    const diff = gitDiff(before, change, flags);
    const files = read(t, diff);
    t.match(files.find((f) => f.newPath === 'blob.bin'), { binary: true, additions: 0, deletions: 0 }, `binary ${flags.join(' ') || '(no patch data)'}`);
    t.match(files.find((f) => f.newPath === 'link'), { status: 'added', newMode: '120000', symlinkTarget: 'keep.txt' }, 'a symlink and its target');
  }
});

t.test('plain (non-git) unified diffs and what git apply -p1 strips', async (t) => {
  const plain = '--- a/x.txt\t2024-01-01 00:00:00\n+++ b/x.txt\t2024-01-02 00:00:00\n@@ -1 +1 @@\n-a\n+b\n--- src/passwd\n+++ src/passwd\n@@ -1 +1 @@\n-a\n+b\n';
  const files = read(t, plain);
  t.same(files.map((f) => f.newPath), ['x.txt', 'passwd'], 'the first component goes, whatever it is (git apply -p1 writes "passwd", not "src/passwd")');
  const abs = parseUnifiedDiff('--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n');
  t.match(abs, { ok: true, value: { files: [{ newPath: '/etc/passwd' }] } }, 'absolute names stay absolute (and unsafe)');
  t.equal(unsafeDiffPath('/etc/passwd'), 'absolute path');
});

t.test('malformed diffs are problems, never throws', async (t) => {
  t.match(parseUnifiedDiff('just text\n'), { ok: false, errors: [{ message: /no file headers/ }] });
  t.match(parseUnifiedDiff('diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n'), { ok: false, errors: [{ message: /line counts/ }] });
  t.match(parseUnifiedDiff('diff --git a/x b/x\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n'), { ok: false, errors: [{ message: /inconsistent old file names: "x" vs "y"/ }] }, 'headers that disagree (git apply refuses them too)');
  t.match(parseUnifiedDiff('diff --git "a/\\777" "b/\\777"\n--- a/x\n+++ b/x\n'), { ok: false });
  t.match(parseUnifiedDiff('diff --git a/one b/two\nold mode 100644\nnew mode 100755\n'), { ok: false, errors: [{ message: /cannot tell the file names/ }] }, 'unquoted different names without rename lines');
  t.match(parseUnifiedDiff(42 as unknown as string), { ok: false });
  // A removed line "-- x" reads like a "---" header; hunks are counted so it stays in the body.
  t.match(parseUnifiedDiff('diff --git a/q.sql b/q.sql\n--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,1 @@\n--- /etc/passwd\n select 1;\n'), { ok: true, value: { files: [{ newPath: 'q.sql', deletions: 1 }] } });
});

t.test('unquoteGitPath', async (t) => {
  t.equal(unquoteGitPath('"a/caf\\303\\251 \\"q\\".txt"'), 'a/café "q".txt');
  t.equal(unquoteGitPath('"tab\\there\\\\"'), 'tab\there\\');
  t.equal(unquoteGitPath('plain name'), 'plain name');
  t.equal(unquoteGitPath('"\\303"'), null, 'not UTF-8: refused, not guessed');
  t.equal(unquoteGitPath('"bad\\q"'), null, 'unknown escape');
  t.equal(unquoteGitPath('"open'), null);
});
