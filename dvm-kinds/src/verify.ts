// The shape every verifyX returns: which checks failed, each as a Problem.
import type { Problem } from './problem.ts';

export interface Verification {
  readonly ok: boolean;
  /** Failed checks; `path` names the check (e.g. `patch_sha256`, `content.issues[2].file`). */
  readonly problems: readonly Problem[];
}

export const verification = (problems: readonly Problem[]): Verification => ({ ok: problems.length === 0, problems });
