// NIP-89 handler information (kind 31990) for a Bazaar provider: kinds served, prices, capacity,
// isolation, models, and each kind's param schema in the content.
import type { EventTemplate } from '../nostr.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { validateSchema, type JsonSchema } from '../schema.ts';
import { checkKind, nowSecs, parseUint, readSingleTag, readUintTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';
import { isJobRequestKind, parseJsonContent } from '../job.ts';
import type { Pricebook, PriceEntry } from '../pricing.ts';

export const ANNOUNCEMENT_KIND = 31990;
export const ISOLATION_LEVELS = ['none', 'process', 'bwrap', 'container', 'gvisor', 'vm'] as const;
export type Isolation = (typeof ISOLATION_LEVELS)[number];
/** How a provider is paid for a kind: bolt11 before the job, bolt11 with the result, or a Cashu escrow with the request. */
export const PAYMENT_TERMS = ['prepay', 'after-verify', 'escrow'] as const;
export type PaymentTerms = (typeof PAYMENT_TERMS)[number];

export interface Announcement {
  readonly pubkey?: string;
  readonly createdAt: number;
  /** NIP-89 `d`: the handler identifier. */
  readonly d: string;
  readonly kinds: readonly number[];
  readonly prices: Pricebook;
  /** Jobs the provider runs at once. */
  readonly capacity?: number;
  readonly isolation?: Isolation;
  readonly models: readonly string[];
  readonly region?: string;
  /** kind-0 style metadata plus `param_schemas` per kind. */
  readonly name?: string;
  readonly about?: string;
  readonly paramSchemas: Readonly<Record<string, JsonSchema>>;
  /** Payment terms per kind (`["terms", kind, prepay|after-verify|escrow]`); kinds not listed: unknown. */
  readonly terms: Readonly<Record<number, PaymentTerms>>;
  /** Arbiters (payment keys) the provider accepts in escrow locks (`["arbiter", "02…"]`). */
  readonly arbiters: readonly string[];
  /** Seconds the escrow locktime must leave after the job's time limit (`["dispute_window", secs]`). */
  readonly disputeWindowSecs?: number;
  /** The provider promises a heartbeat (kind 11998) at least this often (`["heartbeat", secs]`):
   *  without a fresh one it is offline. Providers without it are plain NIP-90 (liveness unknown). */
  readonly heartbeatSecs?: number;
  /** The Lightning node its invoices come from (`["lightning_node", "02…"]`, compressed hex, the
   *  bolt11 payee): a buyer refuses an invoice from another node. Absent: payee not checkable. */
  readonly lightningNode?: string;
}

export interface AnnouncementInput {
  readonly d: string;
  readonly kinds: readonly number[];
  readonly prices?: Pricebook;
  readonly capacity?: number;
  readonly isolation?: Isolation;
  readonly models?: readonly string[];
  readonly region?: string;
  readonly name?: string;
  readonly about?: string;
  readonly paramSchemas?: Readonly<Record<string, JsonSchema>>;
  readonly terms?: Readonly<Record<number, PaymentTerms>>;
  readonly arbiters?: readonly string[];
  readonly disputeWindowSecs?: number;
  readonly heartbeatSecs?: number;
  readonly lightningNode?: string;
  readonly createdAt?: number;
}

/** `["price", kind, base_msats, per_unit_msats, unit, cap_msats]` */
export const priceTag = (kind: number, p: PriceEntry): string[] => ['price', String(kind), String(p.baseMsats), String(p.perUnitMsats), p.unit, p.capMsats === undefined ? '' : String(p.capMsats)];

export function buildAnnouncement(a: AnnouncementInput): EventTemplate {
  const tags: string[][] = [['d', a.d], ...a.kinds.map((k) => ['k', String(k)])];
  for (const [k, p] of Object.entries(a.prices ?? {})) tags.push(priceTag(Number(k), p));
  if (a.capacity !== undefined) tags.push(['capacity', String(a.capacity)]);
  if (a.isolation) tags.push(['isolation', a.isolation]);
  for (const m of a.models ?? []) tags.push(['model', m]);
  if (a.region) tags.push(['region', a.region]);
  for (const [k, t] of Object.entries(a.terms ?? {})) tags.push(['terms', String(k), t]);
  for (const k of a.arbiters ?? []) tags.push(['arbiter', k]);
  if (a.disputeWindowSecs !== undefined) tags.push(['dispute_window', String(a.disputeWindowSecs)]);
  if (a.heartbeatSecs !== undefined) tags.push(['heartbeat', String(a.heartbeatSecs)]);
  if (a.lightningNode) tags.push(['lightning_node', a.lightningNode]);
  const content = JSON.stringify({ ...(a.name ? { name: a.name } : {}), ...(a.about ? { about: a.about } : {}), param_schemas: a.paramSchemas ?? {} });
  return { kind: ANNOUNCEMENT_KIND, created_at: a.createdAt ?? nowSecs(), content, tags };
}

export function parseAnnouncement(e: EventLike): Parsed<Announcement> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, ANNOUNCEMENT_KIND, out, 'announcement');
  const d = readSingleTag(e.tags, 'd', out, true);
  const kinds: number[] = [];
  for (const t of tagsNamed(e.tags, 'k')) {
    const k = parseUint(t[1]);
    if (k === undefined || !isJobRequestKind(k)) out.push(problem('tags.k', 'invalid', `a k tag names a job request kind (5000-5999), got ${JSON.stringify(t[1] ?? null)}`));
    else kinds.push(k);
  }
  if (!kinds.length) out.push(problem('tags.k', 'missing', 'at least one ["k", "<kind>"] tag'));
  const prices: Record<number, PriceEntry> = {};
  tagsNamed(e.tags, 'price').forEach((t, n) => {
    const path = `tags.price[${n}]`;
    const [, k, base, per, unit, cap] = t;
    const kind = parseUint(k);
    const baseMsats = parseUint(base);
    const perUnitMsats = parseUint(per ?? '0');
    const capMsats = cap === undefined || cap === '' ? undefined : parseUint(cap);
    if (kind === undefined || !kinds.includes(kind)) out.push(problem(path, 'invalid', `price for a kind not announced: ${JSON.stringify(k ?? null)}`));
    if (baseMsats === undefined) out.push(problem(path, 'invalid', 'base price must be integer millisats'));
    if (perUnitMsats === undefined) out.push(problem(path, 'invalid', 'per-unit price must be integer millisats'));
    if (cap !== undefined && cap !== '' && capMsats === undefined) out.push(problem(path, 'invalid', 'cap must be integer millisats or empty'));
    if (kind !== undefined && baseMsats !== undefined && perUnitMsats !== undefined) prices[kind] = { baseMsats, perUnitMsats, unit: unit || 'job', ...(capMsats !== undefined ? { capMsats } : {}) };
  });
  const capacity = readUintTag(e.tags, 'capacity', out, false);
  const iso = readSingleTag(e.tags, 'isolation', out, false)?.[1];
  if (iso !== undefined && !(ISOLATION_LEVELS as readonly string[]).includes(iso)) out.push(problem('tags.isolation', 'invalid', `isolation must be one of ${ISOLATION_LEVELS.join(', ')}`));
  const models = tagsNamed(e.tags, 'model').map((t) => t[1]).filter((m): m is string => !!m);
  const region = readSingleTag(e.tags, 'region', out, false)?.[1];
  const terms: Record<number, PaymentTerms> = {};
  tagsNamed(e.tags, 'terms').forEach((t, n) => {
    const kind = parseUint(t[1]);
    if (kind === undefined || !kinds.includes(kind)) out.push(problem(`tags.terms[${n}]`, 'invalid', `terms for a kind not announced: ${JSON.stringify(t[1] ?? null)}`));
    else if (!(PAYMENT_TERMS as readonly string[]).includes(t[2] ?? '')) out.push(problem(`tags.terms[${n}]`, 'invalid', `terms must be one of ${PAYMENT_TERMS.join(', ')}`));
    else terms[kind] = t[2] as PaymentTerms;
  });
  const arbiters: string[] = [];
  tagsNamed(e.tags, 'arbiter').forEach((t, n) => {
    if (typeof t[1] === 'string' && /^0[23][0-9a-f]{64}$/.test(t[1])) arbiters.push(t[1]);
    else out.push(problem(`tags.arbiter[${n}]`, 'invalid', 'an arbiter is named by its payment key: "02" + 64 hex'));
  });
  const disputeWindowSecs = readUintTag(e.tags, 'dispute_window', out, false);
  const heartbeatSecs = readUintTag(e.tags, 'heartbeat', out, false);
  if (heartbeatSecs === 0) out.push(problem('tags.heartbeat', 'invalid', 'the heartbeat interval is at least 1 second'));
  const lightningNode = readSingleTag(e.tags, 'lightning_node', out, false)?.[1];
  if (lightningNode !== undefined && !/^0[23][0-9a-f]{64}$/.test(lightningNode)) out.push(problem('tags.lightning_node', 'invalid', 'a Lightning node is named by its compressed public key: 02/03 + 64 hex'));
  let meta: { name?: string; about?: string; param_schemas?: Record<string, JsonSchema> } = {};
  if (e.content !== '') {
    const json = parseJsonContent(e.content, out);
    if (json !== undefined) {
      out.push(...validateSchema({ type: 'object', properties: { name: { type: 'string' }, about: { type: 'string' }, param_schemas: { type: 'object', additionalProperties: { type: 'object' } } } }, json, 'content'));
      meta = json as typeof meta;
    }
  }
  return result(out, () => ({
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    d: d![1],
    kinds,
    prices,
    ...(capacity !== undefined ? { capacity } : {}),
    ...(iso ? { isolation: iso as Isolation } : {}),
    models,
    ...(region ? { region } : {}),
    ...(meta.name ? { name: meta.name } : {}),
    ...(meta.about ? { about: meta.about } : {}),
    paramSchemas: meta.param_schemas ?? {},
    terms,
    arbiters,
    ...(disputeWindowSecs !== undefined ? { disputeWindowSecs } : {}),
    ...(heartbeatSecs !== undefined ? { heartbeatSecs } : {}),
    ...(lightningNode ? { lightningNode } : {}),
  }));
}
