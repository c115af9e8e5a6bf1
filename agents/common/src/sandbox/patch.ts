// Patch policy, checked on the host before a patch goes anywhere near a sandbox: every
// path it touches must be a plain relative path inside the tree, allowed by the job's
// rules, and any symlink it creates must point inside the tree. Pure functions.
import { globMatch } from '@bazaar/dvm-kinds/diff';

export interface PatchFile {
  /** Every path the file's headers mention (old and new names, renames, copies). */
  readonly paths: readonly string[];
  /** The resulting mode when the patch sets one (e.g. '120000' for a symlink). */
  readonly newMode?: string;
  /** For symlinks: the target, from the added lines. */
  readonly symlinkTarget?: string;
  readonly binary: boolean;
}

export interface PatchRules {
  /** Globs a touched path must match one of (default: everything). */
  readonly allowed?: readonly string[];
  /** Globs no touched path may match (always includes .git). */
  readonly disallowed?: readonly string[];
}

export type PatchCheck =
  | { readonly ok: true; readonly files: readonly PatchFile[] }
  | { readonly ok: false; readonly reason: string };

/** C-style unquoting of git's quoted paths ("a/b\303\251"). */
export function unquoteGitPath(s: string): string {
  if (!s.startsWith('"') || !s.endsWith('"') || s.length < 2) return s;
  const body = s.slice(1, -1);
  const bytes: number[] = [];
  const esc: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const n = body[++i] ?? '';
    if (/[0-7]/.test(n)) {
      const oct = body.slice(i, i + 3);
      bytes.push(parseInt(oct, 8));
      i += 2;
    } else {
      bytes.push(esc[n] ?? n.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

const stripPrefix = (p: string): string | null => {
  const unq = unquoteGitPath(p.replace(/\t.*$/, '').trimEnd());
  if (unq === '/dev/null') return null;
  return unq.replace(/^[ab]\//, '');
};

/** Splits a unified (git or plain) diff into per-file header facts. */
export function parsePatch(diff: string): PatchFile[] {
  type F = { paths: string[]; newMode?: string; binary: boolean; added: string[] };
  const files: F[] = [];
  const gitStyle = /^diff --git /m.test(diff);
  let cur = null as F | null;
  // Remaining old/new lines of the current hunk, from its @@ header: a hunk's body is
  // never mistaken for headers (a removed line "-- x" reads like "--- x").
  let oldLeft = 0;
  let newLeft = 0;
  const start = (): F => {
    const f: F = { paths: [], binary: false, added: [] };
    files.push(f);
    cur = f;
    return f;
  };
  for (const line of diff.split('\n')) {
    if (oldLeft > 0 || newLeft > 0) {
      const c = line[0];
      if (c === '+') {
        newLeft--;
        cur?.added.push(line.slice(1));
      } else if (c === '-') oldLeft--;
      else if (c === ' ' || line === '') {
        oldLeft--;
        newLeft--;
      }
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line))) {
      oldLeft = m[1] === undefined ? 1 : Number(m[1]);
      newLeft = m[2] === undefined ? 1 : Number(m[2]);
      continue;
    }
    if (line.startsWith('diff --git ')) {
      const f = start();
      const rest = line.slice('diff --git '.length);
      const two = /^("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$/.exec(rest);
      if (two) {
        for (const p of [two[1], two[2]]) {
          const s = stripPrefix(p);
          if (s !== null) f.paths.push(s);
        }
      } else {
        // Unquoted names with spaces: git's rule, both halves name the same path.
        const h = /^a\/(.+) b\/(.+)$/.exec(rest);
        f.paths.push(h && h[1] === h[2] ? h[1] : rest);
      }
      continue;
    }
    if (!gitStyle && line.startsWith('--- ')) start();
    const f = cur as F | null;
    if (!f) continue;
    if ((m = /^(?:---|\+\+\+) (.+)$/.exec(line))) {
      const s = stripPrefix(m[1]);
      if (s !== null) f.paths.push(s);
    } else if ((m = /^(?:rename|copy) (?:from|to) (.+)$/.exec(line))) {
      f.paths.push(unquoteGitPath(m[1]));
    } else if ((m = /^(?:new file mode|new mode) (\d+)$/.exec(line))) {
      f.newMode = m[1];
    } else if ((m = /^index [0-9a-f]+\.\.[0-9a-f]+ (\d+)$/.exec(line))) {
      f.newMode ??= m[1];
    } else if (line.startsWith('GIT binary patch') || line.startsWith('Binary files ')) {
      f.binary = true;
    }
  }
  return files.map((f) => ({
    paths: [...new Set(f.paths)],
    ...(f.newMode ? { newMode: f.newMode } : {}),
    ...(f.newMode === '120000' ? { symlinkTarget: f.added.join('\n') } : {}),
    binary: f.binary,
  }));
}

/** True when `path` is matched by the glob or lies under a directory it names (dvm-kinds' one definition). */
export const pathMatches = (path: string, glob: string): boolean => globMatch(glob, path);

function badPath(p: string): string | null {
  if (p.length === 0) return 'empty path';
  if (p.includes('\0')) return 'NUL in path';
  if (p.startsWith('/')) return 'absolute path';
  const parts = p.split('/');
  if (parts.some((s) => s === '..')) return 'path escapes the tree (..)';
  if (parts.some((s) => s === '' || s === '.')) return 'non-normalized path';
  if (parts.some((s) => s.toLowerCase() === '.git')) return 'path inside .git';
  return null;
}

/** Resolves a symlink's target relative to its directory; null when it leaves the tree. */
export function symlinkStaysInside(linkPath: string, target: string): boolean {
  if (target.length === 0 || target.startsWith('/') || target.includes('\0') || target.includes('\n')) return false;
  const stack = linkPath.split('/').slice(0, -1);
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (stack.length === 0) return false;
      stack.pop();
    } else {
      stack.push(seg);
    }
  }
  return !stack.some((s) => s.toLowerCase() === '.git');
}

export function checkPatch(diff: string, rules: PatchRules = {}): PatchCheck {
  if (typeof diff !== 'string' || diff.trim().length === 0) return { ok: false, reason: 'invalid: empty patch' };
  const files = parsePatch(diff);
  if (files.length === 0 || files.every((f) => f.paths.length === 0)) return { ok: false, reason: 'invalid: no file headers found in the patch' };
  const disallowed = [...(rules.disallowed ?? [])];
  for (const f of files) {
    for (const p of f.paths) {
      const bad = badPath(p);
      if (bad) return { ok: false, reason: `blocked: ${bad}: ${JSON.stringify(p)}` };
      const deny = disallowed.find((g) => pathMatches(p, g));
      if (deny) return { ok: false, reason: `blocked: ${JSON.stringify(p)} matches disallowed path ${JSON.stringify(deny)}` };
      if (rules.allowed && rules.allowed.length && !rules.allowed.some((g) => pathMatches(p, g))) {
        return { ok: false, reason: `blocked: ${JSON.stringify(p)} is outside the allowed paths` };
      }
    }
    if (f.newMode === '160000') return { ok: false, reason: `blocked: submodule entries are not allowed: ${f.paths.join(', ')}` };
    if (f.newMode === '120000') {
      const link = f.paths[f.paths.length - 1];
      if (f.binary || f.symlinkTarget === undefined || !symlinkStaysInside(link, f.symlinkTarget)) {
        return { ok: false, reason: `blocked: symlink ${JSON.stringify(link)} points outside the tree (${JSON.stringify(f.symlinkTarget ?? '?')})` };
      }
    }
  }
  return { ok: true, files };
}
