// Private jobs: the request's inputs and params travel NIP-44 v2 encrypted to one provider
// (the NIP-90 `encrypted` convention, with NIP-44 in place of NIP-04); results and feedback
// go back encrypted to the customer.
import * as nip44 from 'nostr-tools/nip44';
import { getPublicKey } from 'nostr-tools/pure';
import type { EventTemplate } from './nostr.ts';
import { isHex64 } from './hash.ts';
import { fail, ok, problem, type Parsed } from './problem.ts';
import type { EventLike, Tag } from './tags.ts';

/** Tags moved into the encrypted payload. */
export const PRIVATE_TAGS = ['i', 'param'] as const;
/** Tags we also accept inside the payload (NDK encrypts these too). */
const OPENABLE_TAGS = new Set(['i', 'param', 'output', 'relays', 'bid']);
/** Refuse to decrypt payloads larger than this (NIP-44 caps plaintext at 64 KiB anyway). */
const MAX_PAYLOAD_CHARS = 200_000;

/** Encrypt a request template's inputs and params to `provider`; the template must have empty content. */
export function sealJobRequest(template: EventTemplate, senderSecretKey: Uint8Array, provider: string): Parsed<EventTemplate> {
  if (!isHex64(provider)) return fail([problem('provider', 'invalid', 'provider must be a 64-char hex pubkey')]);
  if (template.content !== '') return fail([problem('content', 'unexpected', 'a private request carries its payload in content: build it with empty content')]);
  const secret = template.tags.filter((t) => (PRIVATE_TAGS as readonly string[]).includes(t[0]));
  const open = template.tags.filter((t) => !(PRIVATE_TAGS as readonly string[]).includes(t[0]) && t[0] !== 'p' && t[0] !== 'encrypted');
  const key = nip44.v2.utils.getConversationKey(senderSecretKey, provider);
  return ok({ ...template, content: nip44.v2.encrypt(JSON.stringify(secret), key), tags: [...open, ['p', provider], ['encrypted']] });
}

function decryptTo(e: EventLike, recipientSecretKey: Uint8Array, counterparty: string | undefined): Parsed<string> {
  if (!e.tags.some((t) => t[0] === 'encrypted')) return fail([problem('tags.encrypted', 'missing', 'the event is not encrypted')]);
  if (!isHex64(counterparty)) return fail([problem('pubkey', 'missing', 'the author pubkey is needed to decrypt')]);
  if (e.content.length > MAX_PAYLOAD_CHARS) return fail([problem('content', 'invalid', 'encrypted payload too large')]);
  try {
    return ok(nip44.v2.decrypt(e.content, nip44.v2.utils.getConversationKey(recipientSecretKey, counterparty)));
  } catch (err) {
    return fail([problem('content', 'invalid', `cannot decrypt: ${(err as Error).message}`)]);
  }
}

/** Decrypt a private request addressed to us: returns the event with its private tags restored, ready for parseXRequest. */
export function openJobRequest<E extends EventLike>(e: E, providerSecretKey: Uint8Array): Parsed<E & { tags: Tag[] }> {
  const me = getPublicKey(providerSecretKey);
  if (!e.tags.some((t) => t[0] === 'p' && t[1] === me)) return fail([problem('tags.p', 'mismatch', 'this request is encrypted to another provider')]);
  const plain = decryptTo(e, providerSecretKey, e.pubkey);
  if (!plain.ok) return plain;
  let tags: unknown;
  try {
    tags = JSON.parse(plain.value);
  } catch {
    return fail([problem('content', 'invalid', 'the decrypted payload is not JSON')]);
  }
  if (!Array.isArray(tags) || !tags.every((t) => Array.isArray(t) && t.length > 0 && t.every((x) => typeof x === 'string'))) return fail([problem('content', 'invalid', 'the decrypted payload must be a JSON array of tags')]);
  const bad = (tags as string[][]).find((t) => !OPENABLE_TAGS.has(t[0]));
  if (bad) return fail([problem('content', 'unexpected', `tag "${bad[0]}" may not be encrypted`)]);
  return ok({ ...e, content: '', tags: [...e.tags.filter((t) => t[0] !== 'encrypted'), ...(tags as string[][])] as Tag[] });
}

/** True when a `request` tag embeds the still-encrypted request (safe to publish, as NIP-90 shows). */
function embedsSealedRequest(t: readonly string[]): boolean {
  try {
    const e = JSON.parse(t[1] ?? '') as { tags?: unknown };
    return Array.isArray(e.tags) && e.tags.some((x) => Array.isArray(x) && x[0] === 'encrypted');
  } catch {
    return false;
  }
}

/**
 * Encrypt a result (or feedback) template's content to the customer. Plaintext inputs never leak:
 * `i` tags are dropped, and a `request` tag is kept only when it embeds the sealed request
 * (a result built from the opened request would otherwise echo its inputs in clear).
 */
export function sealJobResult(template: EventTemplate, providerSecretKey: Uint8Array, customer: string): Parsed<EventTemplate> {
  if (!isHex64(customer)) return fail([problem('customer', 'invalid', 'customer must be a 64-char hex pubkey')]);
  const key = nip44.v2.utils.getConversationKey(providerSecretKey, customer);
  const tags = template.tags.filter((t) => t[0] !== 'i' && t[0] !== 'encrypted' && (t[0] !== 'request' || embedsSealedRequest(t)));
  return ok({ ...template, content: template.content === '' ? '' : nip44.v2.encrypt(template.content, key), tags: [...tags, ['encrypted']] });
}

/** Decrypt a private result or feedback from the provider: content in clear, `encrypted` tag removed. */
export function openJobResult<E extends EventLike>(e: E, customerSecretKey: Uint8Array): Parsed<E & { tags: Tag[] }> {
  if (e.content === '') return ok({ ...e, tags: e.tags.filter((t) => t[0] !== 'encrypted') as Tag[] });
  const plain = decryptTo(e, customerSecretKey, e.pubkey);
  if (!plain.ok) return plain;
  return ok({ ...e, content: plain.value, tags: e.tags.filter((t) => t[0] !== 'encrypted') as Tag[] });
}
