// The escape suite against bubblewrap, plus bwrap specifics: cgroup metering, the rlimit
// fallback, and setup errors reported as errors rather than job results.
import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { BwrapRunner } from '../src/sandbox/bwrap-runner.ts';
import { SandboxError } from '../src/sandbox/runner.ts';
import { execHost } from '../src/sandbox/proc.ts';
import { escapeSuite } from './sandbox-escape-suite.ts';
import { proxySuite } from './sandbox-proxy-suite.ts';

const log = pino({ level: process.env.BAZAAR_TEST_LOG ?? 'silent' });
const runner = new BwrapRunner({ log });
const cgroups = await runner.cgroupSupport();

t.test('bubblewrap escape suite', async (t) => {
  const cg = await runner.cgroupSupport();
  t.comment(`limits through ${cg.version ? `cgroup v${cg.version}` : `rlimits (${cg.why ?? ''})`}`);
  escapeSuite(t, runner);
});

t.test('bubblewrap and the credential proxy', async (t) => {
  proxySuite(t, runner);
});

t.test('cgroup metering: cpu-seconds and peak memory are measured', { skip: cgroups.version ? false : `no usable cgroups here: ${cgroups.why ?? ''}` }, async (t) => {
  const r = await runner.run({ cmd: ['python3', '-c', 'b = b"x" * (48 * 1024 * 1024)\nx = 0\nfor i in range(3_000_000): x += i\nprint(len(b))'] });
  t.equal(r.exitCode, 0, r.stderr);
  t.ok(r.cpuSeconds !== null && r.cpuSeconds > 0.05, `cpu ${r.cpuSeconds}`);
  t.ok(r.peakMemoryBytes !== null && r.peakMemoryBytes > 48 * 1024 * 1024, `peak ${r.peakMemoryBytes}`);
});

t.test('cpu-seconds limit ends a busy job as timeout', async (t) => {
  const r = await runner.run({ cmd: ['sh', '-c', 'while :; do :; done'], limits: { cpuSeconds: 1, wallMs: 120_000, killGraceMs: 200 } });
  t.equal(r.reason, 'timeout');
  t.ok(r.wallMs < 110_000, `stopped by the cpu limit, not the wall clock (${r.wallMs} ms)`);
  if (r.cpuSeconds !== null) t.ok(r.cpuSeconds >= 1, `used ${r.cpuSeconds} cpu-seconds`);
});

t.test('rlimit fallback (cgroups off) still caps processes and memory', async (t) => {
  const fallback = new BwrapRunner({ log, cgroups: 'off' });
  t.equal((await fallback.cgroupSupport()).version, null);
  const ok = await fallback.run({ cmd: ['sh', '-c', 'echo hi'] });
  t.equal(ok.stdout, 'hi\n');
  t.ok(ok.cpuSeconds === null || ok.cpuSeconds >= 0);
  const mem = await fallback.run({ cmd: ['python3', '-c', 'b = b"x" * (512 * 1024 * 1024)'], limits: { memoryBytes: 64 * 1024 * 1024 } });
  t.not(mem.exitCode, 0, 'allocation beyond the data limit fails');
  t.match(mem.stderr, /MemoryError/);
});

t.test('seccomp deny-list: kernel attack surface is refused, ordinary syscalls work', { skip: process.arch === 'x64' ? false : 'the seccomp filter is built for x86_64 only' }, async (t) => {
  const py = [
    'import ctypes',
    'libc = ctypes.CDLL(None, use_errno=True)',
    "for name, nr in [('getppid', 110), ('bpf', 321), ('keyctl', 250), ('perf_event_open', 298), ('userfaultfd', 323), ('unshare', 272), ('mount', 165), ('io_uring_setup', 425)]:",
    '    ret = libc.syscall(nr, 0, 0, 0, 0, 0)',
    "    print(name, 'errno', ctypes.get_errno() if ret == -1 else 0)",
  ].join('\n');
  const r = await runner.run({ cmd: ['python3', '-c', py] });
  t.equal(r.exitCode, 0, r.stderr);
  t.same(r.stdout.trim().split('\n'), [
    'getppid errno 0', 'bpf errno 1', 'keyctl errno 1', 'perf_event_open errno 1', 'userfaultfd errno 1',
    'unshare errno 1', 'mount errno 1', 'io_uring_setup errno 38',
  ]);
  const unfiltered = new BwrapRunner({ log, seccomp: false });
  const u = await unfiltered.run({ cmd: ['python3', '-c', py] });
  // unshare(0) is a no-op that succeeds: only the filter makes it fail.
  t.match(u.stdout, /^unshare errno 0$/m, 'without the filter the same call succeeds');
});

t.test('bwrap: generated passwd/group/hosts, nothing of the host accounts', async (t) => {
  const r = await runner.run({ cmd: ['sh', '-c', 'cut -d: -f1 /etc/passwd; cut -d: -f1 /etc/group; id -un; cat /etc/hosts; ls /etc/shadow'] });
  t.equal(r.stdout, 'root\nnobody\nroot\nnogroup\nnobody\n127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost\n');
  t.match(r.stderr, /shadow'?: No such file or directory/);
});

t.test('a single file can be mounted, read-only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bazaar-file-mount-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'input.json'), '{"n":1}\n', { mode: 0o644 });
  const r = await runner.run({ cmd: ['sh', '-c', 'cat /input.json; echo x > /input.json'], mounts: [{ hostPath: join(dir, 'input.json'), sandboxPath: '/input.json', readOnly: true }] });
  t.equal(r.stdout, '{"n":1}\n', 'a file under a 0700 directory is readable by the sandbox user');
  t.match(r.stderr, /Read-only file system/);
});

t.test('unprivileged provider: bwrap as the current user, limits through rlimits', { skip: process.getuid?.() === 0 ? false : 'needs root to switch to an unprivileged user for this test' }, async (t) => {
  const fixture = new URL('./fixtures/sandbox-unprivileged.ts', import.meta.url).pathname;
  const r = await execHost('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import=tsx', fixture], {
    cwd: new URL('../../..', import.meta.url).pathname, env: { PATH: process.env.PATH, HOME: '/tmp' }, timeoutMs: 120_000,
  });
  t.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  t.equal(out.uid, 65534);
  t.equal(out.cgroups, null, 'no cgroups without root');
  t.match(out.plain, { reason: 'exit', exitCode: 0, stdout: /^65534\n1024\n.*No such file or directory\nok\n$/s });
  t.not(out.memory.exitCode, 0, 'the data rlimit stops the allocation');
  t.match(out.memory.stderr, /MemoryError/);
  t.equal(out.loop.reason, 'timeout');
});

t.test('bad input and setup failures are errors, not results', async (t) => {
  await t.rejects(runner.run({ cmd: [] }), SandboxError);
  await t.rejects(runner.run({ cmd: ['true'], limits: { wallMs: -1 } }), /invalid limit wallMs/);
  await t.rejects(runner.run({ cmd: ['true'], env: { 'BAD-NAME': 'x' } }), /invalid env name/);
  await t.rejects(runner.run({ cmd: ['true'], repo: '/nonexistent/repo' }), /mount source does not exist/);
  await t.rejects(runner.run({ cmd: ['true'], cwd: 'relative' }), /invalid sandbox path/);
  await t.rejects(new BwrapRunner({ log, bwrapPath: '/nonexistent/bwrap' }).run({ cmd: ['true'] }), /bubblewrap is not usable/);
  const missing = await runner.run({ cmd: ['definitely-not-a-command'] });
  t.equal(missing.exitCode, 127, 'a missing command is the job failing, reported as a result (127)');
});
