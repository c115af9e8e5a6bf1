// `ws` package transport: the portable fallback with the same behaviour as uWS.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { listenError, type ConnectionHandler, type HttpRequest, type HttpResponse, type Transport, type TransportHandlers, type TransportOptions, type TransportSocket } from './transport.ts';

class WsSocket implements TransportSocket {
  closed = false;
  handler!: ConnectionHandler;
  private readonly ws: WebSocket;
  readonly ip: string;
  private readonly maxBackpressure: number;
  constructor(ws: WebSocket, ip: string, maxBackpressure: number) {
    this.ws = ws;
    this.ip = ip;
    this.maxBackpressure = maxBackpressure;
  }
  send(text: string | Uint8Array): boolean {
    if (this.closed) return false;
    if (this.ws.bufferedAmount > this.maxBackpressure) {
      // Slow consumer: drop it rather than buffer without bound (as uWS does).
      this.closed = true;
      this.ws.terminate();
      return false;
    }
    this.ws.send(text, { binary: false });
    return true;
  }
  bufferedAmount(): number {
    return this.closed ? 0 : this.ws.bufferedAmount;
  }
  cork(fn: () => void): void {
    if (this.closed) return;
    const raw = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    raw?.cork();
    try {
      fn();
    } finally {
      raw?.uncork();
    }
  }
  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }
}

const toRequest = (req: IncomingMessage): HttpRequest => {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return { method: (req.method ?? 'GET').toUpperCase(), path: req.url ?? '/', headers };
};

export function createWsTransport(): Transport {
  let server: Server | undefined;
  let wss: WebSocketServer | undefined;
  const timers = new Set<NodeJS.Timeout>();

  return {
    name: 'ws',
    listen(opts: TransportOptions, handlers: TransportHandlers): Promise<number> {
      server = createServer((req, res) => {
        req.resume();
        const write = (r: HttpResponse) => {
          if (res.destroyed) return;
          res.writeHead(r.status, r.headers as Record<string, string>);
          res.end(r.body);
        };
        const r = handlers.onHttp(toRequest(req));
        if (r instanceof Promise) r.then(write, () => write({ status: 500, headers: { 'Content-Type': 'text/plain' }, body: 'internal error\n' }));
        else write(r);
      });
      wss = new WebSocketServer({ server, maxPayload: opts.maxFrameBytes, perMessageDeflate: false, clientTracking: true });
      // ws re-emits the HTTP server's errors; listen failures are reported by listen() below.
      wss.on('error', () => {});
      wss.on('connection', (ws, req) => {
        const sock = new WsSocket(ws, req.socket.remoteAddress ?? '', opts.maxBackpressureBytes);
        sock.handler = handlers.onOpen(sock, toRequest(req));
        let alive = true;
        ws.on('pong', () => {
          alive = true;
        });
        ws.on('message', (data, isBinary) => {
          if (sock.closed) return;
          const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
          if (isBinary) sock.handler.onBinary(buf.byteLength);
          else sock.handler.onMessage(buf.toString('utf8'), buf.byteLength);
        });
        ws.on('error', () => {
          // Protocol errors (e.g. frame over maxPayload) close the socket; 'close' follows.
        });
        ws.on('close', () => {
          sock.closed = true;
          sock.handler.onClose();
        });
        if (opts.idleTimeoutSecs > 0) {
          // Ping at half the idle timeout; a client that did not answer the last ping is dropped.
          const timer = setInterval(() => {
            if (sock.closed) return;
            if (!alive) return ws.terminate();
            alive = false;
            ws.ping();
          }, (opts.idleTimeoutSecs * 1000) / 2);
          timer.unref();
          timers.add(timer);
          ws.once('close', () => {
            clearInterval(timer);
            timers.delete(timer);
          });
        }
      });
      return new Promise((resolve, reject) => {
        const failed = (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES' ? new Error(listenError(opts.host, opts.port, err.code)) : err);
        server!.once('error', failed);
        server!.listen(opts.port, opts.host, () => {
          server!.off('error', failed);
          const addr = server!.address();
          resolve(typeof addr === 'object' && addr ? addr.port : opts.port);
        });
      });
    },
    async close(): Promise<void> {
      for (const t of timers) clearInterval(t);
      timers.clear();
      if (wss) for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      server?.closeAllConnections?.();
    },
  };
}
