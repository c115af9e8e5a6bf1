// Repo checkout on the host for a job: `git clone` of a customer URL into the job's
// workspace, then the requested ref, detached. Hooks never run (core.hooksPath=/dev/null),
// only network schemes are allowed unless the operator enables file:// (tests, local mirrors),
// and the whole thing has a deadline.
import { chmod } from 'node:fs/promises';
import { execHost } from '@bazaar/agents-common/sandbox/proc';

export class CheckoutError extends Error {
  override name = 'CheckoutError';
}

async function git(args: string[], opts: { cwd?: string; signal: AbortSignal; timeoutMs: number }): Promise<string> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_TERMINAL_PROMPT: '0', HOME: '/nonexistent', GIT_CONFIG_NOSYSTEM: '1' };
  let r;
  try {
    r = await execHost('git', ['-c', 'core.hooksPath=/dev/null', '-c', 'protocol.file.allow=always', ...args], { ...(opts.cwd ? { cwd: opts.cwd } : {}), signal: opts.signal, timeoutMs: opts.timeoutMs, maxBuffer: 4 * 1024 * 1024, env });
  } catch (err) {
    if ((err as Error).name === 'AbortError' || opts.signal.aborted) throw err;
    throw new CheckoutError(`git ${args[0]} failed: ${(err as Error).message}`);
  }
  if (r.code !== 0) throw new CheckoutError(`git ${args[0]} failed: ${r.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${String(r.code)}`}`);
  return r.stdout;
}

export async function checkoutRepo(url: string, ref: string | undefined, dir: string, opts: { signal: AbortSignal; timeoutMs: number; allowFile: boolean }): Promise<{ commit: string }> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CheckoutError(`not a URL: ${JSON.stringify(url)}`);
  }
  const allowed = ['https:', 'http:', 'git:', ...(opts.allowFile ? ['file:'] : [])];
  if (!allowed.includes(u.protocol)) throw new CheckoutError(`repo URL scheme ${u.protocol} is not allowed (allowed: ${allowed.join(' ')})`);
  if (ref !== undefined && (ref.startsWith('-') || /[\s\0]/.test(ref))) throw new CheckoutError(`invalid ref ${JSON.stringify(ref)}`);
  await git(['clone', '--quiet', '--no-checkout', '--', url, dir], { signal: opts.signal, timeoutMs: opts.timeoutMs });
  // mkdtemp makes 0700 directories; the sandbox user must be able to enter the read-only checkout.
  await chmod(dir, 0o755);
  await git(['checkout', '--quiet', '--detach', ref ?? 'HEAD', '--'], { cwd: dir, signal: opts.signal, timeoutMs: opts.timeoutMs });
  const commit = (await git(['rev-parse', 'HEAD'], { cwd: dir, signal: opts.signal, timeoutMs: opts.timeoutMs })).trim();
  return { commit };
}
