// The provider's config file: JSONC (JSON with comments), documented in place by the
// template `init` writes, validated on load with one precise message per problem
// (`prices.5930.base_msats: must be a non-negative integer`). Unknown keys are errors, so a
// typo never silently falls back to a default.
import { readFile } from 'node:fs/promises';
import { readJsonc } from '@bazaar/agents-common/jsonc';
import { JOB_KINDS } from '@bazaar/dvm-kinds/registry';
import type { Pricebook, PriceEntry } from '@bazaar/dvm-kinds/pricing';
import { PAYMENT_TERMS, type PaymentTerms } from '@bazaar/agents-common/job-state';

export const ISOLATIONS = ['bwrap', 'container', 'gvisor'] as const;
export type IsolationChoice = (typeof ISOLATIONS)[number];

export interface AgentBackendConfig {
  /** argv of the coding agent, run in the sandbox with the task on stdin and in /task/TASK.md. */
  readonly command: readonly string[];
  /** Domains the credential proxy lets the agent reach (its model API). */
  readonly allowDomains: readonly string[];
  readonly timeLimitSecs: number;
  /** Env var (of the provider process) holding the model API key the proxy adds. */
  readonly apiKeyEnv?: string;
  /** Header the key goes in: `authorization` (as a Bearer token, default) or e.g. `x-api-key`. */
  readonly apiKeyHeader?: string;
}

export interface ProviderConfig {
  readonly name: string;
  readonly about: string;
  readonly relays: readonly string[];
  readonly kinds: readonly number[];
  readonly prices: Pricebook;
  readonly capacity: number;
  /** Jobs waiting for a free slot before new ones get SERVICE_UNAVAILABLE. */
  readonly queue: number;
  /** Per-customer token bucket: burst, then perMinute. */
  readonly rateLimit: { readonly burst: number; readonly perMinute: number };
  readonly isolation: IsolationChoice;
  /** Payment terms by kind; `default` for kinds not listed. */
  readonly terms: Readonly<Record<number, PaymentTerms>> & { readonly default: PaymentTerms };
  /** NWC connection URI (secret). BAZAAR_NWC_URI overrides it. */
  readonly nwcUri?: string;
  readonly invoiceExpirySecs: number;
  readonly mints: readonly string[];
  /** Arbiters' payment (P2PK) keys accepted in escrow locks. */
  readonly arbiters: readonly string[];
  /** Escrow locktimes must leave at least this long after the job's time limit. */
  readonly disputeWindowSecs: number;
  readonly heartbeatSecs: number;
  /** Also publish a job's feedback and result to the relays its `relays` tag names (at most 3). */
  readonly followRequestRelays: boolean;
  /** How far back to look for requests when (re)subscribing. */
  readonly lookbackSecs: number;
  readonly backends: {
    readonly patchGen?: AgentBackendConfig;
    readonly codeReview?: AgentBackendConfig;
    readonly textGen?: { readonly url: string; readonly model: string; readonly apiKeyEnv?: string };
    readonly docker?: { readonly socket?: string; readonly image?: string };
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(path: string, problems: readonly string[]) {
    super(`invalid config ${path}:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** Kinds this build has a backend for; others are refused at load rather than failing per job. */
export const SERVED_KINDS: readonly number[] = [5050, 5930, 5931, 5932, 5933];
/** Kinds served with nothing but the sandbox (no agent CLI, no model endpoint): what `bazaar up` offers. */
export const SELF_CONTAINED_KINDS: readonly number[] = [5930, 5931];

export const DEFAULT_PRICES: Pricebook = {
  5050: { baseMsats: 1_000, perUnitMsats: 100, unit: '1k-tokens', capMsats: 50_000 },
  5930: { baseMsats: 1_000, perUnitMsats: 100, unit: 'second', capMsats: 100_000 },
  5931: { baseMsats: 2_000, perUnitMsats: 10, unit: 'file', capMsats: 100_000 },
  5932: { baseMsats: 50_000, perUnitMsats: 0, unit: 'job', capMsats: 50_000 },
  5933: { baseMsats: 20_000, perUnitMsats: 0, unit: 'job', capMsats: 20_000 },
};

export const DEFAULTS = {
  name: 'bazaar-provider',
  about: 'A Bazaar provider: every job runs in a sandbox and every result is checked before it is offered.',
  kinds: [5930],
  capacity: 2,
  queue: 32,
  rateLimit: { burst: 20, perMinute: 60 },
  isolation: 'bwrap' as IsolationChoice,
  invoiceExpirySecs: 3600,
  heartbeatSecs: 60,
  lookbackSecs: 600,
};

const KEYS = ['name', 'about', 'relays', 'kinds', 'prices', 'capacity', 'queue', 'rate_limit', 'isolation', 'terms', 'nwc_uri', 'invoice_expiry_secs', 'mints', 'arbiters', 'dispute_window_secs', 'heartbeat_secs', 'lookback_secs', 'follow_request_relays', 'backends'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRelay = (v: unknown) => typeof v === 'string' && /^wss?:\/\/[^\s]+$/.test(v);
const isHex64 = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

/** Validate a parsed config object; returns the config or every problem found. */
export function validateConfig(raw: unknown): { config?: ProviderConfig; problems: string[] } {
  const p: string[] = [];
  if (!isObj(raw)) return { problems: ['(root): must be an object'] };
  for (const k of Object.keys(raw)) if (!KEYS.includes(k)) p.push(`${k}: unknown key (known: ${KEYS.join(', ')})`);
  const str = (k: string, def: string) => {
    const v = raw[k];
    if (v === undefined) return def;
    if (typeof v !== 'string' || !v.trim()) p.push(`${k}: must be a non-empty string`);
    return typeof v === 'string' ? v : def;
  };
  const bool = (k: string, def: boolean) => {
    const v = raw[k];
    if (v === undefined) return def;
    if (typeof v !== 'boolean') p.push(`${k}: must be true or false, got ${JSON.stringify(v)}`);
    return typeof v === 'boolean' ? v : def;
  };
  const uint = (k: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => {
    const v = raw[k];
    if (v === undefined) return def;
    if (!isUint(v) || v < min || v > max) {
      p.push(`${k}: must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  };
  const relays = raw.relays;
  if (!Array.isArray(relays) || relays.length === 0) p.push('relays: must be a non-empty list of ws:// or wss:// URLs');
  else relays.forEach((r, i) => { if (!isRelay(r)) p.push(`relays[${i}]: must be a ws:// or wss:// URL, got ${JSON.stringify(r)}`); });
  let kinds: number[] = DEFAULTS.kinds;
  if (raw.kinds !== undefined) {
    if (!Array.isArray(raw.kinds) || raw.kinds.length === 0) p.push('kinds: must be a non-empty list of job kinds');
    else {
      kinds = [];
      raw.kinds.forEach((k, i) => {
        if (!JOB_KINDS.has(k as number)) p.push(`kinds[${i}]: ${JSON.stringify(k)} is not a supported kind (supported: ${[...JOB_KINDS.keys()].join(', ')})`);
        else if (!SERVED_KINDS.includes(k as number)) p.push(`kinds[${i}]: ${k} (${JOB_KINDS.get(k as number)?.name}) has no backend in this build (served: ${SERVED_KINDS.join(', ')})`);
        else if (!kinds.includes(k as number)) kinds.push(k as number);
      });
    }
  }
  const prices: Record<number, PriceEntry> = {};
  const rawPrices = raw.prices ?? {};
  if (!isObj(rawPrices)) p.push('prices: must be an object keyed by kind');
  else {
    for (const [k, v] of Object.entries(rawPrices)) {
      const path = `prices.${k}`;
      if (!JOB_KINDS.has(Number(k))) {
        p.push(`${path}: not a supported kind`);
        continue;
      }
      if (!isObj(v)) {
        p.push(`${path}: must be { base_msats, per_unit_msats, unit, cap_msats }`);
        continue;
      }
      for (const key of Object.keys(v)) if (!['base_msats', 'per_unit_msats', 'unit', 'cap_msats'].includes(key)) p.push(`${path}.${key}: unknown key`);
      if (!isUint(v.base_msats)) p.push(`${path}.base_msats: must be a non-negative integer (millisats)`);
      if (v.per_unit_msats !== undefined && !isUint(v.per_unit_msats)) p.push(`${path}.per_unit_msats: must be a non-negative integer (millisats)`);
      if (v.unit !== undefined && (typeof v.unit !== 'string' || !v.unit)) p.push(`${path}.unit: must be a non-empty string`);
      if (v.cap_msats !== undefined && !isUint(v.cap_msats)) p.push(`${path}.cap_msats: must be a non-negative integer (millisats)`);
      if (isUint(v.cap_msats) && isUint(v.base_msats) && v.cap_msats < v.base_msats) p.push(`${path}.cap_msats: must be at least base_msats`);
      prices[Number(k)] = { baseMsats: v.base_msats as number, perUnitMsats: (v.per_unit_msats as number) ?? 0, unit: (v.unit as string) ?? 'job', ...(isUint(v.cap_msats) ? { capMsats: v.cap_msats } : {}) };
    }
  }
  for (const k of kinds) if (!prices[k]) prices[k] = DEFAULT_PRICES[k];
  const isolation = raw.isolation ?? DEFAULTS.isolation;
  if (!(ISOLATIONS as readonly unknown[]).includes(isolation)) p.push(`isolation: must be one of ${ISOLATIONS.join(', ')}, got ${JSON.stringify(isolation)}`);
  const terms: Record<string, PaymentTerms> = { default: 'after-verify' };
  if (raw.terms !== undefined) {
    if (!isObj(raw.terms)) p.push('terms: must be an object: { "default": "after-verify", "5932": "prepay", ... }');
    else for (const [k, v] of Object.entries(raw.terms)) {
      if (k !== 'default' && !JOB_KINDS.has(Number(k))) p.push(`terms.${k}: not a supported kind (or "default")`);
      else if (!(PAYMENT_TERMS as readonly unknown[]).includes(v)) p.push(`terms.${k}: must be one of ${PAYMENT_TERMS.join(', ')}, got ${JSON.stringify(v)}`);
      else terms[k] = v as PaymentTerms;
    }
  }
  const rl = raw.rate_limit ?? {};
  let rateLimit = DEFAULTS.rateLimit;
  if (!isObj(rl)) p.push('rate_limit: must be { burst, per_minute }');
  else {
    for (const key of Object.keys(rl)) if (!['burst', 'per_minute'].includes(key)) p.push(`rate_limit.${key}: unknown key`);
    if (rl.burst !== undefined && (!isUint(rl.burst) || rl.burst < 1)) p.push('rate_limit.burst: must be a positive integer');
    if (rl.per_minute !== undefined && (!isUint(rl.per_minute) || rl.per_minute < 1)) p.push('rate_limit.per_minute: must be a positive integer');
    rateLimit = { burst: (rl.burst as number) ?? DEFAULTS.rateLimit.burst, perMinute: (rl.per_minute as number) ?? DEFAULTS.rateLimit.perMinute };
  }
  const list = (k: string, check: (v: unknown) => boolean, what: string): string[] => {
    const v = raw[k];
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      p.push(`${k}: must be a list of ${what}`);
      return [];
    }
    v.forEach((x, i) => { if (!check(x)) p.push(`${k}[${i}]: must be ${what}, got ${JSON.stringify(x)}`); });
    return v as string[];
  };
  const mints = list('mints', (v) => typeof v === 'string' && /^https?:\/\/\S+$/.test(v), 'an http(s) mint URL');
  const arbiters = list('arbiters', (v) => typeof v === 'string' && /^(0[23])?[0-9a-f]{64}$/.test(v), "an arbiter's payment (P2PK) key: \"02\" + 64 hex");
  const nwcUri = raw.nwc_uri;
  if (nwcUri !== undefined && (typeof nwcUri !== 'string' || !nwcUri.startsWith('nostr+walletconnect://'))) p.push('nwc_uri: must be a nostr+walletconnect:// URI');
  for (const [k, t] of Object.entries(terms)) {
    if (t === 'escrow' && (!mints.length || !arbiters.length)) p.push(`terms.${k}: escrow needs at least one trusted mint in "mints" and one arbiter payment key in "arbiters"`);
  }
  const backends = validateBackends(raw.backends, p);
  for (const k of kinds) {
    if (k === 5932 && !backends.patchGen) p.push('kinds: 5932 (PatchGen) needs backends.patch_gen.command');
    if (k === 5933 && !backends.codeReview) p.push('kinds: 5933 (CodeReview) needs backends.code_review.command');
    if (k === 5050 && !backends.textGen) p.push('kinds: 5050 (TextGen) needs backends.text_gen.url and model');
  }
  const config: ProviderConfig = {
    name: str('name', DEFAULTS.name),
    about: str('about', DEFAULTS.about),
    relays: Array.isArray(relays) ? (relays as string[]) : [],
    kinds,
    prices,
    capacity: uint('capacity', DEFAULTS.capacity, 1, 1024),
    queue: uint('queue', DEFAULTS.queue, 0, 100_000),
    rateLimit,
    isolation: isolation as IsolationChoice,
    terms: terms as ProviderConfig['terms'],
    ...(typeof nwcUri === 'string' ? { nwcUri } : {}),
    invoiceExpirySecs: uint('invoice_expiry_secs', DEFAULTS.invoiceExpirySecs, 60, 30 * 24 * 3600),
    mints,
    arbiters,
    disputeWindowSecs: uint('dispute_window_secs', 3600, 0, 90 * 24 * 3600),
    heartbeatSecs: uint('heartbeat_secs', DEFAULTS.heartbeatSecs, 5, 3600),
    lookbackSecs: uint('lookback_secs', DEFAULTS.lookbackSecs, 0, 7 * 24 * 3600),
    followRequestRelays: bool('follow_request_relays', true),
    backends,
  };
  return p.length ? { problems: p } : { config, problems: [] };
}

function validateBackends(raw: unknown, p: string[]): ProviderConfig['backends'] {
  if (raw === undefined) return {};
  if (!isObj(raw)) {
    p.push('backends: must be an object');
    return {};
  }
  const out: { patchGen?: AgentBackendConfig; codeReview?: AgentBackendConfig; textGen?: { url: string; model: string; apiKeyEnv?: string }; docker?: { socket?: string; image?: string } } = {};
  for (const k of Object.keys(raw)) if (!['patch_gen', 'code_review', 'text_gen', 'docker'].includes(k)) p.push(`backends.${k}: unknown backend (known: patch_gen, code_review, text_gen, docker)`);
  const agent = (k: 'patch_gen' | 'code_review'): AgentBackendConfig | undefined => {
    const v = raw[k];
    if (v === undefined) return undefined;
    if (!isObj(v)) {
      p.push(`backends.${k}: must be { command, allow_domains, time_limit_secs }`);
      return undefined;
    }
    for (const key of Object.keys(v)) if (!['command', 'allow_domains', 'time_limit_secs', 'api_key_env', 'api_key_header'].includes(key)) p.push(`backends.${k}.${key}: unknown key`);
    if (v.api_key_env !== undefined && (typeof v.api_key_env !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v.api_key_env))) p.push(`backends.${k}.api_key_env: must be an environment variable name`);
    if (v.api_key_header !== undefined && (typeof v.api_key_header !== 'string' || !/^[A-Za-z0-9-]+$/.test(v.api_key_header))) p.push(`backends.${k}.api_key_header: must be a header name`);
    const cmd = v.command;
    if (!Array.isArray(cmd) || !cmd.length || !cmd.every((a) => typeof a === 'string' && a.length)) p.push(`backends.${k}.command: must be a non-empty argv list of strings`);
    const dom = v.allow_domains ?? [];
    if (!Array.isArray(dom) || !dom.every((d) => typeof d === 'string' && /^[a-z0-9.-]+$/i.test(d))) p.push(`backends.${k}.allow_domains: must be a list of domain names`);
    const tl = v.time_limit_secs ?? 600;
    if (!isUint(tl) || tl < 1) p.push(`backends.${k}.time_limit_secs: must be a positive integer`);
    return { command: (cmd as string[]) ?? [], allowDomains: (dom as string[]) ?? [], timeLimitSecs: tl as number, ...(typeof v.api_key_env === 'string' ? { apiKeyEnv: v.api_key_env } : {}), ...(typeof v.api_key_header === 'string' ? { apiKeyHeader: v.api_key_header.toLowerCase() } : {}) };
  };
  const pg = agent('patch_gen');
  if (pg) out.patchGen = pg;
  const cr = agent('code_review');
  if (cr) out.codeReview = cr;
  const tg = raw.text_gen;
  if (tg !== undefined) {
    if (!isObj(tg) || typeof tg.url !== 'string' || !/^https?:\/\/\S+$/.test(tg.url) || typeof tg.model !== 'string' || !tg.model) p.push('backends.text_gen: must be { url: "http://…/v1", model: "…", api_key_env?: "ENV_NAME" }');
    else out.textGen = { url: tg.url, model: tg.model, ...(typeof tg.api_key_env === 'string' ? { apiKeyEnv: tg.api_key_env } : {}) };
  }
  const d = raw.docker;
  if (d !== undefined) {
    if (!isObj(d)) p.push('backends.docker: must be { socket?, image? }');
    else out.docker = { ...(typeof d.socket === 'string' ? { socket: d.socket } : {}), ...(typeof d.image === 'string' ? { image: d.image } : {}) };
  }
  return out;
}

/** Parse JSONC text (comments and trailing commas allowed) and validate it. */
export function parseConfigText(text: string, path = 'config'): ProviderConfig {
  const { value: raw, errors } = readJsonc(text);
  if (errors.length) throw new ConfigError(path, errors);
  const { config, problems } = validateConfig(raw);
  if (!config) throw new ConfigError(path, problems);
  return config;
}

export async function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Promise<ProviderConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(path, ['file not found (run `bazaar provider init` first)']);
    throw err;
  }
  const config = parseConfigText(text, path);
  const nwc = env.BAZAAR_NWC_URI;
  return nwc ? { ...config, nwcUri: nwc } : config;
}

export const termsFor = (c: ProviderConfig, kind: number): PaymentTerms => c.terms[kind] ?? c.terms.default;

/** The commented template `init` writes. */
export function configTemplate(o: { relays: readonly string[]; kinds?: readonly number[]; nwcUri?: string; name?: string }): string {
  const kinds = o.kinds ?? DEFAULTS.kinds;
  const prices = kinds.map((k) => {
    const p = DEFAULT_PRICES[k];
    return `    "${k}": { "base_msats": ${p.baseMsats}, "per_unit_msats": ${p.perUnitMsats}, "unit": "${p.unit}", "cap_msats": ${p.capMsats} },  // ${JOB_KINDS.get(k)?.name}`;
  });
  return `// Bazaar provider configuration (JSONC: comments and trailing commas are fine).
// Every key is optional except "relays". Unknown keys are errors.
{
  // Shown in the NIP-89 announcement (kind 31990).
  "name": ${JSON.stringify(o.name ?? DEFAULTS.name)},
  "about": ${JSON.stringify(DEFAULTS.about)},

  // Relays to take jobs from and publish feedback, results and announcements to.
  "relays": ${JSON.stringify(o.relays)},

  // Job kinds to serve: 5930 SandboxRun, 5931 RepoIndex, 5932 PatchGen, 5933 CodeReview, 5050 TextGen.
  // 5932/5933 need backends.patch_gen / code_review; 5050 needs backends.text_gen.
  "kinds": ${JSON.stringify(kinds)},

  // Price book per kind, in millisats: price = min(base + per_unit × units, cap).
  "prices": {
${prices.join('\n')}
  },

  // Jobs run at once; jobs waiting beyond that; per-customer rate limit (token bucket).
  "capacity": ${DEFAULTS.capacity},
  "queue": ${DEFAULTS.queue},
  "rate_limit": { "burst": ${DEFAULTS.rateLimit.burst}, "per_minute": ${DEFAULTS.rateLimit.perMinute} },

  // Sandbox for every job: "bwrap" (bubblewrap, default), "container" (Docker API), "gvisor".
  "isolation": "bwrap",

  // Payment terms per kind ("default" for the rest): "prepay" (bolt11 in payment-required
  // feedback, work starts once paid), "after-verify" (bolt11 in the result's amount tag),
  // "escrow" (a P2PK-locked Cashu token in the request's "escrow" tag, checked before work starts;
  // needs "mints" and "arbiters").
  "terms": { "default": "after-verify" },

  // NIP-47 Nostr Wallet Connect URI of the wallet that issues invoices (a secret; this file is 0600).
  // BAZAAR_NWC_URI overrides it.
  ${o.nwcUri ? `"nwc_uri": ${JSON.stringify(o.nwcUri)},` : '// "nwc_uri": "nostr+walletconnect://…",'}
  "invoice_expiry_secs": ${DEFAULTS.invoiceExpirySecs},

  // Trusted Cashu mints and arbiters (their payment keys, "02" + x-only hex) for escrow; the
  // escrow's locktime must leave dispute_window_secs after the job's time limit.
  "mints": [],
  "arbiters": [],
  "dispute_window_secs": 3600,

  // Heartbeat (kind 11998) interval; how far back to look for requests on start.
  "heartbeat_secs": ${DEFAULTS.heartbeatSecs},
  "lookback_secs": ${DEFAULTS.lookbackSecs},

  // NIP-90: also publish feedback and results to the relays a request's "relays" tag names
  // (at most 3 per job, through short-lived connections).
  "follow_request_relays": true,

  // Backends for the agent kinds. The agent command runs in the sandbox with the task on
  // stdin (and in /task/TASK.md), the checkout in /workspace; it reaches allow_domains only
  // through the credential proxy.
  "backends": {
    // A kind listed in "kinds" needs its backend here (5932 patch_gen, 5933 code_review, 5050 text_gen).
    // "patch_gen": { "command": ["claude", "-p"], "allow_domains": ["api.anthropic.com"], "api_key_env": "ANTHROPIC_API_KEY", "api_key_header": "x-api-key", "time_limit_secs": 900 },
    // "code_review": { "command": ["codex", "exec"], "allow_domains": ["api.openai.com"], "api_key_env": "OPENAI_API_KEY" },
    // "text_gen": { "url": "http://127.0.0.1:11434/v1", "model": "llama3.2", "api_key_env": "OPENAI_API_KEY" },
  },
}
`;
}
