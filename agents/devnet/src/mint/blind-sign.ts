// The mint's hot path — blind signatures (NUT-00), DLEQ proofs (NUT-12) and input signature
// checks — on libsecp256k1 compiled to WASM (tiny-secp256k1), several times faster than the
// pure-JS curve. Byte-for-byte the same as cashu-ts's createBlindSignature /
// createDLEQProof (same deterministic nonce), which the tests check.
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import * as ecc from 'tiny-secp256k1';

const N = BigInt('0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141');
const DLEQ_DST = utf8ToBytes('Cashu_DLEQ_R_v1');

const toBig = (b: Uint8Array): bigint => BigInt('0x' + (bytesToHex(b) || '0'));
const to32 = (n: bigint): Uint8Array => hexToBytes(n.toString(16).padStart(64, '0'));

function mul(point: Uint8Array, scalar: Uint8Array, compressed: boolean): Uint8Array {
  const r = ecc.pointMultiply(point, scalar, compressed);
  if (!r) throw new Error('point multiplication gave the point at infinity');
  return r;
}

const uncompressed = (p: Uint8Array): Uint8Array => (p.length === 65 ? p : ecc.pointCompress(p, false));

/** NUT-12 hash(R1, R2, A, C'): sha256 of the concatenated uncompressed hex encodings. */
function hashE(points: readonly Uint8Array[]): Uint8Array {
  return sha256(utf8ToBytes(points.map((p) => bytesToHex(uncompressed(p))).join('')));
}

export interface BlindSignatureBytes {
  /** C' compressed, hex. */
  readonly C_: string;
  readonly dleq: { readonly e: string; readonly s: string };
}

/** C' = a·B' and its DLEQ proof (e, s) for the mint key a with public key A. */
export function blindSign(B_hex: string, a: Uint8Array, A: Uint8Array): BlindSignatureBytes {
  const B = hexToBytes(B_hex);
  if (!ecc.isPoint(B)) throw new Error('B_ is not a point on secp256k1');
  const C = mul(B, a, true);
  // Deterministic nonce r = HMAC-SHA256(a, DST ‖ A ‖ B' ‖ C' ‖ ctr), points uncompressed.
  const msg = concatBytes(DLEQ_DST, uncompressed(A), uncompressed(B), uncompressed(C));
  let r = 0n;
  for (let ctr = 0; ctr < 256 && (r === 0n || r >= N); ctr++) r = toBig(hmac(sha256, a, concatBytes(msg, new Uint8Array([ctr]))));
  if (r === 0n || r >= N) throw new Error('DLEQ nonce derivation failed');
  const r32 = to32(r);
  const R1 = ecc.pointFromScalar(r32, false);
  if (!R1) throw new Error('DLEQ nonce gave the point at infinity');
  const R2 = mul(B, r32, false);
  const e = hashE([R1, R2, A, C]);
  const s = (r + ((toBig(e) * toBig(a)) % N)) % N;
  return { C_: bytesToHex(C), dleq: { e: bytesToHex(e), s: bytesToHex(to32(s)) } };
}

/** Whether C = k·Y for the proof's Y = hash_to_curve(secret) (compressed bytes). */
export function verifiesUnblinded(Y: Uint8Array, k: Uint8Array, C_hex: string): boolean {
  const C = hexToBytes(C_hex);
  if (!ecc.isPoint(C)) return false;
  return bytesToHex(mul(Y, k, true)) === bytesToHex(C.length === 33 ? C : ecc.pointCompress(C, true));
}
