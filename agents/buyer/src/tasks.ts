// What a buyer can ask for: one task spec per job kind, the request it becomes (built with
// dvm-kinds), and how many price units it can cost. The CLI and the autopilot's task file
// (JSON lines) share this one reader, so both reject bad input with the same messages.
import type { EventTemplate } from '@bazaar/dvm-kinds/nostr';
import type { JobRequestCommon } from '@bazaar/dvm-kinds/job';
import { SANDBOX_RUN_KIND, buildSandboxRunRequest } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { REPO_INDEX_KIND, buildRepoIndexRequest } from '@bazaar/dvm-kinds/kinds/repo-index';
import { PATCH_GEN_KIND, buildPatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { CODE_REVIEW_KIND, REVIEW_DEPTH, REVIEW_FOCUS, buildCodeReviewRequest } from '@bazaar/dvm-kinds/kinds/code-review';
import { TEXT_GEN_KIND, buildTextGenRequest } from '@bazaar/dvm-kinds/kinds/text-gen';
import { JOB_KINDS } from '@bazaar/dvm-kinds/registry';
import { normalizeSource, validRef } from '@bazaar/agents-common/sandbox/repo-cache';

export type TaskSpec =
  | { readonly type: 'sandbox'; readonly cmd: readonly string[]; readonly repo?: string; readonly ref?: string; readonly timeLimitSecs: number; readonly memoryMb?: number }
  | { readonly type: 'index'; readonly repo: string; readonly ref: string; readonly paths?: readonly string[]; readonly maxFiles?: number }
  | { readonly type: 'patch'; readonly repo: string; readonly ref: string; readonly title: string; readonly body: string; readonly test?: string; readonly allow?: readonly string[]; readonly deny?: readonly string[]; readonly timeLimitSecs: number }
  | { readonly type: 'review'; readonly diff: string; readonly focus?: readonly string[]; readonly depth?: string }
  | { readonly type: 'text'; readonly prompt: string; readonly model?: string; readonly maxTokens?: number };

export type TaskType = TaskSpec['type'];
export const TASK_TYPES: readonly TaskType[] = ['sandbox', 'index', 'patch', 'review', 'text'];

export const KIND_OF: Readonly<Record<TaskType, number>> = { sandbox: SANDBOX_RUN_KIND, index: REPO_INDEX_KIND, patch: PATCH_GEN_KIND, review: CODE_REVIEW_KIND, text: TEXT_GEN_KIND };

/** Default job timeouts (seconds) when the user gives none: room for the work plus delivery. */
export const DEFAULT_TIMEOUT_SECS: Readonly<Record<TaskType, number>> = { sandbox: 120, index: 120, patch: 900, review: 600, text: 120 };

/** Price units the job can cost at most (DESIGN §3 price books: seconds, files, 1k tokens, jobs). */
export function maxUnits(t: TaskSpec): number {
  switch (t.type) {
    case 'sandbox':
      return t.timeLimitSecs;
    case 'index':
      return t.maxFiles ?? 10_000;
    case 'text':
      return Math.ceil((t.maxTokens ?? 4096) / 1000);
    default:
      return 1;
  }
}

/** The request template for a task (no p / bid / expiration yet: the client adds them per attempt). */
export function buildTaskRequest(t: TaskSpec, common: JobRequestCommon, maxCostMsats?: number): EventTemplate {
  switch (t.type) {
    case 'sandbox':
      return buildSandboxRunRequest({ ...common, ...(t.repo ? { repoUrl: t.repo } : {}), params: { cmd: t.cmd, time_limit_secs: t.timeLimitSecs, ...(t.repo && t.ref ? { repo_ref: t.ref } : {}), ...(t.memoryMb ? { memory_mb: t.memoryMb } : {}) } });
    case 'index':
      return buildRepoIndexRequest({ ...common, repoUrl: t.repo, params: { repo_ref: t.ref, ...(t.paths?.length ? { path: t.paths } : {}), ...(t.maxFiles !== undefined ? { max_files: t.maxFiles } : {}) } });
    case 'patch':
      return buildPatchGenRequest({
        ...common,
        repoUrl: t.repo,
        issueBody: t.body,
        params: { repo_ref: t.ref, issue_title: t.title, time_limit_secs: t.timeLimitSecs, ...(t.test ? { test_cmd: t.test } : {}), ...(t.allow?.length ? { allow_path: t.allow } : {}), ...(t.deny?.length ? { deny_path: t.deny } : {}), ...(maxCostMsats !== undefined ? { max_cost_msats: maxCostMsats } : {}) },
      });
    case 'review':
      return buildCodeReviewRequest({ ...common, diff: t.diff, params: { ...(t.focus?.length ? { focus: t.focus as (typeof REVIEW_FOCUS)[number][] } : {}), ...(t.depth ? { depth: t.depth as (typeof REVIEW_DEPTH)[number] } : {}) } });
    case 'text':
      return buildTextGenRequest({ ...common, prompt: t.prompt, params: { ...(t.model ? { model: t.model } : {}), ...(t.maxTokens ? { max_tokens: t.maxTokens } : {}) } });
  }
}

/** One line describing the task, for progress output and `jobs`. */
export function describeTask(t: TaskSpec): string {
  const cut = (s: string, n = 60) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  switch (t.type) {
    case 'sandbox':
      return `SandboxRun ${cut(t.cmd.join(' && '))}${t.repo ? ` in ${t.repo}@${t.ref ?? 'HEAD'}` : ''}`;
    case 'index':
      return `RepoIndex ${t.repo}@${t.ref}`;
    case 'patch':
      return `PatchGen "${cut(t.title, 50)}" on ${t.repo}@${t.ref}`;
    case 'review':
      return `CodeReview of a ${t.diff.split('\n').length}-line diff`;
    case 'text':
      return `TextGen "${cut(t.prompt, 50)}"`;
  }
}

type Obj = Record<string, unknown>;
const str = (o: Obj, k: string, out: string[], required = false): string | undefined => {
  const v = o[k];
  if (v === undefined || v === null) {
    if (required) out.push(`${k}: required`);
    return undefined;
  }
  if (typeof v !== 'string' || v.trim() === '') {
    out.push(`${k}: must be a non-empty string`);
    return undefined;
  }
  return v;
};
const strs = (o: Obj, k: string, out: string[]): string[] | undefined => {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && x.trim() !== '')) {
    out.push(`${k}: must be a string or a list of non-empty strings`);
    return undefined;
  }
  return list as string[];
};
const int = (o: Obj, k: string, out: string[], min: number, max: number): number | undefined => {
  const v = o[k];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    out.push(`${k}: must be an integer from ${min} to ${max}`);
    return undefined;
  }
  return n;
};

/** Reads a task spec from a plain object (a task-file line, or the CLI's flags). Every problem is reported. */
export function readTask(o: Obj): { task: TaskSpec } | { problems: string[] } {
  const out: string[] = [];
  const type = o.type;
  if (typeof type !== 'string' || !(TASK_TYPES as readonly string[]).includes(type)) return { problems: [`type: must be one of ${TASK_TYPES.join(', ')}, got ${JSON.stringify(type ?? null)}`] };
  let task: TaskSpec | undefined;
  switch (type as TaskType) {
    case 'sandbox': {
      const cmd = strs(o, 'cmd', out);
      if (!cmd?.length && !out.length) out.push('cmd: at least one command');
      const repo = str(o, 'repo', out);
      const ref = str(o, 'ref', out);
      if (ref && !repo) out.push('ref: only with repo');
      const timeLimitSecs = int(o, 'time_limit_secs', out, 1, 86_400) ?? 60;
      const memoryMb = int(o, 'memory_mb', out, 16, 65_536);
      if (cmd?.length) task = { type: 'sandbox', cmd, ...(repo ? { repo } : {}), ...(ref ? { ref } : {}), timeLimitSecs, ...(memoryMb ? { memoryMb } : {}) };
      break;
    }
    case 'index': {
      const repo = str(o, 'repo', out, true);
      const ref = str(o, 'ref', out) ?? 'HEAD';
      const paths = strs(o, 'paths', out);
      const maxFiles = int(o, 'max_files', out, 1, 1_000_000);
      if (repo) task = { type: 'index', repo, ref, ...(paths ? { paths } : {}), ...(maxFiles !== undefined ? { maxFiles } : {}) };
      break;
    }
    case 'patch': {
      const repo = str(o, 'repo', out, true);
      const ref = str(o, 'ref', out) ?? 'HEAD';
      const title = str(o, 'title', out, true);
      const body = str(o, 'body', out) ?? title;
      const test = str(o, 'test', out);
      const allow = strs(o, 'allow', out);
      const deny = strs(o, 'deny', out);
      const timeLimitSecs = int(o, 'time_limit_secs', out, 1, 86_400) ?? 600;
      if (repo && title && body) task = { type: 'patch', repo, ref, title, body, ...(test ? { test } : {}), ...(allow ? { allow } : {}), ...(deny ? { deny } : {}), timeLimitSecs };
      break;
    }
    case 'review': {
      const diff = str(o, 'diff', out, true);
      const focus = strs(o, 'focus', out);
      for (const f of focus ?? []) if (!(REVIEW_FOCUS as readonly string[]).includes(f)) out.push(`focus: ${JSON.stringify(f)} is not one of ${REVIEW_FOCUS.join(', ')}`);
      const depth = str(o, 'depth', out);
      if (depth && !(REVIEW_DEPTH as readonly string[]).includes(depth)) out.push(`depth: must be one of ${REVIEW_DEPTH.join(', ')}`);
      if (diff) task = { type: 'review', diff, ...(focus ? { focus } : {}), ...(depth ? { depth } : {}) };
      break;
    }
    case 'text': {
      const prompt = str(o, 'prompt', out, true);
      const model = str(o, 'model', out);
      const maxTokens = int(o, 'max_tokens', out, 1, 1_000_000);
      if (prompt) task = { type: 'text', prompt, ...(model ? { model } : {}), ...(maxTokens ? { maxTokens } : {}) };
      break;
    }
  }
  // The buyer checks repositories out itself to verify: what its repo cache refuses (ssh,
  // ext::, credentials in the URL, an option-like ref) is refused before anything is bought.
  if (task && 'repo' in task && task.repo !== undefined) {
    try {
      normalizeSource(task.repo);
    } catch (err) {
      out.push(`repo: ${(err as Error).message.replace(/^invalid: /, '')}`);
    }
    if (task.ref !== undefined && !validRef(task.ref)) out.push(`ref: ${JSON.stringify(task.ref)} is not a valid git ref`);
  }
  if (out.length || !task) return { problems: out.length ? out : ['incomplete task'] };
  // The request as a provider will read it: what the kind module refuses (a --diff that is not
  // a unified diff, a repo URL no one can clone) is refused here, before anything is posted.
  const refused = requestProblems(task);
  return refused.length ? { problems: refused } : { task };
}

/** Field of the task each request tag comes from, so a refusal names what the user wrote. */
const FIELD_OF_TAG: Readonly<Record<TaskType, Readonly<Record<string, string>>>> = {
  sandbox: { i: 'repo', repo_ref: 'ref' },
  index: { i: 'repo', repo_ref: 'ref', path: 'paths' },
  patch: { i: 'repo', repo_ref: 'ref', issue_title: 'title', test_cmd: 'test', allow_path: 'allow', deny_path: 'deny' },
  review: { i: 'diff' },
  text: { i: 'prompt' },
};

/** Problems the kind's own parser finds in the request this task becomes (empty when it reads cleanly). */
export function requestProblems(task: TaskSpec): string[] {
  const template = buildTaskRequest(task, {});
  const parsed = JOB_KINDS.get(KIND_OF[task.type])!.parseRequest(template);
  if (parsed.ok) return [];
  return parsed.errors.map((p) => {
    const m = /^tags\.(?:param\[)?([a-z_]+)/.exec(p.path);
    const field = (m && FIELD_OF_TAG[task.type][m[1]!]) ?? p.path;
    return `${field}: ${p.message}`;
  });
}
