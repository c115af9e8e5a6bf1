// Policy files: JSON with comments (jsonc), a list of named rules composed with seq/any/not/when/withTimeout.
// See policies/README.md for the format and policies/examples/policies.jsonc for a complete file.
import { readFile } from 'node:fs/promises';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import type { Logger } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { systemClock, type Clock } from './clock.ts';
import { any, not, seq, shadow, when, withTimeout } from './combinators.ts';
import { defaultPolicy } from './default-policy.ts';
import { DEFAULT_LIMITS, eventLimits } from './limits.ts';
import type { Policy, PolicyContext } from './policy.ts';
import { createdAtWindow } from './rules/created-at-window.ts';
import { maxContentLength } from './rules/max-content-length.ts';
import { maxEventSize } from './rules/max-event-size.ts';
import { maxTags } from './rules/max-tags.ts';
import { protectedEvents } from './rules/protected-events.ts';
import { rateLimitByIp } from './rules/rate-limit-by-ip.ts';
import { rateLimitByPubkey } from './rules/rate-limit-by-pubkey.ts';
import { rejectExpired } from './rules/reject-expired.ts';
import { requireAuthForKinds } from './rules/require-auth-for-kinds.ts';
import { requirePow } from './rules/require-pow.ts';
import { kindMatcher, rejectKinds, restrictToKinds, type KindSpec } from './rules/restrict-to-kinds.ts';
import { feedbackFromTaggedProvider } from './market/feedback-from-tagged-provider.ts';
import { minBid } from './market/min-bid.ts';
import { reputationFloor } from './market/reputation-floor.ts';
import { resultAnswersKnownRequest } from './market/result-answers-known-request.ts';
import { validJobRequest } from './market/valid-job-request.ts';
import { validJobResult } from './market/valid-job-result.ts';
import { verdictFromNamedArbiter } from './market/verdict-from-named-arbiter.ts';

export interface PolicyDeps {
  readonly clock?: Clock;
  /** The relay's reputation key: the default `reputationPubkey` of `reputationFloor`. */
  readonly reputationPubkey?: string;
  readonly logger?: Pick<Logger, 'info' | 'warn' | 'debug'>;
  readonly signal?: AbortSignal;
}

export class PolicyConfigError extends Error {
  override name = 'PolicyConfigError';
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source}: invalid policy configuration:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

type OptType = 'number' | 'integer' | 'boolean' | 'string' | 'hex64' | 'kinds' | 'sources' | 'rule' | 'rules' | 'limits';
interface RuleSpec {
  readonly opts: Readonly<Record<string, { type: OptType; required?: boolean; min?: number }>>;
  readonly build: (o: Record<string, any>, b: Builder) => Policy;
}

interface Builder {
  readonly deps: PolicyDeps;
  readonly clock: Clock;
  rule(v: unknown): Policy;
}

const SOURCE_TYPES = ['ws', 'import', 'stream', 'sync', 'internal'] as const;
const NIP01_PREFIXES = ['invalid:', 'blocked:', 'rate-limited:', 'pow:', 'restricted:', 'auth-required:', 'duplicate:', 'error:'] as const;
const NIP01_PREFIX = new RegExp(`^(${NIP01_PREFIXES.join('|')}) `);

const RULES: Readonly<Record<string, RuleSpec>> = {
  defaults: { opts: { limits: { type: 'limits' } }, build: (o, b) => defaultPolicy(o.limits ?? {}, { clock: b.clock }) },
  eventLimits: { opts: { limits: { type: 'limits' } }, build: (o) => eventLimits(o.limits ?? {}) },
  maxContentLength: { opts: { chars: { type: 'integer', required: true, min: 0 } }, build: (o) => maxContentLength(o.chars) },
  maxEventSize: { opts: { bytes: { type: 'integer', required: true, min: 1 } }, build: (o) => maxEventSize(o.bytes) },
  maxTags: { opts: { max: { type: 'integer', required: true, min: 0 }, maxValues: { type: 'integer', min: 1 } }, build: (o) => maxTags(o.max, { maxValues: o.maxValues }) },
  createdAtWindow: { opts: { pastSecs: { type: 'integer', min: 0 }, futureSecs: { type: 'integer', min: 0 } }, build: (o) => createdAtWindow(o) },
  restrictToKinds: { opts: { kinds: { type: 'kinds', required: true } }, build: (o) => restrictToKinds(o.kinds) },
  rejectKinds: { opts: { kinds: { type: 'kinds', required: true } }, build: (o) => rejectKinds(o.kinds) },
  rateLimitByIp: { opts: { perSecond: { type: 'number', required: true, min: 0 }, burst: { type: 'integer', required: true, min: 1 }, maxKeys: { type: 'integer', min: 1 } }, build: (o, b) => rateLimitByIp({ ...(o as { perSecond: number; burst: number }), clock: b.clock }) },
  rateLimitByPubkey: { opts: { perSecond: { type: 'number', required: true, min: 0 }, burst: { type: 'integer', required: true, min: 1 }, maxKeys: { type: 'integer', min: 1 } }, build: (o, b) => rateLimitByPubkey({ ...(o as { perSecond: number; burst: number }), clock: b.clock }) },
  requirePow: { opts: { difficulty: { type: 'integer', required: true, min: 0 } }, build: (o) => requirePow(o.difficulty) },
  requireAuthForKinds: { opts: { kinds: { type: 'kinds', required: true }, matchAuthor: { type: 'boolean' } }, build: (o) => requireAuthForKinds(o.kinds, { matchAuthor: o.matchAuthor }) },
  protectedEvents: { opts: {}, build: () => protectedEvents() },
  rejectExpired: { opts: {}, build: () => rejectExpired() },
  validJobRequest: { opts: {}, build: () => validJobRequest() },
  validJobResult: { opts: {}, build: () => validJobResult() },
  resultAnswersKnownRequest: { opts: {}, build: () => resultAnswersKnownRequest() },
  feedbackFromTaggedProvider: { opts: {}, build: () => feedbackFromTaggedProvider() },
  minBid: { opts: { msats: { type: 'integer', required: true, min: 0 }, kinds: { type: 'kinds' }, allowMissing: { type: 'boolean' } }, build: (o) => minBid(o.msats, { kinds: o.kinds, allowMissing: o.allowMissing }) },
  verdictFromNamedArbiter: { opts: {}, build: () => verdictFromNamedArbiter() },
  reputationFloor: {
    opts: { reputationPubkey: { type: 'hex64' }, minRank: { type: 'integer', min: 0 }, minTier: { type: 'integer', min: 0 }, allowUnknown: { type: 'boolean' }, kinds: { type: 'kinds' } },
    build: (o, b) => reputationFloor({ ...o, reputationPubkey: o.reputationPubkey ?? b.deps.reputationPubkey } as Parameters<typeof reputationFloor>[0]),
  },
  seq: { opts: { rules: { type: 'rules', required: true } }, build: (o, b) => seq(...(o.rules as unknown[]).map((r) => b.rule(r))) },
  any: { opts: { rules: { type: 'rules', required: true } }, build: (o, b) => any(...(o.rules as unknown[]).map((r) => b.rule(r))) },
  not: { opts: { policy: { type: 'rule', required: true }, message: { type: 'string', required: true } }, build: (o, b) => not(b.rule(o.policy), o.message) },
  when: {
    opts: { kinds: { type: 'kinds' }, sources: { type: 'sources' }, authed: { type: 'boolean' }, then: { type: 'rule', required: true }, otherwise: { type: 'rule' } },
    build: (o, b) => {
      const kinds = o.kinds ? kindMatcher(o.kinds) : undefined;
      const sources = o.sources ? new Set<string>(o.sources) : undefined;
      const pred = (e: NostrEvent, ctx: PolicyContext) => (!kinds || kinds(e.kind)) && (!sources || sources.has(ctx.source.type)) && (o.authed === undefined || o.authed === (ctx.authedPubkey !== undefined));
      return when(pred, b.rule(o.then), o.otherwise === undefined ? undefined : b.rule(o.otherwise));
    },
  },
  shadow: { opts: { policy: { type: 'rule', required: true } }, build: (o, b) => shadow(b.rule(o.policy)) },
  withTimeout: { opts: { ms: { type: 'integer', required: true, min: 1 }, policy: { type: 'rule', required: true } }, build: (o, b) => withTimeout(b.rule(o.policy), o.ms) },
};

export const RULE_NAMES = Object.keys(RULES);

/** `5930`, `"5000-5999"` or `[5000, 5999]` → KindSpec. */
function kindSpec(v: unknown): KindSpec | undefined {
  const ok = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 65535;
  if (ok(v)) return v;
  if (typeof v === 'string') {
    const m = /^(\d+)-(\d+)$/.exec(v);
    if (m && ok(Number(m[1])) && ok(Number(m[2])) && Number(m[1]) <= Number(m[2])) return [Number(m[1]), Number(m[2])];
  }
  if (Array.isArray(v) && v.length === 2 && ok(v[0]) && ok(v[1]) && v[0] <= v[1]) return [v[0], v[1]];
  return undefined;
}

/** Checks a config value, collecting every problem with its JSON path; returns normalized options. */
function check(v: unknown, path: string, out: string[], deps: PolicyDeps): void {
  if (Array.isArray(v)) return v.forEach((r, i) => check(r, `${path}[${i}]`, out, deps));
  if (typeof v !== 'object' || v === null) return void out.push(`${path}: a rule is an object like {"rule": "maxEventSize", "bytes": 65536}`);
  const o = v as Record<string, unknown>;
  const name = o.rule;
  const spec = typeof name === 'string' && Object.hasOwn(RULES, name) ? RULES[name] : undefined;
  if (!spec) return void out.push(`${path}.rule: unknown rule ${JSON.stringify(name ?? null)} (one of: ${RULE_NAMES.join(', ')})`);
  for (const [key, val] of Object.entries(o)) {
    if (key === 'rule' || key === 'comment') continue;
    const opt = spec.opts[key];
    const at = `${path}.${key}`;
    if (!opt) {
      out.push(`${at}: unknown option for ${name} (options: ${Object.keys(spec.opts).join(', ') || 'none'})`);
      continue;
    }
    switch (opt.type) {
      case 'number':
      case 'integer':
        if (typeof val !== 'number' || !Number.isFinite(val) || (opt.type === 'integer' && !Number.isInteger(val))) out.push(`${at}: must be ${opt.type === 'integer' ? 'an integer' : 'a number'}`);
        else if (opt.min !== undefined && val < opt.min) out.push(`${at}: must be at least ${opt.min}`);
        break;
      case 'boolean':
        if (typeof val !== 'boolean') out.push(`${at}: must be true or false`);
        break;
      case 'string':
        if (typeof val !== 'string' || val === '') out.push(`${at}: must be a non-empty string`);
        else if (key === 'message' && !NIP01_PREFIX.test(val)) out.push(`${at}: must start with a NIP-01 prefix (${NIP01_PREFIXES.join(', ')}), e.g. "blocked: not here"`);
        break;
      case 'hex64':
        if (typeof val !== 'string' || !/^[0-9a-f]{64}$/.test(val)) out.push(`${at}: must be a 64-char lowercase hex pubkey`);
        break;
      case 'kinds':
        if (!Array.isArray(val) || val.length === 0) out.push(`${at}: must be a non-empty list of kinds (5930, "5000-5999" or [5000, 5999])`);
        else val.forEach((k, i) => kindSpec(k) === undefined && out.push(`${at}[${i}]: not a kind or kind range: ${JSON.stringify(k)}`));
        break;
      case 'sources':
        if (!Array.isArray(val) || val.some((s) => !(SOURCE_TYPES as readonly unknown[]).includes(s))) out.push(`${at}: must be a list of ${SOURCE_TYPES.join(', ')}`);
        break;
      case 'rule':
        check(val, at, out, deps);
        break;
      case 'rules':
        if (!Array.isArray(val)) out.push(`${at}: must be a list of rules`);
        else check(val, at, out, deps);
        break;
      case 'limits':
        if (typeof val !== 'object' || val === null || Array.isArray(val)) out.push(`${at}: must be an object`);
        else
          for (const [k, x] of Object.entries(val)) {
            if (!Object.hasOwn(DEFAULT_LIMITS, k)) out.push(`${at}.${k}: unknown limit (limits: ${Object.keys(DEFAULT_LIMITS).join(', ')})`);
            else if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) out.push(`${at}.${k}: must be a number >= 0`);
          }
        break;
    }
  }
  for (const [key, opt] of Object.entries(spec.opts)) if (opt.required && !Object.hasOwn(o, key)) out.push(`${path}.${key}: required by ${name}`);
  if (name === 'reputationFloor' && o.reputationPubkey === undefined && !deps.reputationPubkey) out.push(`${path}.reputationPubkey: required by reputationFloor (or give the relay's reputation key)`);
}

export interface PolicyConfig {
  /** Rules run in order (seq); absent means the defaults. */
  readonly rules?: readonly unknown[];
}

/** Build the policy a config describes; throws PolicyConfigError listing every problem. */
export function policyFromConfig(config: unknown, deps: PolicyDeps = {}, source = 'policy config'): Policy {
  const out: string[] = [];
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new PolicyConfigError(source, ['the file must hold an object like {"rules": [...]}']);
  const c = config as Record<string, unknown>;
  for (const k of Object.keys(c)) if (k !== 'rules' && k !== '$schema' && k !== 'comment') out.push(`${k}: unknown top-level key (expected "rules")`);
  if (c.rules !== undefined && !Array.isArray(c.rules)) out.push('rules: must be a list of rules');
  const rules = (Array.isArray(c.rules) ? c.rules : [{ rule: 'defaults' }]) as unknown[];
  // reputationFloor may take its key from deps (the relay's reputation key) instead of the file.
  check(rules, 'rules', out, deps);
  if (out.length) throw new PolicyConfigError(source, out);
  const clock = deps.clock ?? systemClock;
  const builder: Builder = {
    deps,
    clock,
    rule(v) {
      if (Array.isArray(v)) return seq(...v.map((r) => builder.rule(r)));
      const o = v as Record<string, unknown>;
      const opts: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(o)) if (k !== 'rule' && k !== 'comment') opts[k] = k === 'kinds' ? (x as unknown[]).map(kindSpec) : x;
      return RULES[o.rule as string].build(opts, builder);
    },
  };
  return builder.rule(rules);
}

function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/** Parse a JSONC policy file's text; throws PolicyConfigError with every syntax error's position. */
export function parsePolicyText(text: string, source = 'policy file'): unknown {
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length) throw new PolicyConfigError(source, errors.map((e) => `${lineCol(text, e.offset)}: ${printParseErrorCode(e.error)}`));
  return value;
}

/** Read and build a policy file (JSON with comments). */
export async function loadPolicyFile(path: string, deps: PolicyDeps = {}): Promise<Policy> {
  const text = await readFile(path, { encoding: 'utf8', ...(deps.signal ? { signal: deps.signal } : {}) });
  const policy = policyFromConfig(parsePolicyText(text, path), deps, path);
  deps.logger?.info({ path }, 'policy file loaded');
  return policy;
}
