// The ruling, as a pure function of the evidence. The replay decides: a check that proves the
// work wrong (hash, patch, tests, schema, reproduced output) rules for the buyer; checks that
// only show the result misdescribing right work (PatchGen line counts, a review issue pointing
// outside the diff, an index symbol in an unlisted file, SandboxRun time totals) make a split;
// a replay that passes rules for the provider — whether or not the provider answered, since
// silence alone never loses a case. A provider that concedes loses by agreement. The provider's
// answer and the trajectory check are evidence and reasons, never a verdict on their own.
import { formatProblems, type Problem } from '@bazaar/dvm-kinds/problem';
import type { Ruling } from '@bazaar/dvm-kinds/market/verdict';
import type { ReplayRecord, ResponseRecord, TrajectoryRecord } from './case.ts';

const MINOR: Readonly<Record<number, readonly RegExp[]>> = {
  5932: [/^files_changed$/, /^additions$/, /^deletions$/],
  5933: [/^content\.issues\[\d+\]\.(file|line_end)$/],
  5931: [/^content\.symbols(\[\d+\]\.path)?$/],
  5930: [/^content\.totals\.(wall_ms|cpu_ms)$/, /^content\.commands\[\d+\]\.(wall_ms|cpu_ms)$/],
};

/** A problem that shows the result misdescribing its work, not the work being wrong. */
export const isMinorProblem = (kind: number, p: Problem): boolean => (MINOR[kind] ?? []).some((re) => re.test(p.path));

export interface RulingInput {
  readonly kind: number;
  readonly replay?: ReplayRecord;
  readonly response?: ResponseRecord;
  /** Absent when the result commits to no trajectory. */
  readonly trajectory?: TrajectoryRecord;
  readonly splitProviderShare: number;
}

export interface RulingOutcome {
  readonly ruling: Ruling;
  readonly providerShare?: number;
  readonly reasons: string[];
  readonly checks: { name: string; passed: boolean }[];
}

export function rule(i: RulingInput): RulingOutcome {
  const reasons: string[] = [];
  const checks: { name: string; passed: boolean }[] = [];
  for (const c of i.replay?.checks ?? []) checks.push({ name: c.name, passed: c.passed });
  checks.push({ name: 'the provider answered the dispute within the response window', passed: !!i.response });
  if (i.trajectory) checks.push({ name: "the trajectory served matches the result's trajectory_sha256", passed: i.trajectory.status === 'matched' });

  let ruling: Ruling;
  let providerShare: number | undefined;
  if (i.response?.position === 'concede') {
    ruling = 'buyer';
    reasons.push('The provider conceded the dispute.');
  } else if (!i.replay) {
    throw new Error('a ruling without a replay needs the provider to concede');
  } else {
    const problems = i.replay.problems;
    const essential = problems.filter((p) => !isMinorProblem(i.kind, p));
    if (essential.length) {
      ruling = 'buyer';
      reasons.push(`Our replay failed: ${formatProblems(essential, 5)}.`);
    } else if (problems.length) {
      ruling = 'split';
      providerShare = i.splitProviderShare;
      reasons.push(`The work verified on our replay, but the result misstates it: ${formatProblems(problems, 5)}. Split: ${Math.round(providerShare * 100)}% to the provider.`);
    } else {
      ruling = 'provider';
      reasons.push(`Our replay passed every check (${i.replay.checks.map((c) => c.name).join('; ')}).`);
    }
  }
  if (i.response) reasons.push(`The provider answered: ${i.response.position}${i.response.message ? ` (“${i.response.message.slice(0, 300)}”)` : ''}.`);
  else reasons.push(ruling === 'buyer' ? 'The provider did not answer within the response window.' : 'The provider did not answer within the response window; silence alone decides nothing.');
  if (i.trajectory) {
    const t = i.trajectory;
    reasons.push(
      t.status === 'matched' ? "The trajectory the provider served matches the hash in its result."
        : t.status === 'mismatch' ? `The trajectory the provider served does not match the hash in its result (served ${t.served?.slice(0, 16)}…, committed ${t.committed.slice(0, 16)}…).`
          : t.status === 'refused' ? `The provider refused to serve its trajectory${t.detail ? `: ${t.detail}` : ''}.`
            : 'The provider did not serve its trajectory within the response window.',
    );
  }
  return { ruling, ...(providerShare !== undefined ? { providerShare } : {}), reasons, checks };
}
