// The buyer's configuration: DATA/config.jsonc (written once, commented), overridden per
// command by flags and BAZAAR_BUYER_* environment variables. Every problem is reported at
// once, one precise line each; unknown keys are errors (a typo never silently does nothing).
import { readFile } from 'node:fs/promises';
import { readJsonc } from '@bazaar/agents-common/jsonc';
import { ISOLATION_LEVELS, type Isolation } from '@bazaar/dvm-kinds/market/announcement';
import { DEFAULT_WEIGHTS, type Weights } from './selection.ts';

export interface BuyerConfig {
  readonly relays: readonly string[];
  /** nostr+walletconnect:// URI of the wallet that pays (a secret: never logged). */
  readonly nwcUri?: string;
  /** Cashu mint for `--pay cashu` and escrow. */
  readonly mint?: string;
  readonly trustedReputationKeys: readonly string[];
  readonly trustRelayReputation: boolean;
  readonly arbiters: readonly string[];
  readonly isolation: 'bwrap' | 'container';
  readonly weights: Weights;
  readonly region?: string;
  readonly minSuccessRate?: number;
  readonly minIsolation?: Isolation;
  readonly disputeWindowSecs: number;
  /** Budget of a one-shot command without --budget (sats). */
  readonly defaultBudgetSats: number;
  /** Wallet spending limits (sats), enforced by the agent's wallet before it pays. */
  readonly limits: { readonly perPaymentSats: number; readonly perJobSats: number; readonly perHourSats: number; readonly perDaySats: number };
  readonly pingTimeoutMs: number;
  readonly retryBaseMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(path: string, problems: readonly string[]) {
    super(`invalid config ${path}:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

export const DEFAULT_LIMITS_SATS = { perPaymentSats: 50_000, perJobSats: 50_000, perHourSats: 200_000, perDaySats: 1_000_000 };

const KEYS = ['relays', 'nwc_uri', 'mint', 'trusted_reputation_keys', 'trust_relay_reputation', 'arbiters', 'isolation', 'weights', 'region', 'min_success_rate', 'min_isolation', 'dispute_window_secs', 'default_budget_sats', 'limits', 'ping_timeout_ms', 'retry_base_ms'];
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHex64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

export function validateConfig(raw: unknown): { config?: BuyerConfig; problems: string[] } {
  const p: string[] = [];
  if (!isObj(raw)) return { problems: ['(root): must be an object'] };
  for (const k of Object.keys(raw)) if (!KEYS.includes(k)) p.push(`${k}: unknown key (known: ${KEYS.join(', ')})`);
  const uint = (k: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
    const v = raw[k];
    if (v === undefined) return def;
    if (!isUint(v) || v < min || v > max) {
      p.push(`${k}: must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  };
  const hexList = (k: string): string[] => {
    const v = raw[k] ?? [];
    if (!Array.isArray(v) || !v.every(isHex64)) {
      p.push(`${k}: must be a list of hex public keys (64 lowercase hex characters)`);
      return [];
    }
    return v as string[];
  };
  const relays = raw.relays;
  if (!Array.isArray(relays) || relays.length === 0) p.push('relays: must be a non-empty list of ws:// or wss:// URLs');
  else relays.forEach((r, i) => { if (typeof r !== 'string' || !/^wss?:\/\/\S+$/.test(r)) p.push(`relays[${i}]: must be a ws:// or wss:// URL, got ${JSON.stringify(r)}`); });
  const nwc = raw.nwc_uri;
  if (nwc !== undefined && nwc !== '' && (typeof nwc !== 'string' || !nwc.startsWith('nostr+walletconnect://'))) p.push('nwc_uri: must be a nostr+walletconnect:// URI (or empty)');
  const mint = raw.mint;
  if (mint !== undefined && mint !== '' && (typeof mint !== 'string' || !/^https?:\/\/\S+$/.test(mint))) p.push(`mint: must be an http(s) URL, got ${JSON.stringify(mint)}`);
  const trust = raw.trust_relay_reputation ?? true;
  if (typeof trust !== 'boolean') p.push('trust_relay_reputation: must be true or false');
  const isolation = raw.isolation ?? 'bwrap';
  if (isolation !== 'bwrap' && isolation !== 'container') p.push(`isolation: must be bwrap or container, got ${JSON.stringify(isolation)}`);
  const weights: Record<string, number> = { ...DEFAULT_WEIGHTS };
  if (raw.weights !== undefined) {
    if (!isObj(raw.weights)) p.push('weights: must be an object { price, reputation, capacity, isolation, region, latency }');
    else for (const [k, v] of Object.entries(raw.weights)) {
      if (!(k in DEFAULT_WEIGHTS)) p.push(`weights.${k}: unknown weight (known: ${Object.keys(DEFAULT_WEIGHTS).join(', ')})`);
      else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) p.push(`weights.${k}: must be a non-negative number`);
      else weights[k] = v;
    }
  }
  const region = raw.region;
  if (region !== undefined && region !== null && (typeof region !== 'string' || !region)) p.push('region: must be a string');
  const msr = raw.min_success_rate;
  if (msr !== undefined && (typeof msr !== 'number' || msr < 0 || msr > 1)) p.push('min_success_rate: must be a number from 0 to 1');
  const mi = raw.min_isolation;
  if (mi !== undefined && mi !== null && !(ISOLATION_LEVELS as readonly unknown[]).includes(mi)) p.push(`min_isolation: must be one of ${ISOLATION_LEVELS.join(', ')}`);
  const limits = { ...DEFAULT_LIMITS_SATS };
  if (raw.limits !== undefined) {
    const names: Record<string, keyof typeof limits> = { per_payment_sats: 'perPaymentSats', per_job_sats: 'perJobSats', per_hour_sats: 'perHourSats', per_day_sats: 'perDaySats' };
    if (!isObj(raw.limits)) p.push('limits: must be { per_payment_sats, per_job_sats, per_hour_sats, per_day_sats }');
    else for (const [k, v] of Object.entries(raw.limits)) {
      if (!(k in names)) p.push(`limits.${k}: unknown limit (known: ${Object.keys(names).join(', ')})`);
      else if (!isUint(v)) p.push(`limits.${k}: must be a non-negative integer of sats`);
      else limits[names[k]] = v;
    }
  }
  const config: BuyerConfig = {
    relays: Array.isArray(relays) ? (relays as string[]) : [],
    ...(typeof nwc === 'string' && nwc ? { nwcUri: nwc } : {}),
    ...(typeof mint === 'string' && mint ? { mint } : {}),
    trustedReputationKeys: hexList('trusted_reputation_keys'),
    trustRelayReputation: trust === true,
    arbiters: hexList('arbiters'),
    isolation: isolation === 'container' ? 'container' : 'bwrap',
    weights: weights as unknown as Weights,
    ...(typeof region === 'string' && region ? { region } : {}),
    ...(typeof msr === 'number' ? { minSuccessRate: msr } : {}),
    ...(typeof mi === 'string' ? { minIsolation: mi as Isolation } : {}),
    disputeWindowSecs: uint('dispute_window_secs', 3600, 0, 90 * 24 * 3600),
    defaultBudgetSats: uint('default_budget_sats', 1000, 1),
    limits,
    pingTimeoutMs: uint('ping_timeout_ms', 5000, 100, 120_000),
    retryBaseMs: uint('retry_base_ms', 1000, 0, 600_000),
  };
  return p.length ? { problems: p } : { config, problems: [] };
}

export function parseConfigText(text: string, path = 'config'): BuyerConfig {
  const { value: raw, errors } = readJsonc(text);
  if (errors.length) throw new ConfigError(path, errors);
  const { config, problems } = validateConfig(raw);
  if (!config) throw new ConfigError(path, problems);
  return config;
}

/** Loads the config file; a missing file is the defaults for `relays` (the local market). */
export async function loadConfig(path: string, fallbackRelays: readonly string[] = ['ws://127.0.0.1:4869']): Promise<BuyerConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    text = JSON.stringify({ relays: fallbackRelays });
  }
  return parseConfigText(text, path);
}

export function configTemplate(o: { relays: readonly string[]; nwcUri?: string; mint?: string; arbiters?: readonly string[] }): string {
  return `// Bazaar buyer configuration (JSONC: comments and trailing commas allowed).
// Flags and BAZAAR_BUYER_* environment variables override these per command.
{
  // Relays to discover providers on, post jobs to, and where providers answer.
  "relays": ${JSON.stringify(o.relays)},

  // The wallet that pays: a Nostr Wallet Connect URI (a secret: this file is 0600).
  // Or leave it empty and pass --nwc-uri-file / BAZAAR_BUYER_NWC_URI.
  "nwc_uri": ${JSON.stringify(o.nwcUri ?? '')},

  // A Cashu mint for --pay cashu and for escrowed jobs (DESIGN §4).
  "mint": ${JSON.stringify(o.mint ?? '')},

  // NIP-85 reputation: assertions (kind 30382) count only from these keys, plus the
  // reputation_pubkey each of the relays above announces in NIP-11 when trusted.
  "trusted_reputation_keys": [],
  "trust_relay_reputation": true,

  // Arbiters (Nostr pubkeys) named in escrow locks; a provider must accept one of them.
  "arbiters": ${JSON.stringify(o.arbiters ?? [])},

  // Verification sandbox: bwrap (default) or container (Docker API / podman).
  "isolation": "bwrap",

  // Provider score (DESIGN §5); --prefer cheapest|fastest|verified-only reweights it.
  "weights": { "price": 0.25, "reputation": 0.35, "capacity": 0.15, "isolation": 0.15, "region": 0.1, "latency": 0 },

  // Escrow locktimes leave at least this long after a job's deadline for a dispute.
  "dispute_window_secs": 3600,

  // Budget of a one-shot command without --budget, in sats.
  "default_budget_sats": 1000,

  // Wallet spending limits in sats: checked before any payment leaves, across restarts.
  "limits": { "per_payment_sats": 50000, "per_job_sats": 50000, "per_hour_sats": 200000, "per_day_sats": 1000000 }
}
`;
}
