// A strict-enough unified diff reader (git style): which files change, lines added and removed.
import { problem, type Parsed, type Problem, result } from './problem.ts';

export interface DiffFile {
  /** Path before (`null` for a new file). */
  readonly oldPath: string | null;
  /** Path after (`null` for a deleted file). */
  readonly newPath: string | null;
  readonly additions: number;
  readonly deletions: number;
}

export interface DiffStats {
  readonly files: readonly DiffFile[];
  readonly additions: number;
  readonly deletions: number;
}

const stripPrefix = (p: string): string | null => {
  const path = p.split('\t')[0].trim();
  if (path === '/dev/null') return null;
  return path.replace(/^[ab]\//, '');
};

/** Parse a unified diff; checks hunk line counts against their headers. */
export function parseUnifiedDiff(text: string): Parsed<DiffStats> {
  const out: Problem[] = [];
  const files: DiffFile[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let cur: { oldPath: string | null; newPath: string | null; additions: number; deletions: number } | undefined;
  let pendingGit: { oldPath: string | null; newPath: string | null } | undefined;
  let i = 0;
  const flush = () => {
    if (cur) files.push(cur);
    cur = undefined;
  };
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith('diff --git ')) {
      flush();
      const m = /^diff --git a\/(.+) b\/(.+)$/.exec(line);
      pendingGit = m ? { oldPath: m[1], newPath: m[2] } : undefined;
      // A git diff without hunks (mode change, binary, rename) still changes a file.
      cur = { oldPath: pendingGit?.oldPath ?? null, newPath: pendingGit?.newPath ?? null, additions: 0, deletions: 0 };
      i++;
      continue;
    }
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      if (!pendingGit) flush();
      pendingGit = undefined;
      const prev = cur;
      cur = { oldPath: stripPrefix(line.slice(4)), newPath: stripPrefix(lines[i + 1].slice(4)), additions: prev?.additions ?? 0, deletions: prev?.deletions ?? 0 };
      i += 2;
      continue;
    }
    const h = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (h) {
      if (!cur) {
        out.push(problem(`line ${i + 1}`, 'invalid', 'hunk before any file header'));
        i++;
        continue;
      }
      let oldLeft = h[2] === undefined ? 1 : Number(h[2]);
      let newLeft = h[4] === undefined ? 1 : Number(h[4]);
      const start = i + 1;
      i++;
      while (i < lines.length && (oldLeft > 0 || newLeft > 0)) {
        const l = lines[i];
        if (l.startsWith('+')) {
          cur.additions++;
          newLeft--;
        } else if (l.startsWith('-')) {
          cur.deletions++;
          oldLeft--;
        } else if (l.startsWith(' ') || l === '') {
          oldLeft--;
          newLeft--;
        } else if (l.startsWith('\\')) {
          // "\ No newline at end of file"
        } else break;
        i++;
      }
      while (i < lines.length && lines[i].startsWith('\\')) i++;
      if (oldLeft !== 0 || newLeft !== 0) out.push(problem(`line ${start}`, 'invalid', 'hunk line counts do not match its header'));
      continue;
    }
    i++;
  }
  flush();
  if (files.length === 0) out.push(problem('content', 'invalid', 'no file changes found in the diff'));
  return result(out, () => ({
    files,
    additions: files.reduce((s, f) => s + f.additions, 0),
    deletions: files.reduce((s, f) => s + f.deletions, 0),
  }));
}

/** Paths a diff touches (old and new names). */
export const diffPaths = (d: DiffStats): string[] => [...new Set(d.files.flatMap((f) => [f.oldPath, f.newPath].filter((p): p is string => p !== null)))];

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
