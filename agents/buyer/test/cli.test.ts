// `bazaar buyer` as a user (or a demo script) runs it: the real CLI in a child process against
// a real market. One JSON document with --json; distinct exit codes; --help everywhere; the
// Autopilot over a task file with a total budget and a delegation policy.
import t from 'tap';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helpText } from '@bazaar/cli-kit/command';
import { buyerCommand } from '../src/cli.ts';
import { PASSPHRASE, runProvider, startMarket, tempDir } from './helpers.ts';

const BAZAAR = fileURLToPath(new URL('../../../scripts/bazaar.mjs', import.meta.url));

function bazaar(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BAZAAR, ...args], { env: { ...process.env, BAZAAR_PASSPHRASE: PASSPHRASE, BAZAAR_KDF_LOG_N: '10', BAZAAR_LOG_LEVEL: 'warn', ...env }, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
    });
  });
}

t.test('help for every command', async (t) => {
  // Every subcommand's help text, built as `--help` builds it (in-process: fast); one through the real CLI.
  for (const [name, load] of Object.entries(buyerCommand.subcommands!)) {
    const spec = await load();
    const text = helpText(spec, `bazaar buyer ${name}`);
    t.match(text, new RegExp(`^Usage: bazaar buyer ${name}`), `${name} has help`);
    if (!['init', 'receipts'].includes(name)) t.match(text, /--json/, `${name} takes --json`);
  }
  const patch = await bazaar(['buyer', 'patch', '--help']);
  t.equal(patch.code, 0);
  t.match(patch.stdout, /^Usage: bazaar buyer patch/);
  t.match(patch.stdout, /Exit codes: 0 verified and paid/, 'exit codes are documented');
  const bad = await bazaar(['buyer', 'patch', '--repo', 'https://x/r.git', '--title', 'x']);
  t.equal(bad.code, 2, 'usage error');
  t.match(bad.stderr, /--budget SATS is required/);
  const bad2 = await bazaar(['buyer', 'sandbox', '--strategy', 'race:0', '--cmd', 'true']);
  t.equal(bad2.code, 2);
  t.match(bad2.stderr, /N from 1 to 10/);
});

t.test('one-shot jobs, the directory, jobs and receipts, exit codes', async (t) => {
  const m = await startMarket(t, { mint: false });
  const prov = await runProvider(t, m, 'prov-a', { kinds: [5930] });
  const { uri } = m.devnet.account('cli-buyer', { fundSats: 1000 });
  await m.devnet.nwc.refresh();
  const dir = tempDir('bazaar-buyer-cli-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const uriFile = join(dir, 'buyer.nwc');
  writeFileSync(uriFile, uri, { mode: 0o600 });
  const common = ['--data', join(dir, 'buyer'), '--relay', m.relay.url, '--nwc-uri-file', uriFile];

  const ok = await bazaar(['buyer', 'sandbox', '--cmd', 'echo from the cli', '--time-limit', '10', '--json', ...common]);
  t.equal(ok.code, 0, `paid: exit 0 ${ok.stderr.slice(-300)}`);
  const report = JSON.parse(ok.stdout) as { outcome: string; provider: string; result: { content: string }; payment: { amountMsats: number }; receiptId: string };
  t.equal(report.outcome, 'paid');
  t.equal(report.provider, prov.identity.pubkey);
  t.equal(JSON.parse(report.result.content).commands[0].stdout, 'from the cli\n');
  t.match(ok.stderr, /created a new buyer identity npub1/, 'the identity was created on first use');

  const human = await bazaar(['buyer', 'sandbox', '--cmd', 'echo again', '--time-limit', '10', ...common]);
  t.equal(human.code, 0);
  t.match(human.stderr, /\[\s+\d+\.\ds\] attempt 1: job [0-9a-f]{8}… posted to/, 'live progress with elapsed time');
  t.match(human.stderr, /verified: every check passed/);
  t.match(human.stderr, /\(spent [\d.]+ sats? of 1,000 sats\)/, 'and the spend');
  t.match(human.stdout, /^\nPAID\s+SandboxRun echo again/);
  t.match(human.stdout, /--- result ---\n\$ echo again\nagain\n/, 'the output is shown');

  const refused = await bazaar(['buyer', 'sandbox', '--cmd', 'true', '--time-limit', '60', '--budget', '1', '--json', ...common]);
  t.equal(refused.code, 4, 'over the budget: exit 4');
  t.equal(JSON.parse(refused.stdout).outcome, 'budget-refused');

  const none = await bazaar(['buyer', 'text', 'hello', '--timeout', '10', '--json', ...common]);
  t.equal(none.code, 5, 'nobody sells TextGen here: exit 5');
  t.equal(JSON.parse(none.stdout).outcome, 'no-provider');

  const dir2 = await bazaar(['buyer', 'providers', '--kind', 'sandbox', '--json', ...common]);
  t.equal(dir2.code, 0, dir2.stderr.slice(-500));
  const listed = JSON.parse(dir2.stdout) as { providers: { pubkey: string; liveness: string; score?: number; quoteMsats?: number }[] };
  t.match(listed.providers, [{ pubkey: prov.identity.pubkey, liveness: 'live' }]);
  t.ok((listed.providers[0].score ?? 0) > 0, 'with its score');
  const table = await bazaar(['buyer', 'providers', '--kind', 'sandbox', ...common]);
  t.match(table.stdout, /^PROVIDER\s+NAME\s+LIVENESS\s+LOAD\s+KINDS\s+REPUTATION\s+SCORE \/ QUOTE\n/, 'a person gets a table with a header');
  t.match(table.stdout, new RegExp(`\\n${prov.identity.pubkey.slice(0, 16)}….*\\blive\\s+0/\\d+\\s+kinds 5930\\s.*score \\d\\.\\d{3}\\s+up to [\\d.]+ sats`));

  const jobs = await bazaar(['buyer', 'jobs', '--json', ...common]);
  t.equal(jobs.code, 0, jobs.stderr.slice(-500));
  const runs = (JSON.parse(jobs.stdout) as { runs: { outcome: string }[] }).runs;
  t.same(runs.map((r) => r.outcome).sort(), ['budget-refused', 'no-provider', 'paid', 'paid']);

  const receipts = await bazaar(['buyer', 'receipts', '--json', '--data', join(dir, 'buyer')], { BAZAAR_PASSPHRASE: '' });
  t.equal(receipts.code, 0, 'receipts need no passphrase');
  const rs = JSON.parse(receipts.stdout) as { receiptId: string; method: string; published: boolean }[];
  t.equal(rs.length, 2);
  t.ok(rs.every((r) => r.method === 'lightning' && r.published));
  t.ok(rs.some((r) => r.receiptId === report.receiptId));
  const listedHuman = await bazaar(['buyer', 'receipts', '--data', join(dir, 'buyer')], { BAZAAR_PASSPHRASE: '' });
  t.match(listedHuman.stdout, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\S+\\s+${String(report.payment.amountMsats / 1000).replace('.', '\\.')} sats\\s+lightning SandboxRun\\s+provider ${prov.identity.pubkey.slice(0, 12)}…`, 'm'), 'receipts as a person reads them: amounts to the millisat');
});

t.test('wallet: balances, an ecash top-up from Lightning, then a job paid by melting ecash', async (t) => {
  const m = await startMarket(t);
  await runProvider(t, m, 'prov-c', { kinds: [5930] });
  const { uri } = m.devnet.account('ecash-buyer', { fundSats: 1000 });
  await m.devnet.nwc.refresh();
  const dir = tempDir('bazaar-buyer-wallet-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const uriFile = join(dir, 'buyer.nwc');
  writeFileSync(uriFile, uri, { mode: 0o600 });
  const common = ['--data', join(dir, 'buyer'), '--relay', m.relay.url, '--nwc-uri-file', uriFile, '--mint', m.mintUrl];

  const poor = await bazaar(['buyer', 'sandbox', '--cmd', 'echo poor', '--time-limit', '10', '--pay', 'cashu', '--json', ...common]);
  t.equal(poor.code, 4, `no ecash: refused for the budget, not left in flight ${poor.stderr.slice(-300)}`);
  t.match(JSON.parse(poor.stdout).reason, /insufficient ecash.*bazaar buyer wallet --topup/);
  t.equal(m.devnet.network.balance('ecash-buyer'), 1_000_000, 'nothing left the wallet');

  const topup = await bazaar(['buyer', 'wallet', '--topup', '30', '--json', ...common]);
  t.equal(topup.code, 0, topup.stderr.slice(-300));
  t.match(JSON.parse(topup.stdout), { mintedSats: 30, ecashSats: 30, lightningMsats: 970_000, mint: m.mintUrl });

  const paid = await bazaar(['buyer', 'sandbox', '--cmd', 'echo ecash', '--time-limit', '10', '--pay', 'cashu', '--json', ...common]);
  t.equal(paid.code, 0, `paid by melting ecash (a small invoice from 16+8+4+2 sat) ${paid.stderr.slice(-300)}`);
  t.match(JSON.parse(paid.stdout), { outcome: 'paid', payment: { method: 'cashu', when: 'after-verify' } });
  const after = JSON.parse((await bazaar(['buyer', 'wallet', '--json', ...common])).stdout) as { ecashSats: number; lightningMsats: number };
  t.ok(after.ecashSats < 30 && after.ecashSats >= 25, `the melt came out of the purse (${after.ecashSats} sats left)`);
  t.equal(after.lightningMsats, 970_000, 'not out of the Lightning wallet');

  const notDiff = join(dir, 'notes.txt');
  writeFileSync(notDiff, 'just some notes\n');
  const bad = await bazaar(['buyer', 'review', '--diff', notDiff, ...common]);
  t.equal(bad.code, 2, 'a --diff that is not a diff is a usage error, found before anything is posted');
  t.match(bad.stderr, /--diff: the diff input: no file headers found/);
  const sshRepo = await bazaar(['buyer', 'index', '--repo', 'git@example.com:a/b.git', ...common]);
  t.equal(sshRepo.code, 2);
  t.match(sshRepo.stderr, /--repo: repository source is neither an absolute path nor a URL/);
});

t.test('autopilot: a task file within one budget, with a delegation policy', async (t) => {
  const m = await startMarket(t, { mint: false });
  await runProvider(t, m, 'prov-a', { kinds: [5930] });
  const { uri } = m.devnet.account('pilot', { fundSats: 1000 });
  await m.devnet.nwc.refresh();
  const dir = tempDir('bazaar-buyer-pilot-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const uriFile = join(dir, 'pilot.nwc');
  writeFileSync(uriFile, uri, { mode: 0o600 });
  const tasks = join(dir, 'tasks.jsonl');
  writeFileSync(
    tasks,
    [
      JSON.stringify({ id: 'build', type: 'sandbox', cmd: ['echo building'], time_limit_secs: 10, complexity: 0.8 }),
      JSON.stringify({ id: 'tiny', type: 'sandbox', cmd: ['echo tiny'], time_limit_secs: 5, complexity: 0.05 }),
      JSON.stringify({ id: 'summary', type: 'text', prompt: 'Summarise the build' }),
      '# a comment line',
      '{"type": "patch"}',
      '',
    ].join('\n'),
  );
  const before = m.devnet.network.balance('pilot');
  const r = await bazaar(['buyer', 'autopilot', '--tasks', tasks, '--budget', '50', '--keep-local-below', '0.1', '--delegate', 'sandbox,patch', '--json', '--data', join(dir, 'buyer'), '--relay', m.relay.url, '--nwc-uri-file', uriFile]);
  t.equal(r.code, 2, `an invalid task line makes exit 2 ${r.stderr.slice(-300)}`);
  const doc = JSON.parse(r.stdout) as { budgetMsats: number; spentMsats: number; tasks: { id: string; state: string; outcome?: string; reason?: string; allocationMsats?: number; spentMsats?: number; localExitCode?: number }[] };
  const by = (id: string) => doc.tasks.find((x) => x.id === id);
  t.match(by('build'), { state: 'done', outcome: 'paid' }, 'delegated and paid');
  t.ok((by('build')?.allocationMsats ?? 0) <= 50_000 && (by('build')?.allocationMsats ?? 0) > 0, 'within its allocation');
  t.match(by('tiny'), { state: 'kept-local', outcome: 'local', localExitCode: 0 }, 'below the complexity threshold: run in our own sandbox');
  t.match(by('summary'), { state: 'kept-local', reason: /text tasks are not delegated/ }, 'a type not allowed to delegate');
  t.ok(doc.tasks.some((x) => x.state === 'invalid' && /repo: required/.test(x.reason ?? '')), 'the bad line is reported');
  t.equal(doc.spentMsats, before - m.devnet.network.balance('pilot'), 'what it says it spent is what left the wallet');
  t.ok(doc.spentMsats <= 50_000, 'within the total budget');
  // Restarted on the same file: nothing is repeated, nothing more is spent.
  const again = await bazaar(['buyer', 'autopilot', '--tasks', tasks, '--budget', '50', '--json', '--data', join(dir, 'buyer'), '--relay', m.relay.url, '--nwc-uri-file', uriFile]);
  t.equal(JSON.parse(again.stdout).spentMsats, doc.spentMsats, 'a restart repeats nothing');
  t.equal(m.devnet.network.balance('pilot'), before - doc.spentMsats);
  // As a person sees a fresh file: a line per task, kept-local ones with why, the invalid line apart.
  const fresh = join(dir, 'fresh.jsonl');
  writeFileSync(fresh, [JSON.stringify({ id: 'small', type: 'sandbox', cmd: ['echo small'], time_limit_secs: 5, complexity: 0.05 }), '{"type": "bogus"}', ''].join('\n'));
  const human = await bazaar(['buyer', 'autopilot', '--tasks', fresh, '--budget', '10', '--keep-local-below', '0.1', '--data', join(dir, 'buyer'), '--relay', m.relay.url, '--nwc-uri-file', uriFile]);
  t.equal(human.code, 2);
  t.match(human.stderr, /◆ SandboxRun echo small: kept local — complexity 0\.05 is below 0\.1; ran in our own sandbox \(exit 0\)/);
  t.match(human.stderr, /✗ line 2: type: must be one of/);
  t.match(human.stderr, /autopilot: 1 task \(and 1 invalid line\), spent 0 sats of 10 sats/);
});
