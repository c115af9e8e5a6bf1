// strfry, the reference relay, as a benchmark peer: found on this machine (never
// required), started on a free loopback port with its own database directory, and
// measured in the same run as our relay.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { freePort, startChild, type RelayChild } from './proc.ts';

export interface StrfryLookup {
  /** The binary, when one was found. */
  readonly path?: string;
  /** Why there is none (for the skip message). */
  readonly reason?: string;
}

/**
 * The strfry binary to compare against: `explicit` (a flag or BAZAAR_STRFRY) when given, else
 * `shared/bin/strfry` in the project root's parent or grandparent (a checkout at /work/main
 * or a worktree at /work/wt/NAME both find /work/shared/bin/strfry).
 */
export function findStrfry(root: string, explicit?: string): StrfryLookup {
  if (explicit) return existsSync(explicit) ? { path: resolve(explicit) } : { reason: `no strfry binary at ${explicit}` };
  const candidates = [resolve(root, '../shared/bin/strfry'), resolve(root, '../../shared/bin/strfry')];
  for (const c of candidates) if (existsSync(c)) return { path: c };
  return { reason: `no strfry binary found (looked for ${candidates.join(', ')}; set --strfry or BAZAAR_STRFRY)` };
}

/** The upstream defaults that matter for a side-by-side run (used when no strfry.conf sits beside the binary). */
const FALLBACK_CONF = `db = "./strfry-db/"
dbParams {
    maxreaders = 256
    mapsize = 10995116277760
}
relay {
    bind = "127.0.0.1"
    port = 7777
    nofiles = 0
    maxWebsocketPayloadSize = 1048576
    maxFilterLimit = 5000
    maxSubsPerConnection = 1000
    compression {
        enabled = false
    }
}
`;

export interface StrfryConfigOptions {
  /** relay.writePolicy.plugin: a command strfry runs with `/bin/sh -c`. */
  readonly writePolicyPlugin?: string;
  /** relay.writePolicy.timeoutSeconds (strfry's default: 10). */
  readonly writePolicyTimeoutSeconds?: number;
}

/**
 * strfry's configuration for one run: the strfry.conf shipped beside the binary (or the
 * upstream defaults above) with its database, bind address and port replaced.
 */
export function strfryConfig(base: string, port: number, dbDir: string, opts: StrfryConfigOptions = {}): string {
  let text = base;
  const set = (pattern: RegExp, line: string): void => {
    if (!pattern.test(text)) throw new Error(`strfry config has no line matching ${pattern}`);
    text = text.replace(pattern, line);
  };
  set(/^db\s*=.*$/m, `db = "${dbDir.endsWith('/') ? dbDir : `${dbDir}/`}"`);
  set(/^(\s*)bind\s*=.*$/m, '$1bind = "127.0.0.1"');
  set(/^(\s*)port\s*=.*$/m, `$1port = ${port}`);
  if (opts.writePolicyPlugin !== undefined || opts.writePolicyTimeoutSeconds !== undefined) {
    // The fallback config has no writePolicy block: add strfry's own defaults before setting them.
    if (!/^\s*writePolicy\s*\{/m.test(text)) text = text.replace(/^relay\s*\{\n/m, 'relay {\n    writePolicy {\n        plugin = ""\n        timeoutSeconds = 10\n    }\n');
    if (opts.writePolicyPlugin !== undefined) set(/^(\s*)plugin\s*=.*$/m, `$1plugin = ${JSON.stringify(opts.writePolicyPlugin)}`);
    if (opts.writePolicyTimeoutSeconds !== undefined) set(/^(\s*)timeoutSeconds\s*=.*$/m, `$1timeoutSeconds = ${opts.writePolicyTimeoutSeconds}`);
  }
  return text;
}

export interface StrfryChild extends RelayChild {
  /** The LMDB directory strfry writes. */
  readonly dbDir: string;
}

/** Starts `strfry relay` in `workDir` (config and database inside it) on a free port. */
export async function startStrfryChild(opts: { binary: string; workDir: string; readyTimeoutMs?: number } & StrfryConfigOptions): Promise<StrfryChild> {
  const port = await freePort();
  const dbDir = join(opts.workDir, 'strfry-db');
  mkdirSync(dbDir, { recursive: true });
  const shipped = join(dirname(opts.binary), 'strfry.conf');
  const base = existsSync(shipped) ? readFileSync(shipped, 'utf8') : FALLBACK_CONF;
  const confPath = join(opts.workDir, 'strfry.conf');
  writeFileSync(confPath, strfryConfig(base, port, dbDir, opts));
  const child = await startChild({
    command: opts.binary,
    args: [`--config=${confPath}`, 'relay'],
    port,
    cwd: opts.workDir,
    readyLine: /Started websocket server/,
    ...(opts.readyTimeoutMs !== undefined ? { readyTimeoutMs: opts.readyTimeoutMs } : {}),
  });
  return { ...child, dbDir };
}
