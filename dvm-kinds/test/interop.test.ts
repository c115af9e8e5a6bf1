// Interop: NDK's DVM classes and raw nostr-tools events written from the NIP-90 examples
// parse with our modules, and NDK reads what we build.
import t from 'tap';
import NDK, { NDKAppHandlerEvent, NDKCashuMintList, NDKDVMJobFeedback, NDKDVMJobResult, NDKDVMRequest, NDKEvent, NDKPrivateKeySigner, NDKUser } from '@nostr-dev-kit/ndk';
import { bytesToHex } from '@noble/hashes/utils.js';
import { finalizeEvent, verifyEvent } from 'nostr-tools/pure';
import { buyer, provider, sign, T0 } from './helpers.ts';
import type { NostrEvent } from '../src/nostr.ts';
import type { Parsed } from '../src/problem.ts';
import { buildFeedback, parseFeedback } from '../src/feedback.ts';
import { isRequestExpired, parseJobRequest, parseJobResult } from '../src/job.ts';
import { openJobRequest } from '../src/private.ts';
import { buildSandboxRunResult, commandResult, parseSandboxRunRequest, sandboxRunOutput } from '../src/kinds/sandbox-run.ts';
import { buildTextGenRequest, buildTextGenResult, parseTextGenRequest, parseTextGenResult } from '../src/kinds/text-gen.ts';
import { buildPaymentInfo, parsePaymentInfo } from '../src/market/payment-info.ts';
import { buildAnnouncement } from '../src/market/announcement.ts';

const value = <T>(p: Parsed<T>): T => {
  if (!p.ok) throw new Error(`expected ok, got ${JSON.stringify(p.errors)}`);
  return p.value;
};
// No relays at all: these are offline event-class tests (NDK's outbox model would dial public relays).
const ndk = new NDK({ explicitRelayUrls: [], enableOutboxModel: false, autoConnectUserRelays: false });
t.teardown(() => {
  for (const r of ndk.pool.relays.values()) r.disconnect();
});
const buyerSigner = new NDKPrivateKeySigner(bytesToHex(buyer.sk));
const providerSigner = new NDKPrivateKeySigner(bytesToHex(provider.sk));
const raw = (e: NDKEvent): NostrEvent => e.rawEvent() as NostrEvent;

t.test('a request built with NDKDVMRequest parses with our SandboxRun module', async (t) => {
  const r = new NDKDVMRequest(ndk);
  r.kind = 5930;
  r.addInput('https://git.example.com/acme/calc.git', 'url');
  r.addParam('cmd', 'npm ci');
  r.addParam('cmd', 'npm test');
  r.addParam('time_limit_secs', '300');
  r.addParam('repo_ref', 'main');
  r.bid = 5000;
  r.created_at = T0;
  await r.sign(buyerSigner);
  const e = raw(r);
  t.ok(verifyEvent(e));
  const req = value(parseSandboxRunRequest(e));
  t.same(req.params.cmd, ['npm ci', 'npm test']);
  t.equal(req.envelope.bidMsats, 5000);
  t.same(req.repo, { url: 'https://git.example.com/acme/calc.git', ref: 'main' });
});

t.test('an NDK-encrypted request (NIP-44) opens with our private-job helper', async (t) => {
  const r = new NDKDVMRequest(ndk);
  r.kind = 5050;
  r.addInput('a secret prompt', 'text');
  r.addParam('model', 'llama3');
  r.created_at = T0;
  await r.encryption(new NDKUser({ pubkey: provider.pk }), buyerSigner);
  await r.sign(buyerSigner);
  const e = raw(r);
  t.notMatch(e.content, /secret prompt/);
  const req = value(parseTextGenRequest(value(openJobRequest(e, provider.sk))));
  t.same(req.prompt, { data: 'a secret prompt', type: 'text' });
  t.equal(req.params.model, 'llama3');
});

t.test('NDK feedback (payment_required) and results parse with ours', async (t) => {
  const r = new NDKDVMRequest(ndk);
  r.kind = 5050;
  r.addInput('hello', 'text');
  r.created_at = T0;
  await r.sign(buyerSigner);
  const fb = r.createFeedback('payment_required');
  fb.tags.push(['amount', '2000']);
  fb.created_at = T0 + 1;
  await fb.sign(providerSigner);
  const parsed = value(parseFeedback(raw(fb)));
  t.equal(parsed.status, 'payment-required', 'underscore spelling accepted');
  t.same(parsed.amount, { msats: 2000 }, 'amount without bolt11 accepted');
  t.equal(parsed.requestId, r.id);
  t.equal(parsed.customer, buyer.pk);

  const res = new NDKDVMJobResult(ndk);
  res.kind = 6050;
  res.jobRequest = r;
  res.result = 'hi there';
  res.setAmount(2000);
  res.created_at = T0 + 2;
  await res.sign(providerSigner);
  const out = value(parseTextGenResult(raw(res)));
  t.equal(out.text, 'hi there');
  t.equal(out.envelope.requestId, r.id);
  t.same(out.envelope.amount, { msats: 2000 });
});

t.test('an NDK result to a request naming its provider: the customer is the request author', async (t) => {
  // NDK's tag() copies the request's own p tags (the provider) ahead of the author's.
  const req = sign(buildTextGenRequest({ prompt: 'hi', providers: [provider.pk], createdAt: T0 }), buyer.sk);
  const res = new NDKDVMJobResult(ndk);
  res.jobRequest = new NDKEvent(ndk, req);
  res.result = 'hello';
  res.created_at = T0 + 1;
  await res.sign(providerSigner);
  const e = raw(res);
  t.same(e.tags.filter((x) => x[0] === 'p').map((x) => x[1]), [provider.pk, buyer.pk], 'two p tags, the provider first');
  const out = value(parseTextGenResult(e));
  t.equal(out.envelope.customer, buyer.pk);
  t.equal(out.envelope.requestId, req.id);
});

t.test('NDK reads our requests, results and feedback', async (t) => {
  const req = sign(buildTextGenRequest({ prompt: 'Say hi', params: { model: 'llama3' }, bidMsats: 1000, createdAt: T0 }), buyer.sk);
  const ndkReq = NDKDVMRequest.from(new NDKEvent(ndk, req));
  t.equal(ndkReq.bid, 1000);
  t.equal(ndkReq.getParam('model'), 'llama3');
  const res = sign(buildTextGenResult(req, 'hi', { createdAt: T0 + 1, amount: { msats: 1000 } }), provider.sk);
  const ndkRes = NDKDVMJobResult.from(new NDKEvent(ndk, res));
  t.equal(ndkRes.result, 'hi');
  t.equal(ndkRes.jobRequestId, req.id);
  t.equal(ndkRes.jobRequest?.id, req.id, 'the embedded request tag is readable');
  const fb = sign(buildFeedback({ request: req, status: 'processing', createdAt: T0 + 1 }), provider.sk);
  t.equal(new NDKDVMJobFeedback(ndk, fb).status, 'processing');

  const sr = sign(buildSandboxRunResult(req, sandboxRunOutput([commandResult({ cmd: 'true', exitCode: 0, stdout: '', stderr: '', wallMs: 0, cpuMs: 0 })])), provider.sk);
  t.equal(NDKDVMJobResult.from(new NDKEvent(ndk, sr)).jobRequestId, req.id);
});

t.test('raw nostr-tools events written from the NIP-90 examples parse', async (t) => {
  // Job request example shape: i (with relay + marker), output, param, bid, relays, p.
  const request = finalizeEvent({
    kind: 5050,
    created_at: T0,
    content: '',
    tags: [
      ['i', 'What is the capital of France?', 'text', '', 'prompt'],
      ['output', 'text/plain'],
      ['param', 'model', 'LLaMA-2'],
      ['param', 'max_tokens', '512'],
      ['param', 'temperature', '0.5'],
      ['param', 'top-k', '50'],
      ['param', 'top-p', '0.7'],
      ['param', 'frequency_penalty', '1'],
      ['bid', '10000'],
      ['relays', 'wss://relay.damus.io', 'wss://nos.lol'],
      ['p', provider.pk],
    ],
  }, buyer.sk) as NostrEvent;
  const req = value(parseTextGenRequest(request));
  t.same(req.prompt, { data: 'What is the capital of France?', type: 'text', marker: 'prompt' });
  t.equal(req.params.max_tokens, 512);
  t.equal(req.params['top-k'], '50', 'application-specific params are kept');
  t.same(req.envelope.relays, ['wss://relay.damus.io', 'wss://nos.lol']);
  t.equal(req.envelope.output, 'text/plain');
  // Job result example shape: request (stringified), e with relay hint, i, p, amount with bolt11.
  const result = finalizeEvent({
    kind: 6050,
    created_at: T0 + 1,
    content: 'Paris',
    tags: [['request', JSON.stringify(request)], ['e', request.id, 'wss://relay.damus.io'], ['i', 'What is the capital of France?', 'text'], ['p', buyer.pk], ['amount', '10000', 'lnbc100n1pjqqqqq']],
  }, provider.sk) as NostrEvent;
  const res = value(parseJobResult(result));
  t.equal(res.requestRelay, 'wss://relay.damus.io');
  t.same(res.amount, { msats: 10000, bolt11: 'lnbc100n1pjqqqqq' });
  t.equal(value(parseTextGenResult(result)).text, 'Paris');
  // Feedback example shape: status with extra info, amount, e, p; content = partial result.
  const feedback = finalizeEvent({ kind: 7000, created_at: T0 + 1, content: 'Par', tags: [['status', 'partial', 'first tokens'], ['amount', '10000'], ['e', request.id, 'wss://relay.damus.io'], ['p', buyer.pk]] }, provider.sk) as NostrEvent;
  const fb = value(parseFeedback(feedback));
  t.same([fb.status, fb.message, fb.content], ['partial', 'first tokens', 'Par']);
  t.notOk(parseJobRequest({ ...request, kind: 1 }).ok, 'kind outside 5000-5999 is not a job request');
  const expiring = value(parseJobRequest({ ...request, tags: [...request.tags, ['expiration', String(T0 + 60)]] }));
  t.same([isRequestExpired(expiring, T0 + 59), isRequestExpired(expiring, T0 + 60), isRequestExpired(req.envelope, T0 + 1e9)], [false, true, false]);
});

t.test('NIP-61 payment info and NIP-89 announcements interoperate with NDK', async (t) => {
  const ours = sign(buildPaymentInfo({ relays: ['wss://relay.example.com'], mints: [{ url: 'https://mint.example.com', units: ['sat'] }], p2pkPubkey: '02' + provider.pk, createdAt: T0 }), provider.sk);
  const ndkList = NDKCashuMintList.from(new NDKEvent(ndk, ours));
  t.same(ndkList.mints, ['https://mint.example.com']);
  t.same(ndkList.relays, ['wss://relay.example.com']);
  t.equal(ndkList.p2pk, '02' + provider.pk);

  const theirs = new NDKCashuMintList(ndk);
  theirs.mints = ['https://mint.example.com'];
  theirs.relays = ['wss://relay.example.com'];
  theirs.p2pk = '02' + buyer.pk;
  theirs.created_at = T0;
  await theirs.sign(buyerSigner);
  const parsed = value(parsePaymentInfo(raw(theirs)));
  t.same(parsed.mints.map((m) => m.url), ['https://mint.example.com']);
  t.equal(parsed.p2pkPubkey, '02' + buyer.pk);

  const ann = sign(buildAnnouncement({ d: 'bazaar', kinds: [5930], name: 'Bazaar provider', about: 'sandboxed jobs', createdAt: T0 }), provider.sk);
  const handler = new NDKAppHandlerEvent(ndk, ann);
  const profile = await handler.fetchProfile();
  t.equal(profile?.name, 'Bazaar provider', 'NDK reads the announcement content as the handler profile');
  t.same(handler.getMatchingTags('k').map((x) => x[1]), ['5930']);
});
