// The whole local market on a relay that requires NIP-42 AUTH: the provider (signing AUTH
// with its identity) takes a SandboxRun job from an authenticated plain client, delivers a
// result with a bolt11 made over NWC (the devnet wallet service authenticates too), the
// customer pays it over NWC, and the provider books the earning.
import t from 'tap';
import { LightningWallet } from '@bazaar/agents-common/wallet/lightning';
import { Customer, isFeedback, isResult, logger, runProvider, sandboxJob, startMarket, waitFor } from './helpers.ts';

t.test('provider, customer and NWC on an --auth-required relay', async (t) => {
  const m = await startMarket(t, { authRequired: true });
  const running = await runProvider(t, m);
  const customer = await new Customer(m.relay.url, { auth: true }).ready();
  t.teardown(() => customer.close());
  const req = sandboxJob(customer, ['echo behind auth'], [['p', running.identity.pubkey]]);
  const [ok, msg] = await customer.publish(req);
  t.ok(ok, `the authenticated customer posted the job ${msg}`);
  await customer.waitEvent(isFeedback(req.id, 'processing'), 20_000, 'processing feedback');
  const result = await customer.waitEvent(isResult(req.id), 30_000, 'result');
  t.match(result.content, /behind auth/);
  const bolt11 = result.tags.find((x) => x[0] === 'amount')?.[2];
  t.ok(bolt11, 'the result carries an invoice made over NWC through the auth-required relay');
  const wallet = await LightningWallet.connect({ nwcUri: m.customerUri, logger });
  t.teardown(() => wallet.close());
  const paid = await wallet.pay(bolt11!, { maxAmountMsat: 100_000 });
  t.ok(paid.preimage);
  const job = await waitFor(() => {
    const j = running.provider.store.get(req.id);
    return j?.state === 'settled' ? j : undefined;
  }, 20_000, 'settled job');
  t.equal(job.state, 'settled');
  t.equal(running.provider.store.earningsSummary().totalMsats, paid.amountMsat, 'the earning is booked');
  t.ok(running.provider.status().relays.every((r) => r.connected));
});
