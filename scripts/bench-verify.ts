// Signature-verification candidates measured on this machine: serialisation +
// sha256, BIP-340 verify in several libraries, and the relay's verifier with 0,
// 1 and 2 worker threads (throughput per wall-second and per CPU-second).
//   node --import=tsx scripts/bench-verify.ts [--count N]
import { createHash } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { verifyEvent as nostrToolsVerify } from 'nostr-tools/pure';
import * as tiny from 'tiny-secp256k1';
import { nativeBackend } from '../relay/src/ingest/verify-backend.mjs';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { runCommand, type CommandSpec } from '@bazaar/cli-kit/command';
import { generateCorpus, nostrWasm } from './bench/corpus.ts';
import { computeEventId, createVerifier, signatureBackend, verifyEventSync } from '../relay/src/ingest/verify.ts';

interface Row {
  name: string;
  usPerOp: number;
  opsPerSec: number;
  opsPerCpuSec?: number;
}

const serialise = (e: NostrEvent): string => JSON.stringify([0, e.pubkey, e.created_at, e.kind, e.tags, e.content]);

/** Runs f over events (a warm-up pass on a slice first), returns wall µs/op and ops per CPU-second. */
function measure(name: string, events: readonly NostrEvent[], f: (e: NostrEvent) => unknown): Row {
  for (let i = 0; i < Math.min(200, events.length); i++) f(events[i]);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (const e of events) if (f(e)) sink++;
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (sink === -1) console.log(sink);
  return { name, usPerOp: wallUs / events.length, opsPerSec: (events.length * 1e6) / wallUs, opsPerCpuSec: (events.length * 1e6) / (cpu.user + cpu.system) };
}

async function measurePool(workers: number, backend: 'native' | 'wasm', events: readonly NostrEvent[]): Promise<Row> {
  const v = createVerifier({ workers, backend });
  await v.checkBatch(events.slice(0, 200)); // warm the workers' WASM
  const cpu0 = process.cpuUsage(); // includes worker threads
  const t0 = process.hrtime.bigint();
  const out = await v.checkBatch(events);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await v.close();
  const bad = out.filter((o) => o !== 'valid').length;
  if (bad) throw new Error(`pool(${workers}) rejected ${bad} valid events`);
  return {
    name: `relay verifier, ${backend}, workers=${workers}`,
    usPerOp: wallUs / events.length,
    opsPerSec: (events.length * 1e6) / wallUs,
    opsPerCpuSec: (events.length * 1e6) / (cpu.user + cpu.system),
  };
}

function printTable(title: string, rows: readonly Row[]): void {
  console.log(`\n${title}`);
  console.log(`${'candidate'.padEnd(48)} ${'µs/op'.padStart(9)} ${'ops/s'.padStart(10)} ${'ops/CPU-s'.padStart(10)}`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(48)} ${r.usPerOp.toFixed(2).padStart(9)} ${Math.round(r.opsPerSec).toString().padStart(10)} ${(r.opsPerCpuSec ? Math.round(r.opsPerCpuSec).toString() : '').padStart(10)}`);
  }
}

export const benchVerifyCommand: CommandSpec = {
  name: 'bench-verify',
  summary: 'Measure Nostr event id + BIP-340 signature verification candidates on this machine.',
  envPrefix: 'BAZAAR_BENCH_',
  flags: {
    count: { type: 'number', integer: true, min: 100, max: 200_000, default: 4000, description: 'Events per measurement' },
  },
  run: async (flags) => {
    const count = flags.count as number;
    process.stdout.write(`signing ${count} realistic events with nostr-wasm…\n`);
    const events = await generateCorpus({ count, seed: 7, authors: 200 });
    const bytes = events.map((e) => ({ id: Buffer.from(e.id, 'hex'), pk: Buffer.from(e.pubkey, 'hex'), sig: Buffer.from(e.sig, 'hex') }));
    const byEvent = new Map(events.map((e, i) => [e, bytes[i]]));
    const avgLen = events.reduce((n, e) => n + serialise(e).length, 0) / events.length;
    const nw = await nostrWasm();
    let native: ReturnType<typeof nativeBackend> | undefined;
    try {
      native = nativeBackend();
    } catch (err) {
      console.log(`native libsecp256k1 unavailable (${(err as Error).message}); install Debian's libsecp256k1-1 (scripts/setup.sh)`);
    }

    printTable(`id: serialisation + sha256 (average serialised length ${Math.round(avgLen)} chars)`, [
      measure('JSON.stringify only', events, (e) => serialise(e).length),
      measure('JSON.stringify + node:crypto createHash', events, (e) => createHash('sha256').update(serialise(e), 'utf8').digest('hex')),
      measure('JSON.stringify + @noble/hashes sha256', events, (e) => bytesToHex(sha256(utf8ToBytes(serialise(e))))),
    ]);

    const slice = events.slice(0, Math.min(events.length, 1500)); // noble is slow: fewer events
    printTable('BIP-340 verify only (id/pubkey/sig pre-decoded)', [
      measure('@noble/curves schnorr.verify (pure JS)', slice, (e) => { const b = byEvent.get(e)!; return schnorr.verify(b.sig, b.id, b.pk); }),
      measure('tiny-secp256k1 verifySchnorr (libsecp256k1 WASM)', events, (e) => { const b = byEvent.get(e)!; return tiny.verifySchnorr(b.id, b.pk, b.sig); }),
      ...(native ? [measure('libsecp256k1 0.2 native via koffi FFI', events, (e) => { const b = byEvent.get(e)!; return native.verify(b.id, b.pk, b.sig); })] : []),
    ]);

    printTable('full event verification (shape + id + signature), one thread', [
      measure('nostr-tools verifyEvent (noble)', slice, (e) => nostrToolsVerify({ ...e })),
      measure('nostr-wasm verifyEvent (libsecp256k1 WASM)', events, (e) => { nw.verifyEvent(e); return true; }),
      measure(`relay verifyEventSync (node:crypto + ${signatureBackend.name})`, events, (e) => verifyEventSync(e)),
      measure('relay computeEventId only', events, (e) => computeEventId(e) === e.id),
    ]);

    const pools: Row[] = [];
    for (const backend of native ? (['native', 'wasm'] as const) : (['wasm'] as const)) {
      for (const w of [0, 1, 2]) pools.push(await measurePool(w, backend, events));
    }
    printTable('relay verifier pool (all events in flight at once; CPU includes worker threads)', pools);
    console.log('\nNot candidates: secp256k1@5.0.2 (the usual N-API binding) has no BIP-340 API and ships no prebuilt binary (node-gyp in an install script).');
  },
};

process.exitCode = await runCommand(benchVerifyCommand, process.argv.slice(2));
