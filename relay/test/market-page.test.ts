// The marketplace page in a real browser: Debian's chromium driven by playwright-core against a
// relay fed with a scripted market. Checks what a person sees (cards, filters, charts, earnings,
// a job's timeline, the live feed) and saves screenshots under the test's output directory.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startRelay } from '../src/server.ts';
import { TestClient } from './helpers.ts';
import { MarketScript, newKey } from './market-kit.ts';

const CHROMIUM = process.env.BAZAAR_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

t.test('marketplace page', { skip: existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (scripts/setup.sh installs Debian's chromium)` }, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-page-'));
  const profile = mkdtempSync(join(tmpdir(), 'bazaar-chromium-'));
  t.teardown(() => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  });
  const relay = await startRelay({ port: 0, dataDir, transport: 'uws', verifyWorkers: 0, market: { debounceMs: 0, minIntervalMs: 0 } });
  t.teardown(() => relay.close());
  const client = await TestClient.connect(relay.url);
  t.teardown(() => client.close());

  // A scripted market: three providers, five buyers, a day of jobs, a dispute.
  const m = new MarketScript();
  const now = Math.floor(Date.now() / 1000);
  const T = now - 20 * 3600;
  const alpha = newKey();
  const beta = newKey();
  const gamma = newKey();
  const buyers = Array.from({ length: 5 }, newKey);
  m.announce(alpha, T - 100, { name: 'Alpha compute', kinds: [5050, 5930], base: 21_000 });
  m.announce(beta, T - 100, { name: 'Beta sandbox', kinds: [5930], isolation: 'container', base: 5_000 });
  m.announce(gamma, T - 100, { name: 'Gamma text', kinds: [5050], base: 2_000 });
  for (let i = 0; i < 60; i++) {
    const p = [alpha, alpha, beta, gamma][i % 4];
    const flow = i % 9 === 4 ? 'failed' : i % 11 === 5 ? 'delivered' : 'paid';
    await m.job({ buyer: buyers[i % 5], provider: p, flow, at: T + i * 1100, latency: 3 + (i % 13), kind: p === beta ? 5930 : p === gamma ? 5050 : i % 2 ? 5930 : 5050, rating: i % 3 ? undefined : 0.8 });
  }
  const arbiter = newKey();
  const disputed = await m.job({ buyer: buyers[0], provider: alpha, flow: 'paid', at: now - 3000, latency: 20 });
  m.dispute(buyers[0], disputed.request, disputed.result!, alpha, arbiter, now - 2000);
  m.verdict(arbiter, disputed.request, buyers[0], alpha, 'provider', now - 1000);
  m.heartbeat(alpha, now - 30);
  m.heartbeat(beta, now - 20);
  for (const e of m.events) {
    const [ok, msg] = await client.publish(e);
    if (!ok) t.fail(`refused: ${msg}`);
  }
  await relay.market!.index.catchUp();
  const stats = relay.market!.index.state.totals();

  const outDir = t.testdirName;
  mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 } });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  const external: string[] = [];
  const origin = relay.url.replace('ws://', 'http://');
  page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) external.push(r.url()); });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${origin}/`);
  // Exactly n cards (the page's CSP forbids the eval behind string predicates; locators need none).
  const cards = async (n: number) => {
    await page.locator('.card').nth(n - 1).waitFor();
    await page.locator('.card').nth(n).waitFor({ state: 'detached' });
  };

  // Provider cards
  await page.locator('.card').nth(2).waitFor();
  t.equal(await page.locator('.card').count(), 3, 'three provider cards');
  const alphaCard = page.locator(`.card[data-pubkey="${alpha.pk}"]`);
  t.match(await alphaCard.innerText(), /Alpha compute[\s\S]*5050 TextGen, 5930 SandboxRun[\s\S]*21 sats/, 'kinds and price book');
  const ra = relay.market!.index.state.reputation(alpha.pk);
  t.match(await alphaCard.locator('[data-field="success"]').innerText(), `${(ra.successRate * 100).toFixed(1)} % of ${ra.accepted} jobs`, 'success rate as the index computes it');
  t.match(await alphaCard.innerText(), /tier 0/);
  t.equal(await alphaCard.locator('.dot.live').count(), 1, 'alpha is live (fresh heartbeat)');
  t.equal(await page.locator(`.card[data-pubkey="${gamma.pk}"] .dot.live`).count(), 0, 'gamma sent no heartbeat');
  await page.locator('#stats [data-stat="Paid jobs"]').waitFor();
  t.equal(await page.locator('#stats [data-stat="Paid jobs"]').innerText(), String(stats.paidJobs));
  t.match(await page.locator('#reputation-key').innerText(), relay.market!.key.pubkey);
  await page.screenshot({ path: join(outDir, 'market.png'), fullPage: true });

  // Filters: capability, price, liveness
  await page.selectOption('#f-kind', '5930');
  await cards(2);
  t.same((await page.locator('.card').evaluateAll((els) => els.map((e) => e.getAttribute('data-pubkey')))).sort(), [alpha.pk, beta.pk].sort(), 'SandboxRun providers');
  await page.fill('#f-price', '10');
  await cards(1);
  t.equal(await page.locator('.card').getAttribute('data-pubkey'), beta.pk, 'only beta under 10 sats');
  await page.selectOption('#f-kind', '');
  await page.fill('#f-price', '');
  await page.check('#f-live');
  await cards(2);
  t.notOk(await page.locator(`.card[data-pubkey="${gamma.pk}"]`).count(), 'live only hides gamma');
  await page.uncheck('#f-live');
  await cards(3);

  // A provider's charts, earnings and jobs
  await alphaCard.click();
  await page.locator('#earnings').waitFor();
  t.ok(await page.locator('.chart.jobs svg rect').count() > 5, 'jobs per hour bars');
  t.ok(await page.locator('.chart.latency svg rect').count() > 2, 'latency distribution');
  t.ok(await page.locator('.chart.sats svg rect').count() > 5, 'sats per hour bars');
  t.equal(await page.locator('#earnings [data-field="sats-total"]').innerText(), ra.satsEarned.toLocaleString('en-US'), 'earnings total');
  await page.screenshot({ path: join(outDir, 'provider.png'), fullPage: true });

  // A job's timeline
  await page.locator(`tr[data-job="${disputed.request.id}"]`).click();
  await page.locator('#timeline li').nth(5).waitFor();
  t.same(await page.locator('#timeline li strong').allInnerTexts(), ['requested', 'processing', 'result', 'receipt', 'dispute', 'verdict: provider'], 'request → feedback → result → payment → dispute → verdict');
  await page.locator('#job').screenshot({ path: join(outDir, 'job.png') });

  // The live feed follows the relay's websocket: a new job appears without reloading.
  await page.locator('.live-status.on').waitFor();
  const m2 = new MarketScript();
  const fresh = await m2.job({ buyer: buyers[1], provider: gamma, flow: 'paid', at: Math.floor(Date.now() / 1000) - 5 });
  for (const e of m2.events) await client.publish(e);
  await page.locator('#feed li', { hasText: `job ${fresh.request.id.slice(0, 8)}` }).first().waitFor();
  t.pass('the live feed shows the new job');
  await page.locator('#stats [data-stat="Paid jobs"]', { hasText: new RegExp(`^${stats.paidJobs + 1}$`) }).waitFor();
  t.pass('stats refresh after live events');
  await page.screenshot({ path: join(outDir, 'live.png'), fullPage: true });
  t.same(external, [], 'nothing loaded from outside the relay');
  t.same(errors, [], 'no script errors');
  t.ok(existsSync(join(outDir, 'market.png')), `screenshots in ${outDir}`);
});
