// NIP-61 payment info (kind 10019, replaceable): the relays, trusted mints and P2PK key to pay an agent with.
import type { EventTemplate } from '../nostr.ts';
import { isHex } from '../hash.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { checkKind, isHttpUrl, isRelayUrl, nowSecs, readSingleTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';

export const PAYMENT_INFO_KIND = 10019;

export interface PaymentInfo {
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly relays: readonly string[];
  readonly mints: readonly { readonly url: string; readonly units: readonly string[] }[];
  /** P2PK key, `02` + x-only hex (33 bytes compressed), separate from the Nostr identity key. */
  readonly p2pkPubkey: string;
}

export function buildPaymentInfo(p: { relays?: readonly string[]; mints: readonly { url: string; units?: readonly string[] }[]; p2pkPubkey: string; createdAt?: number }): EventTemplate {
  return {
    kind: PAYMENT_INFO_KIND,
    created_at: p.createdAt ?? nowSecs(),
    content: '',
    tags: [...(p.relays ?? []).map((r) => ['relay', r]), ...p.mints.map((m) => ['mint', m.url, ...(m.units ?? ['sat'])]), ['pubkey', p.p2pkPubkey]],
  };
}

export function parsePaymentInfo(e: EventLike): Parsed<PaymentInfo> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, PAYMENT_INFO_KIND, out, 'payment info');
  const relays: string[] = [];
  for (const t of tagsNamed(e.tags, 'relay')) {
    if (isRelayUrl(t[1])) relays.push(t[1]);
    else out.push(problem('tags.relay', 'invalid', `relay must be a ws(s):// URL, got ${JSON.stringify(t[1] ?? null)}`));
  }
  const mints: { url: string; units: string[] }[] = [];
  for (const t of tagsNamed(e.tags, 'mint')) {
    if (isHttpUrl(t[1])) mints.push({ url: t[1], units: t.length > 2 ? t.slice(2) : ['sat'] });
    else out.push(problem('tags.mint', 'invalid', `mint must be an http(s) URL, got ${JSON.stringify(t[1] ?? null)}`));
  }
  if (!mints.length) out.push(problem('tags.mint', 'missing', 'at least one ["mint", "<url>", "<unit>..."] tag'));
  const pk = readSingleTag(e.tags, 'pubkey', out, true)?.[1];
  if (pk !== undefined && !(isHex(pk, 33) && (pk.startsWith('02') || pk.startsWith('03')))) out.push(problem('tags.pubkey', 'invalid', 'the P2PK pubkey is a 33-byte compressed key in hex ("02" + x-only)'));
  return result(out, () => ({ ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}), createdAt: e.created_at, relays, mints, p2pkPubkey: pk! }));
}
