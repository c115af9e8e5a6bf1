// The trajectory log of one job: a JSON line per step (what ran, exit, duration, hashes).
// Its sha256 goes into the result (`trajectory_sha256`); the file is kept under the data
// directory so it can be served to an arbiter.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';

export interface TrajectoryStep {
  readonly step: string;
  readonly command?: string;
  readonly exit?: number | null;
  readonly durationMs?: number;
  readonly [k: string]: unknown;
}

export class Trajectory {
  readonly #lines: string[] = [];
  add(step: TrajectoryStep): void {
    this.#lines.push(JSON.stringify({ at: new Date().toISOString(), ...step }));
  }
  text(): string {
    return this.#lines.map((l) => l + '\n').join('');
  }
  sha256(): string {
    return sha256Hex(new TextEncoder().encode(this.text()));
  }
  /** Writes `<dir>/<jobId>.jsonl` and returns its sha256. */
  async save(dir: string, jobId: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${jobId}.jsonl`), this.text(), { mode: 0o600 });
    return this.sha256();
  }
}
