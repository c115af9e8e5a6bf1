// Signature-check worker for verify.ts. Plain JavaScript on purpose: a worker
// thread does not inherit a loader registered with tsx's register() API (as
// `bazaar` does), so a .ts worker would fail to load there.
//
// Message in:  { seq, count, bytes } — bytes holds `count` jobs of 128 bytes:
//              id (32) | x-only pubkey (32) | BIP-340 signature (64).
// Message out: { seq, results } — results[i] is 1 when job i verifies, else 0.
import { parentPort } from 'node:worker_threads';
import { verifySchnorr } from 'tiny-secp256k1';

if (!parentPort) throw new Error('verify-worker.mjs must run as a worker thread');
const port = parentPort;

port.on('message', (msg) => {
  const { seq, count, bytes } = msg;
  const results = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const o = i * 128;
    try {
      results[i] = verifySchnorr(bytes.subarray(o, o + 32), bytes.subarray(o + 32, o + 64), bytes.subarray(o + 64, o + 128)) ? 1 : 0;
    } catch {
      // Not a curve point, or a scalar out of range: an invalid signature.
      results[i] = 0;
    }
  }
  port.postMessage({ seq, results }, [results.buffer]);
});
