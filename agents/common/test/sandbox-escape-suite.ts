// One escape suite, run against every runner: each attempt must be contained and end
// with the right reason. Used by sandbox-bwrap.test.ts and sandbox-container.test.ts.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { applyPatch } from '../src/sandbox/apply-patch.ts';
import { listProcesses } from '../src/sandbox/proc.ts';
import type { Runner } from '../src/sandbox/runner.ts';
import { execHost } from '../src/sandbox/proc.ts';

/** A directory the sandbox user can read (mkdtemp makes 0700 ones). */
export async function sharedTmp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  await chmod(d, 0o755);
  return d;
}

async function makeRepo(): Promise<string> {
  const repo = await sharedTmp('bazaar-escape-repo-');
  await writeFile(join(repo, 'README.md'), 'hello\n');
  await mkdir(join(repo, 'src'));
  await writeFile(join(repo, 'src', 'a.txt'), 'one\ntwo\nthree\n');
  const git = (...a: string[]) => execHost('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a]);
  await symlink('/etc', join(repo, 'etc-link'));
  await git('init', '-q');
  await git('add', '.');
  await git('commit', '-qm', 'init');
  return repo;
}

/** A unique number usable both as a sleep duration and as a recognizable argv entry. */
const newMarker = (): string => `${900 + Math.floor(Math.random() * 99)}.${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}`;

/** Pids whose command line contains the marker. */
async function survivors(marker: string): Promise<string[]> {
  return (await listProcesses()).filter((p) => p.cmdline.includes(marker) && p.pid !== process.pid).map((p) => `${p.pid} ${p.cmdline}`);
}

export function escapeSuite(t: Test, runner: Runner): void {
  let repo: string;
  t.before(async () => {
    repo = await makeRepo();
  });
  t.teardown(() => rm(repo, { recursive: true, force: true }));

  t.test('plain run: exit code, stdout/stderr with hashes, stdin, line streaming, clean env', async (t) => {
    const lines: string[] = [];
    const r = await runner.run(
      { cmd: ['sh', '-c', 'cat; echo out-2; echo err-1 >&2; id -u; exit 7'], stdin: 'in-1\n', env: { JOB_VAR: 'x' } },
      { onStdoutLine: (l) => lines.push(l) },
    );
    t.equal(r.reason, 'exit');
    t.equal(r.exitCode, 7);
    t.equal(r.stdout, 'in-1\nout-2\n65534\n');
    t.equal(r.stderr, 'err-1\n');
    t.equal(r.stdoutSha256, createHash('sha256').update(r.stdout).digest('hex'));
    t.same(lines, ['in-1', 'out-2', '65534']);
    t.ok(r.wallMs >= 0);
  });

  t.test('TCP connection to a listener on the host 127.0.0.1 fails', async (t) => {
    let connections = 0;
    const server: Server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const r = await runner.run({
      cmd: ['node', '-e', `require('net').connect(${port}, '127.0.0.1').on('connect', () => { console.log('CONNECTED'); process.exit(0) }).on('error', (e) => { console.log('ERR', e.code); process.exit(3) })`],
      limits: { wallMs: 20_000 },
    });
    t.equal(r.reason, 'exit');
    t.equal(r.exitCode, 3, r.stdout + r.stderr);
    t.match(r.stdout, /^ERR (ECONNREFUSED|ENETUNREACH|EHOSTUNREACH)/);
    t.equal(connections, 0, 'the host listener saw no connection');
  });

  t.test('resolving a hostname fails (localhost still resolves)', async (t) => {
    const r = await runner.run({
      cmd: ['node', '-e', `require('dns').lookup('example.com', (e, a) => { console.log(e ? 'ERR ' + e.code : 'ADDR ' + a); process.exit(e ? 3 : 0) })`],
      limits: { wallMs: 20_000 },
    });
    t.equal(r.exitCode, 3, r.stdout + r.stderr);
    t.match(r.stdout, /^ERR (ENOTFOUND|EAI_AGAIN)/);
    const local = await runner.run({ cmd: ['getent', 'hosts', 'localhost'] });
    t.match(local.stdout, /^(127\.0\.0\.1|::1)\s+localhost/);
  });

  t.test('writes to the repo, /etc, /usr and outside the workspace fail; the workspace and /tmp work', async (t) => {
    const script = 'for p in /repo/pwned /etc/pwned /usr/pwned /pwned /proc/pwned /dev/pwned /workspace/ok /tmp/ok /dev/shm/ok; do if echo x > $p 2>/dev/null; then echo "W $p"; else echo "D $p"; fi; done; echo x > /dev/null && echo devnull-ok';
    const r = await runner.run({ cmd: ['sh', '-c', script], repo });
    t.equal(r.exitCode, 0, r.stderr);
    t.same(r.stdout.trim().split('\n'), ['D /repo/pwned', 'D /etc/pwned', 'D /usr/pwned', 'D /pwned', 'D /proc/pwned', 'D /dev/pwned', 'W /workspace/ok', 'W /tmp/ok', 'W /dev/shm/ok', 'devnull-ok']);
    t.notOk((await readdir(repo)).includes('pwned'), 'the host repo is unchanged');
  });

  t.test("the provider's data directory and environment are not visible", async (t) => {
    const secret = `sk-secret-${randomBytes(8).toString('hex')}`;
    const dataDir = await sharedTmp('bazaar-provider-data-');
    t.teardown(() => rm(dataDir, { recursive: true, force: true }));
    await writeFile(join(dataDir, 'wallet.key'), secret, { mode: 0o644 });
    process.env.BAZAAR_TEST_PROVIDER_SECRET = secret;
    t.teardown(() => {
      delete process.env.BAZAAR_TEST_PROVIDER_SECRET;
    });
    const r = await runner.run({
      cmd: ['sh', '-c', `cat ${dataDir}/wallet.key; ls ${dataDir}; env; cat /proc/1/environ; cat /proc/*/environ; ls / /root /home; grep -r sk-secret /etc /tmp /workspace 2>/dev/null; true`],
    });
    t.equal(r.reason, 'exit');
    t.notMatch(r.stdout + r.stderr, secret, 'the secret appears nowhere in the output');
    t.match(r.stderr, /wallet\.key: No such file or directory/);
    t.notMatch(r.stdout, /BAZAAR_TEST_PROVIDER_SECRET/);
  });

  t.test('fork bomb: processes are capped by the pids limit and the tree is gone afterwards', async (t) => {
    const marker = newMarker();
    // 200 forks of sleeping children under pids=32: most must fail; count what is alive at once.
    const py = [
      'import os, time',
      'kids = fails = 0',
      'for i in range(200):',
      '    try:',
      '        pid = os.fork()',
      '    except OSError:',
      '        fails += 1',
      '        continue',
      '    if pid == 0:',
      '        time.sleep(600)',
      '        os._exit(0)',
      '    kids += 1',
      "print('alive', len([p for p in os.listdir('/proc') if p.isdigit()]), 'kids', kids, 'fails', fails)",
    ].join('\n');
    const counting = await runner.run({ cmd: ['python3', '-c', py, marker], limits: { pids: 32, wallMs: 20_000 } });
    const m = /alive (\d+) kids (\d+) fails (\d+)/.exec(counting.stdout);
    t.ok(m, counting.stdout + counting.stderr.slice(0, 300));
    t.ok(Number(m?.[1]) <= 32, `at most 32 processes alive at once: ${counting.stdout}`);
    t.ok(Number(m?.[2]) > 2 && Number(m?.[2]) < 32, 'some forks succeeded, most did not');
    t.ok(Number(m?.[3]) > 150, 'forks beyond the cap failed');
    t.same(await survivors(marker), [], 'the sleepers are gone with the sandbox');
    // The classic bomb; the main process becomes a sleeper so only the wall clock ends the run.
    const bomb = await runner.run({ cmd: ['sh', '-c', 'sh -c "b() { b | b & }; b" "$0" & exec sleep "$0"', marker], limits: { pids: 64, wallMs: 2_000, killGraceMs: 200 } });
    t.equal(bomb.reason, 'timeout');
    t.same(await survivors(marker), [], 'no process of the bomb survives');
  });

  t.test('allocating beyond the memory limit ends as oom', async (t) => {
    const r = await runner.run({
      cmd: ['python3', '-c', 'b = b"x" * (512 * 1024 * 1024); print(len(b))'],
      limits: { memoryBytes: 64 * 1024 * 1024, wallMs: 30_000 },
    });
    t.equal(r.reason, 'oom', `${r.exitCode} ${r.stderr}`);
    t.notMatch(r.stdout, /536870912/);
  });

  t.test('infinite loop: timeout, the whole tree is gone, no orphan left (ps)', async (t) => {
    const marker = newMarker();
    const r = await runner.run({
      cmd: ['sh', '-c', '(setsid sh -c "while :; do :; done" "$0" &) ; sleep "$0" & while :; do :; done', marker],
      limits: { wallMs: 1_500, killGraceMs: 300 },
    });
    t.equal(r.reason, 'timeout');
    t.ok(r.wallMs >= 1_500 && r.wallMs < 10_000, `stopped soon after the limit (${r.wallMs} ms)`);
    t.same(await survivors(marker), [], 'ps shows no process of the job');
    const ps = await execHost('ps', ['-eo', 'pid,args']);
    t.notMatch(ps.stdout, marker, 'ps agrees');
  });

  t.test('a process that ignores SIGTERM is killed after the grace period', async (t) => {
    const marker = newMarker();
    const r = await runner.run({
      cmd: ['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep "$0"; done', marker],
      limits: { wallMs: 1_000, killGraceMs: 500 },
    });
    t.equal(r.reason, 'timeout');
    t.equal(r.stdout, 'ready\n');
    t.same(await survivors(marker), []);
  });

  t.test('graceful stop: a job that handles SIGTERM gets it before the kill', async (t) => {
    const r = await runner.run({
      cmd: ['sh', '-c', 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done'],
      limits: { wallMs: 1_000, killGraceMs: 20_000 },
    });
    t.equal(r.reason, 'timeout');
    t.equal(r.stdout, 'ready\ngot-term\n');
    t.ok(r.wallMs < 15_000, `ended by its own handler, not the kill (${r.wallMs} ms)`);
  });

  t.test('cpu-seconds are measured even for a short job', async (t) => {
    const r = await runner.run({ cmd: ['python3', '-c', 'x = 0\nfor i in range(2_000_000): x += i\nprint(x > 0)'] });
    t.equal(r.stdout, 'True\n', r.stderr);
    t.ok(r.cpuSeconds !== null && r.cpuSeconds > 0.02 && r.cpuSeconds < 60, `cpu ${String(r.cpuSeconds)}`);
  });

  t.test('abort signal: reason killed, tree gone', async (t) => {
    const marker = newMarker();
    const ac = new AbortController();
    const r = await runner.run(
      { cmd: ['sh', '-c', 'echo started; sleep "$0"', marker], limits: { killGraceMs: 200 } },
      { signal: ac.signal, onStdoutLine: (l) => l === 'started' && ac.abort() },
    );
    t.equal(r.reason, 'killed');
    t.same(await survivors(marker), []);
  });

  t.test('100 MB of stdout: output-limit past the cap; memory stays flat when allowed through', async (t) => {
    const limited = await runner.run({ cmd: ['head', '-c', String(100 * 1024 * 1024), '/dev/zero'], limits: { outputBytes: 8 * 1024 * 1024 } });
    t.equal(limited.reason, 'output-limit');
    t.ok(limited.stdoutBytes > 8 * 1024 * 1024 && limited.stdoutBytes < 100 * 1024 * 1024, `stopped early (${limited.stdoutBytes} bytes)`);
    t.equal(Buffer.byteLength(limited.stdout), 64 * 1024, 'only the capture cap is kept');
    t.ok(limited.stdoutTruncated);

    const before = process.memoryUsage().rss;
    let peak = before;
    let lines = 0;
    const full = await runner.run(
      { cmd: ['sh', '-c', 'yes "$(printf "%01023d" 0 | tr 0 a)" | head -c 104857600'], limits: { outputBytes: 200 * 1024 * 1024, wallMs: 60_000 } },
      { onStdoutLine: () => { if (++lines % 4096 === 0) peak = Math.max(peak, process.memoryUsage().rss); } },
    );
    t.equal(full.reason, 'exit');
    t.equal(full.stdoutBytes, 100 * 1024 * 1024, '100 MiB in lines of 1024 bytes');
    const expect = createHash('sha256');
    const line = Buffer.from(`${'a'.repeat(1023)}\n`);
    for (let i = 0; i < 102400; i++) expect.update(line);
    t.equal(full.stdoutSha256, expect.digest('hex'), 'sha256 over the full stream');
    t.equal(lines, 102400);
    t.ok(peak - before < 64 * 1024 * 1024, `rss grew by ${Math.round((peak - before) / 1048576)} MiB`);
  });

  t.test('patches: a symlink to /etc/passwd is rejected; a clean patch applies inside the sandbox', async (t) => {
    const ws = await sharedTmp('bazaar-escape-ws-');
    t.teardown(() => rm(ws, { recursive: true, force: true }));
    const evil = [
      'diff --git a/link b/link', 'new file mode 120000', 'index 0000000..e4b4c9a', '--- /dev/null', '+++ b/link', '@@ -0,0 +1 @@',
      '+/etc/passwd', '\\ No newline at end of file', '',
    ].join('\n');
    const rejected = await applyPatch(runner, { repo, workspace: ws, patch: evil });
    t.equal(rejected.applied, false);
    t.match(rejected, { stage: 'policy', reason: /symlink "link" points outside the tree/ });
    t.same(await readdir(ws), [], 'nothing ran: the workspace is untouched');

    const good = [
      'diff --git a/src/a.txt b/src/a.txt', '--- a/src/a.txt', '+++ b/src/a.txt', '@@ -1,3 +1,3 @@', ' one', '-two', '+TWO', ' three', '',
    ].join('\n');
    const applied = await applyPatch(runner, { repo, workspace: ws, patch: good });
    t.equal(applied.applied, true, applied.applied ? '' : applied.reason);
    const check = await runner.run({ cmd: ['cat', '/workspace/src/a.txt'], workspace: ws });
    t.equal(check.stdout, 'one\nTWO\nthree\n');

    // Lexically fine, but it writes through a symlink the repo already has: git refuses, in the sandbox.
    const ws3 = await sharedTmp('bazaar-escape-ws3-');
    t.teardown(() => rm(ws3, { recursive: true, force: true }));
    const through = ['diff --git a/etc-link/evil b/etc-link/evil', 'new file mode 100644', 'index 0000000..e69de29', '--- /dev/null', '+++ b/etc-link/evil', '@@ -0,0 +1 @@', '+x', ''].join('\n');
    const beyond = await applyPatch(runner, { repo, workspace: ws3, patch: through });
    t.match(beyond, { applied: false, stage: 'check', reason: /beyond a symbolic link/ });

    const ws2 = await sharedTmp('bazaar-escape-ws2-');
    t.teardown(() => rm(ws2, { recursive: true, force: true }));
    const stale = await applyPatch(runner, { repo, workspace: ws2, patch: good.replace(' three', ' four') });
    t.match(stale, { applied: false, stage: 'check' });
  });
}
