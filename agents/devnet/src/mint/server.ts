// HTTP + NUT-17 websocket front of the Cashu mint. `startMint` opens the LMDB store in
// dataDir, serves the NUT endpoints on host:port (port 0 = ephemeral) and returns
// { url, close() }. Every failure is a NUT error body `{ detail, code }`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { LightningBackend } from '../lightning-backend.ts';
import { MintError, MintErrorCode } from './errors.ts';
import { CashuMint, meltQuoteJson, mintQuoteJson } from './mint.ts';
import { MintStore } from './mint-store.ts';

export const MAX_BODY_BYTES = 512 * 1024;

export interface StartMintOptions {
  readonly port?: number;
  readonly host?: string;
  readonly dataDir: string;
  readonly lightning: LightningBackend;
  readonly inputFeePpk?: number;
  readonly logger: Logger;
  /** Mint clock, unix seconds. */
  readonly now?: () => number;
  readonly name?: string;
  /** Test instrumentation (crash tests): called at durable steps such as 'melt:reserved'. */
  readonly onStep?: (step: string) => void;
}

export interface RunningMint {
  readonly url: string;
  readonly mint: CashuMint;
  close(): Promise<void>;
}

export async function startMint(opts: StartMintOptions): Promise<RunningMint> {
  const log = opts.logger;
  const store = new MintStore(opts.dataDir);
  let mint: CashuMint;
  try {
    mint = new CashuMint({ store, lightning: opts.lightning, inputFeePpk: opts.inputFeePpk ?? 100, logger: log, now: opts.now, name: opts.name, onStep: opts.onStep });
    // Settle melts a crash left PENDING before serving anyone.
    await mint.resumed;
  } catch (err) {
    await store.close();
    throw err;
  }
  const server = createServer((req, res) => {
    handle(mint, req, res, log).catch((err: unknown) => {
      log.error({ err }, 'unhandled mint request error');
      send(res, 500, { detail: 'internal error', code: MintErrorCode.generic });
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/v1/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveWebSocket(mint, ws, log));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 3338, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`;
  log.info({ url, keysetId: mint.activeKeyset().id, inputFeePpk: mint.activeKeyset().inputFeePpk }, 'mint listening');
  let closed: Promise<void> | undefined;
  return {
    url,
    mint,
    close: () =>
      (closed ??= (async () => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        await new Promise<void>((r) => server.close(() => r()));
        await mint.close();
        await store.close();
        log.info({ url }, 'mint closed');
      })()),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
    'access-control-allow-origin': '*',
    // No keep-alive: a client must never reuse a socket across a mint restart.
    connection: 'close',
  });
  res.end(json);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new MintError(MintErrorCode.generic, `request body exceeds ${MAX_BODY_BYTES} bytes`, 413);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new MintError(MintErrorCode.generic, 'request body is not valid JSON');
  }
}

async function handle(mint: CashuMint, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '');
  const method = req.method ?? 'GET';
  if (method === 'OPTIONS') {
    res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, POST', 'access-control-allow-headers': '*' });
    res.end();
    return;
  }
  try {
    const get = method === 'GET';
    const post = method === 'POST';
    let m: RegExpMatchArray | null;
    if (get && path === '/v1/info') return send(res, 200, mint.info());
    if (get && path === '/v1/keys') return send(res, 200, mint.keysResponse());
    if (get && (m = path.match(/^\/v1\/keys\/([^/]+)$/))) return send(res, 200, mint.keysResponse(decodeURIComponent(m[1])));
    if (get && path === '/v1/keysets') return send(res, 200, mint.keysetsResponse());
    if (get && (m = path.match(/^\/v1\/mint\/quote\/bolt11\/([^/]+)$/))) return send(res, 200, await mint.getMintQuote(decodeURIComponent(m[1])));
    if (get && (m = path.match(/^\/v1\/melt\/quote\/bolt11\/([^/]+)$/))) return send(res, 200, mint.getMeltQuote(decodeURIComponent(m[1])));
    if (post) {
      const route = {
        '/v1/swap': (b: unknown) => mint.swap(b),
        '/v1/checkstate': (b: unknown) => mint.checkState(b),
        '/v1/restore': (b: unknown) => mint.restore(b),
        '/v1/mint/quote/bolt11': (b: unknown) => mint.createMintQuote(b),
        '/v1/mint/bolt11': (b: unknown) => mint.mintTokens(b),
        '/v1/melt/quote/bolt11': (b: unknown) => mint.createMeltQuote(b),
        '/v1/melt/bolt11': (b: unknown) => mint.melt(b),
      }[path];
      if (route) return send(res, 200, await route(await readJson(req)));
      if (/^\/v1\/(mint|melt)(\/quote)?\/[^/]+$/.test(path)) {
        throw new MintError(MintErrorCode.unitNotSupported, `payment method in ${path} is not supported (only bolt11)`);
      }
    }
    send(res, 404, { detail: `no route ${method} ${path.slice(0, 100)}`, code: MintErrorCode.generic });
  } catch (err) {
    if (err instanceof MintError) {
      log.debug({ path, code: err.code, detail: err.message }, 'request rejected');
      send(res, err.status, err.toJSON());
      if (err.status === 413) req.destroy();
      return;
    }
    throw err;
  }
}

type SubKind = 'bolt11_mint_quote' | 'bolt11_melt_quote' | 'proof_state';
const SUB_KINDS = new Set<string>(['bolt11_mint_quote', 'bolt11_melt_quote', 'proof_state']);
const MAX_SUBS_PER_SOCKET = 100;
const MAX_FILTERS = 1000;

/** NUT-17: JSON-RPC 2.0 subscriptions; the current state is sent right after subscribing. */
function serveWebSocket(mint: CashuMint, ws: WebSocket, log: Logger): void {
  const subs = new Map<string, { kind: SubKind; filters: Set<string> }>();
  const out = (msg: unknown): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const notify = (kind: SubKind, key: string, payload: unknown): void => {
    for (const [subId, s] of subs) if (s.kind === kind && s.filters.has(key)) out({ jsonrpc: '2.0', method: 'subscribe', params: { subId, payload } });
  };
  const onMint = (q: Parameters<typeof mintQuoteJson>[0]): void => notify('bolt11_mint_quote', q.quote, mintQuoteJson(q));
  const onMelt = (q: Parameters<typeof meltQuoteJson>[0]): void => notify('bolt11_melt_quote', q.quote, meltQuoteJson(q));
  const onProof = (p: { Y: string; state: string; witness: string | null }): void => notify('proof_state', p.Y, p);
  mint.on('mintQuote', onMint);
  mint.on('meltQuote', onMelt);
  mint.on('proofState', onProof);
  ws.on('close', () => {
    mint.off('mintQuote', onMint);
    mint.off('meltQuote', onMelt);
    mint.off('proofState', onProof);
  });
  ws.on('error', (err) => log.debug({ err: err.message }, 'mint websocket error'));
  ws.on('message', (data) => {
    let msg: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
    try {
      msg = JSON.parse(String(data));
    } catch {
      return out({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
    const id = typeof msg?.id === 'number' || typeof msg?.id === 'string' ? msg.id : null;
    const error = (code: number, message: string): void => out({ jsonrpc: '2.0', error: { code, message }, id });
    if (typeof msg !== 'object' || msg === null || msg.jsonrpc !== '2.0' || typeof msg.params !== 'object' || msg.params === null) return error(-32600, 'Invalid Request');
    const p = msg.params as { kind?: unknown; subId?: unknown; filters?: unknown };
    if (typeof p.subId !== 'string' || p.subId.length === 0 || p.subId.length > 200) return error(-32602, 'Invalid params: subId must be a non-empty string');
    if (msg.method === 'unsubscribe') {
      if (!subs.delete(p.subId)) return error(-32602, `Invalid params: no subscription ${p.subId}`);
      return out({ jsonrpc: '2.0', result: { status: 'OK', subId: p.subId }, id });
    }
    if (msg.method !== 'subscribe') return error(-32601, 'Method not found');
    if (typeof p.kind !== 'string' || !SUB_KINDS.has(p.kind)) return error(-32602, `Invalid params: unsupported kind ${String(p.kind).slice(0, 40)}`);
    if (!Array.isArray(p.filters) || p.filters.length === 0 || p.filters.length > MAX_FILTERS || p.filters.some((f) => typeof f !== 'string')) {
      return error(-32602, 'Invalid params: filters must be a non-empty array of strings');
    }
    if (subs.size >= MAX_SUBS_PER_SOCKET && !subs.has(p.subId)) return error(-32602, `Invalid params: at most ${MAX_SUBS_PER_SOCKET} subscriptions per connection`);
    const kind = p.kind as SubKind;
    // Ys are hex points: match them case-insensitively (the mint emits lowercase).
    const filters = kind === 'proof_state' ? (p.filters as string[]).map((f) => f.toLowerCase()) : (p.filters as string[]);
    subs.set(p.subId, { kind, filters: new Set(filters) });
    out({ jsonrpc: '2.0', result: { status: 'OK', subId: p.subId }, id });
    const subId = p.subId;
    const current = (payload: unknown): void => out({ jsonrpc: '2.0', method: 'subscribe', params: { subId, payload } });
    if (kind === 'proof_state') for (const s of mint.proofStates(filters)) current(s);
    else if (kind === 'bolt11_mint_quote') {
      for (const f of filters) {
        const q = mint.store.mintQuotes.get(f);
        if (q) current(mintQuoteJson(q));
      }
    } else {
      for (const f of filters) {
        const q = mint.store.meltQuotes.get(f);
        if (q) current(meltQuoteJson(q));
      }
    }
  });
}
