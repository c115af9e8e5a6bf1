// A stand-in for a language-model endpoint on the devnet, like the dev Lightning network stands
// in for the real one: it speaks the OpenAI-compatible chat completions protocol the provider's
// TextGen backend talks to (`POST /v1/chat/completions`, `GET /v1/models`), so the local market
// serves every job kind without an API key. It is not a model: its answer is deterministic and
// says so — "(devnet echo model) " and a summary of the prompt. Point the provider at a real
// endpoint (Ollama, llama.cpp server, vLLM…) by configuration for real text.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';

export const DEV_MODEL = 'devnet-echo';
const MAX_BODY = 1024 * 1024;

export interface RunningDevModel {
  /** Base URL for OpenAI-compatible clients, ending in /v1. */
  readonly url: string;
  readonly model: string;
  close(): Promise<void>;
}

/** The deterministic answer to a conversation: what a person can recognise as an echo. */
export function devModelAnswer(messages: readonly { role: string; content: string }[]): string {
  const last = [...messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  const words = last.trim() ? last.trim().split(/\s+/).length : 0;
  return `(devnet echo model — not a language model) You asked, in ${words} word${words === 1 ? '' : 's'}: "${last.trim().slice(0, 2000)}"`;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), connection: 'close' });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startDevModel(o: { port?: number; host?: string; logger: Logger }): Promise<RunningDevModel> {
  const log = o.logger.child({ part: 'dev-model' });
  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
      if (req.method === 'GET' && path === '/v1/models') return send(res, 200, { object: 'list', data: [{ id: DEV_MODEL, object: 'model', owned_by: 'bazaar-devnet' }] });
      if (path !== '/v1/chat/completions') return send(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } });
      if (req.method !== 'POST') return send(res, 405, { error: { message: 'use POST', type: 'invalid_request_error' } });
      const text = await readBody(req);
      if (text === undefined) return send(res, 413, { error: { message: 'request body over 1 MiB', type: 'invalid_request_error' } });
      let body: { model?: unknown; messages?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        return send(res, 400, { error: { message: 'the body is not JSON', type: 'invalid_request_error' } });
      }
      const messages = body.messages;
      if (!Array.isArray(messages) || !messages.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string')) return send(res, 400, { error: { message: 'messages must be a list of { role, content }', type: 'invalid_request_error' } });
      if (body.model !== undefined && body.model !== DEV_MODEL) return send(res, 404, { error: { message: `model ${JSON.stringify(body.model)} not found (this endpoint serves ${DEV_MODEL})`, type: 'invalid_request_error', code: 'model_not_found' } });
      const content = devModelAnswer(messages as { role: string; content: string }[]);
      // Tokens counted roughly as words, so TextGen prices move with the prompt.
      const promptTokens = (messages as { content: string }[]).reduce((s, m) => s + m.content.split(/\s+/).filter(Boolean).length, 0);
      const completionTokens = content.split(/\s+/).length;
      log.debug({ promptTokens, completionTokens }, 'chat completion');
      send(res, 200, { id: `chatcmpl-devnet-${Date.now()}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: DEV_MODEL, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } });
    })().catch((err: unknown) => {
      log.error({ err }, 'dev model request failed');
      if (!res.headersSent) send(res, 500, { error: { message: 'internal error', type: 'server_error' } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${o.host ?? '127.0.0.1'}:${addr.port}/v1`;
  log.info({ url, model: DEV_MODEL }, 'dev model listening');
  return {
    url,
    model: DEV_MODEL,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
