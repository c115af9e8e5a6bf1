// The credential proxy seen from inside a sandbox: an allowlisted (local) upstream gets the
// request with the key added; any other host is refused; the key is nowhere in the sandbox.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Test } from 'tap';
import { pino } from 'pino';
import { startCredentialProxy, PROXY_SANDBOX_SOCKET } from '../src/sandbox/credential-proxy.ts';
import type { Runner } from '../src/sandbox/runner.ts';

const CLIENT = `
const http = require('http');
const [host, path, method] = process.argv.slice(1);
const req = http.request({ socketPath: process.env.BAZAAR_PROXY_SOCKET, host, path, method: method || 'POST', headers: { host, 'x-api-key': 'sandbox-guess', 'content-type': 'application/json' } }, (res) => {
  let body = '';
  res.on('data', (c) => body += c);
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body })));
});
req.on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));
req.end(method === 'GET' ? undefined : JSON.stringify({ prompt: 'hi' }));
`;

export function proxySuite(t: Test, runner: Runner): void {
  t.test('credential proxy: key added for the allowlisted host, others refused, key never in the sandbox', async (t) => {
    const key = `sk-test-${randomBytes(12).toString('hex')}`;
    const seen: Array<{ method?: string; url?: string; headers: IncomingHttpHeaders; body: string }> = [];
    const upstream: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, echo: body }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => upstream.close(() => r())));
    const port = (upstream.address() as { port: number }).port;

    const proxy = await startCredentialProxy({
      log: pino({ level: 'silent' }),
      routes: [{ host: 'api.model.test', upstream: `http://127.0.0.1:${port}/base`, headers: { 'x-api-key': key } }],
    });
    t.teardown(() => proxy.close());
    const run = (args: string[]) =>
      runner.run({ cmd: ['node', '-e', CLIENT, ...args], mounts: [proxy.mount], env: { ...proxy.sandboxEnv }, limits: { wallMs: 30_000 } });

    const ok = await run(['api.model.test', '/v1/messages']);
    t.equal(ok.exitCode, 0, ok.stderr);
    t.same(JSON.parse(ok.stdout), { status: 200, body: JSON.stringify({ ok: true, echo: '{"prompt":"hi"}' }) });
    t.equal(seen.length, 1, 'the upstream got exactly one request');
    t.equal(seen[0].url, '/base/v1/messages');
    t.equal(seen[0].headers['x-api-key'], key, 'the key was added (and the sandbox guess replaced)');
    t.equal(seen[0].body, '{"prompt":"hi"}');

    for (const host of ['evil.test', `127.0.0.1:${port}`, 'localhost']) {
      const refused = await run([host, '/v1/messages']);
      t.equal(JSON.parse(refused.stdout).status, 403, `${host} is refused`);
    }
    t.equal(seen.length, 1, 'no refused request reached the upstream');

    const leak = await runner.run({
      cmd: ['sh', '-c', `env; cat /proc/self/environ; grep -rl "${key}" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr --exclude-dir=dev 2>/dev/null; echo scanned`],
      mounts: [proxy.mount],
      env: { ...proxy.sandboxEnv },
      limits: { wallMs: 60_000 },
    });
    t.match(leak.stdout, /scanned\n$/);
    t.notMatch(leak.stdout + leak.stderr, key, "the key is in neither the sandbox's env nor its files");
    t.match(leak.stdout, `BAZAAR_PROXY_SOCKET=${PROXY_SANDBOX_SOCKET}`);
  });
}
