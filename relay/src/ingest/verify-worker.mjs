// Signature-check worker for verify.ts. Plain JavaScript on purpose: a worker
// thread does not inherit a loader registered with tsx's register() API (as
// `bazaar` does), so a .ts worker would fail to load there.
//
// Message in:  { seq, count, bytes } — bytes holds `count` jobs of 128 bytes:
//              id (32) | x-only pubkey (32) | BIP-340 signature (64).
// Message out: { seq, results } — results[i] is 1 when job i verifies, else 0.
// Message in:  { stop: true } — exit once the batches before it are answered.
import { parentPort, workerData } from 'node:worker_threads';
import { loadSchnorrBackend } from './verify-backend.mjs';

if (!parentPort) throw new Error('verify-worker.mjs must run as a worker thread');
const port = parentPort;
// The parent already chose the concrete backend ('native' or 'wasm'); a failure to load it here kills the worker, and the pool re-runs its work inline.
const backend = loadSchnorrBackend({ backend: workerData?.backend ?? 'auto' });

port.on('message', (msg) => {
  // Asked to stop (verify.ts close()): closing the port lets this thread end on its own,
  // between batches, rather than be terminated inside a native call.
  if (msg.stop) {
    port.close();
    return;
  }
  const { seq, count, bytes } = msg;
  const results = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const o = i * 128;
    results[i] = backend.verify(bytes.subarray(o, o + 32), bytes.subarray(o + 32, o + 64), bytes.subarray(o + 64, o + 128)) ? 1 : 0;
  }
  port.postMessage({ seq, results }, [results.buffer]);
});
