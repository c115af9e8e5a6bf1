// The NIP-47 request handler without transport: params validation, error mapping, budgets.
import t from 'tap';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { ConnectionStore } from '../src/nwc/connections.ts';
import { budgetPeriod, handleMultiPay, handleNwcRequest, type HandlerContext } from '../src/nwc/handler.ts';
import { manualClock, openTestNetwork, silentLogger, tempDir } from './helpers/network.ts';

t.test('budget periods follow the UTC calendar', async (t) => {
  const wed = Date.UTC(2026, 10, 18, 15, 30) / 1000; // Wednesday 18 Nov 2026
  t.same(budgetPeriod('never', wed), { since: 0 });
  t.same(budgetPeriod('daily', wed), { since: Date.UTC(2026, 10, 18) / 1000, renewsAt: Date.UTC(2026, 10, 19) / 1000 });
  t.same(budgetPeriod('weekly', wed), { since: Date.UTC(2026, 10, 16) / 1000, renewsAt: Date.UTC(2026, 10, 23) / 1000 }, 'weeks start on Monday');
  const sunday = Date.UTC(2026, 10, 22, 23, 59) / 1000;
  t.same(budgetPeriod('weekly', sunday).since, Date.UTC(2026, 10, 16) / 1000);
  t.same(budgetPeriod('monthly', wed), { since: Date.UTC(2026, 10, 1) / 1000, renewsAt: Date.UTC(2026, 11, 1) / 1000 });
  t.same(budgetPeriod('yearly', Date.UTC(2026, 11, 31, 23) / 1000), { since: Date.UTC(2026, 0, 1) / 1000, renewsAt: Date.UTC(2027, 0, 1) / 1000 });
});

t.test('params validation and error mapping', async (t) => {
  const clock = manualClock();
  const network = openTestNetwork(t, { now: clock.now });
  const dir = tempDir(t, 'bazaar-nwc-handler-');
  const store = ConnectionStore.open({ path: join(dir, 'nwc') });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  network.createAccount('alice');
  network.createAccount('bob');
  network.fund('alice', 5_000);
  const { connection } = store.create({ account: 'alice', relayUrls: ['ws://127.0.0.1:1'] });
  const ctx: HandlerContext = { network, connection: store.get(connection.walletPubkey)!, logger: silentLogger, now: () => Math.floor(clock.now() / 1000) };
  const call = (method: unknown, params?: unknown) => handleNwcRequest(ctx, method, params);
  const code = (method: unknown, params?: unknown) => call(method, params).error?.code ?? 'ok';

  t.equal(code(undefined), 'OTHER');
  t.equal(call('make_offer').result_type, 'make_offer');
  t.equal(code('make_offer'), 'NOT_IMPLEMENTED');
  t.equal(code('get_balance', [1, 2]), 'OTHER', 'params must be an object');
  t.equal(code('get_balance', null), 'ok', 'null params are empty params');
  t.equal(code('make_invoice', {}), 'OTHER');
  t.equal(code('make_invoice', { amount: '1000' }), 'OTHER');
  t.equal(code('make_invoice', { amount: 1000, expiry: -1 }), 'OTHER');
  t.equal(code('make_invoice', { amount: 1000, description: 'x'.repeat(700) }), 'OTHER');
  t.equal(code('make_invoice', { amount: 1000, metadata: { blob: 'x'.repeat(5000) } }), 'OTHER');
  t.equal(code('pay_invoice', {}), 'OTHER');
  t.equal(code('pay_invoice', { invoice: 42 }), 'OTHER');
  t.equal(code('lookup_invoice', {}), 'OTHER');
  t.equal(code('lookup_invoice', { payment_hash: 'xyz' }), 'OTHER');
  t.equal(code('lookup_invoice', { invoice: 'garbage' }), 'OTHER');
  t.equal(code('list_transactions', { type: 'sideways' }), 'OTHER');
  t.equal(code('list_transactions', { unpaid: 'yes' }), 'OTHER');
  t.equal(code('list_transactions', { limit: -1 }), 'OTHER');

  const inv = network.createInvoice('bob', 1_000, 'x', 60);
  t.equal(code('pay_invoice', { invoice: inv.bolt11, amount: 999 }), 'OTHER', 'amount must match the invoice');
  clock.advance(61);
  t.equal(code('pay_invoice', { invoice: inv.bolt11 }), 'PAYMENT_FAILED');
  const mine = call('make_invoice', { amount: 2_000, description_hash: 'ab'.repeat(32), expiry: 30, metadata: { order: 7 } });
  const tx = mine.result as { description_hash: string; metadata: unknown; state: string; payment_hash: string };
  t.equal(tx.description_hash, 'ab'.repeat(32));
  t.same(tx.metadata, { order: 7 });
  clock.advance(31);
  const looked = call('lookup_invoice', { payment_hash: tx.payment_hash.toUpperCase() }).result as { state: string; metadata: unknown };
  t.equal(looked.state, 'failed', 'an expired unpaid invoice reads as failed');
  t.same(looked.metadata, { order: 7 });
  const info = call('get_info').result as { methods: string[]; notifications: string[]; network: string };
  t.ok(info.methods.includes('list_transactions') && !info.methods.includes('notifications' as never));
  t.same(info.notifications, ['payment_received', 'payment_sent']);
  t.equal(network.balance('alice'), 5_000, 'nothing paid');

  const multi = (params: unknown, c = ctx) => handleMultiPay(c, 'multi_pay_invoice', params);
  t.equal(multi({}).at(0)?.response.error?.code, 'OTHER');
  t.equal(multi({ invoices: [] }).at(0)?.response.error?.code, 'OTHER');
  t.equal(multi({ invoices: Array.from({ length: 51 }, () => ({ invoice: 'x' })) }).at(0)?.response.error?.code, 'OTHER');
  const ro = store.create({ account: 'alice', relayUrls: ['ws://127.0.0.1:1'], methods: ['get_balance'] });
  t.equal(multi({ invoices: [{ invoice: 'x' }] }, { ...ctx, connection: store.get(ro.connection.walletPubkey)! }).at(0)?.response.error?.code, 'RESTRICTED');
  const parts = multi({ invoices: [{ invoice: 'garbage' }, { id: 'x', invoice: network.createInvoice('bob', 100, 'ok', 60).bolt11 }] });
  t.same(parts.map((p) => [p.d, p.response.error?.code ?? 'ok']), [['0', 'PAYMENT_FAILED'], ['x', 'ok']], 'undecodable item keyed by index; the others still paid');
  t.equal(handleNwcRequest(ctx, 'multi_pay_invoice', {}).error?.code, 'INTERNAL', 'multi responses come from handleMultiPay');

  // Keysend params.
  const bobKey = network.requireAccount('bob').nodePubkey;
  t.equal(code('pay_keysend', { pubkey: bobKey }), 'OTHER', 'amount required');
  t.equal(code('pay_keysend', { amount: 1000 }), 'OTHER', 'pubkey required');
  t.equal(code('pay_keysend', { amount: 1000, pubkey: 'abc' }), 'OTHER');
  t.equal(code('pay_keysend', { amount: 1000, pubkey: bobKey, preimage: 'zz' }), 'OTHER');
  t.equal(code('pay_keysend', { amount: 1000, pubkey: bobKey, tlv_records: [{ type: 'x', value: '00' }] }), 'OTHER');
  t.equal(code('pay_keysend', { amount: 1000, pubkey: '02' + '11'.repeat(32) }), 'PAYMENT_FAILED', 'no route');
  t.equal(code('pay_keysend', { amount: 1000, pubkey: network.requireAccount('alice').nodePubkey }), 'PAYMENT_FAILED', 'self');
  const mk = handleMultiPay(ctx, 'multi_pay_keysend', { keysends: [{ id: 'k1', pubkey: bobKey, amount: 100 }, { pubkey: bobKey, amount: 10_000_000 }] });
  t.same(mk.map((p) => [p.d, p.response.result_type, p.response.error?.code ?? 'ok']), [['k1', 'multi_pay_keysend', 'ok'], [bobKey, 'multi_pay_keysend', 'INSUFFICIENT_BALANCE']]);
});
