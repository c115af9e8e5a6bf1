// Dev payment network figures on this machine: invoice creation and settlement on the dev
// Lightning network (LMDB), and NIP-47 round trips through our relay with @getalby/sdk's
// NWCClient (get_balance latency, make_invoice + pay_invoice per payment, sequential and
// concurrent).
//   node --import=tsx scripts/bench-nwc.ts [--payments N] [--concurrency C]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { runCommand, type CommandSpec } from '@bazaar/cli-kit/command';
import { startRelay } from '../relay/src/server.ts';
import { startDevnet } from '../agents/devnet/src/devnet.ts';
import { loadNwcSdk } from '../agents/common/src/wallet/alby-sdk.ts';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;

async function bench(payments: number, concurrency: number): Promise<void> {
  const logger = pino({ level: 'silent' });
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-bench-nwc-'));
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir: join(dir, 'relay'), transport: 'uws', logger });
  const devnet = await startDevnet({ dataDir: join(dir, 'devnet'), relayUrl: relay.url, logger, mint: false, nwc: { rateLimit: { burst: 1e9, perSecond: 1e9 } } });
  const { NWCClient } = await loadNwcSdk();
  try {
    const net = devnet.network;
    // 1. The network alone.
    net.ensureAccount('x');
    net.ensureAccount('y');
    net.fund('x', 1e12);
    const n = Math.max(payments * 10, 2000);
    let t0 = performance.now();
    const invs = Array.from({ length: n }, (_, i) => net.createInvoice('y', 1000 + i, 'bench', 3600));
    const createMs = performance.now() - t0;
    t0 = performance.now();
    for (const inv of invs) net.pay('x', inv.bolt11);
    const payMs = performance.now() - t0;
    console.log(`network: createInvoice ${(n / (createMs / 1000)).toFixed(0)}/s (${fmt(createMs / n)} each, BOLT11 sign + LMDB write)`);
    console.log(`network: pay          ${(n / (payMs / 1000)).toFixed(0)}/s (${fmt(payMs / n)} each, BOLT11 verify + one LMDB write transaction)`);

    // 2. NIP-47 over the relay.
    const buyer = devnet.account('buyer', { fundSats: 1e9 });
    const seller = devnet.account('seller');
    await devnet.nwc.refresh();
    const b = new NWCClient({ nostrWalletConnectUrl: buyer.uri });
    const s = new NWCClient({ nostrWalletConnectUrl: seller.uri });
    try {
      await b.getBalance();
      await s.getBalance();
      const lat: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t = performance.now();
        await b.getBalance();
        lat.push(performance.now() - t);
      }
      console.log(`nwc: get_balance round trip p50 ${fmt(pct(lat, 50))}  p90 ${fmt(pct(lat, 90))}  p99 ${fmt(pct(lat, 99))}  (n=200, NIP-44 v2)`);
      const per: number[] = [];
      t0 = performance.now();
      for (let i = 0; i < payments; i++) {
        const t = performance.now();
        const inv = await s.makeInvoice({ amount: 1000, description: `bench ${i}` });
        await b.payInvoice({ invoice: inv.invoice });
        per.push(performance.now() - t);
      }
      const seqMs = performance.now() - t0;
      console.log(`nwc: make_invoice + pay_invoice sequential: ${(payments / (seqMs / 1000)).toFixed(1)} payments/s, p50 ${fmt(pct(per, 50))} p99 ${fmt(pct(per, 99))} (n=${payments})`);
      const invoices = await Promise.all(Array.from({ length: payments }, (_, i) => s.makeInvoice({ amount: 1000, description: `c${i}` })));
      t0 = performance.now();
      let next = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < invoices.length) await b.payInvoice({ invoice: invoices[next++].invoice });
      }));
      const conMs = performance.now() - t0;
      console.log(`nwc: pay_invoice with ${concurrency} in flight: ${(payments / (conMs / 1000)).toFixed(1)} payments/s (n=${payments})`);
      const inv = net.checkInvariant();
      console.log(`invariant: ${inv.ok ? 'ok' : 'BROKEN'} (balances ${inv.balancesMsat} msat == funded ${inv.totalFundedMsat} msat)`);
    } finally {
      b.close();
      s.close();
    }
  } finally {
    await devnet.close();
    await relay.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const spec: CommandSpec = {
  name: 'bench-nwc',
  summary: 'Benchmark the dev Lightning network and the NIP-47 wallet service over the relay.',
  flags: {
    payments: { type: 'number', integer: true, min: 1, max: 100_000, default: 200, description: 'NWC payments per phase', env: false },
    concurrency: { type: 'number', integer: true, min: 1, max: 1000, default: 8, description: 'Payments in flight in the concurrent phase', env: false },
  },
  run: async (f) => {
    await bench(f.payments as number, f.concurrency as number);
    return 0;
  },
};

process.exitCode = await runCommand(spec, process.argv.slice(2));
