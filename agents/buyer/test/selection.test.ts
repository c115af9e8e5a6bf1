// The pure parts: provider ranking (DESIGN §5 weights, filters, presets, pins), strategies,
// the buyer's job state machine, the store's one-payment-per-job rule, task specs.
import t from 'tap';
import { rmSync } from 'node:fs';
import type { Announcement } from '@bazaar/dvm-kinds/market/announcement';
import type { ReputationAssertion } from '@bazaar/dvm-kinds/market/reputation';
import { DEFAULT_WEIGHTS, effectiveWeights, parseStrategy, rankProviders, retryBackoffMs, type ProviderView, type SelectionPolicy } from '../src/selection.ts';
import { nextBuyerState } from '../src/buyer-job.ts';
import { BuyerStore, type BuyerJob } from '../src/job-store.ts';
import { readTask } from '../src/tasks.ts';
import { classifyPaymentError } from '../src/payments.ts';
import { CashuWalletError } from '@bazaar/agents-common/wallet/cashu';
import { LightningWalletError } from '@bazaar/agents-common/wallet/lightning';
import { tempDir } from './helpers.ts';

const pk = (c: string) => c.repeat(64);
const ann = (o: Partial<Announcement> & { base: number }): Announcement => ({ createdAt: 1, d: 'x', kinds: [5930], prices: { 5930: { baseMsats: o.base, perUnitMsats: 0, unit: 'job' } }, models: [], paramSchemas: {}, terms: { 5930: 'after-verify' }, arbiters: [], heartbeatSecs: 60, isolation: 'bwrap', ...o });
const rep = (rank: number, extra: Partial<ReputationAssertion> = {}): ReputationAssertion => ({ createdAt: 1, provider: 'x', rank, tier: 0, jobsSeen: 100, resultsDelivered: 100, paidJobs: 90, disputesOpened: 0, disputesLost: 0, medianLatencySecs: 10, satsEarned: 1, successRate: rank / 100, perKind: [], ...extra });
const view = (c: string, o: { base: number; rep?: ReputationAssertion; liveness?: ProviderView['liveness']; active?: number; ann?: Partial<Announcement> }): ProviderView => ({
  pubkey: pk(c),
  announcement: ann({ base: o.base, ...o.ann }),
  plain: false,
  heartbeat: { createdAt: 1, expiration: 2, status: 'online', active: o.active ?? 0, capacity: 4, kinds: [5930] },
  ...(o.rep ? { reputation: o.rep } : {}),
  liveness: o.liveness ?? 'live',
});
const policy = (o: Partial<SelectionPolicy> = {}): SelectionPolicy => ({ budgetMsats: 100_000, canPay: ['lightning'], ...o });
const order = (views: ProviderView[], o: Partial<SelectionPolicy> = {}) => rankProviders(views, { kind: 5930, units: 1 }, policy(o)).ranked.map((c) => c.pubkey[0]);

t.test('weights: DESIGN §5 by default, presets reweight, explicit weights win', async (t) => {
  t.same(DEFAULT_WEIGHTS, { price: 0.25, reputation: 0.35, capacity: 0.15, isolation: 0.15, region: 0.1, latency: 0 });
  t.equal(effectiveWeights({ preference: 'cheapest' }).price, 0.7);
  t.equal(effectiveWeights({ preference: 'cheapest', weights: { price: 0.1 } }).price, 0.1);
});

t.test('ranking: reputation outweighs a small price difference; cheapest and fastest presets', async (t) => {
  const a = view('a', { base: 1000, rep: rep(95) });
  const b = view('b', { base: 500 });
  t.same(order([a, b]), ['a', 'b'], 'a good reputation (0.35) beats half the price (0.25) by default');
  t.same(order([a, b], { preference: 'cheapest' }), ['b', 'a'], 'cheapest: price first');
  const slow = view('s', { base: 1000, rep: rep(95, { medianLatencySecs: 60 }) });
  const fast = view('f', { base: 1000, rep: rep(90, { medianLatencySecs: 5 }) });
  t.same(order([slow, fast], { preference: 'fastest' }), ['f', 's'], 'fastest: latency');
  const busy = view('y', { base: 1000, active: 4 });
  const idle = view('i', { base: 1000, active: 0 });
  t.same(order([busy, idle]), ['i', 'y'], 'free capacity counts');
  const r = rankProviders([a], { kind: 5930, units: 1 }, policy()).ranked[0];
  t.same(r.parts, { price: 1, reputation: 0.95, capacity: 1, isolation: 0.6, region: 1, latency: 1 });
  t.equal(r.score, Math.round((0.25 + 0.35 * 0.95 + 0.15 + 0.15 * 0.6 + 0.1) * 10_000) / 10_000);
});

t.test('filters: offline, price, budget, success rate, isolation, verified-only, terms, pins', async (t) => {
  const ex = (views: ProviderView[], o: Partial<SelectionPolicy> = {}) => rankProviders(views, { kind: 5930, units: 1 }, policy(o)).excluded.map((x) => `${x.pubkey[0]}:${x.code}`);
  t.same(ex([view('a', { base: 1, liveness: 'stale' }), view('b', { base: 1, liveness: 'draining' })]), ['a:offline', 'b:offline']);
  t.same(ex([view('a', { base: 5000 })], { maxPriceMsats: 4000 }), ['a:price']);
  t.same(ex([view('a', { base: 5000 })], { budgetMsats: 4000 }), ['a:price']);
  t.same(ex([view('a', { base: 1, rep: rep(80) }), view('b', { base: 1 })], { minSuccessRate: 0.9 }), ['a:reputation', 'b:reputation']);
  t.same(ex([view('a', { base: 1, ann: { isolation: 'process' } })], { minIsolation: 'bwrap' }), ['a:isolation']);
  t.same(ex([view('a', { base: 1, rep: rep(95, { paidJobs: 0 }) }), view('b', { base: 1, rep: rep(95) })], { preference: 'verified-only' }), ['a:reputation']);
  t.same(ex([view('a', { base: 1, ann: { terms: { 5930: 'escrow' } } })]), ['a:terms'], 'escrow needs a mint');
  t.same(ex([view('a', { base: 1, ann: { terms: { 5930: 'prepay' } } })], { racing: true }), ['a:terms'], 'no prepay in a race');
  const esc = rankProviders([view('a', { base: 1, ann: { terms: { 5930: 'escrow' } } })], { kind: 5930, units: 1 }, policy({ canPay: ['lightning', 'cashu', 'escrow'] })).ranked[0];
  t.equal(esc.pay, 'escrow', 'escrow terms: pay by escrow');
  t.same(order([view('a', { base: 1, rep: rep(99) }), view('b', { base: 9000 })], { pinned: [pk('b')] }), ['b', 'a'], 'a pinned provider comes first');
  const plain: ProviderView = { pubkey: pk('p'), plain: true, liveness: 'unknown' };
  t.same(order([plain], { pinned: [pk('p')] }), ['p'], 'a pinned plain provider without an announcement is usable');
  t.same(order([plain]), [], 'not without the pin');
});

t.test('strategies', async (t) => {
  t.same(parseStrategy('first'), { type: 'first' });
  t.same(parseStrategy('race:3'), { type: 'race', n: 3 });
  t.same(parseStrategy('retry'), { type: 'retry', n: 3 });
  t.match(parseStrategy('race:0'), { error: /N from 1 to 10/ });
  t.match(parseStrategy('pinned:2'), { error: /takes no count/ });
  t.match(parseStrategy('fastest'), { error: /first, prefer/ });
  t.same([1, 2, 3, 10].map((n) => retryBackoffMs(n, 1000)), [1000, 2000, 4000, 30_000]);
});

t.test('the buyer job state machine', async (t) => {
  t.same(nextBuyerState('verified', 'decide-pay'), { ok: true, state: 'paying' });
  t.same(nextBuyerState('paying', 'paid'), { ok: true, state: 'paid' });
  t.match(nextBuyerState('posted', 'decide-pay'), { ok: false }, 'no payment before a price was asked');
  t.match(nextBuyerState('delivered', 'decide-pay'), { ok: false }, 'no payment before verification');
  t.match(nextBuyerState('paying', 'cancel'), { ok: false }, 'a payment in flight is not abandoned');
  t.match(nextBuyerState('paid', 'decide-pay'), { ok: false });
  t.same(nextBuyerState('awaiting-payment', 'decide-pay'), { ok: true, state: 'prepaying' });
  t.same(nextBuyerState('prepaying', 'paid'), { ok: true, state: 'running' });
});

t.test('the store: one payment decision per job, one job per invoice, durable', async (t) => {
  const dir = tempDir('bazaar-buyer-store-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let store = BuyerStore.open(dir);
  const job = (id: string): BuyerJob => ({ id, runId: 'r', kind: 5930, provider: pk('a'), pay: 'lightning', state: 'verified', request: {} as never, encrypted: false, budgetMsats: 10, relays: [], createdAt: 0, updatedAt: 0, feedback: [] });
  store.insert(job(pk('1')));
  store.insert(job(pk('2')));
  const d = { method: 'lightning' as const, when: 'after-verify' as const, amountMsats: 5, bolt11: 'lnbc', paymentHash: pk('h'), decidedAt: 1 };
  store.decidePayment(pk('1'), d);
  t.throws(() => store.decidePayment(pk('1'), { ...d, paymentHash: pk('k') }), /a job is paid once/);
  t.throws(() => store.decidePayment(pk('2'), d), /already belongs to job/);
  await store.close();
  store = BuyerStore.open(dir);
  t.equal(store.get(pk('1'))?.state, 'paying', 'the decision is on disk');
  t.same(store.get(pk('1'))?.payment, d);
  await store.close();
});

t.test('task specs: every problem reported', async (t) => {
  t.same(readTask({ type: 'patch', repo: 'https://x/r.git', title: 'fix' }), { task: { type: 'patch', repo: 'https://x/r.git', ref: 'HEAD', title: 'fix', body: 'fix', timeLimitSecs: 600 } });
  t.same(readTask({ type: 'patch' }), { problems: ['repo: required', 'title: required'] });
  t.same(readTask({ type: 'review', diff: 'd', focus: ['speed'], depth: 'deep' }), { problems: ['focus: "speed" is not one of correctness, security, performance, style, tests, docs', 'depth: must be one of quick, standard, thorough'] });
  t.same(readTask({ type: 'sandbox', cmd: [], time_limit_secs: 0 }), { problems: ['cmd: at least one command', 'time_limit_secs: must be an integer from 1 to 86400'] });
  t.match(readTask({ type: 'mine' }), { problems: [/type: must be one of/] });
  // What a provider (or our own checkout) would refuse is refused before anything is posted.
  t.same(readTask({ type: 'review', diff: 'not a diff\n' }), { problems: ['diff: the diff input: no file headers found in the diff'] }, 'the kind module reads the request as a provider would');
  t.match(readTask({ type: 'index', repo: 'git@github.com:a/b.git' }), { problems: [/^repo: repository source is neither an absolute path nor a URL/] });
  t.match(readTask({ type: 'patch', repo: 'ssh://h/r.git', title: 'x' }), { problems: [/^repo: repository protocol ssh: is not allowed/] });
  t.match(readTask({ type: 'patch', repo: 'https://u:p@h/r.git', title: 'x' }), { problems: ['repo: credentials in the repository URL'] });
  t.match(readTask({ type: 'sandbox', cmd: ['true'], repo: 'https://h/r.git', ref: '--upload-pack=x' }), { problems: ['ref: "--upload-pack=x" is not a valid git ref'] });
});

t.test('payment errors: what proves nothing was paid', async (t) => {
  const poor = classifyPaymentError(new CashuWalletError('insufficient ecash: need 2 sat, have 0 sat', undefined, 'INSUFFICIENT_FUNDS'));
  t.match(poor, { reason: 'budget', message: /insufficient ecash.*bazaar buyer wallet --topup/ }, 'too little ecash: refused for the budget, with the way out');
  t.match(classifyPaymentError(new LightningWalletError('WALLET_ERROR', 'not enough', 'INSUFFICIENT_BALANCE')), { reason: 'budget' }, 'NIP-47 INSUFFICIENT_BALANCE likewise');
  t.match(classifyPaymentError(new LightningWalletError('WALLET_ERROR', 'no route', 'PAYMENT_FAILED')), { reason: 'wallet' });
  t.equal(classifyPaymentError(new LightningWalletError('TIMEOUT', 'no answer')), undefined, 'a timeout proves nothing: the payment stays in flight');
  t.equal(classifyPaymentError(new CashuWalletError('socket hang up')), undefined);
});
