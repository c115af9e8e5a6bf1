// Restart safety with a real process: `bazaar provider serve` is SIGKILLed mid-job and again
// after delivering but before being paid. The job is resumed (not lost), its result is
// published exactly once, and the invoice paid while the provider was down is still seen.
import t from 'tap';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import { startRelay } from '@bazaar/relay/server';
import { bazaar, cliJson, Customer, isFeedback, isResult, logger, makeProviderDir, query, runProvider, sandboxJob, startMarket, tempDir, waitFor } from './helpers.ts';

t.test('SIGKILL mid-job and after delivery: resumed, delivered once, invoice still watched', async (t) => {
  const m = await startMarket(t);
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const serve = () => bazaar(['provider', 'serve', '--data', m.providerDir, '--invoice-poll-ms', '300']);

  let p = serve();
  t.teardown(() => { p.kill('SIGKILL'); });
  await p.waitFor(/"msg":"provider started"/);
  const job = sandboxJob(c, ['sleep 2; echo survived'], [], 60);
  await c.publish(job);
  await c.waitEvent(isFeedback(job.id, 'processing'), 20_000, 'processing');
  p.kill('SIGKILL');
  await p.exited;
  t.same(c.resultsFor(job.id), [], 'no result before the crash');

  p = serve();
  await p.waitFor(/"msg":"job resumed after restart"/);
  const result = await c.waitEvent(isResult(job.id), 30_000, 'result after restart');
  t.equal(JSON.parse(result.content).commands[0].stdout, 'survived\n', 'the resumed job ran to completion');
  const bolt11 = result.tags.find((x) => x[0] === 'amount')?.[2];
  t.ok(bolt11, 'the result carries an invoice');
  await p.waitFor(/"msg":"result delivered"/);
  p.kill('SIGKILL');
  await p.exited;

  // The customer pays while the provider is down.
  const { NWCClient } = await loadNwcSdk();
  const wallet = new NWCClient({ nostrWalletConnectUrl: m.customerUri });
  t.teardown(() => wallet.close());
  await wallet.payInvoice({ invoice: bolt11! });

  p = serve();
  await p.waitFor(/"msg":"invoice paid: job settled"/);
  const earnings = await cliJson<{ totalMsats: number; count: number }>(['provider', 'earnings', '--json', '--data', m.providerDir]);
  t.equal(earnings.count, 1, 'the payment made during the outage is booked');
  t.ok(earnings.totalMsats > 0);
  const results = await query(m.relay.url, { kinds: [6930], '#e': [job.id] });
  t.equal(results.length, 1, 'exactly one result event on the relay');
  t.equal(results[0].id, result.id);
  p.kill('SIGTERM');
  t.equal(await p.exited, 0, 'SIGTERM stops the provider cleanly');
});

t.test('two relays: duplicates ignored, relay restart reconnects', async (t) => {
  const dirA = tempDir(t, 'bazaar-prov-ra-');
  const dirB = tempDir(t, 'bazaar-prov-rb-');
  let a = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dirA, transport: 'ws', verifyWorkers: 0, logger });
  const b = await startRelay({ port: 0, host: '127.0.0.1', dataDir: dirB, transport: 'ws', verifyWorkers: 0, logger });
  const portA = Number(new URL(a.url).port);
  const providerDir = await makeProviderDir(t, [a.url, b.url]);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const running = await runProvider(t, { providerDir } as never);
  await waitFor(() => running.provider.pool.connectedCount() === 2, 10_000, 'both relays connected');
  const ca = await new Customer(a.url).ready();
  const cb = await new Customer(b.url).ready();
  t.teardown(() => { ca.close(); cb.close(); });

  const twice = sandboxJob(ca, ['echo once']);
  await ca.publish(twice);
  await cb.publish(twice);
  await ca.waitEvent(isResult(twice.id), 20_000, 'result on relay A');
  await ca.waitEvent(isFeedback(twice.id, 'success'), 20_000, 'success');
  t.equal(ca.feedbackFor(twice.id, 'processing').length, 1, 'one job, though the request came from two relays');
  const onA = await query(a.url, { kinds: [6930], '#e': [twice.id] });
  const onB = await query(b.url, { kinds: [6930], '#e': [twice.id] });
  t.equal(onA.length, 1, 'one result on relay A');
  t.same(onB.map((e) => e.id), onA.map((e) => e.id), 'the same result event on relay B');
  const processingOnB = (await query(b.url, { kinds: [7000], '#e': [twice.id] })).filter(isFeedback(twice.id, 'processing'));
  t.same(processingOnB.map((e) => e.id), ca.feedbackFor(twice.id, 'processing').map((e) => e.id), 'the same single processing feedback on both relays');

  ca.close();
  await a.close();
  await waitFor(() => running.provider.pool.connectedCount() === 1, 10_000, 'provider notices relay A is gone');
  const viaB = sandboxJob(cb, ['echo via b']);
  await cb.publish(viaB);
  await cb.waitEvent(isResult(viaB.id), 20_000, 'jobs still flow through relay B');

  a = await startRelay({ port: portA, host: '127.0.0.1', dataDir: dirA, transport: 'ws', verifyWorkers: 0, logger });
  await waitFor(() => running.provider.pool.connectedCount() === 2, 20_000, 'provider reconnects to relay A');
  const ca2 = await new Customer(a.url).ready();
  t.teardown(() => ca2.close());
  const viaA = sandboxJob(ca2, ['echo via a again']);
  await ca2.publish(viaA);
  await ca2.waitEvent(isResult(viaA.id), 20_000, 'jobs flow through relay A after it came back');
  t.pass('reconnected');
});
