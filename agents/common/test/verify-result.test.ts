// The shared verification (buyer and arbiter) on real parts: a git repository, bubblewrap,
// signed events. PatchGen replayed (good and broken patches), a repository we cannot reach and a
// sandbox that cannot start give "unavailable", never an outcome; SandboxRun re-runs compare exit
// codes always and output hashes only where the command reproduces itself.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { finalizeEvent, generateSecretKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildPatchGenRequest, buildPatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { buildSandboxRunRequest, buildSandboxRunResult } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { sha256Hex } from '@bazaar/dvm-kinds/hash';
import { BwrapRunner } from '../src/sandbox/bwrap-runner.ts';
import { runCommandSequence } from '../src/sandbox/replay.ts';
import { ReplayUnavailableError, verifyResult } from '../src/verify/verify-result.ts';

const log = pino({ level: 'silent' });
const runner = new BwrapRunner({ log });
const buyer = generateSecretKey();
const provider = generateSecretKey();
const sign = (tpl: Parameters<typeof finalizeEvent>[0], sk: Uint8Array) => finalizeEvent(tpl, sk) as NostrEvent;

const dir = mkdtempSync(join(tmpdir(), 'bazaar-verify-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const repo = join(dir, 'repo');
const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { cwd: repo, encoding: 'utf8' });
execFileSync('mkdir', ['-p', repo]);
git('init', '-q', '-b', 'main');
writeFileSync(join(repo, 'sum.mjs'), 'export function add(a, b) {\n  return a - b;\n}\n');
writeFileSync(join(repo, 'test.mjs'), "import { add } from './sum.mjs';\nif (add(2, 3) !== 5) process.exit(1);\n");
git('add', '-A');
git('commit', '-q', '-m', 'bug');

const opts = (extra: Record<string, unknown> = {}) => ({ runner, logger: log, workDir: join(dir, 'work'), repoCacheDir: join(dir, 'repos'), ...extra });
const FIX = 'diff --git a/sum.mjs b/sum.mjs\n--- a/sum.mjs\n+++ b/sum.mjs\n@@ -1,3 +1,3 @@\n export function add(a, b) {\n-  return a - b;\n+  return a + b;\n }\n';

function patchJob(repoUrl: string, patch: string) {
  const request = sign(buildPatchGenRequest({ repoUrl, issueBody: 'add subtracts', params: { repo_ref: 'main', issue_title: 'add', test_cmd: 'node test.mjs', time_limit_secs: 60, allow_path: ['*.mjs'] } }), buyer);
  const result = sign(buildPatchGenResult(request, { patch, testExitCode: 0 }), provider);
  return { request, result };
}

t.test('PatchGen: the fix passes, a broken patch fails the replayed tests', async (t) => {
  const good = patchJob(`file://${repo}`, FIX);
  const v = await verifyResult(good.request, good.result, opts());
  t.ok(v.ok, JSON.stringify(v.checks));
  t.ok(v.checks.some((c) => c.name === 'tests pass on our replay' && c.passed));
  t.match(v.replay.test, { command: 'node test.mjs', exitCode: 0 });

  const broken = patchJob(`file://${repo}`, FIX.replace('a + b', 'a * b'));
  const b = await verifyResult(broken.request, broken.result, opts());
  t.notOk(b.ok);
  t.same(b.problems.map((p) => p.path), ['test_exit_code'], 'the failed check is named by its path');
  t.match(b.replay.test, { exitCode: 1 });
});

t.test('a repository we cannot reach, a sandbox that cannot start: unavailable, no outcome', async (t) => {
  const gone = patchJob(`file://${join(dir, 'no-such-repo')}`, FIX);
  const e1 = await verifyResult(gone.request, gone.result, opts()).catch((e: unknown) => e);
  t.ok(e1 instanceof ReplayUnavailableError, String(e1));
  t.equal((e1 as ReplayUnavailableError).reason, 'repository');

  const good = patchJob(`file://${repo}`, FIX);
  const e2 = await verifyResult(good.request, good.result, opts({ runner: new BwrapRunner({ log, bwrapPath: join(dir, 'no-bwrap-here') }) })).catch((e: unknown) => e);
  t.ok(e2 instanceof ReplayUnavailableError, String(e2));
  t.equal((e2 as ReplayUnavailableError).reason, 'sandbox');

  const e3 = await verifyResult(good.request, good.result, opts({ allowFileRepos: false })).catch((e: unknown) => e);
  t.equal((e3 as ReplayUnavailableError).reason, 'repository', 'file repositories refused when not allowed');
  t.match((e3 as Error).message, /file repositories are not accepted/);
});

t.test('SandboxRun re-run: exit codes always, hashes only where deterministic', async (t) => {
  const cmds = ['echo fixed', 'head -c 16 /dev/urandom | od -An -tx1'];
  const request = sign(buildSandboxRunRequest({ params: { cmd: cmds, time_limit_secs: 20 } }), buyer);
  const honest = await runCommandSequence(runner, { cmds, timeLimitSecs: 20, workRoot: dir });
  const result = sign(buildSandboxRunResult(request, honest), provider);
  const v = await verifyResult(request, result, opts({ rerun: true }));
  t.ok(v.ok, `random output is not held against the provider: ${JSON.stringify(v.problems)}`);
  t.same((v.replay.rerun as { nondeterministic?: string[] }).nondeterministic, ['content.commands[1].stdout_sha256']);

  // A lie about a deterministic command: its text and hash agree, but the re-run reproduces something else.
  const lie = { ...honest, commands: honest.commands.map((c, i) => (i === 0 ? { ...c, stdout: 'forged\n', stdout_sha256: sha256Hex('forged\n'), stdout_bytes: 7 } : c)) };
  const bad = await verifyResult(request, sign(buildSandboxRunResult(request, lie), provider), opts({ rerun: true }));
  t.notOk(bad.ok);
  t.same(bad.problems.map((p) => p.path), ['content.commands[0].stdout_sha256']);

  // A different exit code is always a failure.
  const failing = ['echo fixed', 'exit 3'];
  const req2 = sign(buildSandboxRunRequest({ params: { cmd: failing, time_limit_secs: 20 } }), buyer);
  const real2 = await runCommandSequence(runner, { cmds: failing, timeLimitSecs: 20, workRoot: dir });
  t.equal(real2.totals.exit_code, 3);
  const claimed = { commands: real2.commands.map((c, i) => (i === 1 ? { ...c, cmd: failing[1], exit_code: 0 } : c)), totals: { ...real2.totals, exit_code: 0 } };
  const r2 = await verifyResult(req2, sign(buildSandboxRunResult(req2, claimed), provider), opts({ rerun: true }));
  t.notOk(r2.ok);
  t.ok(r2.problems.some((p) => p.path === 'content.commands[1].exit_code'), JSON.stringify(r2.problems));
});
