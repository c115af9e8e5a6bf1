// The relay speaks to the network only through this interface, so the same relay
// core runs on uWebSockets.js (fast path) or the `ws` package (where uWS can't load).

export interface TransportSocket {
  /** Remote IP address as text. */
  readonly ip: string;
  /**
   * Queue a text frame (a string, or UTF-8 bytes ready to go). Returns false when the socket is closed or the frame
   * was dropped because the client is too slow (the socket is then being closed).
   */
  send(text: string | Uint8Array): boolean;
  /** Bytes queued for this socket and not yet written to the kernel. */
  bufferedAmount(): number;
  /** Run `fn` with sends batched into as few writes as possible. */
  cork(fn: () => void): void;
  /** Close the connection (idempotent; safe after the peer has gone). */
  close(code?: number, reason?: string): void;
  readonly closed: boolean;
}

/** Per-connection callbacks, created by the relay when a socket opens. */
export interface ConnectionHandler {
  onMessage(text: string, byteLength: number): void;
  /** A binary frame (Nostr speaks text only). */
  onBinary(byteLength: number): void;
  /** Backpressure has drained below the limit. */
  onDrain?(): void;
  /** After this the socket must not be used. */
  onClose(): void;
}

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface TransportHandlers {
  onOpen(socket: TransportSocket, req: HttpRequest): ConnectionHandler;
  /** A plain HTTP request; a promise for answers computed asynchronously (e.g. /metrics). */
  onHttp(req: HttpRequest): HttpResponse | Promise<HttpResponse>;
}

export interface TransportOptions {
  readonly host: string;
  readonly port: number;
  /**
   * Frames larger than this are refused by the transport itself (the connection
   * is closed). The relay's own, smaller message limit is enforced above it so
   * that an oversized message gets a NOTICE and the connection stays usable.
   */
  readonly maxFrameBytes: number;
  /** A client with more than this many bytes queued is disconnected. */
  readonly maxBackpressureBytes: number;
  /** Seconds without traffic before a socket is closed (pings keep healthy clients alive). */
  readonly idleTimeoutSecs: number;
}

export interface Transport {
  readonly name: 'uws' | 'ws';
  /** Start listening; resolves with the bound port. */
  listen(opts: TransportOptions, handlers: TransportHandlers): Promise<number>;
  /** Stop accepting and close every connection. */
  close(): Promise<void>;
}

export const HTTP_STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK', 204: 'No Content', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

/** The one message both transports give when they cannot take a port. */
export function listenError(host: string, port: number, code: string): string {
  const where = `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch (code) {
    case 'EACCES':
      return `${where}: permission denied (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
      return `${where}: address not available on this machine (check --host)`;
    case 'TIME_WAIT':
      return `${where}: the port was in use moments ago and its closed connections are still in TIME_WAIT, which uWebSockets.js cannot bind over (up to 60 s) — wait, or use --transport ws`;
    default:
      return `${where}: address already in use — is another relay (or another program) using this port? Choose another with --port`;
  }
}
