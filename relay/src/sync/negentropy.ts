// Negentropy protocol v1 (range-based set reconciliation), written from the specification
// (hoytech/negentropy docs/negentropy-protocol-v1.md, the appendix of NIP-77) and checked
// against its reference implementations: the C++ one through strfry, the test vectors of the
// reference suite in test/negentropy.test.ts. Pure: bytes in, bytes out; no I/O.
//
// A message is a version byte (0x61) and a list of ranges, each an upper bound, a mode and a
// payload (Skip, a 16-byte Fingerprint, or an IdList). The initiator (client) learns the ids it
// has and the other side lacks ("have") and the ids the other side has and it lacks ("need");
// the other side (a relay) only answers.
import { FINGERPRINT_SIZE, ID_SIZE, INFINITY, type NegentropyStorage, writeVarInt } from './negentropy-storage.ts';

export const PROTOCOL_VERSION = 0x61;
/** Smallest frame size limit the reference implementation accepts. */
export const MIN_FRAME_SIZE_LIMIT = 4096;
/** A range is split into this many fingerprinted buckets, or sent as an IdList below twice as many items. */
const BUCKETS = 16;
/** u64 max: the wire's "infinity" timestamp. */
const U64_MAX = 2 ** 64 - 1;

const Mode = { Skip: 0, Fingerprint: 1, IdList: 2 } as const;

/** A message the other side sent that does not parse as negentropy v1. */
export class NegentropyProtocolError extends Error {
  override name = 'NegentropyProtocolError';
}

interface Bound {
  readonly ts: number;
  /** Id prefix, 0..32 bytes (omitted trailing bytes are zero). */
  readonly id: Uint8Array;
}

const EMPTY_ID = new Uint8Array(0);
const ZERO_BOUND: Bound = { ts: 0, id: EMPTY_ID };
const INFINITY_BOUND: Bound = { ts: INFINITY, id: EMPTY_ID };

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

/** Growable byte buffer for building messages. */
class Out {
  buf: Buffer;
  len = 0;
  constructor(cap = 256) {
    this.buf = Buffer.allocUnsafe(cap);
  }
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }
  varint(n: number): void {
    this.reserve(10);
    this.len = writeVarInt(this.buf, this.len, n);
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  append(o: Out): void {
    this.bytes(o.buf.subarray(0, o.len));
  }
  clear(): void {
    this.len = 0;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

/** Reads a message front to back; every read past the end is a protocol error. */
class In {
  private pos = 0;
  private readonly b: Uint8Array;
  constructor(b: Uint8Array) {
    this.b = b;
  }
  get remaining(): number {
    return this.b.length - this.pos;
  }
  byte(): number {
    if (this.pos >= this.b.length) throw new NegentropyProtocolError('parse ends prematurely');
    return this.b[this.pos++];
  }
  bytes(n: number): Uint8Array {
    if (n > this.remaining) throw new NegentropyProtocolError('parse ends prematurely');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** A varint as a Number; values beyond 2^53 lose precision (only timestamps can be that large, and compare the same). */
  varint(): number {
    let res = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      res = res * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) return res;
    }
    throw new NegentropyProtocolError('varint longer than 64 bits');
  }
}

export interface ReconcileResult {
  /** The next message to send, or null when reconciliation is complete (initiator only). */
  readonly output: Buffer | null;
  /** Ids (hex) this side has and the other lacks. */
  readonly have: string[];
  /** Ids (hex) the other side has and this side lacks. */
  readonly need: string[];
}

/**
 * One side of a reconciliation over a sealed storage. The initiator calls `initiate()` once, then
 * `reconcile()` on each answer until it returns `output: null`; the other side calls `respond()`
 * on each message it receives. `frameSizeLimit` (0 = none, else at least 4096) caps every
 * message this side produces, in bytes before hex encoding.
 */
export class Negentropy {
  readonly storage: NegentropyStorage;
  readonly frameSizeLimit: number;
  private initiator = false;
  private lastTimestampIn = 0;
  private lastTimestampOut = 0;

  constructor(storage: NegentropyStorage, frameSizeLimit = 0) {
    if (!Number.isSafeInteger(frameSizeLimit) || frameSizeLimit < 0 || (frameSizeLimit !== 0 && frameSizeLimit < MIN_FRAME_SIZE_LIMIT)) {
      throw new RangeError(`negentropy frameSizeLimit must be 0 or at least ${MIN_FRAME_SIZE_LIMIT} (got ${frameSizeLimit})`);
    }
    this.storage = storage;
    this.frameSizeLimit = frameSizeLimit;
  }

  /** The initiator's first message. */
  initiate(): Buffer {
    if (this.initiator) throw new Error('negentropy: already initiated');
    this.initiator = true;
    this.lastTimestampOut = 0;
    const out = new Out();
    out.byte(PROTOCOL_VERSION);
    this.splitRange(0, this.storage.size, INFINITY_BOUND, out);
    return out.result();
  }

  /** Initiator: process the other side's answer. */
  reconcile(message: Uint8Array): ReconcileResult {
    if (!this.initiator) throw new Error('negentropy: reconcile() is for the initiator; call initiate() first, or respond() on the answering side');
    const have: string[] = [];
    const need: string[] = [];
    const out = this.reconcileAux(message, have, need);
    return { output: out.length === 1 ? null : out, have, need };
  }

  /** Answering side (a relay): the reply to one message from the initiator. */
  respond(message: Uint8Array): Buffer {
    if (this.initiator) throw new Error('negentropy: respond() is for the answering side');
    return this.reconcileAux(message, [], []);
  }

  private reconcileAux(message: Uint8Array, have: string[], need: string[]): Buffer {
    this.lastTimestampIn = 0;
    this.lastTimestampOut = 0;
    const query = new In(message);
    const full = new Out(Math.min(1 << 16, Math.max(256, message.length * 2)));
    full.byte(PROTOCOL_VERSION);
    const version = query.byte();
    if (version < 0x60 || version > 0x6f) throw new NegentropyProtocolError('invalid negentropy protocol version byte');
    if (version !== PROTOCOL_VERSION) {
      if (this.initiator) throw new NegentropyProtocolError(`unsupported negentropy protocol version requested: ${version - 0x60}`);
      // The answer to a version we do not speak is our highest version alone, so the other side can downgrade.
      return full.result();
    }
    const storage = this.storage;
    const size = storage.size;
    let prevBound = ZERO_BOUND;
    let prevIndex = 0;
    let skip = false;
    const o = new Out();

    while (query.remaining > 0) {
      o.clear();
      const doSkip = (): void => {
        if (!skip) return;
        skip = false;
        this.encodeBound(prevBound, o);
        o.varint(Mode.Skip);
      };
      const currBound = this.decodeBound(query);
      const mode = query.varint();
      const lower = prevIndex;
      let upper = storage.findLowerBound(prevIndex, size, currBound.ts, currBound.id);

      if (mode === Mode.Skip) {
        skip = true;
      } else if (mode === Mode.Fingerprint) {
        const theirs = query.bytes(FINGERPRINT_SIZE);
        const ours = storage.fingerprint(lower, upper);
        if (!ours.equals(theirs)) {
          doSkip();
          this.splitRange(lower, upper, currBound, o);
        } else skip = true;
      } else if (mode === Mode.IdList) {
        const numIds = query.varint();
        if (numIds * ID_SIZE > query.remaining) throw new NegentropyProtocolError('parse ends prematurely');
        const theirs = new Set<string>();
        for (let i = 0; i < numIds; i++) theirs.add(latin1(query.bytes(ID_SIZE)));
        for (let i = lower; i < upper; i++) {
          if (!theirs.delete(storage.idKey(i)) && this.initiator) have.push(storage.idHex(i));
        }
        if (this.initiator) {
          skip = true;
          for (const k of theirs) need.push(Buffer.from(k, 'latin1').toString('hex'));
        } else {
          doSkip();
          // Answer with our whole list for the range, cut where the frame would overflow:
          // the cut becomes the range's bound and the rest is fingerprinted below.
          let endBound: Bound = currBound;
          let count = 0;
          const idsStart = lower;
          for (let i = lower; i < upper; i++) {
            if (this.exceeded(full.len + count * ID_SIZE)) {
              endBound = { ts: storage.timestamp(i), id: storage.id(i) };
              upper = i;
              break;
            }
            count++;
          }
          this.encodeBound(endBound, o);
          o.varint(Mode.IdList);
          o.varint(count);
          o.bytes(storage.ids.subarray(idsStart * ID_SIZE, (idsStart + count) * ID_SIZE));
          full.append(o);
          o.clear();
        }
      } else {
        throw new NegentropyProtocolError('unexpected mode');
      }

      if (this.exceeded(full.len + o.len)) {
        // Over the frame size limit: stop here, and fingerprint everything after this range as one.
        const remaining = storage.fingerprint(upper, size);
        this.encodeBound(INFINITY_BOUND, full);
        full.varint(Mode.Fingerprint);
        full.bytes(remaining);
        break;
      }
      full.append(o);
      prevIndex = upper;
      prevBound = currBound;
    }
    return full.result();
  }

  private splitRange(lower: number, upper: number, upperBound: Bound, o: Out): void {
    const storage = this.storage;
    const n = upper - lower;
    if (n < BUCKETS * 2) {
      this.encodeBound(upperBound, o);
      o.varint(Mode.IdList);
      o.varint(n);
      o.bytes(storage.ids.subarray(lower * ID_SIZE, upper * ID_SIZE));
      return;
    }
    const perBucket = Math.floor(n / BUCKETS);
    const withExtra = n % BUCKETS;
    let curr = lower;
    for (let i = 0; i < BUCKETS; i++) {
      const bucketSize = perBucket + (i < withExtra ? 1 : 0);
      const fp = storage.fingerprint(curr, curr + bucketSize);
      curr += bucketSize;
      const next = curr === upper ? upperBound : this.minimalBound(curr - 1, curr);
      this.encodeBound(next, o);
      o.varint(Mode.Fingerprint);
      o.bytes(fp);
    }
  }

  /** The shortest bound separating item `prev` from item `curr` (which follows it). */
  private minimalBound(prev: number, curr: number): Bound {
    const s = this.storage;
    const ts = s.timestamp(curr);
    if (ts !== s.timestamp(prev)) return { ts, id: EMPTY_ID };
    const a = s.id(prev);
    const b = s.id(curr);
    let shared = 0;
    while (shared < ID_SIZE && a[shared] === b[shared]) shared++;
    return { ts, id: b.subarray(0, shared + 1) };
  }

  private exceeded(n: number): boolean {
    return this.frameSizeLimit !== 0 && n > this.frameSizeLimit - 200;
  }

  private decodeBound(q: In): Bound {
    const encoded = q.varint();
    let ts: number;
    if (encoded === 0 || this.lastTimestampIn === INFINITY) ts = INFINITY;
    else {
      ts = encoded - 1 + this.lastTimestampIn;
      if (ts >= U64_MAX) ts = INFINITY; // saturates, as the reference does on overflow
    }
    this.lastTimestampIn = ts;
    const len = q.varint();
    if (len > ID_SIZE) throw new NegentropyProtocolError('bound key too long');
    return { ts, id: q.bytes(len) };
  }

  private encodeBound(b: Bound, o: Out): void {
    if (b.ts === INFINITY) {
      this.lastTimestampOut = INFINITY;
      o.varint(0);
    } else {
      o.varint(b.ts - this.lastTimestampOut + 1);
      this.lastTimestampOut = b.ts;
    }
    o.varint(b.id.length);
    o.bytes(b.id);
  }
}
