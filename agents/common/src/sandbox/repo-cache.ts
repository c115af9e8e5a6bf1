// Repositories for jobs: fetch a git repo (local path, file:// or http(s) URL) at a ref
// into a bare cache, then check out one commit per job. Fetching happens on the host
// with hooks, prompts, system/global config and non-allowlisted protocols switched off.
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { withFileLock } from './lock.ts';
import { execHost } from './proc.ts';

export interface FetchedRepo {
  /** The bare cache repository. */
  readonly gitDir: string;
  /** The full commit id the ref resolved to. */
  readonly commit: string;
}

export class RepoError extends Error {
  override name = 'RepoError';
}

const GIT_ENV = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  GIT_TERMINAL_PROMPT: '0',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_ASKPASS: '/bin/false',
  SSH_ASKPASS: '/bin/false',
  HOME: '/nonexistent',
  LANG: 'C',
};
/** Protocols a job's repo may come from; ssh and ext:: never (credentials, command execution). */
const SAFE_GIT = ['-c', 'protocol.allow=never', '-c', 'protocol.file.allow=always', '-c', 'protocol.https.allow=always', '-c', 'protocol.http.allow=always', '-c', 'core.hooksPath=/dev/null', '-c', 'submodule.recurse=false'];

/** Normalizes a source to what git fetches, or a RepoError for anything not allowed. */
export function normalizeSource(source: string): string {
  if (typeof source !== 'string' || source.length === 0 || source.length > 2048 || /[\0\n\r]/.test(source)) throw new RepoError('invalid: repository source');
  if (source.startsWith('-')) throw new RepoError('invalid: repository source starts with "-"');
  if (source.startsWith('/')) return resolve(source);
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new RepoError(`invalid: repository source is neither an absolute path nor a URL: ${source}`);
  }
  if (!['file:', 'http:', 'https:'].includes(u.protocol)) throw new RepoError(`invalid: repository protocol ${u.protocol} is not allowed (file, http, https)`);
  if (u.username || u.password) throw new RepoError('invalid: credentials in the repository URL');
  return u.toString();
}

export function validRef(ref: string): boolean {
  return typeof ref === 'string' && ref.length > 0 && ref.length <= 255 && !ref.startsWith('-') && !/[\0\s~^:?*[\\]|\.\.|@\{/.test(ref);
}

const git = async (args: string[], opts: { signal?: AbortSignal; timeoutMs?: number; cwd?: string } = {}): Promise<string> => {
  const r = await execHost('git', [...SAFE_GIT, ...args], { env: GIT_ENV, signal: opts.signal, timeoutMs: opts.timeoutMs ?? 300_000, cwd: opts.cwd });
  const sub = args.find((a) => ['init', 'fetch', 'rev-parse', 'update-ref', 'checkout'].includes(a)) ?? '';
  if (r.code !== 0) throw new RepoError(`git ${sub} failed: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`);
  return r.stdout.trim();
};

/** Fetches `ref` (branch, tag or commit id; default HEAD) of `source` into the cache. */
export async function fetchRepo(opts: { source: string; ref?: string; cacheDir: string; log: Logger; signal?: AbortSignal; timeoutMs?: number }): Promise<FetchedRepo> {
  const source = normalizeSource(opts.source);
  const ref = opts.ref ?? 'HEAD';
  if (!validRef(ref)) throw new RepoError(`invalid: ref ${JSON.stringify(ref)}`);
  const key = createHash('sha256').update(source).digest('hex').slice(0, 24);
  await mkdir(opts.cacheDir, { recursive: true });
  const gitDir = join(opts.cacheDir, `${key}.git`);
  return withFileLock(`${gitDir}.lock`, async () => {
    if (!(await stat(join(gitDir, 'HEAD')).catch(() => null))) await git(['init', '--quiet', '--bare', gitDir], opts);
    const isCommitId = /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(ref);
    if (isCommitId) {
      // Already cached: immutable, nothing to fetch.
      const have = await execHost('git', ['--git-dir', gitDir, 'cat-file', '-e', `${ref}^{commit}`], { env: GIT_ENV, timeoutMs: 30_000 });
      if (have.code === 0) return { gitDir, commit: ref };
    }
    const started = Date.now();
    await git(['--git-dir', gitDir, 'fetch', '--quiet', '--no-tags', '--no-recurse-submodules', '--', source, `${ref}`], opts);
    const commit = await git(['--git-dir', gitDir, 'rev-parse', '--verify', 'FETCH_HEAD^{commit}'], opts);
    if (isCommitId && !commit.startsWith(ref)) throw new RepoError(`fetched ${commit}, expected ${ref}`);
    // Keep it reachable in the cache under a ref of its own.
    await git(['--git-dir', gitDir, 'update-ref', `refs/bazaar/${commit}`, commit], opts);
    opts.log.info({ source, ref, commit, ms: Date.now() - started }, 'repository fetched');
    return { gitDir, commit };
  }, { signal: opts.signal });
}

/** Checks out `commit` from the cache into a fresh directory under `parentDir` (readable by the sandbox user). */
export async function checkoutRepo(opts: { repo: FetchedRepo; parentDir: string; signal?: AbortSignal }): Promise<string> {
  await mkdir(opts.parentDir, { recursive: true });
  const dir = await mkdtemp(join(opts.parentDir, 'checkout-'));
  try {
    await git(['init', '--quiet', dir], opts);
    await git(['-C', dir, 'fetch', '--quiet', '--no-tags', opts.repo.gitDir, opts.repo.commit], opts);
    await git(['-C', dir, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', 'FETCH_HEAD'], opts);
    await chmod(dir, 0o755);
    return dir;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
