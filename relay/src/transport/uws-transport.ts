// uWebSockets.js transport. Rules that keep it safe: never touch a socket after its
// close callback (guarded by `closed`), copy message ArrayBuffers before returning
// (uWS neuters them), and let uWS drop slow consumers at the backpressure limit.
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import type * as UWS from 'uWebSockets.js';
import { HTTP_STATUS_TEXT, listenError, type ConnectionHandler, type HttpRequest, type HttpResponse, type Transport, type TransportHandlers, type TransportOptions, type TransportSocket } from './transport.ts';

const require = createRequire(import.meta.url);

interface UserData {
  ip: string;
  /** The upgrade request, dropped once the connection is open (idle connections stay small). */
  req?: HttpRequest;
  sock?: UwsSocket;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

class UwsSocket implements TransportSocket {
  closed = false;
  handler!: ConnectionHandler;
  private readonly ws: UWS.WebSocket<UserData>;
  readonly ip: string;
  constructor(ws: UWS.WebSocket<UserData>, ip: string) {
    this.ws = ws;
    this.ip = ip;
  }
  send(text: string | Uint8Array): boolean {
    if (this.closed) return false;
    // 1 = sent, 0 = queued (backpressure builds), 2 = dropped at the limit (uWS then closes).
    return this.ws.send(text, false, false) !== 2;
  }
  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.getBufferedAmount();
  }
  cork(fn: () => void): void {
    if (this.closed) return;
    this.ws.cork(fn);
  }
  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.ws.end(code, reason);
    } catch {
      // already gone
    }
  }
}

function loadUws(): typeof UWS {
  const uws = require('uWebSockets.js') as typeof UWS & { H3App?: unknown };
  // The package silently falls back to a slow Node implementation when its native
  // binary does not load; the native module is the only one exporting H3App.
  if (typeof uws.H3App !== 'function') throw new Error('uWebSockets.js native binary did not load (use --transport ws)');
  return uws;
}

export function createUwsTransport(): Transport {
  let uws: typeof UWS | undefined;
  let listenSocket: UWS.us_listen_socket | undefined;
  const sockets = new Set<UwsSocket>();

  const readRequest = (req: UWS.HttpRequest): HttpRequest => {
    const headers: Record<string, string> = {};
    req.forEach((k, v) => {
      headers[k] = v;
    });
    const q = req.getQuery();
    return { method: req.getMethod().toUpperCase(), path: req.getUrl() + (q ? `?${q}` : ''), headers };
  };

  return {
    name: 'uws',
    listen(opts: TransportOptions, handlers: TransportHandlers): Promise<number> {
      uws = loadUws();
      const app = uws.App();
      const write = (res: UWS.HttpResponse, r: HttpResponse) => {
        res.cork(() => {
          res.writeStatus(`${r.status} ${HTTP_STATUS_TEXT[r.status] ?? ''}`.trim());
          for (const [k, v] of Object.entries(r.headers ?? {})) res.writeHeader(k, v);
          res.end(r.body);
        });
      };
      const http = (res: UWS.HttpResponse, req: UWS.HttpRequest) => {
        const r = handlers.onHttp(readRequest(req));
        if (!(r instanceof Promise)) return write(res, r);
        // An asynchronous answer: uWS requires onAborted, and the response must not be touched after it.
        let aborted = false;
        res.onAborted(() => {
          aborted = true;
        });
        r.then(
          (x) => { if (!aborted) write(res, x); },
          () => { if (!aborted) write(res, { status: 500, headers: { 'Content-Type': 'text/plain' }, body: 'internal error\n' }); },
        );
      };
      app.ws<UserData>('/*', {
        maxPayloadLength: opts.maxFrameBytes,
        maxBackpressure: opts.maxBackpressureBytes,
        closeOnBackpressureLimit: 1,
        idleTimeout: opts.idleTimeoutSecs,
        sendPingsAutomatically: true,
        compression: uws.DISABLED,
        upgrade: (res, req, context) => {
          const request = readRequest(req);
          const ip = decoder.decode(res.getRemoteAddressAsText());
          res.upgrade<UserData>(
            { ip, req: request },
            req.getHeader('sec-websocket-key'),
            req.getHeader('sec-websocket-protocol'),
            req.getHeader('sec-websocket-extensions'),
            context,
          );
        },
        open: (ws) => {
          const data = ws.getUserData();
          const sock = new UwsSocket(ws, data.ip);
          data.sock = sock;
          sockets.add(sock);
          sock.handler = handlers.onOpen(sock, data.req!);
          data.req = undefined;
        },
        message: (ws, message, isBinary) => {
          const sock = ws.getUserData().sock;
          if (!sock || sock.closed) return;
          if (isBinary) sock.handler.onBinary(message.byteLength);
          else sock.handler.onMessage(Buffer.from(message).toString('utf8'), message.byteLength);
        },
        drain: (ws) => {
          const sock = ws.getUserData().sock;
          if (sock && !sock.closed) sock.handler.onDrain?.();
        },
        close: (ws) => {
          const sock = ws.getUserData().sock;
          if (!sock) return;
          sock.closed = true;
          sockets.delete(sock);
          sock.handler.onClose();
        },
      });
      app.any('/*', http);
      return new Promise((resolve, reject) => {
        // uWS sets SO_REUSEPORT by default: a second relay on the same port would then listen
        // too, and the kernel would split clients between two databases. Exclusive: it fails.
        const listen = app.listen as unknown as (host: string, port: number, options: number, cb: (ls: UWS.us_listen_socket | false) => void) => void;
        listen.call(app, opts.host, opts.port, (uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT, (ls) => {
          if (ls) {
            listenSocket = ls;
            return resolve(uws!.us_socket_local_port(ls));
          }
          // uWS does not say why; Node (which sets SO_REUSEADDR) can tell a live listener from
          // connections of a stopped one still in TIME_WAIT, which uWS cannot bind over.
          probeBind(opts.host, opts.port).then((code) => reject(new Error(code === undefined ? listenError(opts.host, opts.port, 'TIME_WAIT') : listenError(opts.host, opts.port, code))));
        });
      });
    },
    async close(): Promise<void> {
      if (listenSocket && uws) uws.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      for (const s of [...sockets]) s.close(1001, 'relay shutting down');
      sockets.clear();
    },
  };
}

/** Try to bind host:port with Node's defaults; resolves with the error code, or undefined when the bind worked. */
function probeBind(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EADDRINUSE'));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(undefined)));
  });
}
