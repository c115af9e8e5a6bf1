// The one unified-diff reader of the project (git style and plain), shared by the
// provider's patch policy (agents/common sandbox) and the buyer's verifier (verifyPatchGen),
// so both sides always see the same files and paths. File names are read as `git apply`
// reads them: quoted names are unquoted (C escapes, octal UTF-8 bytes), and the names of
// `diff --git`, `---` and `+++` lines lose their first path component (git apply's -p1);
// `rename`/`copy` lines carry full paths. Names that disagree between header lines are an
// error (git apply refuses them too). Pure: no I/O, no Node APIs.
import { problem, type Parsed, type Problem, result } from './problem.ts';

export type DiffFileStatus = 'modified' | 'added' | 'deleted' | 'renamed' | 'copied';

export interface DiffFile {
  /** Path before (`null` for a new file). */
  readonly oldPath: string | null;
  /** Path after (`null` for a deleted file). */
  readonly newPath: string | null;
  readonly status: DiffFileStatus;
  /** Git file modes when the diff states them (`100644`, `100755`, `120000` symlink, `160000` submodule). */
  readonly oldMode?: string;
  readonly newMode?: string;
  /** A binary change (`GIT binary patch` or `Binary files … differ`): no line counts. */
  readonly binary: boolean;
  readonly additions: number;
  readonly deletions: number;
  /** For a symlink (mode 120000): its target after the patch, from the added lines. */
  readonly symlinkTarget?: string;
}

export interface DiffStats {
  readonly files: readonly DiffFile[];
  readonly additions: number;
  readonly deletions: number;
}

const ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Git's C-style quoted path (`"caf\303\251 \"q\".txt"` → `café "q".txt`). An unquoted
 * string is returned as is; `null` when the quoting is malformed or the bytes are not UTF-8.
 */
export function unquoteGitPath(s: string): string | null {
  if (!s.startsWith('"')) return s;
  if (s.length < 2 || !s.endsWith('"')) return null;
  const body = s.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '"') return null;
    if (c !== '\\') {
      bytes.push(...utf8.encode(c));
      continue;
    }
    const n = body[++i];
    if (n === undefined) return null;
    if (/[0-3]/.test(n) && /^[0-7]{2}$/.test(body.slice(i + 1, i + 3))) {
      bytes.push(parseInt(body.slice(i, i + 3), 8));
      i += 2;
    } else if (ESCAPES[n] !== undefined) bytes.push(ESCAPES[n]);
    else return null;
  }
  try {
    return strictUtf8.decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

type Name = { readonly path: string | null } | { readonly bad: string };

/** A `diff --git`/`---`/`+++` name: unquoted, `/dev/null` → null, first component dropped (-p1). */
function headerName(raw: string): Name {
  const unq = unquoteGitPath(raw);
  if (unq === null) return { bad: `malformed quoted name ${raw.slice(0, 200)}` };
  if (unq === '/dev/null') return { path: null };
  // An absolute name is kept whole so that the policy refuses it (git would make it relative).
  if (unq.startsWith('/')) return { path: unq };
  const slash = unq.indexOf('/');
  return { path: slash === -1 ? unq : unq.slice(slash + 1) };
}

/** The name on a `---`/`+++` line: up to a tab (timestamps; git adds a tab after names with spaces). */
const lineName = (rest: string): Name => headerName(rest.replace(/\r$/, '').split('\t')[0]);

const QUOTED = '"(?:[^"\\\\]|\\\\.)*"';

/** The two names of a `diff --git` line; undefined when they cannot be told apart (later lines decide). */
function gitHeaderNames(rest: string): { a: Name; b: Name } | undefined {
  const both = new RegExp(`^(${QUOTED}|[^"\\s]\\S*|[^"].*?) (${QUOTED})$`).exec(rest) ?? new RegExp(`^(${QUOTED}) (.+)$`).exec(rest);
  if (both) return { a: headerName(both[1]), b: headerName(both[2]) };
  // Unquoted names may contain spaces: git's rule is that both halves name the same path.
  for (let i = rest.indexOf(' '); i !== -1; i = rest.indexOf(' ', i + 1)) {
    const a = headerName(rest.slice(0, i));
    const b = headerName(rest.slice(i + 1));
    if ('path' in a && 'path' in b && a.path === b.path) return { a, b };
  }
  return undefined;
}

interface FileBuilder {
  oldPath?: string | null;
  newPath?: string | null;
  status: DiffFileStatus;
  oldMode?: string;
  newMode?: string;
  binary: boolean;
  additions: number;
  deletions: number;
  added: string[];
  /** Every name the headers gave, to check they agree: [which, path]. */
  names: ['old' | 'new', string | null][];
  line: number;
}

/** Parse a unified diff (git or plain); hunk line counts are checked against their headers. */
export function parseUnifiedDiff(text: string): Parsed<DiffStats> {
  const out: Problem[] = [];
  const built: FileBuilder[] = [];
  if (typeof text !== 'string') return result([problem('content', 'invalid', 'the diff must be a string')], () => ({ files: [], additions: 0, deletions: 0 }));
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let cur: FileBuilder | undefined;
  /** Inside a `diff --git` section whose `---`/`+++` lines have not come yet. */
  let gitHeaderOpen = false;
  const start = (i: number): FileBuilder => {
    cur = { status: 'modified', binary: false, additions: 0, deletions: 0, added: [], names: [], line: i + 1 };
    built.push(cur);
    return cur;
  };
  const name = (f: FileBuilder, which: 'old' | 'new', n: Name, i: number): void => {
    if ('bad' in n) out.push(problem(`line ${i + 1}`, 'invalid', n.bad));
    else f.names.push([which, n.path]);
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m: RegExpExecArray | null;
    if (line.startsWith('diff --git ')) {
      const f = start(i);
      gitHeaderOpen = true;
      const names = gitHeaderNames(line.slice('diff --git '.length).replace(/\r$/, ''));
      if (names) {
        name(f, 'old', names.a, i);
        name(f, 'new', names.b, i);
      }
      i++;
      continue;
    }
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      const f = gitHeaderOpen && cur ? cur : start(i);
      gitHeaderOpen = false;
      const a = lineName(line.slice(4));
      const b = lineName(lines[i + 1].slice(4));
      name(f, 'old', a, i);
      name(f, 'new', b, i + 1);
      if ('path' in a && a.path === null) f.status = 'added';
      if ('path' in b && b.path === null) f.status = 'deleted';
      i += 2;
      continue;
    }
    const h = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (h) {
      gitHeaderOpen = false;
      if (!cur) {
        out.push(problem(`line ${i + 1}`, 'invalid', 'hunk before any file header'));
        i++;
        continue;
      }
      const f = cur;
      let oldLeft = h[2] === undefined ? 1 : Number(h[2]);
      let newLeft = h[4] === undefined ? 1 : Number(h[4]);
      const first = i + 1;
      i++;
      // Counted: a body line such as "--- x" (a removed "-- x") is never read as a header.
      while (i < lines.length && (oldLeft > 0 || newLeft > 0)) {
        const l = lines[i];
        if (l.startsWith('+')) {
          f.additions++;
          newLeft--;
          f.added.push(l.slice(1));
        } else if (l.startsWith('-')) {
          f.deletions++;
          oldLeft--;
        } else if (l.startsWith(' ') || l === '') {
          oldLeft--;
          newLeft--;
        } else if (!l.startsWith('\\')) break; // "\ No newline at end of file" is not a line
        i++;
      }
      while (i < lines.length && lines[i].startsWith('\\')) i++;
      if (oldLeft !== 0 || newLeft !== 0) out.push(problem(`line ${first}`, 'invalid', 'hunk line counts do not match its header'));
      continue;
    }
    if (cur && gitHeaderOpen) {
      // Extended git header lines (before any ---/+++ or hunk of this file).
      if ((m = /^(rename|copy) (from|to) (.+)$/.exec(line))) {
        const p = unquoteGitPath(m[3].replace(/\r$/, ''));
        if (p === null) out.push(problem(`line ${i + 1}`, 'invalid', `malformed quoted name ${m[3].slice(0, 200)}`));
        else cur.names.push([m[2] === 'from' ? 'old' : 'new', p]);
        cur.status = m[1] === 'rename' ? 'renamed' : 'copied';
      } else if ((m = /^new file mode (\d{6})$/.exec(line))) {
        cur.status = 'added';
        cur.newMode = m[1];
      } else if ((m = /^deleted file mode (\d{6})$/.exec(line))) {
        cur.status = 'deleted';
        cur.oldMode = m[1];
      } else if ((m = /^old mode (\d{6})$/.exec(line))) cur.oldMode = m[1];
      else if ((m = /^new mode (\d{6})$/.exec(line))) cur.newMode = m[1];
      else if ((m = /^index [0-9a-f]+\.\.[0-9a-f]+ (\d{6})$/.exec(line))) {
        cur.oldMode ??= m[1];
        cur.newMode ??= m[1];
      } else if (line.startsWith('GIT binary patch') || /^Binary files .* differ$/.test(line)) cur.binary = true;
    }
    i++;
  }
  const files: DiffFile[] = [];
  for (const f of built) {
    const pick = (which: 'old' | 'new'): string | null | undefined => {
      const seen = f.names.filter(([w]) => w === which).map(([, p]) => p);
      // /dev/null on ---/+++ is how new and deleted files look; the git header still names them.
      const real = [...new Set(seen.filter((p): p is string => p !== null))];
      if (real.length > 1) out.push(problem(`line ${f.line}`, 'invalid', `inconsistent ${which} file names: ${real.map((p) => JSON.stringify(p)).join(' vs ')}`));
      return real[0] ?? (seen.length ? null : undefined);
    };
    const oldName = pick('old');
    const newName = pick('new');
    if (oldName === undefined && newName === undefined) {
      out.push(problem(`line ${f.line}`, 'invalid', 'cannot tell the file names of this diff header'));
      continue;
    }
    const oldPath = f.status === 'added' ? null : (oldName ?? newName ?? null);
    const newPath = f.status === 'deleted' ? null : (newName ?? oldName ?? null);
    const mode = f.newMode;
    files.push({
      oldPath,
      newPath,
      status: f.status,
      ...(f.oldMode ? { oldMode: f.oldMode } : {}),
      ...(mode ? { newMode: mode } : {}),
      binary: f.binary,
      additions: f.additions,
      deletions: f.deletions,
      ...(mode === '120000' && newPath !== null ? { symlinkTarget: f.added.join('\n') } : {}),
    });
  }
  if (built.length === 0) out.push(problem('content', 'invalid', 'no file headers found in the diff'));
  return result(out, () => ({
    files,
    additions: files.reduce((s, f) => s + f.additions, 0),
    deletions: files.reduce((s, f) => s + f.deletions, 0),
  }));
}

/** Paths one file entry touches (old and new names). */
export const filePaths = (f: DiffFile): string[] => [...new Set([f.oldPath, f.newPath].filter((p): p is string => p !== null))];

/** Paths a diff touches (old and new names). */
export const diffPaths = (d: DiffStats): string[] => [...new Set(d.files.flatMap(filePaths))];

/**
 * Why a path in a diff is not a plain relative path inside the tree (absolute, `..`,
 * non-normalized, inside `.git` in any letter case, NUL), or undefined when it is fine.
 * Providers refuse such patches before applying them; buyers refuse results that carry them.
 */
export function unsafeDiffPath(p: string): string | undefined {
  if (p.length === 0) return 'empty path';
  if (p.includes('\0')) return 'NUL in path';
  if (p.startsWith('/')) return 'absolute path';
  const parts = p.split('/');
  if (parts.some((s) => s === '..')) return 'path escapes the tree (..)';
  if (parts.some((s) => s === '' || s === '.')) return 'non-normalized path';
  if (parts.some((s) => s.toLowerCase() === '.git')) return 'path inside .git';
  return undefined;
}

/**
 * Path globs of the microstandard: `*` within a path segment, `**` across segments, `?` one
 * character. A glob that names a directory covers everything inside it (`docs`, `docs/` and
 * `src/*` all match `docs/a/b.md` resp. `src/x/y.ts`). Providers' sandboxes and buyers'
 * verifiers both use this one definition, so they never disagree about a path.
 */
export function globMatch(glob: string, path: string): boolean {
  const g = glob.replace(/\/+$/, '');
  if (g === '') return false;
  let re = '';
  for (let i = 0; i < g.length; i++) {
    const c = g[i];
    if (c === '*' && g[i + 1] === '*') {
      re += '.*';
      i++;
      if (g[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  const rx = new RegExp(`^${re}$`);
  if (rx.test(path)) return true;
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) if (rx.test(path.slice(0, i))) return true;
  return false;
}
