// Test-only: re-checksums a bech32 string after altering it, so that a tampered invoice
// passes the checksum and must be caught by the signature check (the thing under test).
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

export function bech32Split(s: string): { hrp: string; words: number[] } {
  const pos = s.lastIndexOf('1');
  const hrp = s.slice(0, pos);
  const words = [...s.slice(pos + 1, -6)].map((c) => CHARSET.indexOf(c));
  return { hrp, words };
}

export function bech32Join(hrp: string, words: number[]): string {
  const mod = polymod([...hrpExpand(hrp), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum: number[] = [];
  for (let i = 0; i < 6; i++) checksum.push((mod >>> (5 * (5 - i))) & 31);
  return hrp + '1' + [...words, ...checksum].map((w) => CHARSET[w]).join('');
}

/** Replaces the human-readable part (e.g. the amount) and re-checksums. */
export function withHrp(invoice: string, hrp: string): string {
  return bech32Join(hrp, bech32Split(invoice).words);
}

/** Flips one 5-bit word of the data part (not the signature) and re-checksums. */
export function flipDataWord(invoice: string, index: number): string {
  const { hrp, words } = bech32Split(invoice);
  const w = [...words];
  w[index] ^= 1;
  return bech32Join(hrp, w);
}
