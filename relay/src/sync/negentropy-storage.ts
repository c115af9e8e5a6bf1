// The sorted item set one side of a negentropy reconciliation works on: (timestamp, 32-byte id)
// pairs ordered by timestamp, then id bytes. Fingerprints of any index range cost O(1): we keep
// prefix sums of the ids (256-bit little-endian integers, mod 2^256), so a range's sum is the
// difference of two prefix sums — where a plain vector (the reference "Vector" storage) adds up
// every id of the range on every call. Memory: 72 bytes per item (8 timestamp, 32 id, 32 sum).
import { createHash } from 'node:crypto';

export const ID_SIZE = 32;
export const FINGERPRINT_SIZE = 16;
/** The reserved "infinity" timestamp (2^64 - 1 on the wire; no item may use it). */
export const INFINITY = Number.POSITIVE_INFINITY;

/** Largest item count a storage accepts (the prefix sums are one typed array). */
const MAX_ITEMS = Math.floor(2 ** 31 / 8) - 1;

export class NegentropyStorage {
  /** Number of items. */
  readonly size: number;
  /** Timestamps, ascending (ties ordered by id). */
  readonly timestamps: Float64Array;
  /** Ids, 32 bytes each, in item order. */
  readonly ids: Buffer;
  /** sums[8i .. 8i+8) = sum of ids[0 .. i) as eight little-endian u32 words. */
  private readonly sums: Uint32Array;

  private constructor(timestamps: Float64Array, ids: Buffer, sums: Uint32Array) {
    this.size = timestamps.length;
    this.timestamps = timestamps;
    this.ids = ids;
    this.sums = sums;
  }

  /** Items already in (timestamp, id) order without duplicates (checked); use NegentropyStorageBuilder otherwise. */
  static fromSorted(timestamps: Float64Array, ids: Uint8Array): NegentropyStorage {
    const n = timestamps.length;
    if (ids.length !== n * ID_SIZE) throw new Error(`negentropy storage: ${n} timestamps but ${ids.length} id bytes`);
    if (n > MAX_ITEMS) throw new Error(`negentropy storage: at most ${MAX_ITEMS} items`);
    for (let i = 1; i < n; i++) {
      if (compareItems(timestamps, ids, i - 1, i) >= 0) throw new Error(`negentropy storage: items ${i - 1} and ${i} are out of order or duplicate`);
    }
    const sums = new Uint32Array((n + 1) * 8);
    addPrefixSums(ids, sums, 0, n);
    return new NegentropyStorage(timestamps, Buffer.isBuffer(ids) ? ids : Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength), sums);
  }

  /** @internal the sealer's way in: arrays it built and checked itself. */
  static trusted(timestamps: Float64Array, ids: Buffer, sums: Uint32Array): NegentropyStorage {
    return new NegentropyStorage(timestamps, ids, sums);
  }

  /** Timestamp of item i. */
  timestamp(i: number): number {
    return this.timestamps[i];
  }

  /** The id of item i (a view, not a copy). */
  id(i: number): Buffer {
    return this.ids.subarray(i * ID_SIZE, (i + 1) * ID_SIZE);
  }

  /** Lowercase hex id of item i. */
  idHex(i: number): string {
    return this.ids.toString('hex', i * ID_SIZE, (i + 1) * ID_SIZE);
  }

  /** Item i's id as a 32-character latin1 string (a cheap set key). */
  idKey(i: number): string {
    return this.ids.toString('latin1', i * ID_SIZE, (i + 1) * ID_SIZE);
  }

  /**
   * First index in [begin, end) whose item is >= the bound (timestamp, then id bytes; `boundId`
   * is a prefix, the rest implicitly zero), or `end` when there is none.
   */
  findLowerBound(begin: number, end: number, boundTs: number, boundId: Uint8Array): number {
    let lo = begin;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.itemBelow(mid, boundTs, boundId)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private itemBelow(i: number, boundTs: number, boundId: Uint8Array): boolean {
    const ts = this.timestamps[i];
    if (ts !== boundTs) return ts < boundTs;
    const ids = this.ids;
    const at = i * ID_SIZE;
    for (let k = 0; k < ID_SIZE; k++) {
      const b = k < boundId.length ? boundId[k] : 0;
      const a = ids[at + k];
      if (a !== b) return a < b;
    }
    return false; // equal: not below
  }

  /** Negentropy v1 fingerprint of items [begin, end): SHA-256(sum of ids mod 2^256 ‖ varint(count))[0..16). */
  fingerprint(begin: number, end: number): Buffer {
    const s = this.sums;
    const a = begin * 8;
    const b = end * 8;
    const acc = Buffer.allocUnsafe(ID_SIZE + 10);
    let borrow = 0;
    for (let w = 0; w < 8; w++) {
      let d = s[b + w] - s[a + w] - borrow;
      if (d < 0) { d += 0x1_0000_0000; borrow = 1; } else borrow = 0;
      acc.writeUInt32LE(d, w * 4);
    }
    const len = writeVarInt(acc, ID_SIZE, end - begin);
    return createHash('sha256').update(acc.subarray(0, len)).digest().subarray(0, FINGERPRINT_SIZE);
  }
}

/** Collects items in any order, then sorts them once (`seal`). Duplicate (timestamp, id) pairs are dropped. */
export class NegentropyStorageBuilder {
  private ts: Float64Array;
  private idBytes: Buffer;
  private n = 0;

  constructor(expected = 1024) {
    const cap = Math.max(16, expected);
    this.ts = new Float64Array(cap);
    this.idBytes = Buffer.allocUnsafe(cap * ID_SIZE);
  }

  get size(): number {
    return this.n;
  }

  /** Adds one item; `id` is 64 hex characters or 32 bytes (copied from `offset`). */
  add(timestamp: number, id: string | Uint8Array, offset = 0): void {
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError(`negentropy item timestamp must be a non-negative safe integer (got ${timestamp})`);
    if (this.n === this.ts.length) this.grow();
    const at = this.n * ID_SIZE;
    if (typeof id === 'string') {
      if (id.length !== 64 || this.idBytes.write(id, at, ID_SIZE, 'hex') !== ID_SIZE || !/^[0-9a-f]{64}$/.test(id)) {
        throw new RangeError('negentropy item id must be 64 lowercase hex characters');
      }
    } else {
      if (id.length - offset < ID_SIZE) throw new RangeError('negentropy item id must be 32 bytes');
      copyId(id, offset, this.idBytes, at);
    }
    this.ts[this.n++] = timestamp;
  }

  private grow(): void {
    const ts = new Float64Array(this.ts.length * 2);
    ts.set(this.ts);
    const ids = Buffer.allocUnsafe(ts.length * ID_SIZE);
    this.idBytes.copy(ids, 0, 0, this.n * ID_SIZE);
    this.ts = ts;
    this.idBytes = ids;
  }

  /** Sorts and returns the storage in one go (see `sealer()` for a sliced one). */
  seal(): NegentropyStorage {
    const c = this.sealer();
    while (!c.step(Infinity));
    return c.result();
  }

  /**
   * Sorting as a resumable cursor, so a large set (a relay answering NEG-OPEN over a million
   * events) is sealed in bounded slices between other work. Items added newest-first (as the
   * store's index walks give them) or oldest-first cost O(n) plus sorting runs of equal
   * timestamps; any other order a full sort (one slice). Exact duplicates are dropped.
   * The builder must not be used after sealing starts.
   */
  sealer(): { step(deadline: number): boolean; result(): NegentropyStorage } {
    const n = this.n;
    const ts = this.ts;
    const ids = this.idBytes;
    if (n > MAX_ITEMS) throw new Error(`negentropy storage: at most ${MAX_ITEMS} items`);
    let phase = 0;
    let k = 1;
    let ascending = true;
    let descending = true;
    const order = new Uint32Array(n);
    const outTs = new Float64Array(n);
    const outIds = Buffer.allocUnsafe(n * ID_SIZE);
    let m = 0;
    let sums: Uint32Array | undefined;
    let storage: NegentropyStorage | undefined;
    const CHUNK = 8192;
    return {
      step(deadline: number): boolean {
        for (;;) {
          if (storage !== undefined) return true;
          const end = Math.min(n, k + CHUNK);
          if (phase === 0) {
            // Which way are the timestamps ordered, if any?
            for (; k < end && (ascending || descending); k++) {
              if (ts[k - 1] > ts[k]) ascending = false;
              if (ts[k - 1] < ts[k]) descending = false;
            }
            if (k >= n || !(ascending || descending)) {
              if (ascending || descending) for (let i = 0; i < n; i++) order[i] = ascending ? i : n - 1 - i;
              else {
                for (let i = 0; i < n; i++) order[i] = i;
                order.sort((a, b) => ts[a] - ts[b] || compareIds(ids, a, b));
              }
              phase = ascending || descending ? 1 : 2;
              k = 0;
            }
          } else if (phase === 1) {
            // Timestamps are in order: only runs of equal timestamps need their ids sorted.
            while (k < n && k < end) {
              let j = k + 1;
              while (j < n && ts[order[j]] === ts[order[k]]) j++;
              if (j - k > 1) sortRunByIds(order, k, j, ids);
              k = j;
            }
            if (k >= n) { phase = 2; k = 0; }
          } else if (phase === 2) {
            // Gather into fresh arrays, dropping exact duplicates (the same event listed twice).
            for (; k < end; k++) {
              const i = order[k];
              const at = i * ID_SIZE;
              if (m > 0 && outTs[m - 1] === ts[i] && outIds.compare(ids, at, at + ID_SIZE, (m - 1) * ID_SIZE, m * ID_SIZE) === 0) continue;
              outTs[m] = ts[i];
              copyId(ids, at, outIds, m * ID_SIZE);
              m++;
            }
            if (k >= n) { phase = 3; k = 0; sums = new Uint32Array((m + 1) * 8); }
          } else {
            const stop = Math.min(m, k + CHUNK);
            addPrefixSums(outIds, sums!, k, stop);
            k = stop;
            if (k >= m) {
              storage = NegentropyStorage.trusted(outTs.subarray(0, m), outIds.subarray(0, m * ID_SIZE), sums!);
              return true;
            }
          }
          if (performance.now() > deadline) return false;
        }
      },
      result(): NegentropyStorage {
        if (storage === undefined) throw new Error('negentropy storage not sealed yet: step() until it returns true');
        return storage;
      },
    };
  }
}

/** Insertion sort of order[lo, hi) by id bytes: runs of equal timestamps are short. */
function sortRunByIds(order: Uint32Array, lo: number, hi: number, ids: Buffer): void {
  if (hi - lo > 64) {
    order.subarray(lo, hi).sort((a, b) => compareIds(ids, a, b));
    return;
  }
  for (let i = lo + 1; i < hi; i++) {
    const v = order[i];
    let j = i - 1;
    while (j >= lo && compareIds(ids, order[j], v) > 0) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = v;
  }
}

function compareIds(ids: Uint8Array, a: number, b: number): number {
  const aAt = a * ID_SIZE;
  const bAt = b * ID_SIZE;
  for (let k = 0; k < ID_SIZE; k++) {
    const d = ids[aAt + k] - ids[bAt + k];
    if (d !== 0) return d;
  }
  return 0;
}

function compareItems(ts: Float64Array, ids: Uint8Array, a: number, b: number): number {
  return ts[a] - ts[b] || compareIds(ids, a, b);
}

/** 32 bytes from src[from..] to dst[to..] (a plain loop beats Buffer.copy's call overhead at this size). */
function copyId(src: Uint8Array, from: number, dst: Uint8Array, to: number): void {
  for (let k = 0; k < ID_SIZE; k++) dst[to + k] = src[from + k];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Fills sums[8(i+1) ..] for items [from, to) of `ids`; sums[8·from ..] must already hold the sum before `from`. */
function addPrefixSums(ids: Uint8Array, sums: Uint32Array, from: number, to: number): void {
  // Ids are little-endian 256-bit integers: on a little-endian host (and aligned) read them as u32 words directly.
  const words = LITTLE_ENDIAN && ids.byteOffset % 4 === 0 ? new Uint32Array(ids.buffer, ids.byteOffset, Math.floor(ids.byteLength / 4)) : undefined;
  const view = words === undefined ? new DataView(ids.buffer, ids.byteOffset, ids.byteLength) : undefined;
  for (let i = from; i < to; i++) {
    const p = i * 8;
    const q = p + 8;
    let carry = 0;
    for (let w = 0; w < 8; w++) {
      const word = words !== undefined ? words[p + w] : view!.getUint32(i * ID_SIZE + w * 4, true);
      const s = sums[p + w] + word + carry;
      if (s >= 0x1_0000_0000) { sums[q + w] = s - 0x1_0000_0000; carry = 1; } else { sums[q + w] = s; carry = 0; }
    }
  }
}

/** Negentropy varint (base 128, most significant digit first) of a non-negative integer; returns the end offset. */
export function writeVarInt(buf: Uint8Array, at: number, n: number): number {
  if (n === 0) {
    buf[at] = 0;
    return at + 1;
  }
  const digits: number[] = [];
  while (n > 0) {
    digits.push(n % 128);
    n = Math.floor(n / 128);
  }
  for (let i = digits.length - 1; i >= 0; i--) buf[at++] = i > 0 ? digits[i] | 0x80 : digits[i];
  return at;
}
