// Binary layouts of the LMDB store: the packed header stored in front of each
// event's raw JSON, and the composite index keys (prefix ‖ created_at ‖ seq).
// All integers are big-endian so byte order is numeric order.
import { createHash } from 'node:crypto';
import { dTag, isAddressableKind, type NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { isTagLetter } from './event-rules.ts';

/**
 * Packed record (value of the `events` table, keyed by seq):
 *   0  u32 header length H (JSON starts at H)
 *   4  u8  flags (bit 0: has expiration; bit 1: the JSON is pure ASCII)
 *   5  u8  reserved, u16 reserved
 *   8  u32 kind
 *   12 u64 created_at
 *   20 u64 expiration (0 when absent)
 *   28 32B id
 *   60 32B pubkey
 *   92 u32 number of indexed tags, then per tag: u8 letter, u32 value length, value bytes (UTF-8)
 *   H  canonical event JSON (UTF-8)
 * Indexed tags are the single-letter (a-zA-Z) tags with a value, de-duplicated.
 */
export const OFF_FLAGS = 4;
export const OFF_KIND = 8;
export const OFF_CREATED_AT = 12;
export const OFF_EXPIRATION = 20;
export const OFF_ID = 28;
export const OFF_PUBKEY = 60;
export const OFF_TAGS = 92;
export const FLAG_EXPIRES = 1;
/** Pure-ASCII JSON (nearly all events) decodes as latin1, which is cheaper than UTF-8. */
export const FLAG_ASCII = 2;

const TWO32 = 4294967296;

export function writeU64(buf: Uint8Array, off: number, n: number): void {
  const hi = Math.floor(n / TWO32);
  const lo = n >>> 0;
  buf[off] = hi >>> 24; buf[off + 1] = hi >>> 16; buf[off + 2] = hi >>> 8; buf[off + 3] = hi;
  buf[off + 4] = lo >>> 24; buf[off + 5] = lo >>> 16; buf[off + 6] = lo >>> 8; buf[off + 7] = lo;
}

export function readU64(b: Uint8Array, off: number): number {
  const hi = ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
  const lo = ((b[off + 4] << 24) | (b[off + 5] << 16) | (b[off + 6] << 8) | b[off + 7]) >>> 0;
  return hi * TWO32 + lo;
}

export const readU32 = (b: Uint8Array, off: number): number =>
  ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;

export function writeU32(buf: Uint8Array, off: number, n: number): void {
  buf[off] = n >>> 24; buf[off + 1] = n >>> 16; buf[off + 2] = n >>> 8; buf[off + 3] = n;
}

export interface IndexedTag {
  readonly letter: number;
  readonly value: Buffer;
}

/** The single-letter tags an event is indexed (and post-filtered) by. */
export function indexedTags(e: NostrEvent): IndexedTag[] {
  const out: IndexedTag[] = [];
  const seen = new Set<string>();
  for (const t of e.tags) {
    const name = t[0];
    if (t.length < 2 || typeof name !== 'string' || !isTagLetter(name)) continue;
    const k = `${name}\u0000${t[1]}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ letter: name.charCodeAt(0), value: Buffer.from(t[1], 'utf8') });
  }
  return out;
}

export function packEvent(e: NostrEvent, json: string, expiration: number | undefined, tags: readonly IndexedTag[]): Buffer {
  let h = OFF_TAGS + 4;
  for (const t of tags) h += 5 + t.value.length;
  const jsonLen = Buffer.byteLength(json, 'utf8');
  const b = Buffer.allocUnsafe(h + jsonLen);
  b.fill(0, 0, OFF_TAGS);
  writeU32(b, 0, h);
  b[OFF_FLAGS] = (expiration === undefined ? 0 : FLAG_EXPIRES) | (jsonLen === json.length ? FLAG_ASCII : 0);
  writeU32(b, OFF_KIND, e.kind);
  writeU64(b, OFF_CREATED_AT, e.created_at);
  writeU64(b, OFF_EXPIRATION, expiration ?? 0);
  b.write(e.id, OFF_ID, 32, 'hex');
  b.write(e.pubkey, OFF_PUBKEY, 32, 'hex');
  writeU32(b, OFF_TAGS, tags.length);
  let p = OFF_TAGS + 4;
  for (const t of tags) {
    b[p] = t.letter;
    writeU32(b, p + 1, t.value.length);
    t.value.copy(b, p + 5);
    p += 5 + t.value.length;
  }
  b.write(json, h, jsonLen, 'utf8');
  return b;
}

/** Tags from a packed record (used when removing an event's index entries). */
export function unpackTags(b: Uint8Array): IndexedTag[] {
  const n = readU32(b, OFF_TAGS);
  const out: IndexedTag[] = [];
  let p = OFF_TAGS + 4;
  for (let i = 0; i < n; i++) {
    const len = readU32(b, p + 1);
    out.push({ letter: b[p], value: Buffer.from(b.subarray(p + 5, p + 5 + len)) });
    p += 5 + len;
  }
  return out;
}

export const headerLength = (b: Uint8Array): number => readU32(b, 0);
/** The stored JSON of a packed record. */
export const packedJson = (b: Buffer): string => b.toString((b[OFF_FLAGS] & FLAG_ASCII) !== 0 ? 'latin1' : 'utf8', readU32(b, 0), b.length);
export const packedCreatedAt = (b: Uint8Array): number => readU64(b, OFF_CREATED_AT);
export const packedKind = (b: Uint8Array): number => readU32(b, OFF_KIND);
export const packedExpiration = (b: Uint8Array): number | undefined => (b[OFF_FLAGS] & FLAG_EXPIRES) !== 0 ? readU64(b, OFF_EXPIRATION) : undefined;

/** Values longer than this are indexed by their SHA-256 (LMDB keys are capped near 2 KB). */
export const MAX_RAW_KEY_VALUE = 1024;
const HASHED = 0xffff;

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/** Tag index prefix: letter ‖ u16 length ‖ value (or 0xffff ‖ sha256(value) when long). */
export function tagPrefix(letter: number, value: Buffer): Buffer {
  if (value.length > MAX_RAW_KEY_VALUE) {
    const b = Buffer.allocUnsafe(3 + 32);
    b[0] = letter; b[1] = HASHED >>> 8; b[2] = HASHED & 0xff;
    sha256(value).copy(b, 3);
    return b;
  }
  const b = Buffer.allocUnsafe(3 + value.length);
  b[0] = letter; b[1] = value.length >>> 8; b[2] = value.length & 0xff;
  value.copy(b, 3);
  return b;
}

/** Tag+kind index prefix: the tag prefix ‖ u32 kind (serves `#x` filters that also name kinds). */
export function tagKindPrefix(letter: number, value: Buffer, kind: number): Buffer {
  const t = tagPrefix(letter, value);
  const b = Buffer.allocUnsafe(t.length + 4);
  t.copy(b, 0);
  writeU32(b, t.length, kind);
  return b;
}

export function kindPrefix(kind: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  writeU32(b, 0, kind);
  return b;
}

export function pubkeyKindPrefix(pubkey: Uint8Array, kind: number): Buffer {
  const b = Buffer.allocUnsafe(36);
  b.set(pubkey.subarray(0, 32), 0);
  writeU32(b, 32, kind);
  return b;
}

/**
 * Replaceable/addressable slot key: kind ‖ pubkey ‖ d. A d value longer than the raw
 * cap becomes 0xff ‖ sha256(d); 0xff never occurs in UTF-8, so the forms cannot collide.
 */
export function addressKey(kind: number, pubkey: Uint8Array, d: string | undefined): Buffer {
  const dBytes = d === undefined || d === '' ? undefined : Buffer.from(d, 'utf8');
  const tail = dBytes === undefined ? 0 : dBytes.length > MAX_RAW_KEY_VALUE ? 33 : dBytes.length;
  const b = Buffer.allocUnsafe(36 + tail);
  writeU32(b, 0, kind);
  b.set(pubkey.subarray(0, 32), 4);
  if (dBytes !== undefined) {
    if (dBytes.length > MAX_RAW_KEY_VALUE) { b[36] = 0xff; sha256(dBytes).copy(b, 37); } else dBytes.copy(b, 36);
  }
  return b;
}

/** Slot key of a stored event, or undefined for regular kinds. */
export function eventAddressKey(e: NostrEvent, pubkey: Uint8Array, replaceable: boolean): Buffer | undefined {
  if (replaceable) return addressKey(e.kind, pubkey, undefined);
  if (isAddressableKind(e.kind)) return addressKey(e.kind, pubkey, dTag(e));
  return undefined;
}

/** prefix ‖ u64 ts ‖ u32 seq */
export function indexKey(prefix: Uint8Array, ts: number, seq: number): Buffer {
  const b = Buffer.allocUnsafe(prefix.length + 12);
  b.set(prefix, 0);
  writeU64(b, prefix.length, ts);
  writeU32(b, prefix.length + 8, seq);
  return b;
}

/**
 * Key codec for the index tables. Keys are written from prebuilt Buffers; when the
 * cursor reads one we decode only its tail (ts, seq) without allocating: the seq is
 * returned and the timestamp parked in `lastKey.ts` for the caller to pick up at once.
 */
export const lastKey = { ts: 0 };
export const indexKeyEncoder = {
  writeKey(key: Uint8Array, target: Uint8Array, start: number): number {
    target.set(key, start);
    return start + key.length;
  },
  readKey(src: Uint8Array, start: number, end: number): number {
    lastKey.ts = readU64(src, end - 12);
    return readU32(src, end - 4);
  },
};
