// The credential proxy: a provider-side HTTP proxy that a sandbox reaches only through a
// unix socket bind-mounted into it. It forwards a request only when its Host is on the
// allowlist, to that route's upstream, adding the provider's key header on the way; the
// key lives in this process only, never in the sandbox's env or files.
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Mount } from './runner.ts';

export interface ProxyRoute {
  /** Host (optionally host:port) the sandbox addresses, e.g. 'api.anthropic.com'. */
  readonly host: string;
  /** Where requests for it really go, e.g. 'https://api.anthropic.com'. */
  readonly upstream: string;
  /** Headers added to every forwarded request (the API key); any client-sent value is replaced. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface CredentialProxyOptions {
  readonly routes: readonly ProxyRoute[];
  readonly log: Logger;
  /** Per-request timeout towards the upstream. */
  readonly upstreamTimeoutMs?: number;
  /** Largest request body forwarded. */
  readonly maxBodyBytes?: number;
}

/** Where the socket appears inside the sandbox. */
export const PROXY_SANDBOX_DIR = '/run/bazaar-proxy';
export const PROXY_SANDBOX_SOCKET = `${PROXY_SANDBOX_DIR}/proxy.sock`;

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'host',
]);

export interface CredentialProxy {
  /** Host path of the unix socket. */
  readonly socketPath: string;
  /** The mount that puts the socket into a sandbox (at PROXY_SANDBOX_SOCKET). */
  readonly mount: Mount;
  /** Env to give the sandbox so tools find the socket. */
  readonly sandboxEnv: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

export async function startCredentialProxy(opts: CredentialProxyOptions): Promise<CredentialProxy> {
  const routes = new Map<string, { url: URL; headers: Readonly<Record<string, string>> }>();
  for (const r of opts.routes) {
    const url = new URL(r.upstream);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`invalid upstream for ${r.host}: ${r.upstream}`);
    routes.set(r.host.toLowerCase(), { url, headers: r.headers });
  }
  const log = opts.log.child({ component: 'credential-proxy' });
  const timeoutMs = opts.upstreamTimeoutMs ?? 120_000;
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;

  const deny = (res: ServerResponse, status: number, message: string): void => {
    res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify({ error: message }));
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // Absolute-form (proxy style, "GET http://host/path") or origin-form with a Host header.
    let host: string;
    let path: string;
    try {
      if (/^https?:\/\//i.test(req.url ?? '')) {
        const u = new URL(req.url!);
        host = u.host;
        path = `${u.pathname}${u.search}`;
      } else {
        host = req.headers.host ?? '';
        path = req.url ?? '/';
      }
    } catch {
      return deny(res, 400, 'invalid: bad request target');
    }
    host = host.toLowerCase();
    const route = routes.get(host) ?? routes.get(host.replace(/:(80|443)$/, ''));
    if (!route || !path.startsWith('/')) {
      log.warn({ host, method: req.method }, 'proxy request refused: host not allowlisted');
      return deny(res, 403, `blocked: ${host || '(no host)'} is not on the allowlist`);
    }
    const headers: Record<string, string | string[]> = {};
    const injected = new Set(Object.keys(route.headers).map((k) => k.toLowerCase()));
    for (const [k, v] of Object.entries(req.headers)) {
      if (v === undefined || HOP_BY_HOP.has(k) || injected.has(k)) continue;
      headers[k] = v;
    }
    Object.assign(headers, route.headers);
    const base = route.url.pathname.replace(/\/$/, '');
    const request = route.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstream = request({
      protocol: route.url.protocol,
      hostname: route.url.hostname,
      port: route.url.port || undefined,
      method: req.method,
      path: `${base}${path}`,
      headers: { ...headers, host: route.url.host },
      signal: AbortSignal.timeout(timeoutMs),
    });
    let sent = 0;
    req.on('data', (c: Buffer) => {
      sent += c.length;
      if (sent > maxBody) {
        upstream.destroy();
        if (!res.headersSent) deny(res, 413, 'invalid: request body too large');
        req.destroy();
      }
    });
    req.pipe(upstream);
    upstream.on('response', (up) => {
      const out: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(up.statusCode ?? 502, out);
      up.pipe(res);
      log.info({ host, method: req.method, path, status: up.statusCode }, 'proxied request');
    });
    upstream.on('error', (err) => {
      log.warn({ host, err: err.message }, 'upstream request failed');
      if (!res.headersSent) deny(res, 502, `error: upstream ${host} failed`);
      else res.destroy();
    });
  };

  const server: Server = createServer(handle);
  // CONNECT would hide the request from us inside TLS, so the key could not be added: refused.
  server.on('connect', (_req, socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  const dir = await mkdtemp(join(tmpdir(), 'bazaar-proxy-'));
  const socketPath = join(dir, 'proxy.sock');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  // The sandbox user (nobody) must be able to reach and connect to the socket; only the socket is in this directory.
  await chmod(dir, 0o755);
  await chmod(socketPath, 0o666);
  log.info({ routes: [...routes.keys()] }, 'credential proxy listening');
  const id = randomBytes(4).toString('hex');
  return {
    socketPath,
    mount: { hostPath: dir, sandboxPath: PROXY_SANDBOX_DIR, readOnly: true },
    sandboxEnv: { BAZAAR_PROXY_SOCKET: PROXY_SANDBOX_SOCKET },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
      log.debug({ id }, 'credential proxy closed');
    },
  };
}
