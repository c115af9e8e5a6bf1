// Config validation (precise messages), the init/status/doctor commands as a user runs them,
// and prepay terms end to end.
import { spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadNwcSdk } from '@bazaar/agents-common/wallet/alby-sdk';
import { ConfigError, configTemplate, parseConfigText, validateConfig } from '../src/config.ts';
import { Customer, isFeedback, isResult, PASSPHRASE, runProvider, sandboxJob, startMarket, tempDir, waitFor } from './helpers.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;

function bazaar(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(...dieWithParent(process.execPath, ['--import=tsx', 'scripts/bazaar.mjs', ...args]), { cwd: ROOT, env: { ...process.env, BAZAAR_KDF_LOG_N: '10', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('config: the template is valid, problems are precise', async (t) => {
  const c = parseConfigText(configTemplate({ relays: ['ws://127.0.0.1:4869'] }));
  t.same(c.kinds, [5930]);
  t.equal(c.terms.default, 'after-verify', 'pay-after-verify by default');
  t.equal(c.prices[5930].baseMsats, 1000);
  const bad = validateConfig({
    relays: ['http://nope'],
    kinds: [5930, 6000],
    prices: { 5930: { base_msats: -1, unit: 'second', cap_msats: 'lots' } },
    capacity: 0,
    terms: { default: 'escrow', 5930: 'later' },
    colour: 'blue',
  });
  t.notOk(bad.config);
  const msgs = bad.problems.join('\n');
  t.match(msgs, /colour: unknown key/);
  t.match(msgs, /relays\[0\]: must be a ws:\/\/ or wss:\/\/ URL/);
  t.match(msgs, /kinds\[1\]: 6000 is not a supported kind/);
  t.match(msgs, /prices\.5930\.base_msats: must be a non-negative integer/);
  t.match(msgs, /prices\.5930\.cap_msats: must be a non-negative integer/);
  t.match(msgs, /capacity: must be an integer between 1 and 1024/);
  t.match(msgs, /terms\.5930: must be one of prepay, after-verify, escrow/);
  t.match(msgs, /terms\.default: escrow needs at least one trusted mint/, 'escrow needs mints and arbiters');
  t.throws(() => parseConfigText('{ "relays": ["ws://x"], }\n{'), ConfigError);
  try {
    parseConfigText('{\n  "relays": ["ws://x"]\n  "capacity": 2\n}');
  } catch (err) {
    t.match((err as Error).message, /line 3 column 3/, 'JSONC syntax errors give line and column');
  }
  t.match(validateConfig({ relays: ['ws://x'], kinds: [5932] }).problems.join('\n'), /5932 \(PatchGen\)/, 'kinds without a backend are refused at load');
});

t.test('init, refuse to overwrite, status when stopped, doctor', async (t) => {
  const dir = tempDir(t, 'bazaar-prov-cli-');
  const noPass = await bazaar(['provider', 'init', '--data', dir], { BAZAAR_PASSPHRASE: '' });
  t.equal(noPass.code, 1, 'init without a passphrase on a non-terminal fails');
  t.match(noPass.stderr, /BAZAAR_PASSPHRASE/);
  const init = await bazaar(['provider', 'init', '--data', dir, '--relay', 'ws://127.0.0.1:1'], { BAZAAR_PASSPHRASE: PASSPHRASE });
  t.equal(init.code, 0, init.stderr);
  t.match(init.stdout, /identity\s+npub1[0-9a-z]+/, 'prints the npub');
  t.match(init.stdout, new RegExp(`config\\s+${join(dir, 'config.jsonc')}`), 'and where the config is');
  t.notMatch(init.stdout + init.stderr, /abandon|mnemonic:/i, 'no mnemonic unless asked');
  const keys = readFileSync(join(dir, 'keys.json'), 'utf8');
  t.equal(statSync(join(dir, 'keys.json')).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'config.jsonc')).mode & 0o777, 0o600);
  const again = await bazaar(['provider', 'init', '--data', dir], { BAZAAR_PASSPHRASE: 'another passphrase' });
  t.equal(again.code, 1, 'a second init fails');
  t.match(again.stderr, /refusing to overwrite/);
  t.equal(readFileSync(join(dir, 'keys.json'), 'utf8'), keys, 'the identity is untouched');

  const status = await bazaar(['provider', 'status', '--json', '--data', dir]);
  t.equal(status.code, 0, status.stderr);
  t.equal(JSON.parse(status.stdout).running, false, 'status: not running');

  const doctor = await bazaar(['provider', 'doctor', '--data', dir, '--timeout-ms', '1000'], { BAZAAR_PASSPHRASE: PASSPHRASE });
  t.equal(doctor.code, 1, 'doctor fails when the relay is down and no wallet is set');
  t.match(doctor.stdout, /^ok\s+identity\s+npub1\S+ \(unlocked/m);
  t.match(doctor.stdout, /^ok\s+config/m);
  t.match(doctor.stdout, /^FAIL\s+relay\s+/m);
  t.match(doctor.stdout, /^FAIL\s+wallet \(NWC\)\s+no nwc_uri/m);
  t.match(doctor.stdout, /^ok\s+sandbox bwrap\s+available/m);
  const wrong = await bazaar(['provider', 'doctor', '--data', dir, '--timeout-ms', '1000'], { BAZAAR_PASSPHRASE: 'wrong passphrase' });
  t.match(wrong.stdout, /^FAIL\s+identity\s+wrong passphrase/m);
});

t.test('doctor passes against a running market', async (t) => {
  const m = await startMarket(t);
  const doctor = await bazaar(['provider', 'doctor', '--data', m.providerDir], { BAZAAR_PASSPHRASE: PASSPHRASE });
  t.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
  t.match(doctor.stdout, /^ok\s+relay\s+ws:\/\/127\.0\.0\.1:\d+ answers/m);
  t.match(doctor.stdout, /^ok\s+wallet \(NWC\)\s+get_info ok/m);
  t.notMatch(doctor.stdout, /nostr\+walletconnect/, 'never prints the NWC URI');
});

t.test('prepay: payment-required with a bolt11, the job starts only once paid', async (t) => {
  const m = await startMarket(t);
  const running = await runProvider(t, m, { terms: { default: 'prepay' } });
  const c = await new Customer(m.relay.url).ready();
  t.teardown(() => c.close());
  const job = sandboxJob(c, ['echo prepaid'], [], 10);
  await c.publish(job);
  const pr = await c.waitEvent(isFeedback(job.id, 'payment-required'), 15_000, 'payment-required');
  const amount = pr.tags.find((x) => x[0] === 'amount');
  t.equal(amount?.[1], String(1000 + 100 * 10), 'asks for the most the job can cost (time limit × per-second price)');
  t.match(amount?.[2], /^lnbcrt/, 'with a bolt11');
  t.equal(running.provider.store.get(job.id)?.state, 'awaiting-payment');
  t.same(c.feedbackFor(job.id, 'processing'), [], 'not started before payment');
  const { NWCClient } = await loadNwcSdk();
  const wallet = new NWCClient({ nostrWalletConnectUrl: m.customerUri });
  t.teardown(() => wallet.close());
  await wallet.payInvoice({ invoice: amount![2] });
  const result = await c.waitEvent(isResult(job.id), 20_000, 'result after payment');
  t.equal(JSON.parse(result.content).commands[0].stdout, 'prepaid\n');
  t.notOk(result.tags.some((x) => x[0] === 'amount' && x[2]), 'no second invoice with the result');
  const done = await waitFor(() => { const j = running.provider.store.get(job.id); return j?.state === 'settled' ? j : undefined; }, 10_000, 'settled');
  t.equal(done.priceMsats, 2000);
  const e = running.provider.store.earningsSummary();
  t.equal(e.totalMsats, 2000, 'one earning, booked once');
  t.equal(e.count, 1);
});
