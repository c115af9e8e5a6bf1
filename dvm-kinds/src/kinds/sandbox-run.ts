// 5930 SandboxRun: run shell commands in a sandbox, optionally in a checkout of a repo.
import type { EventTemplate, NostrEvent } from '../nostr.ts';
import { sha256Hex } from '../hash.ts';
import { buildJobRequest, buildJobResult, decodeParams, encodeParams, readJobRequest, parseJobResult, parseJsonContent, type JobRequestCommon, type JobRequestEnvelope, type JobResultCommon, type JobResultEnvelope } from '../job.ts';
import { fail, problem, result, type Parsed, type Problem } from '../problem.ts';
import { JSON_SCHEMA_DIALECT, validateSchema, type JsonSchema } from '../schema.ts';
import { shapeProblems, type EventLike } from '../tags.ts';
import { verification, type Verification } from '../verify.ts';

export const SANDBOX_RUN_KIND = 5930;
export const SANDBOX_RUN_RESULT_KIND = 6930;
/** Default cap on captured stdout/stderr per stream, in bytes. */
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024;

export const sandboxRunParamsSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5930/params.json',
  title: 'SandboxRun params',
  type: 'object',
  additionalProperties: false,
  required: ['cmd', 'time_limit_secs'],
  properties: {
    cmd: { description: 'Shell command lines, each run with /bin/sh -c in the workspace, in order; stops at the first non-zero exit', type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', minLength: 1, maxLength: 8192 } },
    time_limit_secs: { description: 'Wall-clock limit for all commands together', type: 'integer', minimum: 1, maximum: 86400 },
    repo_ref: { description: 'Git ref (branch, tag or commit) of the repo input to check out', type: 'string', minLength: 1, maxLength: 256 },
    memory_mb: { description: 'Memory limit in MiB', type: 'integer', minimum: 16, maximum: 65536 },
    cpus: { description: 'CPU share (cores)', type: 'number', exclusiveMinimum: 0, maximum: 256 },
    max_output_bytes: { description: 'Cap on captured stdout and stderr per command, in bytes', type: 'integer', minimum: 0, maximum: 16777216 },
  },
} as const satisfies JsonSchema;

export interface SandboxRunParams {
  readonly cmd: readonly string[];
  readonly time_limit_secs: number;
  readonly repo_ref?: string;
  readonly memory_mb?: number;
  readonly cpus?: number;
  readonly max_output_bytes?: number;
}

const commandSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['cmd', 'exit_code', 'timed_out', 'stdout', 'stderr', 'stdout_sha256', 'stderr_sha256', 'stdout_bytes', 'stderr_bytes', 'stdout_truncated', 'stderr_truncated', 'wall_ms', 'cpu_ms'],
  properties: {
    cmd: { type: 'string' },
    exit_code: { description: 'Exit status; 128+N when killed by signal N', type: 'integer', minimum: 0, maximum: 255 },
    timed_out: { type: 'boolean' },
    stdout: { description: 'Captured stdout (UTF-8, at most max_output_bytes of it)', type: 'string' },
    stderr: { type: 'string' },
    stdout_sha256: { description: 'SHA-256 of the full stdout bytes', type: 'string', pattern: '^[0-9a-f]{64}$' },
    stderr_sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    stdout_bytes: { description: 'Total stdout length in bytes (before the cap)', type: 'integer', minimum: 0 },
    stderr_bytes: { type: 'integer', minimum: 0 },
    stdout_truncated: { type: 'boolean' },
    stderr_truncated: { type: 'boolean' },
    wall_ms: { type: 'integer', minimum: 0 },
    cpu_ms: { type: 'integer', minimum: 0 },
  },
} as const satisfies JsonSchema;

export const sandboxRunResultSchema = {
  $schema: JSON_SCHEMA_DIALECT,
  $id: 'https://bazaar.dev/schemas/5930/result.json',
  title: 'SandboxRun result',
  type: 'object',
  additionalProperties: false,
  required: ['commands', 'totals'],
  properties: {
    commands: { type: 'array', items: commandSchema },
    totals: {
      type: 'object',
      additionalProperties: false,
      required: ['exit_code', 'commands_run', 'wall_ms', 'cpu_ms', 'timed_out'],
      properties: {
        exit_code: { description: 'Exit code of the last command run', type: 'integer', minimum: 0, maximum: 255 },
        commands_run: { type: 'integer', minimum: 0 },
        wall_ms: { type: 'integer', minimum: 0 },
        cpu_ms: { type: 'integer', minimum: 0 },
        timed_out: { type: 'boolean' },
      },
    },
  },
} as const satisfies JsonSchema;

export interface SandboxCommandResult {
  readonly cmd: string;
  readonly exit_code: number;
  readonly timed_out: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdout_sha256: string;
  readonly stderr_sha256: string;
  readonly stdout_bytes: number;
  readonly stderr_bytes: number;
  readonly stdout_truncated: boolean;
  readonly stderr_truncated: boolean;
  readonly wall_ms: number;
  readonly cpu_ms: number;
}

export interface SandboxRunOutput {
  readonly commands: readonly SandboxCommandResult[];
  readonly totals: { readonly exit_code: number; readonly commands_run: number; readonly wall_ms: number; readonly cpu_ms: number; readonly timed_out: boolean };
}

export interface SandboxRunRequest {
  readonly envelope: JobRequestEnvelope;
  readonly params: SandboxRunParams;
  /** The repo to check out (`["i", url, "url"]` + `repo_ref`), if any. */
  readonly repo?: { readonly url: string; readonly ref?: string };
}

export interface SandboxRunRequestInput extends JobRequestCommon {
  readonly params: SandboxRunParams;
  readonly repoUrl?: string;
}

export function buildSandboxRunRequest(input: SandboxRunRequestInput): EventTemplate {
  const inputs = input.repoUrl ? [{ data: input.repoUrl, type: 'url' as const }] : [];
  return buildJobRequest(SANDBOX_RUN_KIND, inputs, encodeParams(input.params as unknown as Record<string, unknown>, sandboxRunParamsSchema), input);
}

export function parseSandboxRunRequest(e: EventLike): Parsed<SandboxRunRequest> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const { envelope, problems: out } = readJobRequest(e, SANDBOX_RUN_KIND);
  if (envelope.encrypted) return fail([...out, problem('content', 'encrypted', 'inputs and params are encrypted: open the request with the provider key first')]);
  const { value, problems: paramProblems } = decodeParams(envelope.params, sandboxRunParamsSchema);
  out.push(...paramProblems);
  const urls = envelope.inputs.filter((i) => i.type === 'url');
  envelope.inputs.forEach((i, n) => {
    if (i.type !== 'url') out.push(problem(`tags.i[${n}]`, 'unexpected', `SandboxRun takes only a repo url input, got a ${i.type} input`));
  });
  if (urls.length > 1) out.push(problem('tags.i', 'unexpected', 'at most one repo url input'));
  if (value.repo_ref !== undefined && urls.length === 0) out.push(problem('tags.param[repo_ref]', 'unexpected', 'repo_ref needs a repo url input (["i", "<url>", "url"])'));
  const params = value as unknown as SandboxRunParams;
  return result(out, () => ({
    envelope,
    params,
    ...(urls[0] ? { repo: { url: urls[0].data, ...(params.repo_ref ? { ref: params.repo_ref } : {}) } } : {}),
  }));
}

export interface SandboxRunResult {
  readonly envelope: JobResultEnvelope;
  readonly output: SandboxRunOutput;
}

export function buildSandboxRunResult(request: NostrEvent, output: SandboxRunOutput, common?: JobResultCommon): EventTemplate {
  return buildJobResult(request, JSON.stringify(output), [], common);
}

export function parseSandboxRunResult(e: EventLike): Parsed<SandboxRunResult> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const env = parseJobResult(e, SANDBOX_RUN_RESULT_KIND);
  if (!env.ok) return env;
  if (env.value.encrypted) return fail([problem('content', 'encrypted', 'the result is encrypted: open it with the customer key first')]);
  const out: Problem[] = [];
  const json = parseJsonContent(e.content, out);
  if (json !== undefined) out.push(...validateSchema(sandboxRunResultSchema, json, 'content'));
  return result(out, () => ({ envelope: env.value, output: json as SandboxRunOutput }));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false });

/** Build one command's record from its full output bytes: hashes over everything, text capped. */
export function commandResult(c: { cmd: string; exitCode: number; timedOut?: boolean; stdout: Uint8Array | string; stderr: Uint8Array | string; wallMs: number; cpuMs: number; maxOutputBytes?: number }): SandboxCommandResult {
  const cap = c.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const out = typeof c.stdout === 'string' ? encoder.encode(c.stdout) : c.stdout;
  const err = typeof c.stderr === 'string' ? encoder.encode(c.stderr) : c.stderr;
  return {
    cmd: c.cmd,
    exit_code: c.exitCode,
    timed_out: c.timedOut ?? false,
    stdout: decoder.decode(out.subarray(0, cap)),
    stderr: decoder.decode(err.subarray(0, cap)),
    stdout_sha256: sha256Hex(out),
    stderr_sha256: sha256Hex(err),
    stdout_bytes: out.length,
    stderr_bytes: err.length,
    stdout_truncated: out.length > cap,
    stderr_truncated: err.length > cap,
    wall_ms: Math.round(c.wallMs),
    cpu_ms: Math.round(c.cpuMs),
  };
}

/** Totals for a list of command records (exit code of the last command run). */
export function sandboxRunOutput(commands: readonly SandboxCommandResult[]): SandboxRunOutput {
  return {
    commands,
    totals: {
      exit_code: commands.length ? commands[commands.length - 1].exit_code : 0,
      commands_run: commands.length,
      wall_ms: commands.reduce((s, c) => s + c.wall_ms, 0),
      cpu_ms: commands.reduce((s, c) => s + c.cpu_ms, 0),
      timed_out: commands.some((c) => c.timed_out),
    },
  };
}

/**
 * The pure checks a buyer runs on a SandboxRun result: it answers this request, ran the
 * requested commands in order (stopping only after a failure), the captured text hashes to
 * the advertised sha256 when it was not truncated, caps were respected and totals add up.
 */
export function verifySandboxRun(request: SandboxRunRequest, res: SandboxRunResult): Verification {
  const out: Problem[] = [];
  const { commands, totals } = res.output;
  if (request.envelope.id !== undefined && res.envelope.requestId !== request.envelope.id) out.push(problem('tags.e', 'mismatch', 'the result answers another request'));
  const cap = request.params.max_output_bytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (commands.length > request.params.cmd.length) out.push(problem('content.commands', 'unexpected', `ran ${commands.length} commands, the request has ${request.params.cmd.length}`));
  commands.forEach((c, i) => {
    const path = `content.commands[${i}]`;
    if (c.cmd !== request.params.cmd[i]) out.push(problem(`${path}.cmd`, 'mismatch', `expected ${JSON.stringify(request.params.cmd[i] ?? null)}`));
    if (i < commands.length - 1 && c.exit_code !== 0) out.push(problem(`${path}.exit_code`, 'mismatch', 'a command after a failed one was run'));
    for (const stream of ['stdout', 'stderr'] as const) {
      const text = c[stream];
      const bytes = encoder.encode(text);
      if (bytes.length > cap + 3) out.push(problem(`${path}.${stream}`, 'unexpected', `captured ${bytes.length} bytes, the cap is ${cap}`));
      if (!c[`${stream}_truncated`]) {
        if (c[`${stream}_bytes`] !== bytes.length) out.push(problem(`${path}.${stream}_bytes`, 'mismatch', `says ${c[`${stream}_bytes`]} bytes, the text has ${bytes.length}`));
        else if (sha256Hex(bytes) !== c[`${stream}_sha256`]) out.push(problem(`${path}.${stream}_sha256`, 'mismatch', `does not match the sha256 of ${stream}`));
      } else if (c[`${stream}_bytes`] <= cap) out.push(problem(`${path}.${stream}_truncated`, 'mismatch', 'marked truncated but within the cap'));
    }
  });
  const stoppedEarly = commands.length < request.params.cmd.length;
  const last = commands[commands.length - 1];
  if (stoppedEarly && !(last && (last.exit_code !== 0 || last.timed_out)) && !totals.timed_out) out.push(problem('content.commands', 'missing', `ran ${commands.length} of ${request.params.cmd.length} commands without a failure`));
  const expected = sandboxRunOutput(commands).totals;
  for (const k of ['exit_code', 'commands_run', 'wall_ms', 'cpu_ms', 'timed_out'] as const) {
    if (totals[k] !== expected[k]) out.push(problem(`content.totals.${k}`, 'mismatch', `is ${totals[k]}, the commands add up to ${expected[k]}`));
  }
  if (totals.wall_ms > request.params.time_limit_secs * 1000 + 5000) out.push(problem('content.totals.wall_ms', 'unexpected', `exceeds the time limit of ${request.params.time_limit_secs}s`));
  return verification(out);
}

/** Runs the request again (sandbox supplied by the caller) and compares each command's exit code and output hashes. */
export type SandboxRunRunner = (request: SandboxRunRequest, opts: { signal?: AbortSignal }) => Promise<SandboxRunOutput>;

export async function verifySandboxRunByRerun(request: SandboxRunRequest, res: SandboxRunResult, runner: SandboxRunRunner, opts: { signal?: AbortSignal } = {}): Promise<Verification> {
  const pure = verifySandboxRun(request, res);
  if (!pure.ok) return pure;
  const again = await runner(request, opts);
  const out: Problem[] = [];
  if (again.commands.length !== res.output.commands.length) out.push(problem('content.commands', 'mismatch', `the re-run ran ${again.commands.length} commands, the result ${res.output.commands.length}`));
  res.output.commands.forEach((c, i) => {
    const r = again.commands[i];
    if (!r) return;
    for (const k of ['exit_code', 'stdout_sha256', 'stderr_sha256'] as const) {
      if (c[k] !== r[k]) out.push(problem(`content.commands[${i}].${k}`, 'mismatch', 'differs from the re-run'));
    }
  });
  return verification(out);
}
