// Binary layouts of the LMDB store: the packed header stored in front of each
// event's raw JSON, and the composite index keys (prefix ‖ created_at ‖ seq).
// All integers are big-endian so byte order is numeric order.
import { createHash } from 'node:crypto';
import { dTag, isAddressableKind, type NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { isTagLetter } from './event-rules.ts';

/**
 * Packed record (value of the `events` table, keyed by seq), schema 3:
 *   0  u32 header length H (JSON starts at H; at offset 0 in every schema, so a migration can
 *      always find the JSON of an older record)
 *   4  u8  flags (bit 0: has expiration; bit 1: the JSON is pure ASCII)
 *   5  u16 kind
 *   7  u64 created_at
 *   15 32B id
 *   47 32B pubkey
 *   79 u64 expiration — only when bit 0 of flags is set
 *   then u32 number of indexed tags, then per tag: u8 letter, encoded value (encodeTagValue)
 *   H  canonical event JSON (UTF-8)
 * Indexed tags are the single-letter (a-zA-Z) tags with a value, de-duplicated.
 */
export const OFF_FLAGS = 4;
export const OFF_KIND = 5;
export const OFF_CREATED_AT = 7;
export const OFF_ID = 15;
export const OFF_PUBKEY = 47;
export const OFF_EXPIRATION = 79;
const FIXED_HEADER = 79;
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

const readU16 = (b: Uint8Array, off: number): number => (b[off] << 8) | b[off + 1];

/**
 * Tag values, encoded once for the packed header and (with long values hashed) for index keys:
 *   64 lowercase hex characters (ids, pubkeys: most e/p/q values) → 0xfffe ‖ the 32 bytes they spell
 *   other values up to 0xfffd bytes                              → u16 length ‖ UTF-8 bytes
 *   longer values                                                 → 0xffff ‖ u32 length ‖ UTF-8 bytes
 * The encoding is a function of the string, so equal encodings mean equal values: the
 * post-filter compares encoded bytes. Upper-case hex stays text (a different string).
 */
const HEX32 = 0xfffe;
const LONG = 0xffff;
const HEX64 = /^[0-9a-f]{64}$/;

export function encodeTagValue(value: string): Buffer {
  if (value.length === 64 && HEX64.test(value)) {
    const b = Buffer.allocUnsafe(34);
    b[0] = HEX32 >>> 8; b[1] = HEX32 & 0xff;
    b.write(value, 2, 32, 'hex');
    return b;
  }
  const n = Buffer.byteLength(value, 'utf8');
  if (n < HEX32) {
    const b = Buffer.allocUnsafe(2 + n);
    b[0] = n >>> 8; b[1] = n & 0xff;
    b.write(value, 2, n, 'utf8');
    return b;
  }
  const b = Buffer.allocUnsafe(6 + n);
  b[0] = 0xff; b[1] = 0xff;
  writeU32(b, 2, n);
  b.write(value, 6, n, 'utf8');
  return b;
}

/** Bytes taken by the encoded value starting at `off`. */
export function encodedTagValueLength(b: Uint8Array, off: number): number {
  const m = readU16(b, off);
  if (m === HEX32) return 34;
  if (m === LONG) return 6 + readU32(b, off + 2);
  return 2 + m;
}

export function decodeTagValue(enc: Uint8Array, off = 0): string {
  const m = readU16(enc, off);
  const buf = Buffer.from(enc.buffer, enc.byteOffset, enc.byteLength);
  if (m === HEX32) return buf.toString('hex', off + 2, off + 34);
  if (m === LONG) return buf.toString('utf8', off + 6, off + 6 + readU32(enc, off + 2));
  return buf.toString('utf8', off + 2, off + 2 + m);
}

export interface IndexedTag {
  readonly letter: number;
  /** The value as encodeTagValue writes it. */
  readonly enc: Buffer;
}

/** The single-letter tags an event is indexed (and post-filtered) by. */
export function indexedTags(e: NostrEvent): IndexedTag[] {
  const out: IndexedTag[] = [];
  let seen: Set<string> | undefined;
  for (const t of e.tags) {
    const name = t[0];
    if (t.length < 2 || typeof name !== 'string' || !isTagLetter(name)) continue;
    const k = `${name}\u0000${t[1]}`;
    if (seen?.has(k)) continue;
    (seen ??= new Set()).add(k);
    out.push({ letter: name.charCodeAt(0), enc: encodeTagValue(t[1]) });
  }
  return out;
}

/** Where the tag list of a packed record starts. */
export const tagsOffset = (b: Uint8Array): number => ((b[OFF_FLAGS] & FLAG_EXPIRES) !== 0 ? FIXED_HEADER + 8 : FIXED_HEADER);

export function packEvent(e: NostrEvent, json: string, expiration: number | undefined, tags: readonly IndexedTag[]): Buffer {
  const tagsAt = expiration === undefined ? FIXED_HEADER : FIXED_HEADER + 8;
  let h = tagsAt + 4;
  for (const t of tags) h += 1 + t.enc.length;
  const jsonLen = Buffer.byteLength(json, 'utf8');
  const b = Buffer.allocUnsafe(h + jsonLen);
  writeU32(b, 0, h);
  b[OFF_FLAGS] = (expiration === undefined ? 0 : FLAG_EXPIRES) | (jsonLen === json.length ? FLAG_ASCII : 0);
  b[OFF_KIND] = e.kind >>> 8; b[OFF_KIND + 1] = e.kind & 0xff;
  writeU64(b, OFF_CREATED_AT, e.created_at);
  b.write(e.id, OFF_ID, 32, 'hex');
  b.write(e.pubkey, OFF_PUBKEY, 32, 'hex');
  if (expiration !== undefined) writeU64(b, OFF_EXPIRATION, expiration);
  writeU32(b, tagsAt, tags.length);
  let p = tagsAt + 4;
  for (const t of tags) {
    b[p] = t.letter;
    t.enc.copy(b, p + 1);
    p += 1 + t.enc.length;
  }
  b.write(json, h, jsonLen, 'utf8');
  return b;
}

/** Tags from a packed record (used when removing an event's index entries). */
export function unpackTags(b: Uint8Array): IndexedTag[] {
  const at = tagsOffset(b);
  const n = readU32(b, at);
  const out: IndexedTag[] = [];
  let p = at + 4;
  for (let i = 0; i < n; i++) {
    const len = encodedTagValueLength(b, p + 1);
    out.push({ letter: b[p], enc: Buffer.from(b.subarray(p + 1, p + 1 + len)) });
    p += 1 + len;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, aOff: number, b: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (a[aOff + i] !== b[i]) return false;
  return true;
}

/**
 * Does the packed record carry a tag `letter` with one of `values` (each as encodeTagValue
 * writes it)? With `set` (the same values as latin1 strings), membership is a Set lookup.
 */
export function packedHasTag(b: Buffer, letter: number, values: readonly Buffer[], set?: ReadonlySet<string>): boolean {
  const at = tagsOffset(b);
  const n = readU32(b, at);
  let p = at + 4;
  for (let i = 0; i < n; i++) {
    const len = encodedTagValueLength(b, p + 1);
    if (b[p] === letter) {
      const start = p + 1;
      if (set !== undefined) {
        if (set.has(b.toString('latin1', start, start + len))) return true;
      } else {
        for (const v of values) if (v.length === len && bytesEqual(b, start, v, len)) return true;
      }
    }
    p += 1 + len;
  }
  return false;
}

export const headerLength = (b: Uint8Array): number => readU32(b, 0);
/** The stored JSON of a packed record (any schema: the header length is always at offset 0). */
export const packedJson = (b: Buffer): string => b.toString((b[OFF_FLAGS] & FLAG_ASCII) !== 0 ? 'latin1' : 'utf8', readU32(b, 0), b.length);
export const packedCreatedAt = (b: Uint8Array): number => readU64(b, OFF_CREATED_AT);
export const packedKind = (b: Uint8Array): number => readU16(b, OFF_KIND);
export const packedExpiration = (b: Uint8Array): number | undefined => (b[OFF_FLAGS] & FLAG_EXPIRES) !== 0 ? readU64(b, OFF_EXPIRATION) : undefined;

/** Values whose encoding is longer than this are keyed by their SHA-256 (LMDB keys are capped near 2 KB). */
export const MAX_RAW_KEY_VALUE = 1024;

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/**
 * Tag index prefix: letter ‖ encoded value, where a value encoded longer than the raw cap
 * becomes 0xffff ‖ sha256(UTF-8 value) (a length field never reads 0xffff below the cap).
 */
export function tagPrefix(letter: number, enc: Buffer): Buffer {
  if (enc.length > MAX_RAW_KEY_VALUE + 2) {
    const b = Buffer.allocUnsafe(3 + 32);
    b[0] = letter; b[1] = 0xff; b[2] = 0xff;
    const m = readU16(enc, 0);
    sha256(enc.subarray(m === LONG ? 6 : 2)).copy(b, 3);
    return b;
  }
  const b = Buffer.allocUnsafe(1 + enc.length);
  b[0] = letter;
  enc.copy(b, 1);
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
