// The sandbox's small parts on their own: bounded output collection, the cgroup v2 file
// layout (this host has only v1 controllers, so v2 runs against a directory shaped like
// cgroupfs), the credential proxy's HTTP edge cases, and the cross-process file lock.
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { detectCgroups, JobCgroup } from '../src/sandbox/cgroup.ts';
import { startCredentialProxy } from '../src/sandbox/credential-proxy.ts';
import { withFileLock } from '../src/sandbox/lock.ts';
import { OutputStream } from '../src/sandbox/output.ts';

t.test('OutputStream: capture cap, full-stream hash, lines across chunks and UTF-8 splits', async (t) => {
  const lines: string[] = [];
  const s = new OutputStream(8, (l) => lines.push(l));
  const euro = Buffer.from('€'); // 3 bytes, split across chunks below
  const chunks = [Buffer.from('ab\ncd'), euro.subarray(0, 1), Buffer.concat([euro.subarray(1), Buffer.from('\n\nlast')])];
  for (const c of chunks) s.push(c);
  const r = s.finish();
  const all = Buffer.concat(chunks);
  t.equal(r.bytes, all.length);
  t.equal(r.sha256, createHash('sha256').update(all).digest('hex'));
  t.equal(r.text, all.subarray(0, 8).toString('utf8'));
  t.equal(r.truncated, true);
  t.same(lines, ['ab', 'cd€', '', 'last']);

  const long: string[] = [];
  const l = new OutputStream(4, (x) => long.push(x));
  l.push(Buffer.alloc(200 * 1024, 'x'));
  l.push(Buffer.from('\nshort\n'));
  l.finish();
  t.equal(long.length, 2);
  t.equal(long[0].length, 64 * 1024, 'a long line is cut at 64 KiB');
  t.equal(long[1], 'short');

  const exact = new OutputStream(3);
  exact.push(Buffer.from('abc'));
  t.match(exact.finish(), { text: 'abc', truncated: false });
});

t.test('cgroup v2 layout (a directory shaped like the unified hierarchy)', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'bazaar-cg2-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n');
  await writeFile(join(root, 'cgroup.subtree_control'), '');
  const support = await detectCgroups(root);
  t.same(support, { version: 2, root });
  const cg = await JobCgroup.create(support, 'bazaar-sandbox', 'job1', { memoryBytes: 1 << 26, pids: 32 });
  const dir = join(root, 'bazaar-sandbox', 'job1');
  t.equal(await readFile(join(dir, 'memory.max'), 'utf8'), String(1 << 26));
  t.equal(await readFile(join(dir, 'memory.swap.max'), 'utf8'), '0');
  t.equal(await readFile(join(dir, 'pids.max'), 'utf8'), '32');
  t.match(await readFile(join(root, 'bazaar-sandbox', 'cgroup.subtree_control'), 'utf8'), /\+memory \+pids/);
  t.same(cg.procsFiles, [join(dir, 'cgroup.procs')]);
  await writeFile(join(dir, 'cpu.stat'), 'usage_usec 1500000\nuser_usec 1000000\n');
  await writeFile(join(dir, 'memory.peak'), '123456\n');
  await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
  t.equal(await cg.cpuSeconds(), 1.5);
  t.equal(await cg.peakMemoryBytes(), 123456);
  t.equal(await cg.oomKills(), 1);

  const none = await mkdtemp(join(tmpdir(), 'bazaar-cg0-'));
  t.teardown(() => rm(none, { recursive: true, force: true }));
  await writeFile(join(none, 'cgroup.controllers'), 'cpu io\n');
  t.match(await detectCgroups(none), { version: null, why: /lacks the memory, pids controller/ });
  await mkdir(join(none, 'sub'));
  t.match(await detectCgroups(join(none, 'sub')), { version: null, why: /no cgroup v1 memory controller/ });
});

t.test('credential proxy edge cases', async (t) => {
  const upstream: Server = createServer((req, res) => {
    res.writeHead(200, { 'x-seen-connection': String(req.headers.connection ?? ''), 'x-seen-proxy-auth': String(req.headers['proxy-authorization'] ?? '') });
    req.resume();
    req.on('end', () => res.end(req.url));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => upstream.close(() => r())));
  const port = (upstream.address() as { port: number }).port;
  const proxy = await startCredentialProxy({
    log: pino({ level: 'silent' }),
    maxBodyBytes: 1024,
    routes: [
      { host: 'api.test', upstream: `http://127.0.0.1:${port}`, headers: { authorization: 'Bearer sk-x' } },
      { host: 'down.test', upstream: 'http://127.0.0.1:1', headers: {} },
    ],
  });
  t.teardown(() => proxy.close());
  t.equal((await stat(proxy.socketPath)).mode & 0o777, 0o666, 'the sandbox user can connect');

  const call = (opts: { host: string; path: string; method?: string; headers?: Record<string, string>; body?: Buffer }) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request({ socketPath: proxy.socketPath, path: opts.path, method: opts.method ?? 'GET', headers: { host: opts.host, ...opts.headers } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end(opts.body);
    });

  const abs = await call({ host: 'ignored.test', path: 'http://api.test/v1/x?q=1' });
  t.equal(abs.status, 200, 'absolute-form request targets are routed by their host');
  t.equal(abs.body, '/v1/x?q=1');
  const hop = await call({ host: 'api.test', path: '/h', headers: { 'proxy-authorization': 'Basic abc', connection: 'keep-alive' } });
  t.equal(hop.headers['x-seen-proxy-auth'], '', 'proxy credentials are not forwarded');
  t.equal((await call({ host: 'down.test', path: '/' })).status, 502, 'an unreachable upstream is a 502');
  t.equal((await call({ host: 'api.test', path: '/big', method: 'POST', body: Buffer.alloc(4096, 1) })).status, 413, 'bodies over the cap are refused');
  t.equal((await call({ host: '', path: '/' })).status, 403);

  const connectAnswer = await new Promise<string>((resolve, reject) => {
    const s = connect(proxy.socketPath, () => s.write('CONNECT api.test:443 HTTP/1.1\r\nhost: api.test:443\r\n\r\n'));
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
  t.match(connectAnswer, /^HTTP\/1\.1 405/, 'CONNECT is refused');
});

t.test('file lock: exclusive, and a dead holder does not block', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bazaar-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.lock');
  const order: string[] = [];
  let release!: () => void;
  let entered!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const inside = new Promise<void>((r) => (entered = r));
  const first = withFileLock(path, async () => {
    order.push('first-in');
    entered();
    await held;
    order.push('first-out');
  });
  await inside;
  const second = withFileLock(path, async () => {
    order.push('second');
  });
  // The second caller is now waiting on a held lock; let the first go.
  release();
  await Promise.all([first, second]);
  t.same(order, ['first-in', 'first-out', 'second']);

  await writeFile(path, '999999999');
  t.equal(await withFileLock(path, async () => 'ran'), 'ran', 'a lock held by a dead pid is broken');
  await t.rejects(withFileLock(path, async () => undefined, { signal: AbortSignal.abort() }), /abort/i);
});
