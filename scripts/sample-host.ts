// The local market's sample repository (scripts/demo/sample-repo), published over HTTP by
// `bazaar up`: on first start it becomes a git repository (one commit, fixed author and date, so
// its commit id is the same everywhere) and a bare copy under DATA/sample/calc.git, served
// read-only with git's "dumb" HTTP protocol. Providers and buyers clone it like any remote
// (http://…/calc.git) — no file:// repositories are allowed anywhere.
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Logger } from 'pino';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./demo/sample-repo/', import.meta.url));
const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 'Bazaar', GIT_AUTHOR_EMAIL: 'sample@bazaar.invalid', GIT_COMMITTER_NAME: 'Bazaar', GIT_COMMITTER_EMAIL: 'sample@bazaar.invalid', GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' };

export interface SampleHost {
  /** Clone URL of the sample repository. */
  readonly repoUrl: string;
  readonly ref: string;
  close(): Promise<void>;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Makes DATA/sample/calc.git once (a bare repository with one commit on `main`). */
export async function prepareSampleRepo(dataDir: string): Promise<string> {
  const root = join(dataDir, 'sample');
  const bare = join(root, 'calc.git');
  if (await exists(join(bare, 'info', 'refs'))) return bare;
  const work = join(root, 'work');
  await rm(work, { recursive: true, force: true });
  await rm(bare, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  await cp(SOURCE, work, { recursive: true });
  const git = (args: string[], cwd: string) => run('git', args, { cwd, env: GIT_ENV });
  await git(['init', '-q', '-b', 'main'], work);
  await git(['add', '-A'], work);
  await git(['commit', '-q', '-m', 'calc: a tiny calculator (add() has a bug)'], work);
  await git(['clone', '-q', '--bare', work, bare], root);
  await git(['update-server-info'], bare);
  await rm(work, { recursive: true, force: true });
  return bare;
}

export async function startSampleHost(o: { dataDir: string; host: string; port: number; logger: Logger }): Promise<SampleHost> {
  const bare = await prepareSampleRepo(o.dataDir);
  const root = resolve(join(o.dataDir, 'sample'));
  const server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
      const file = resolve(root, `.${path}`);
      if ((req.method !== 'GET' && req.method !== 'HEAD') || !file.startsWith(root + sep) || !path.startsWith('/calc.git/')) {
        res.writeHead(404, { connection: 'close' }).end();
        return;
      }
      try {
        const st = await stat(file);
        if (!st.isFile()) throw new Error('not a file');
        const body = await readFile(file);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, connection: 'close' });
        res.end(req.method === 'HEAD' ? undefined : body);
      } catch {
        res.writeHead(404, { connection: 'close' }).end();
      }
    })();
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port, o.host, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  const repoUrl = `http://${o.host}:${port}/calc.git`;
  o.logger.info({ repoUrl, bare }, 'sample repository served');
  return { repoUrl, ref: 'main', close: () => new Promise<void>((ok) => server.close(() => ok())) };
}
