// What a backend is: the code that serves one job kind. The registry (registry.ts) holds one
// per kind; the pipeline knows backends only through this interface.
import type { Logger } from 'pino';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { Parsed } from '@bazaar/dvm-kinds/problem';
import type { Runner } from '@bazaar/agents-common/sandbox/runner';
import type { ProviderConfig } from '../config.ts';
import type { Trajectory } from '../trajectory.ts';

/** What every backend run gets: the sandbox, the job's log and trajectory, its scratch space. */
export interface BackendContext {
  readonly runner: Runner;
  readonly log: Logger;
  readonly trajectory: Trajectory;
  /** Host directory for this job's scratch space (removed afterwards). */
  readonly workRoot: string;
  readonly signal: AbortSignal;
  readonly allowFileRepos?: boolean;
  /** Progress 0..1 for `partial` feedback. */
  readonly onProgress?: (fraction: number, message: string) => void;
}

/** A backend run's context plus what the result needs: the opened request and the config. */
export interface RunContext extends BackendContext {
  /** The request as opened (decrypted for private jobs). */
  readonly event: NostrEvent;
  readonly config: ProviderConfig;
  /** Private jobs leave the request out of the result. */
  readonly omitRequest: boolean;
}

/** What a backend produced, before it is priced and delivered. */
export interface Produced {
  readonly template: EventTemplate;
  /** Units of the price book's unit actually used (seconds, files, 1k tokens, jobs). */
  readonly units: number;
}

/** One job kind served: its typed request `R`, parsed once by dvm-kinds and handed to `run`. */
export interface Backend<R> {
  readonly kind: number;
  parse(event: NostrEvent): Parsed<R>;
  /** What serves the kind under `config` (for status), or undefined when it is not configured. */
  describe(config: ProviderConfig, runner: string): string | undefined;
  /** The most units the job can use: what prepay charges and max_cost is checked against. */
  maxUnits(req: R): number;
  /** The job's own time limit, when the kind has one (escrow locks must outlast it). */
  timeLimitSecs(req: R): number | undefined;
  /** The customer's price cap, when the kind has one. */
  maxCostMsats(req: R): number | undefined;
  run(req: R, ctx: RunContext): Promise<Produced>;
}
