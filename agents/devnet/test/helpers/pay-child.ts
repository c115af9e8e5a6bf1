// Child process for the multi-process test: opens the network, says "ready", waits for
// "go" on stdin, pays, prints one JSON line with the outcome.
import { pino } from 'pino';
import { LightningNetwork } from '../../src/lightning/network.ts';

const [dir, payer, bolt11] = process.argv.slice(2);
const net = LightningNetwork.open({ path: dir, logger: pino({ level: 'silent' }) });
process.stdout.write('ready\n');
process.stdin.once('data', async () => {
  let out: { ok: boolean; code?: string };
  try {
    net.pay(payer, bolt11);
    out = { ok: true };
  } catch (err) {
    out = { ok: false, code: (err as { code?: string }).code ?? String(err) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  await net.close();
  process.exit(0);
});
