// NUT-20: a mint quote locked to a pubkey mints only with a BIP-340 signature over the
// quote id and the outputs. Two message formats are in use: the amended one
// ("Cashu_MintQuoteSig_v1" with 32-bit length prefixes, what cashu-ts signs first) and the
// legacy string concatenation quote‖B_0‖B_1… (its fallback); both are accepted.
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

const DST = utf8ToBytes('Cashu_MintQuoteSig_v1');

const len32 = (b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, b.length, false);
  return out;
};

/** Canonical minimal big-endian bytes of an amount (0 → empty). */
const amountBytes = (amount: number): Uint8Array => {
  if (amount === 0) return new Uint8Array();
  const hex = amount.toString(16);
  return hexToBytes(hex.length % 2 ? '0' + hex : hex);
};

export function amendedQuoteDigest(quote: string, outputs: readonly { amount: number; B_: string }[]): Uint8Array {
  const q = utf8ToBytes(quote);
  const parts: Uint8Array[] = [DST, len32(q), q];
  for (const o of outputs) {
    const a = amountBytes(o.amount);
    const b = hexToBytes(o.B_);
    parts.push(len32(a), a, len32(b), b);
  }
  return sha256(concatBytes(...parts));
}

export function legacyQuoteDigest(quote: string, outputs: readonly { B_: string }[]): Uint8Array {
  return sha256(utf8ToBytes(quote + outputs.map((o) => o.B_).join('')));
}

export function verifyQuoteSignature(pubkey: string, quote: string, outputs: readonly { amount: number; B_: string }[], signature: unknown): boolean {
  if (typeof signature !== 'string' || !/^[0-9a-fA-F]{128}$/.test(signature)) return false;
  const pk = hexToBytes(pubkey.slice(2));
  const sig = hexToBytes(signature);
  for (const digest of [amendedQuoteDigest(quote, outputs), legacyQuoteDigest(quote, outputs)]) {
    try {
      if (schnorr.verify(sig, digest, pk)) return true;
    } catch {
      /* try the other format */
    }
  }
  return false;
}
