// Verification on the buyer's own machine, in its own sandbox: agents-common's verifyResult
// (the one implementation buyers and arbiters share; the per-kind checks are listed there),
// plus the buyer's evidence bundle — written to DATA/evidence/<job>.json, its sha256 goes
// into a dispute so an arbiter can ask for exactly this file.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EventLike } from '@bazaar/dvm-kinds/tags';
import type { Problem } from '@bazaar/dvm-kinds/problem';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { verifyResult as verifyShared, type VerifyOptions as SharedOptions } from '@bazaar/agents-common/verify/verify-result';
import type { Verdict } from './job-store.ts';

export interface VerifyOptions extends SharedOptions {
  /** Where evidence bundles are written. */
  readonly evidenceDir: string;
}

export interface Evidence {
  readonly version: 1;
  readonly request: string;
  readonly result: string;
  readonly kind: number;
  readonly checks: Verdict['checks'];
  readonly problems: readonly Problem[];
  /** What the replays did: exit codes, output hashes and tails. */
  readonly replay: Record<string, unknown>;
}

/** Verifies `result` (opened) against the request as the buyer wrote it (`request`: clear tags, with id). Throws when it cannot run (ReplayUnavailableError). */
export async function verifyResult(request: EventLike & { id: string }, result: EventLike & { id: string }, o: VerifyOptions): Promise<Verdict> {
  const v = await verifyShared(request, result, o);
  const evidence: Evidence = { version: 1, request: request.id, result: result.id, kind: request.kind, checks: v.checks, problems: v.problems, replay: v.replay };
  const text = JSON.stringify(evidence, null, 1) + '\n';
  const evidenceSha256 = sha256Hex(text);
  await mkdir(o.evidenceDir, { recursive: true });
  await writeFile(join(o.evidenceDir, `${request.id}.json`), text, { mode: 0o600 });
  return { ok: v.ok, checks: v.checks, problems: v.problems, evidenceSha256, checkedAt: Date.now() };
}
