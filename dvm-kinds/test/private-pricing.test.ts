// Private jobs (NIP-44 v2) and pricing.
import t from 'tap';
import * as nip44 from 'nostr-tools/nip44';
import { buyer, provider, arbiter, sign, T0 } from './helpers.ts';
import { openJobRequest, openJobResult, sealJobRequest, sealJobResult } from '../src/private.ts';
import { buildSandboxRunRequest, buildSandboxRunResult, commandResult, parseSandboxRunRequest, parseSandboxRunResult, sandboxRunOutput } from '../src/kinds/sandbox-run.ts';
import { priceFor, tierFor } from '../src/pricing.ts';
import type { Parsed } from '../src/problem.ts';

const value = <T>(p: Parsed<T>): T => {
  if (!p.ok) throw new Error(`expected ok, got ${JSON.stringify(p.errors)}`);
  return p.value;
};

t.test('a private request hides inputs and params from everyone but its provider', async (t) => {
  const tpl = buildSandboxRunRequest({ repoUrl: 'https://git.example.com/secret.git', params: { cmd: ['make test'], time_limit_secs: 30, repo_ref: 'main' }, bidMsats: 1000, createdAt: T0 });
  const sealed = sign(value(sealJobRequest(tpl, buyer.sk, provider.pk)), buyer.sk);
  t.notMatch(JSON.stringify(sealed), /secret\.git|make test/, 'nothing private in clear');
  t.same(sealed.tags.filter((x) => x[0] === 'p' || x[0] === 'encrypted' || x[0] === 'bid'), [['bid', '1000'], ['p', provider.pk], ['encrypted']]);
  const parsedSealed = parseSandboxRunRequest(sealed);
  t.notOk(parsedSealed.ok);
  t.match(parsedSealed.ok ? [] : parsedSealed.errors.map((p) => p.code), ['encrypted']);
  const opened = value(openJobRequest(sealed, provider.sk));
  const req = value(parseSandboxRunRequest(opened));
  t.same(req.params.cmd, ['make test']);
  t.same(req.repo, { url: 'https://git.example.com/secret.git', ref: 'main' });
  t.equal(req.envelope.id, sealed.id, 'keeps the event id for replies');
  t.notOk(openJobRequest(sealed, arbiter.sk).ok, 'another key cannot open it');
  const tampered = { ...sealed, content: sealed.content.slice(0, -4) + 'AAAA' };
  t.notOk(openJobRequest(tampered, provider.sk).ok, 'tampered payload is an error, not a throw');
  const smuggled = sign({ ...tpl, content: nip44.v2.encrypt(JSON.stringify([['p', arbiter.pk]]), nip44.v2.utils.getConversationKey(buyer.sk, provider.pk)), tags: [['p', provider.pk], ['encrypted']] }, buyer.sk);
  t.notOk(openJobRequest(smuggled, provider.sk).ok, 'only job tags may hide in the payload');

  const output = sandboxRunOutput([commandResult({ cmd: 'make test', exitCode: 0, stdout: 'ok', stderr: '', wallMs: 1, cpuMs: 1 })]);
  const sealedResult = sign(value(sealJobResult(buildSandboxRunResult(sealed, output, { createdAt: T0 + 1 }), provider.sk, buyer.pk)), provider.sk);
  t.notMatch(JSON.stringify(sealedResult), /secret\.git|make test/, 'nothing private in the result');
  t.ok(sealedResult.tags.some((x) => x[0] === 'request'), 'the sealed request may be embedded (NIP-90)');
  const fromOpened = sign(value(sealJobResult(buildSandboxRunResult(opened as never, output, { createdAt: T0 + 1 }), provider.sk, buyer.pk)), provider.sk);
  t.notMatch(JSON.stringify(fromOpened), /secret\.git|make test/, 'built from the opened request: its clear copy is dropped');
  t.notOk(fromOpened.tags.some((x) => x[0] === 'request' || x[0] === 'i'));
  const clear = value(parseSandboxRunResult(value(openJobResult(sealedResult, buyer.sk))));
  t.equal(clear.output.commands[0].stdout, 'ok');
  t.equal(clear.envelope.requestId, sealed.id);
});

t.test('priceFor: base + per-unit, cap, tier premium', async (t) => {
  const book = { 5930: { baseMsats: 1000, perUnitMsats: 10, unit: 'second', capMsats: 5000 }, 5050: { baseMsats: 0, perUnitMsats: 3, unit: '1k-tokens' } };
  const cases: [number, number, 0 | 1 | 2 | 3, number, boolean][] = [
    [5930, 0, 0, 1000, false],
    [5930, 100, 0, 2000, false],
    [5930, 1000, 0, 5000, true],
    [5930, 100, 2, 2200, false],
    [5930, 1000, 3, 6000, true],
    [5050, 2.5, 0, 8, false],
    [5050, 0.1, 1, 1, false],
  ];
  for (const [kind, units, tier, msats, capped] of cases) {
    const p = value(priceFor(kind, book, units, { tier }));
    t.equal(p.msats, msats, `${kind} × ${units} at tier ${tier}`);
    t.equal(p.capped, capped);
  }
  t.notOk(priceFor(5932, book, 1).ok, 'unknown kind');
  t.notOk(priceFor(5930, book, -1).ok, 'negative units');
  t.notOk(priceFor(5930, book, Number.NaN).ok, 'NaN units');
});

t.test('tierFor follows the DESIGN table (strictly above the success rate)', async (t) => {
  const cases: [number, number, number][] = [[0, 1, 0], [99, 1, 0], [100, 0.9, 0], [100, 0.91, 1], [500, 0.96, 2], [500, 0.95, 1], [1000, 0.995, 3], [1000, 0.99, 2], [5000, 0.5, 0]];
  for (const [jobs, successRate, tier] of cases) t.equal(tierFor({ jobs, successRate }), tier, `${jobs} jobs at ${successRate}`);
});
