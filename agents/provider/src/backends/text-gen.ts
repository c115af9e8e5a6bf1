// 5050 TextGen: one chat completion from an OpenAI-compatible endpoint (Ollama, llama.cpp
// server, vLLM, ...) configured by URL and model. The prompt must be a text input. The model
// is the one configured: a request naming another model is refused, never silently served
// by a different one.
import type { TextGenRequest } from '@bazaar/dvm-kinds/kinds/text-gen';
import { UnverifiedResultError } from './patch-gen.ts';
import type { BackendContext } from './backend.ts';

export interface TextGenBackend {
  readonly url: string;
  readonly model: string;
  readonly apiKeyEnv?: string;
}

const DEFAULT_TIMEOUT_MS = 300_000;

export async function runTextGen(req: TextGenRequest, backend: TextGenBackend, ctx: Pick<BackendContext, 'signal' | 'trajectory'>): Promise<{ text: string; units: number }> {
  if (req.prompt.type !== 'text') throw new UnverifiedResultError(`only text prompts are served, got a ${req.prompt.type} input`);
  if (req.params.model !== undefined && req.params.model !== backend.model) throw new UnverifiedResultError(`this provider serves model ${backend.model}, not ${req.params.model}`);
  const messages = [...(req.params.system ? [{ role: 'system', content: req.params.system }] : []), { role: 'user', content: req.prompt.data }];
  const body = {
    model: backend.model,
    messages,
    stream: false,
    ...(req.params.max_tokens !== undefined ? { max_tokens: req.params.max_tokens } : {}),
    ...(req.params.temperature !== undefined ? { temperature: req.params.temperature } : {}),
    ...(req.params.top_p !== undefined ? { top_p: req.params.top_p } : {}),
    ...(req.params.frequency_penalty !== undefined ? { frequency_penalty: req.params.frequency_penalty } : {}),
  };
  const key = backend.apiKeyEnv ? process.env[backend.apiKeyEnv] : undefined;
  const t0 = Date.now();
  const res = await fetch(`${backend.url.replace(/\/$/, '')}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
    signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(DEFAULT_TIMEOUT_MS)]),
  });
  const json = (await res.json().catch(() => undefined)) as { choices?: { message?: { content?: unknown } }[]; usage?: { total_tokens?: number }; error?: { message?: string } } | undefined;
  ctx.trajectory.add({ step: 'chat-completion', command: `POST ${backend.url}/chat/completions model=${backend.model}`, exit: res.status, durationMs: Date.now() - t0, totalTokens: json?.usage?.total_tokens });
  if (!res.ok) throw new UnverifiedResultError(`the model endpoint answered HTTP ${res.status}${json?.error?.message ? `: ${json.error.message}` : ''}`);
  const text = json?.choices?.[0]?.message?.content;
  if (typeof text !== 'string' || !text.length) throw new UnverifiedResultError('the model returned no text');
  const tokens = json?.usage?.total_tokens ?? Math.ceil((JSON.stringify(messages).length + text.length) / 4);
  return { text, units: Math.max(1, Math.ceil(tokens / 1000)) };
}
