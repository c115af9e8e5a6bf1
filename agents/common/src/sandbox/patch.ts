// Patch policy, checked on the host before a patch goes anywhere near a sandbox: every
// path it touches must be a plain relative path inside the tree, allowed by the job's
// rules, and any symlink it creates must point inside the tree. Pure functions. The diff
// is read by dvm-kinds' parseUnifiedDiff, the same reader buyers verify results with, so a
// provider and a buyer never see different files in one patch.
import { filePaths, globMatch, parseUnifiedDiff, unsafeDiffPath, type DiffFile } from '@bazaar/dvm-kinds/diff';
import { formatProblems } from '@bazaar/dvm-kinds/problem';

export interface PatchRules {
  /** Globs a touched path must match one of (default: everything). */
  readonly allowed?: readonly string[];
  /** Globs no touched path may match (always includes .git). */
  readonly disallowed?: readonly string[];
}

export type PatchCheck =
  | { readonly ok: true; readonly files: readonly DiffFile[] }
  | { readonly ok: false; readonly reason: string };

/** True when `path` is matched by the glob or lies under a directory it names (dvm-kinds' one definition). */
export const pathMatches = (path: string, glob: string): boolean => globMatch(glob, path);

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
  const parsed = parseUnifiedDiff(diff);
  if (!parsed.ok) return { ok: false, reason: `invalid: ${formatProblems(parsed.errors)}` };
  const files = parsed.value.files;
  const disallowed = [...(rules.disallowed ?? [])];
  for (const f of files) {
    const paths = filePaths(f);
    for (const p of paths) {
      const bad = unsafeDiffPath(p);
      if (bad) return { ok: false, reason: `blocked: ${bad}: ${JSON.stringify(p)}` };
      const deny = disallowed.find((g) => pathMatches(p, g));
      if (deny) return { ok: false, reason: `blocked: ${JSON.stringify(p)} matches disallowed path ${JSON.stringify(deny)}` };
      if (rules.allowed && rules.allowed.length && !rules.allowed.some((g) => pathMatches(p, g))) {
        return { ok: false, reason: `blocked: ${JSON.stringify(p)} is outside the allowed paths` };
      }
    }
    if (f.newMode === '160000') return { ok: false, reason: `blocked: submodule entries are not allowed: ${paths.join(', ')}` };
    if (f.newMode === '120000' && f.newPath !== null) {
      const link = f.newPath;
      if (f.binary || f.symlinkTarget === undefined || !symlinkStaysInside(link, f.symlinkTarget)) {
        return { ok: false, reason: `blocked: symlink ${JSON.stringify(link)} points outside the tree (${JSON.stringify(f.symlinkTarget ?? '?')})` };
      }
    }
  }
  return { ok: true, files };
}
