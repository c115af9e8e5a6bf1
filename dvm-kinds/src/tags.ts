// Small, pure tag readers/writers shared by the kind modules.
import { problem, type Problem } from './problem.ts';

export type Tag = readonly string[];
export type EventLike = { readonly kind: number; readonly tags: readonly Tag[]; readonly content: string; readonly created_at: number; readonly id?: string; readonly pubkey?: string };

export const tagsNamed = (tags: readonly Tag[], name: string): Tag[] => tags.filter((t) => t[0] === name);
export const firstTag = (tags: readonly Tag[], name: string): Tag | undefined => tags.find((t) => t[0] === name);
export const tagValue = (tags: readonly Tag[], name: string): string | undefined => firstTag(tags, name)?.[1];

/** A non-negative safe integer written in decimal, or undefined. */
export function parseUint(s: unknown): number | undefined {
  if (typeof s !== 'string' || !/^\d{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A finite decimal number (no exponent, no hex), or undefined. */
export function parseDecimal(s: unknown): number | undefined {
  if (typeof s !== 'string' || !/^-?\d{1,16}(\.\d{1,16})?$/.test(s)) return undefined;
  return Number(s);
}

export const isRelayUrl = (s: unknown): s is string => {
  if (typeof s !== 'string') return false;
  try {
    const u = new URL(s);
    return u.protocol === 'wss:' || u.protocol === 'ws:';
  } catch {
    return false;
  }
};

export const isHttpUrl = (s: unknown): s is string => {
  if (typeof s !== 'string') return false;
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:' || u.protocol === 'git:' || u.protocol === 'ssh:' || u.protocol === 'file:';
  } catch {
    return false;
  }
};

/** Reads a required single-valued unsigned integer tag, recording problems. */
export function readUintTag(tags: readonly Tag[], name: string, out: Problem[], required: boolean): number | undefined {
  const all = tagsNamed(tags, name);
  if (all.length === 0) {
    if (required) out.push(problem(`tags.${name}`, 'missing', `a ["${name}", "<integer>"] tag is required`));
    return undefined;
  }
  if (all.length > 1) out.push(problem(`tags.${name}`, 'unexpected', `only one "${name}" tag is allowed`));
  const n = parseUint(all[0][1]);
  if (n === undefined) out.push(problem(`tags.${name}`, 'invalid', `must be a non-negative integer, got ${JSON.stringify(all[0][1] ?? null)}`));
  return n;
}

/** Reads a tag that must appear at most once (exactly once when required). */
export function readSingleTag(tags: readonly Tag[], name: string, out: Problem[], required: boolean): Tag | undefined {
  const all = tagsNamed(tags, name);
  if (all.length === 0) {
    if (required) out.push(problem(`tags.${name}`, 'missing', `a "${name}" tag is required`));
    return undefined;
  }
  if (all.length > 1) out.push(problem(`tags.${name}`, 'unexpected', `only one "${name}" tag is allowed`));
  if (all[0][1] === undefined) out.push(problem(`tags.${name}`, 'invalid', `"${name}" tag has no value`));
  return all[0];
}

/** `["amount", "<msats>", "<bolt11>?"]` */
export interface Amount {
  readonly msats: number;
  readonly bolt11?: string;
}

export function readAmount(tags: readonly Tag[], out: Problem[], required = false): Amount | undefined {
  const t = readSingleTag(tags, 'amount', out, required);
  if (!t) return undefined;
  const msats = parseUint(t[1]);
  if (msats === undefined) {
    out.push(problem('tags.amount', 'invalid', `amount must be an integer number of millisats, got ${JSON.stringify(t[1] ?? null)}`));
    return undefined;
  }
  const bolt11 = t[2];
  if (bolt11 !== undefined && bolt11 !== '' && !/^ln[a-z0-9]+1[02-9ac-hj-np-z]+$/i.test(bolt11)) {
    out.push(problem('tags.amount', 'invalid', 'the third element must be a bolt11 invoice'));
    return undefined;
  }
  return bolt11 ? { msats, bolt11 } : { msats };
}

export const amountTag = (a: Amount): string[] => (a.bolt11 ? ['amount', String(a.msats), a.bolt11] : ['amount', String(a.msats)]);

export function checkKind(e: EventLike, expected: number | ((k: number) => boolean), out: Problem[], what: string): void {
  const okKind = typeof expected === 'number' ? e.kind === expected : expected(e.kind);
  if (!okKind) out.push(problem('kind', 'kind', `${what}: unexpected kind ${e.kind}`));
}

export const nowSecs = (): number => Math.floor(Date.now() / 1000);

/** Structural problems that make an object unusable as an event (checked before anything else). */
export function shapeProblems(e: unknown): Problem[] {
  const x = e as Record<string, unknown> | null;
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return [problem('(root)', 'invalid', 'not an event object')];
  const out: Problem[] = [];
  if (!Number.isInteger(x.kind)) out.push(problem('kind', 'invalid', 'kind must be an integer'));
  if (!Number.isInteger(x.created_at)) out.push(problem('created_at', 'invalid', 'created_at must be an integer'));
  if (typeof x.content !== 'string') out.push(problem('content', 'invalid', 'content must be a string'));
  if (!Array.isArray(x.tags) || !x.tags.every((t) => Array.isArray(t) && t.every((v) => typeof v === 'string'))) out.push(problem('tags', 'invalid', 'tags must be an array of arrays of strings'));
  if (x.id !== undefined && typeof x.id !== 'string') out.push(problem('id', 'invalid', 'id must be a string'));
  if (x.pubkey !== undefined && typeof x.pubkey !== 'string') out.push(problem('pubkey', 'invalid', 'pubkey must be a string'));
  return out;
}
