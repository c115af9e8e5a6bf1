// Totality: every parser, fed garbage and mutated events, returns a typed result and never throws.
import t from 'tap';
import { readFileSync } from 'node:fs';
import * as api from '../src/index.ts';

const fixtures = ['5050-text-gen', '5930-sandbox-run', '5931-repo-index', '5932-patch-gen', '5933-code-review'].flatMap((n) => Object.values(JSON.parse(readFileSync(new URL(`./fixtures/${n}.json`, import.meta.url), 'utf8'))) as object[]);
const parsers = Object.entries(api).filter(([name, f]) => /^parse[A-Z]/.test(name) && name !== 'parseUnifiedDiff' && name !== 'parseJsonContent' && typeof f === 'function') as [string, (e: unknown) => { ok: boolean }][];

// A small deterministic PRNG so failures reproduce.
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
const junk = (): unknown => pick([null, undefined, 0, -1, 1.5, NaN, '', 'x', 'ff'.repeat(32), [], {}, [[]], ['i'], ['param'], ['amount', 'lots'], ['e', 'zz'], true, '{"a":1}', '[[1,2]]']);

function mutate(e: Record<string, unknown>): unknown {
  const c: Record<string, unknown> = structuredClone(e);
  switch (Math.floor(rnd() * 8)) {
    case 0: delete c[pick(['kind', 'tags', 'content', 'created_at', 'id', 'pubkey'])]; break;
    case 1: c[pick(['kind', 'tags', 'content', 'created_at', 'id', 'pubkey'])] = junk(); break;
    case 2: (c.tags as unknown[])?.push?.(junk()); break;
    case 3: if (Array.isArray(c.tags) && c.tags.length) (c.tags as unknown[][])[Math.floor(rnd() * c.tags.length)] = [pick(['i', 'param', 'p', 'e', 'bid', 'amount', 'status', 'request', 'expiration']), junk() as string, junk() as string]; break;
    case 4: c.content = pick(['', '{', 'null', '[]', '{"commands":5}', '{"summary":"x","approval":"no","issues":[{}],"suggestions":[1]}', 'diff --git a/x b/x\n@@ -1 +1 @@\n']); break;
    case 5: c.tags = (c.tags as unknown[])?.filter?.(() => rnd() > 0.5); break;
    case 6: c.kind = pick([5930, 5932, 6932, 7000, 31990, 39300, 39301, 39302, 30382, 10019, 11998, 7007]); break;
    default: return junk();
  }
  return c;
}

t.test('no parser throws on garbage', async (t) => {
  t.ok(parsers.length >= 20, `${parsers.length} parsers under test`);
  let runs = 0;
  for (let i = 0; i < 400; i++) {
    const input = mutate(pick(fixtures) as Record<string, unknown>);
    for (const [name, parse] of parsers) {
      let r: { ok: boolean } | undefined;
      try {
        r = parse(input);
      } catch (err) {
        t.fail(`${name} threw ${(err as Error).message} on ${JSON.stringify(input)?.slice(0, 300)}`);
        continue;
      }
      if (typeof r?.ok !== 'boolean') t.fail(`${name} returned ${JSON.stringify(r)}`);
      runs++;
    }
  }
  t.ok(runs > 0);
  t.same(api.parseUnifiedDiff('garbage').ok, false);
});
