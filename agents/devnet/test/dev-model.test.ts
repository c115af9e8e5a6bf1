// The devnet's stand-in model endpoint speaks the OpenAI-compatible chat completions protocol
// (what the provider's TextGen backend and any OpenAI client send) and says it is an echo.
import t from 'tap';
import { pino } from 'pino';
import { DEV_MODEL, startDevModel } from '../src/dev-model.ts';

t.test('chat completions, models, and clear errors', async (t) => {
  const m = await startDevModel({ logger: pino({ level: 'silent' }) });
  t.teardown(() => m.close());
  const post = (body: unknown) => fetch(`${m.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const r = await post({ model: DEV_MODEL, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Write a haiku about relays' }] });
  t.equal(r.status, 200);
  const j = (await r.json()) as { object: string; model: string; choices: { message: { role: string; content: string }; finish_reason: string }[]; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };
  t.equal(j.object, 'chat.completion');
  t.equal(j.choices[0].message.role, 'assistant');
  t.match(j.choices[0].message.content, /^\(devnet echo model — not a language model\) You asked, in 5 words: "Write a haiku about relays"$/);
  t.equal(j.usage.prompt_tokens, 7, 'words of every message');
  t.equal(j.usage.total_tokens, j.usage.prompt_tokens + j.usage.completion_tokens);
  t.same(((await (await fetch(`${m.url}/models`)).json()) as { data: { id: string }[] }).data.map((x) => x.id), [DEV_MODEL]);
  t.equal((await post({ model: 'gpt-4', messages: [] })).status, 404, 'another model');
  t.equal((await post('not json')).status, 400);
  t.equal((await post({ messages: [{ role: 'user' }] })).status, 400, 'messages without content');
  t.equal((await fetch(`${m.url}/chat/completions`)).status, 405);
});
