// The arbiter's config file: JSONC, documented in place by the template `init` writes,
// validated on load with one precise message per problem. Unknown keys are errors, so a typo
// never silently falls back to a default.
import { readFile } from 'node:fs/promises';
import { readJsonc } from '@bazaar/agents-common/jsonc';

export const ISOLATIONS = ['bwrap', 'container'] as const;
export type IsolationChoice = (typeof ISOLATIONS)[number];
/** Job kinds whose verification the arbiter can replay (TextGen is judged on reputation only). */
export const ARBITRABLE_KINDS: readonly number[] = [5930, 5931, 5932, 5933];

export interface ArbiterConfig {
  readonly name: string;
  readonly about: string;
  readonly relays: readonly string[];
  /** Job kinds it takes disputes for (announced as `arbitrates`). */
  readonly kinds: readonly number[];
  /** Take any dispute (of a job without escrow, or escrowed with our key), not only those naming us. */
  readonly public: boolean;
  /** How long the provider has to answer a dispute before we rule (seconds; default 24 h). */
  readonly responseWindowSecs: number;
  readonly isolation: IsolationChoice;
  /** Mints named in our kind 10019 (where escrows we co-sign live). */
  readonly mints: readonly string[];
  /** A split gives the provider this share (0..1). */
  readonly splitProviderShare: number;
  /** Optional fee asked of the losing side, over Lightning (needs `nwc_uri`). 0 = none. */
  readonly feeSats: number;
  /** NWC URI (secret) of the wallet that issues fee invoices. BAZAAR_NWC_URI overrides it. */
  readonly nwcUri?: string;
  /** A replay that could not run is retried after retry_base_secs × 2^n (at most an hour). */
  readonly retryBaseSecs: number;
  /** How far back disputes are read when (re)subscribing. */
  readonly lookbackSecs: number;
  readonly docker?: { readonly socket?: string; readonly image?: string };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(path: string, problems: readonly string[]) {
    super(`invalid config ${path}:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export const DEFAULTS = {
  name: 'bazaar-arbiter',
  about: 'A Bazaar arbiter: rules on disputes by replaying the verification in its own sandbox.',
  kinds: ARBITRABLE_KINDS,
  public: false,
  responseWindowSecs: 24 * 3600,
  isolation: 'bwrap' as IsolationChoice,
  splitProviderShare: 0.5,
  feeSats: 0,
  retryBaseSecs: 60,
  lookbackSecs: 30 * 24 * 3600,
};

const KEYS = ['name', 'about', 'relays', 'kinds', 'public', 'response_window_secs', 'isolation', 'mints', 'split_provider_share', 'fee_sats', 'nwc_uri', 'retry_base_secs', 'lookback_secs', 'docker'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRelay = (v: unknown) => typeof v === 'string' && /^wss?:\/\/[^\s]+$/.test(v);
const isMint = (v: unknown) => typeof v === 'string' && /^https?:\/\/[^\s]+$/.test(v);

/** Validate a parsed config object; returns the config or every problem found. */
export function validateConfig(raw: unknown): { config?: ArbiterConfig; problems: string[] } {
  const p: string[] = [];
  if (!isObj(raw)) return { problems: ['(root): must be an object'] };
  for (const k of Object.keys(raw)) if (!KEYS.includes(k)) p.push(`${k}: unknown key (known: ${KEYS.join(', ')})`);
  const str = (k: string, def: string) => {
    const v = raw[k];
    if (v === undefined) return def;
    if (typeof v !== 'string' || !v.trim()) p.push(`${k}: must be a non-empty string`);
    return typeof v === 'string' ? v : def;
  };
  const uint = (k: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => {
    const v = raw[k];
    if (v === undefined) return def;
    if (!isUint(v) || v < min || v > max) p.push(`${k}: must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return isUint(v) ? v : def;
  };
  const relays = raw.relays;
  if (!Array.isArray(relays) || relays.length === 0) p.push('relays: a non-empty list of ws:// or wss:// URLs');
  else relays.forEach((r, i) => { if (!isRelay(r)) p.push(`relays[${i}]: must be a ws:// or wss:// URL, got ${JSON.stringify(r)}`); });
  let kinds: number[] = [...DEFAULTS.kinds];
  if (raw.kinds !== undefined) {
    if (!Array.isArray(raw.kinds) || raw.kinds.length === 0) p.push(`kinds: a non-empty list of job kinds (${ARBITRABLE_KINDS.join(', ')})`);
    else {
      kinds = [];
      raw.kinds.forEach((k, i) => {
        if (!ARBITRABLE_KINDS.includes(k as number)) p.push(`kinds[${i}]: ${JSON.stringify(k)} cannot be replayed (arbitrable: ${ARBITRABLE_KINDS.join(', ')}; TextGen is judged on reputation only)`);
        else kinds.push(k as number);
      });
    }
  }
  let pub = DEFAULTS.public;
  if (raw.public !== undefined) {
    if (typeof raw.public !== 'boolean') p.push(`public: must be true or false, got ${JSON.stringify(raw.public)}`);
    else pub = raw.public;
  }
  const isolation = str('isolation', DEFAULTS.isolation);
  if (!(ISOLATIONS as readonly string[]).includes(isolation)) p.push(`isolation: one of ${ISOLATIONS.join(', ')}`);
  const mints = raw.mints === undefined ? [] : raw.mints;
  if (!Array.isArray(mints)) p.push('mints: a list of http(s) mint URLs');
  else mints.forEach((m, i) => { if (!isMint(m)) p.push(`mints[${i}]: must be an http(s) URL, got ${JSON.stringify(m)}`); });
  let share = DEFAULTS.splitProviderShare;
  if (raw.split_provider_share !== undefined) {
    const v = raw.split_provider_share;
    if (typeof v !== 'number' || !(v > 0 && v < 1)) p.push(`split_provider_share: a number strictly between 0 and 1, got ${JSON.stringify(v)}`);
    else share = v;
  }
  const feeSats = uint('fee_sats', DEFAULTS.feeSats, 0, 10_000_000);
  let nwcUri: string | undefined;
  if (raw.nwc_uri !== undefined) {
    // The URI is a secret: problems name it without quoting it.
    if (typeof raw.nwc_uri !== 'string' || !raw.nwc_uri.startsWith('nostr+walletconnect://')) p.push('nwc_uri: must be a nostr+walletconnect:// URI');
    else nwcUri = raw.nwc_uri;
  }
  let docker: ArbiterConfig['docker'];
  if (raw.docker !== undefined) {
    if (!isObj(raw.docker)) p.push('docker: an object { socket?, image? }');
    else {
      for (const k of Object.keys(raw.docker)) if (k !== 'socket' && k !== 'image') p.push(`docker.${k}: unknown key (known: socket, image)`);
      docker = { ...(typeof raw.docker.socket === 'string' ? { socket: raw.docker.socket } : {}), ...(typeof raw.docker.image === 'string' ? { image: raw.docker.image } : {}) };
    }
  }
  const config: ArbiterConfig = {
    name: str('name', DEFAULTS.name),
    about: str('about', DEFAULTS.about),
    relays: Array.isArray(relays) ? (relays as string[]) : [],
    kinds,
    public: pub,
    responseWindowSecs: uint('response_window_secs', DEFAULTS.responseWindowSecs, 1, 30 * 24 * 3600),
    isolation: isolation as IsolationChoice,
    mints: Array.isArray(mints) ? (mints as string[]).map((m) => m.replace(/\/+$/, '')) : [],
    splitProviderShare: share,
    feeSats,
    ...(nwcUri ? { nwcUri } : {}),
    retryBaseSecs: uint('retry_base_secs', DEFAULTS.retryBaseSecs, 1, 3600),
    lookbackSecs: uint('lookback_secs', DEFAULTS.lookbackSecs, 60, 365 * 24 * 3600),
    ...(docker ? { docker } : {}),
  };
  if (feeSats > 0 && !nwcUri) p.push('fee_sats: a fee needs nwc_uri (the wallet that issues the fee invoices)');
  return p.length ? { problems: p } : { config, problems: [] };
}

export function parseConfigText(text: string, path = 'config'): ArbiterConfig {
  const { value: raw, errors } = readJsonc(text);
  if (errors.length) throw new ConfigError(path, errors);
  const { config, problems } = validateConfig(raw);
  if (!config) throw new ConfigError(path, problems);
  return config;
}

export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ArbiterConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(path, ['file not found (run `bazaar arbiter init` first)']);
    throw err;
  }
  const config = parseConfigText(text, path);
  const nwc = env.BAZAAR_NWC_URI;
  return nwc ? { ...config, nwcUri: nwc } : config;
}

/** The commented config `init` writes. */
export function configTemplate(o: { relays: readonly string[]; mints?: readonly string[]; public?: boolean; responseWindowSecs?: number }): string {
  return `// Bazaar arbiter configuration (JSONC: comments and trailing commas allowed).
// Reloaded by 'bazaar arbiter serve' on start; unknown keys are errors.
{
  "name": ${JSON.stringify(DEFAULTS.name)},
  "about": ${JSON.stringify(DEFAULTS.about)},
  // Relays where disputes are read and verdicts published.
  "relays": ${JSON.stringify(o.relays)},
  // Job kinds whose verification this arbiter replays (5930 SandboxRun, 5931 RepoIndex,
  // 5932 PatchGen, 5933 CodeReview). Announced as ["arbitrates", kind].
  "kinds": ${JSON.stringify(DEFAULTS.kinds)},
  // false: only disputes that name this arbiter (escrowed jobs whose lock names its payment key).
  // true: also any other dispute (reputation-only verdicts; escrows locked to other arbiters are left alone).
  "public": ${o.public ?? DEFAULTS.public},
  // How long the provider has to answer a dispute (and serve its trajectory) before the ruling.
  "response_window_secs": ${o.responseWindowSecs ?? DEFAULTS.responseWindowSecs},
  // Sandbox for replays: "bwrap" (bubblewrap) or "container" (Docker API / podman).
  "isolation": "bwrap",
  // Mints listed in the arbiter's kind 10019 payment info (buyers lock escrows there).
  "mints": ${JSON.stringify(o.mints ?? [])},
  // A "split" ruling (the work is right, but the result misstates parts of it) gives the provider this share.
  "split_provider_share": ${DEFAULTS.splitProviderShare},
  // Optional fee asked of the losing side as a bolt11 in the verdict (needs nwc_uri). 0 = no fee.
  "fee_sats": 0,
  // "nwc_uri": "nostr+walletconnect://…",   (secret; or set BAZAAR_NWC_URI)
  // A replay that cannot run (repository unreachable, sandbox unavailable) is retried after
  // retry_base_secs × 2^n, at most hourly; meanwhile the case has no verdict.
  "retry_base_secs": ${DEFAULTS.retryBaseSecs},
}
`;
}
