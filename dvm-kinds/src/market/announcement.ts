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
  }));
}
