// The sandbox base image without a registry: debootstrap a Debian root filesystem with
// the packages of sandbox-images/base/packages.txt and import it through the Docker API
// (POST /images/create?fromSrc=-). The tag carries a hash of the package list, so a
// changed list builds a new image and an existing one is reused (idempotent).
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { withFileLock } from './lock.ts';
import { execHost } from './proc.ts';

export const BASE_IMAGE_REPO = 'bazaar/sandbox-base';
/** Bump when the build procedure changes in a way the package list does not show. */
const RECIPE_VERSION = '1';
export const PACKAGES_FILE = new URL('../../../../sandbox-images/base/packages.txt', import.meta.url).pathname;

export async function basePackages(file = PACKAGES_FILE): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/** The tag of the base image for the current package list, e.g. bazaar/sandbox-base:3f2a…. */
export async function baseImageTag(file = PACKAGES_FILE): Promise<string> {
  const pkgs = await basePackages(file);
  const h = createHash('sha256').update(`${RECIPE_VERSION}\n${pkgs.join('\n')}`).digest('hex').slice(0, 12);
  return `${BASE_IMAGE_REPO}:${h}`;
}

export async function imageExists(docker: Docker, tag: string, signal?: AbortSignal): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect({ abortSignal: signal ?? AbortSignal.timeout(30_000) } as {});
    return true;
  } catch {
    return false;
  }
}

export interface EnsureImageOptions {
  readonly log: Logger;
  readonly signal?: AbortSignal;
  /** Import this root filesystem tarball instead of running debootstrap. */
  readonly fromTar?: string;
  readonly mirror?: string;
  readonly suite?: string;
  readonly lockPath?: string;
  /** Rebuild even if the tag exists. */
  readonly force?: boolean;
}

/** Returns the base image's tag, building and importing it first when missing. */
export async function ensureBaseImage(docker: Docker, opts: EnsureImageOptions): Promise<string> {
  const tag = await baseImageTag();
  if (!opts.force && (await imageExists(docker, tag, opts.signal))) return tag;
  return withFileLock(opts.lockPath ?? join(tmpdir(), 'bazaar-sandbox-image.lock'), async () => {
    // Another process may have built it while we waited for the lock.
    if (!opts.force && (await imageExists(docker, tag, opts.signal))) return tag;
    const started = Date.now();
    if (opts.fromTar) {
      await importRootfs(docker, createReadStream(opts.fromTar), tag, opts);
    } else {
      const rootfs = await debootstrap(opts);
      try {
        // Streamed into the import (buffer: false); a tar failure rejects with its stderr.
        const tar = execa('tar', ['-C', rootfs, '--numeric-owner', '-c', '.'], { stdin: 'ignore', buffer: { stdout: false }, cleanup: true, ...(opts.signal ? { cancelSignal: opts.signal } : {}) });
        await Promise.all([importRootfs(docker, tar.stdout, tag, opts), tar]);
      } finally {
        await rm(rootfs, { recursive: true, force: true });
      }
    }
    opts.log.info({ tag, ms: Date.now() - started }, 'sandbox base image imported');
    return tag;
  }, { signal: opts.signal });
}

async function debootstrap(opts: EnsureImageOptions): Promise<string> {
  if (process.getuid?.() !== 0) throw new Error('building the base image needs root (debootstrap); or pass a root filesystem tarball');
  const suite = opts.suite ?? (await hostSuite());
  const mirror = opts.mirror ?? process.env.BAZAAR_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  const pkgs = await basePackages();
  await mkdir('/var/tmp', { recursive: true });
  const dir = await mkdtemp('/var/tmp/bazaar-rootfs-');
  const root = join(dir, 'root');
  opts.log.info({ suite, mirror, packages: pkgs.length }, 'debootstrapping the sandbox base image');
  const r = await execHost('debootstrap', ['--variant=minbase', `--include=${pkgs.join(',')}`, suite, root, mirror], {
    signal: opts.signal, timeoutMs: 20 * 60_000,
  }).catch(async (err: Error) => {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`debootstrap failed: ${err.message} (apt-get install debootstrap)`);
  });
  if (r.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`debootstrap failed (exit ${String(r.code)}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  // No package caches in the image; the mount points the runners use exist and belong to nobody.
  await execHost('sh', ['-c', 'rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* && mkdir -p workspace repo && chown 65534:65534 workspace'], { cwd: root });
  return root;
}

async function hostSuite(): Promise<string> {
  const osr = await readFile('/etc/os-release', 'utf8').catch(() => '');
  return /^VERSION_CODENAME=(\w+)/m.exec(osr)?.[1] ?? 'bookworm';
}

async function importRootfs(docker: Docker, tar: Readable, tag: string, opts: EnsureImageOptions): Promise<void> {
  const [repo, version] = tag.split(':');
  // An import is large but bounded: never wait on the engine forever.
  const timeout = AbortSignal.timeout(20 * 60_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const stream = await docker.importImage(tar, { repo, tag: version, abortSignal: signal });
  const events = await new Promise<Array<{ status?: string; error?: string; id?: string }>>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, res: Array<{ status?: string; error?: string }>) => (err ? reject(err) : resolve(res))));
  const failed = events.find((e) => e.error);
  if (failed) throw new Error(`image import failed: ${failed.error}`);
  const id = events.map((e) => e.id ?? e.status).find((s) => s?.startsWith('sha256:'));
  if (!id) throw new Error('image import returned no image id');
  // podman's compat API ignores `tag` on import: tag the imported image explicitly.
  await docker.getImage(id).tag({ repo, tag: version, abortSignal: AbortSignal.timeout(60_000) });
}
