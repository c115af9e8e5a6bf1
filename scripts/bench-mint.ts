// Cashu mint figures on this machine: swaps over HTTP on 127.0.0.1 (verify inputs, blind-sign
// outputs with DLEQ, one LMDB transaction each), sequential and concurrent, and checkstate.
//   node --import=tsx scripts/bench-mint.ts [--swaps N] [--concurrency C] [--proofs P]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputData, Wallet, type Proof } from '@cashu/cashu-ts';
import { pino } from 'pino';
import { runCommand, type CommandSpec } from '@bazaar/cli-kit/command';
import { FakeWallet } from '../agents/devnet/src/mint/fake-wallet.ts';
import { startMint } from '../agents/devnet/src/mint/server.ts';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function post(url: string, body: unknown): Promise<{ signatures: { C_: string; amount: number; id: string }[] }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const json = (await res.json()) as { signatures: { C_: string; amount: number; id: string }[]; detail?: string };
  if (!res.ok) throw new Error(`mint answered ${res.status}: ${json.detail}`);
  return json;
}

async function bench(swaps: number, concurrency: number, proofsPerSwap: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-bench-mint-'));
  const fake = new FakeWallet({ paidAfterMs: 0, brr: true });
  const mint = await startMint({ port: 0, dataDir: dir, lightning: fake, inputFeePpk: 0, logger: pino({ level: 'silent' }) });
  try {
    const w = new Wallet(mint.url, { unit: 'sat' });
    await w.loadMint();
    const ks = mint.mint.keysResponse().keysets[0];
    const keyset = { id: ks.id, keys: ks.keys };
    // One swap input set of `proofsPerSwap` 1-sat proofs per swap, minted up front.
    const total = swaps * proofsPerSwap;
    const q = await w.createMintQuoteBolt11(total);
    const minted = await w.ops.mintBolt11(total, q.quote).asRandom(Array(total).fill(1)).run();
    const sets: Proof[][] = [];
    for (let i = 0; i < swaps; i++) sets.push(minted.slice(i * proofsPerSwap, (i + 1) * proofsPerSwap));
    const wire = (p: Proof) => ({ id: p.id, amount: p.amount.toNumber(), secret: p.secret, C: p.C });
    const swapOne = async (set: Proof[]): Promise<number> => {
      const outs = OutputData.createRandomData(proofsPerSwap, keyset, Array(proofsPerSwap).fill(1)).map((o) => ({ ...o.blindedMessage, amount: Number(o.blindedMessage.amount) }));
      const t0 = performance.now();
      await post(`${mint.url}/v1/swap`, { inputs: set.map(wire), outputs: outs });
      return performance.now() - t0;
    };
    const half = Math.floor(swaps / 2);
    const seq: number[] = [];
    const t0 = performance.now();
    for (const set of sets.slice(0, half)) seq.push(await swapOne(set));
    const seqMs = performance.now() - t0;
    const par: number[] = [];
    const queue = sets.slice(half);
    const t1 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let s = queue.shift(); s; s = queue.shift()) par.push(await swapOne(s));
      }),
    );
    const parMs = performance.now() - t1;
    const ys = minted.slice(0, Math.min(1000, minted.length)).map((p) => p.secret);
    const t2 = performance.now();
    await w.checkProofsStates(ys.map((secret) => ({ secret })));
    const checkMs = performance.now() - t2;
    const line = (name: string, lat: number[], ms: number): string =>
      `${name.padEnd(28)} ${(lat.length / (ms / 1000)).toFixed(1).padStart(8)} swaps/s  ${((lat.length * proofsPerSwap * 2) / (ms / 1000)).toFixed(0).padStart(7)} sigs+verifies/s  p50 ${pct(lat, 50).toFixed(1)} ms  p99 ${pct(lat, 99).toFixed(1)} ms`;
    process.stdout.write(`mint swaps (${proofsPerSwap} in, ${proofsPerSwap} out, DLEQ on every output, LMDB commit each)\n`);
    process.stdout.write(line('sequential', seq, seqMs) + '\n');
    process.stdout.write(line(`concurrent (${concurrency})`, par, parMs) + '\n');
    process.stdout.write(`${'checkstate'.padEnd(28)} ${ys.length} Ys in ${checkMs.toFixed(1)} ms\n`);
  } finally {
    await mint.close();
    fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const spec: CommandSpec = {
  name: 'bench-mint',
  summary: 'Measure the devnet Cashu mint: swap throughput and latency over HTTP, checkstate.',
  envPrefix: 'BAZAAR_BENCH_',
  flags: {
    swaps: { type: 'number', integer: true, min: 2, max: 100_000, default: 200, description: 'Swaps to run (half sequential, half concurrent)' },
    concurrency: { type: 'number', integer: true, min: 1, max: 256, default: 8, description: 'Concurrent clients in the second half' },
    proofs: { type: 'number', integer: true, min: 1, max: 64, default: 4, description: 'Inputs (and outputs) per swap' },
  },
  run: async (f) => bench(f.swaps as number, f.concurrency as number, f.proofs as number),
};

process.exitCode = await runCommand(spec, process.argv.slice(2));
