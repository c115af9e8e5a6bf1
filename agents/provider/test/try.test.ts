// `bazaar provider try` pays only what it agreed to: an invoice for the job it posted, whose
// bolt11 amount is the amount tag's, up to --max-sats. A scripted provider on the real relay
// answers each job the way a scenario says; the customer's devnet balance shows what was paid.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import { buildSandboxRunResult, type SandboxRunOutput } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { tryJob } from '../src/try.ts';
import { logger, startMarket, tempDir, type Market } from './helpers.ts';

const providerSk = generateSecretKey();
const sign = (tpl: EventTemplate) => finalizeEvent(tpl, providerSk) as NostrEvent;

function output(job: NostrEvent): SandboxRunOutput {
  const cmd = job.tags.find((x) => x[0] === 'param' && x[1] === 'cmd')![2];
  const c = { cmd, exit_code: 0, timed_out: false, stdout: 'hi\n', stderr: '', stdout_sha256: sha256Hex('hi\n'), stderr_sha256: sha256Hex(''), stdout_bytes: 3, stderr_bytes: 0, stdout_truncated: false, stderr_truncated: false, wall_ms: 5, cpu_ms: 1 };
  return { commands: [c], totals: { exit_code: 0, commands_run: 1, wall_ms: 5, cpu_ms: 1, timed_out: false } };
}

/** A scripted provider: answers every SandboxRun job on the relay with `respond(job, publish)`. */
async function scripted(t: Test, m: Market, respond: (job: NostrEvent, publish: (e: NostrEvent) => void) => NostrEvent[]): Promise<void> {
  const pool = new RelayPool({ relays: [m.relay.url], logger });
  t.teardown(() => pool.close());
  const publish = (e: NostrEvent) => void pool.publish(e);
  await new Promise<void>((resolve) => pool.subscribe([{ kinds: [5930], since: Math.floor(Date.now() / 1000) - 5 }], (job) => {
    for (const e of respond(job, publish)) publish(e);
  }, { onEose: () => resolve() }));
}

async function runTry(t: Test, m: Market, maxSats: number): Promise<{ code: number; out: string; err: string }> {
  const file = join(tempDir(t, 'bazaar-try-uri-'), 'customer.nwc');
  writeFileSync(file, m.customerUri, { mode: 0o600 });
  let out = '';
  let err = '';
  const code = await tryJob({ relay: m.relay.url, cmds: ['echo hi'], timeLimitSecs: 10, payWith: file, maxSats, timeoutMs: 20_000, logger, out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') });
  return { code, out, err };
}

const invoice = (m: Market, msat: number) => m.devnet.network.createInvoice('provider', msat, 'scripted provider', 600).bolt11;
const result = (job: NostrEvent, tags: string[][], base?: EventTemplate) => {
  const tpl = base ?? buildSandboxRunResult(job, output(job));
  return sign({ ...tpl, tags: [...tpl.tags, ...tags] });
};

t.test('an invoice above --max-sats is refused, nothing paid', async (t) => {
  const m = await startMarket(t);
  await scripted(t, m, (job) => [result(job, [['amount', '50000', invoice(m, 50_000)]])]);
  const r = await runTry(t, m, 10);
  t.equal(r.code, 1);
  t.match(r.err, /not paying this invoice: it asks 50 sats, more than --max-sats 10/);
  t.equal(m.devnet.network.balance('customer'), 10_000_000, 'the customer paid nothing');
});

t.test('an invoice for another job is refused', async (t) => {
  const m = await startMarket(t);
  const other = 'ab'.repeat(32);
  await scripted(t, m, (job) => {
    // Names our job (so our subscription sees it) but is about another one too.
    const tpl = buildSandboxRunResult(job, output(job));
    return [sign({ ...tpl, tags: [['e', other], ...tpl.tags.filter((x) => x[0] !== 'request'), ['amount', '1000', invoice(m, 1000)]] })];
  });
  const r = await runTry(t, m, 10);
  t.equal(r.code, 1);
  t.match(r.err, /not paying this invoice: it references abababababab, .* not only our job/);
  t.equal(m.devnet.network.balance('customer'), 10_000_000);
});

t.test('a result embedding another request, and a bolt11 that disagrees with the amount tag, are refused', async (t) => {
  const m = await startMarket(t);
  let n = 0;
  await scripted(t, m, (job) => {
    n++;
    if (n === 1) {
      const otherJob = finalizeEvent({ kind: 5930, created_at: job.created_at, content: '', tags: job.tags }, generateSecretKey()) as NostrEvent;
      const tpl = buildSandboxRunResult(otherJob, output(otherJob));
      return [sign({ ...tpl, tags: [...tpl.tags.map((x) => (x[0] === 'e' ? ['e', job.id] : x[0] === 'p' ? ['p', job.pubkey] : x)), ['amount', '1000', invoice(m, 1000)]] })];
    }
    return [result(job, [['amount', '1000', invoice(m, 5000)]])];
  });
  const embedded = await runTry(t, m, 10);
  t.equal(embedded.code, 1);
  t.match(embedded.err, /not paying this invoice: the result does not parse: .*request/);
  const mismatch = await runTry(t, m, 10);
  t.equal(mismatch.code, 1);
  t.match(mismatch.err, /the invoice is for 5000 msats but the amount tag says 1000/);
  t.equal(m.devnet.network.balance('customer'), 10_000_000);
});

t.test('within --max-sats: the result is paid once; a prepay invoice is paid before the result', async (t) => {
  const m = await startMarket(t);
  let n = 0;
  await scripted(t, m, (job, publish) => {
    n++;
    if (n === 1) return [result(job, [['amount', '3000', invoice(m, 3000)]])];
    // Prepay: ask first; the result (without an amount) once the invoice is paid.
    const inv = m.devnet.network.createInvoice('provider', 2000, 'prepay', 600);
    m.devnet.network.watchInvoice(inv.paymentHash, () => publish(result(job, [])));
    return [sign(buildFeedback({ status: 'payment-required', amount: { msats: 2000, bolt11: inv.bolt11 }, request: { id: job.id, pubkey: job.pubkey } }))];
  });
  const afterVerify = await runTry(t, m, 10);
  t.equal(afterVerify.code, 0, afterVerify.err);
  t.match(afterVerify.out, /invoice {4}3000 msats\npaid/);
  t.equal(m.devnet.network.balance('customer'), 10_000_000 - 3000);
  const prepay = await runTry(t, m, 10);
  t.equal(prepay.code, 0, prepay.err);
  t.match(prepay.out, /feedback {3}payment-required[\s\S]*invoice {4}2000 msats\npaid {7}\(the preimage is the proof of payment\)\nwaiting for the result\nresult {5}kind 6930/);
  t.equal(m.devnet.network.balance('customer'), 10_000_000 - 5000, 'the prepay invoice was paid, once');
});
