// The wallet service at the wire level, with a raw nostr-tools client: NIP-04 fallback
// (no encryption tag), NIP-44 v2, expiration, unsupported encryption, unknown methods and
// both notification kinds — the parts NWCClient hides.
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { Relay, useWebSocketImplementation } from 'nostr-tools/relay';
import { finalizeEvent, getPublicKey, verifyEvent, type Event } from 'nostr-tools/pure';
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import { hexToBytes } from '@noble/hashes/utils.js';
import { startNwcFixture } from './helpers/nwc.ts';

useWebSocketImplementation(WebSocket);

/** Collects events of a subscription; `next(pred)` resolves on the first match, past or future. */
function collector() {
  const events: Event[] = [];
  const waiters: { pred: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  return {
    push(e: Event) {
      events.push(e);
      for (const w of [...waiters]) if (w.pred(e)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(e); }
    },
    next(pred: (e: Event) => boolean, timeoutMs = 10_000): Promise<Event> {
      const hit = events.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no matching event within the safety timeout')), timeoutMs);
        waiters.push({ pred, resolve: (e) => { clearTimeout(timer); resolve(e); } });
      });
    },
    events,
  };
}

async function rawSetup(t: Test, serviceNow?: () => number) {
  const fx = await startNwcFixture(t, serviceNow ? { service: { now: serviceNow } } : {});
  fx.network.createAccount('alice');
  fx.network.createAccount('bob');
  fx.network.fund('alice', 5_000);
  fx.network.fund('bob', 5_000);
  const { uri } = fx.connections.create({ account: 'alice', relayUrls: [fx.relay.url] });
  await fx.service.refresh();
  const url = new URL(uri.replace('nostr+walletconnect://', 'http://'));
  const walletPubkey = url.hostname;
  const secret = hexToBytes(url.searchParams.get('secret')!);
  const clientPubkey = getPublicKey(secret);
  t.equal(url.searchParams.get('relay'), fx.relay.url);

  const relay = await Relay.connect(fx.relay.url);
  t.teardown(() => relay.close());
  const responses = collector();
  const notes = collector();
  await new Promise<void>((resolve) => {
    relay.subscribe([{ kinds: [23195], '#p': [clientPubkey] }], { onevent: (e) => responses.push(e), oneose: resolve });
  });
  await new Promise<void>((resolve) => {
    relay.subscribe([{ kinds: [23196, 23197], '#p': [clientPubkey] }], { onevent: (e) => notes.push(e), oneose: resolve });
  });

  // The info event is stored (replaceable) and says what we support.
  // Stored, so it arrives before EOSE; close on EOSE (closing earlier would leave
  // nostr-tools' EOSE timer running).
  const info = await new Promise<Event>((resolve, reject) => {
    let got: Event | undefined;
    const sub = relay.subscribe([{ kinds: [13194], authors: [walletPubkey] }], {
      onevent: (e) => { got = e; },
      oneose: () => { sub.close(); if (got) resolve(got); else reject(new Error('no info event stored')); },
    });
  });
  t.ok(info.content.split(' ').includes('get_balance'));
  t.match(info.tags.find((x) => x[0] === 'encryption')?.[1] ?? '', /nip44_v2/);

  const nip04Key = { enc: (s: string) => nip04.encrypt(secret, walletPubkey, s), dec: (s: string) => nip04.decrypt(secret, walletPubkey, s) };
  const ck = nip44.getConversationKey(secret, walletPubkey);

  const send = async (content: string, tags: string[][]) => {
    const ev = finalizeEvent({ kind: 23194, created_at: Math.floor(Date.now() / 1000), tags: [['p', walletPubkey], ...tags], content }, secret);
    await relay.publish(ev);
    return ev;
  };
  const responseTo = (id: string) => responses.next((e) => e.tags.some((x) => x[0] === 'e' && x[1] === id));
  return { fx, relay, responses, notes, info, nip04Key, ck, send, responseTo, clientPubkey, walletPubkey };
}

t.test('an expired request is ignored', async (t) => {
  // The relay refuses events that are already expired (NIP-40), so the service's clock runs
  // two minutes ahead: a request expiring in one minute reaches it already expired.
  const { nip04Key, send, responseTo, responses } = await rawSetup(t, () => Math.floor(Date.now() / 1000) + 120);
  const now = Math.floor(Date.now() / 1000);
  const expired = await send(await nip04Key.enc(JSON.stringify({ method: 'get_balance', params: {} })), [['expiration', String(now + 60)]]);
  const live = await send(await nip04Key.enc(JSON.stringify({ method: 'get_balance', params: {} })), [['expiration', String(now + 600)]]);
  // Requests are handled in arrival order and an expired one is dropped before any await,
  // so once the second is answered the first would have been too.
  await responseTo(live.id);
  t.notOk(responses.events.some((e) => e.tags.some((x) => x[0] === 'e' && x[1] === expired.id)), 'expired request not answered');
});

t.test('raw NIP-47 over the relay', async (t) => {
  const { fx, info, nip04Key, ck, send, responseTo, notes, clientPubkey, walletPubkey } = await rawSetup(t);

  const legacy = await send(await nip04Key.enc(JSON.stringify({ method: 'get_balance', params: {} })), []);
  const r1 = await responseTo(legacy.id);
  t.ok(verifyEvent(r1), 'response is signed');
  t.equal(r1.pubkey, walletPubkey);
  t.same(r1.tags.filter((x) => x[0] === 'p'), [['p', clientPubkey]]);
  t.same(JSON.parse(await nip04Key.dec(r1.content)), { result_type: 'get_balance', error: null, result: { balance: 5_000 } }, 'NIP-04 fallback without an encryption tag');

  const modern = await send(nip44.encrypt(JSON.stringify({ method: 'make_invoice', params: { amount: 2_000, description: 'wire' } }), ck), [['encryption', 'nip44_v2']]);
  const r2 = JSON.parse(nip44.decrypt((await responseTo(modern.id)).content, ck)) as { result_type: string; result: { invoice: string; payment_hash: string } };
  t.equal(r2.result_type, 'make_invoice');
  t.match(r2.result.invoice, /^lnbcrt20n1/);

  const tagless44 = await send(nip44.encrypt(JSON.stringify({ method: 'get_balance', params: {} }), ck), []);
  const r2b = JSON.parse(nip44.decrypt((await responseTo(tagless44.id)).content, ck)) as { result: { balance: number } };
  t.equal(r2b.result.balance, 5_000, 'a NIP-44 payload without an encryption tag is recognised');

  const odd = await send(await nip04Key.enc(JSON.stringify({ method: 'get_balance' })), [['encryption', 'nip44_v9']]);
  const r3 = JSON.parse(await nip04Key.dec((await responseTo(odd.id)).content)) as { error: { code: string } };
  t.equal(r3.error.code, 'UNSUPPORTED_ENCRYPTION');

  const offer = await send(nip44.encrypt(JSON.stringify({ method: 'make_offer', params: {} }), ck), [['encryption', 'nip44_v2']]);
  const r4 = JSON.parse(nip44.decrypt((await responseTo(offer.id)).content, ck)) as { result_type: string; error: { code: string; message: string }; result: unknown };
  t.equal(r4.result_type, 'make_offer', 'result_type names the method even when unsupported');
  t.equal(r4.error.code, 'NOT_IMPLEMENTED');
  t.equal(r4.result, null);

  const junk = await send(nip44.encrypt('not json', ck), [['encryption', 'nip44_v2']]);
  const r5 = JSON.parse(nip44.decrypt((await responseTo(junk.id)).content, ck)) as { error: { code: string } };
  t.equal(r5.error.code, 'OTHER');

  // Bob pays alice's invoice on the network: alice's client gets payment_received in both encodings.
  fx.network.pay('bob', r2.result.invoice);
  const n44 = await notes.next((e) => e.kind === 23197);
  const n04 = await notes.next((e) => e.kind === 23196);
  const p44 = JSON.parse(nip44.decrypt(n44.content, ck)) as { notification_type: string; notification: { payment_hash: string; amount: number } };
  const p04 = JSON.parse(await nip04Key.dec(n04.content)) as typeof p44;
  t.equal(p44.notification_type, 'payment_received');
  t.equal(p44.notification.payment_hash, r2.result.payment_hash);
  t.same(p04, p44, 'same notification in NIP-04 and NIP-44');
});

t.test('a re-sent request runs once', async (t) => {
  const { fx, relay, ck, send, responseTo } = await rawSetup(t);
  const inv = fx.network.createInvoice('bob', 1_000, 'once', 600);
  const req = await send(nip44.encrypt(JSON.stringify({ method: 'pay_invoice', params: { invoice: inv.bolt11 } }), ck), [['encryption', 'nip44_v2']]);
  const r = JSON.parse(nip44.decrypt((await responseTo(req.id)).content, ck)) as { result: { preimage: string } };
  t.ok(r.result.preimage);
  await relay.publish(req); // the very same signed event again
  // A later request is answered after the duplicate was seen (arrival order), so by then a
  // second payment would have happened.
  const probe = await send(nip44.encrypt(JSON.stringify({ method: 'get_balance', params: {} }), ck), [['encryption', 'nip44_v2']]);
  const b = JSON.parse(nip44.decrypt((await responseTo(probe.id)).content, ck)) as { result: { balance: number } };
  t.equal(b.result.balance, 4_000, 'paid once');
  t.equal(fx.network.balance('bob'), 6_000);
});

t.test('multi_pay_invoice: one response per invoice, tagged d = id or payment hash', async (t) => {
  const { fx, ck, send, responses, clientPubkey } = await rawSetup(t);
  const good = fx.network.createInvoice('bob', 1_000, 'first', 600);
  const noId = fx.network.createInvoice('bob', 500, 'second', 600);
  const tooBig = fx.network.createInvoice('bob', 100_000, 'third', 600);
  const req = await send(nip44.encrypt(JSON.stringify({
    method: 'multi_pay_invoice',
    params: { invoices: [{ id: 'job-1', invoice: good.bolt11 }, { invoice: noId.bolt11 }, { id: 'job-3', invoice: tooBig.bolt11 }] },
  }), ck), [['encryption', 'nip44_v2']]);
  const forReq = (e: Event) => e.tags.some((x) => x[0] === 'e' && x[1] === req.id);
  await responses.next(() => responses.events.filter(forReq).length >= 3);
  const byD = new Map(responses.events.filter(forReq).map((e) => [e.tags.find((x) => x[0] === 'd')?.[1], JSON.parse(nip44.decrypt(e.content, ck)) as { result_type: string; result: { preimage: string } | null; error: { code: string } | null }]));
  t.same([...byD.keys()].sort(), ['job-1', 'job-3', noId.paymentHash].sort());
  t.ok(responses.events.filter(forReq).every((e) => e.tags.some((x) => x[0] === 'p' && x[1] === clientPubkey)));
  t.equal(byD.get('job-1')?.result_type, 'multi_pay_invoice');
  t.ok(byD.get('job-1')?.result?.preimage);
  t.ok(byD.get(noId.paymentHash)?.result?.preimage);
  t.equal(byD.get('job-3')?.error?.code, 'INSUFFICIENT_BALANCE');
  t.equal(fx.network.balance('alice'), 3_500, 'the two affordable invoices paid, the third not');
});
