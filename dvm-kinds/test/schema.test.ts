// Our small JSON Schema validator against Ajv (draft 2020-12) as the oracle: every published
// schema compiles in Ajv's strict mode, and both validators agree on valid and mutated values.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { validateSchema, type JsonSchema } from '../src/schema.ts';
import { JOB_KINDS } from '../src/registry.ts';
import { decodeParams } from '../src/job.ts';

const ajv = new Ajv2020({ strict: true, allErrors: true });
const load = (n: string) => JSON.parse(readFileSync(new URL(`./fixtures/${n}.json`, import.meta.url), 'utf8'));
const fixtures: Record<number, { request: { tags: string[][] }; result: { content: string; tags: string[][] } }> = {
  5050: load('5050-text-gen'), 5930: load('5930-sandbox-run'), 5931: load('5931-repo-index'), 5932: load('5932-patch-gen'), 5933: load('5933-code-review'),
};

let seed = 7;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
const odd = (): unknown => pick([null, 0, -1, 1.5, 1e9, '', 'x', 'ff'.repeat(40), [], {}, [1], ['a'], true, false]);

/** Random edits at random depths: replace, delete, add a key, grow an array. */
function mutate(v: unknown): unknown {
  if (rnd() < 0.25) return odd();
  if (Array.isArray(v)) {
    const c = [...v];
    if (c.length && rnd() < 0.5) c[Math.floor(rnd() * c.length)] = mutate(c[Math.floor(rnd() * c.length)]);
    else if (rnd() < 0.5) c.push(odd());
    else c.pop();
    return c;
  }
  if (typeof v === 'object' && v !== null) {
    const c: Record<string, unknown> = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(c);
    const r = rnd();
    if (keys.length && r < 0.5) c[pick(keys)] = mutate(c[pick(keys)]);
    else if (keys.length && r < 0.75) delete c[pick(keys)];
    else c[pick(['extra', 'cmd', 'summary', 'files'])] = odd();
    return c;
  }
  return odd();
}

t.test('published schemas compile in Ajv strict mode', async (t) => {
  for (const spec of JOB_KINDS.values()) {
    t.doesNotThrow(() => ajv.compile(spec.paramsSchema as object), `${spec.kind} params`);
    t.doesNotThrow(() => ajv.compile(spec.resultSchema as object), `${spec.kind} result`);
  }
});

t.test('our validator agrees with Ajv', async (t) => {
  let agreed = 0;
  for (const spec of JOB_KINDS.values()) {
    const f = fixtures[spec.kind];
    const params = decodeParams(f.request.tags.filter((x) => x[0] === 'param').map((x) => [x[1], x[2]] as const), spec.paramsSchema).value;
    const result = spec.resultSchema.type === 'object' && spec.kind !== 5932 ? JSON.parse(f.result.content) : spec.kind === 5932 ? Object.fromEntries(f.result.tags.filter((x) => ['patch_sha256', 'test_exit_code', 'files_changed', 'additions', 'deletions', 'trajectory_sha256'].includes(x[0])).map((x) => [x[0], /^\d+$/.test(x[1]) && x[0] !== 'patch_sha256' && x[0] !== 'trajectory_sha256' ? Number(x[1]) : x[1]])) : f.result.content;
    for (const [schema, base] of [[spec.paramsSchema, params], [spec.resultSchema, result]] as [JsonSchema, unknown][]) {
      const check = ajv.compile(schema as object);
      t.ok(check(base), `${spec.kind}: the fixture is valid for Ajv`);
      t.same(validateSchema(schema, base), [], `${spec.kind}: and for us`);
      for (let i = 0; i < 150; i++) {
        const v = mutate(base);
        const theirs = check(v);
        const ours = validateSchema(schema, v).length === 0;
        if (ours !== theirs) t.fail(`${spec.kind}: disagree on ${JSON.stringify(v).slice(0, 300)} (ajv ${theirs}, ours ${ours}): ${JSON.stringify(check.errors)}`);
        else agreed++;
      }
    }
  }
  t.ok(agreed > 1000, `${agreed} agreements`);
});
