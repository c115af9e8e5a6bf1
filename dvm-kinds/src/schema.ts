// A small JSON Schema (draft 2020-12) subset validator: enough for the schemas this package
// publishes (objects, arrays, strings, numbers, enums, patterns). Pure and total.
import { problem, type Problem } from './problem.ts';

export type JsonType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean' | 'null';

export interface JsonSchema {
  readonly $schema?: string;
  readonly $id?: string;
  readonly title?: string;
  readonly description?: string;
  readonly type?: JsonType | readonly JsonType[];
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean | JsonSchema;
  readonly items?: JsonSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly enum?: readonly (string | number | boolean | null)[];
  readonly const?: string | number | boolean | null;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly default?: unknown;
  readonly examples?: readonly unknown[];
}

export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

function typeOf(v: unknown): JsonType | 'undefined' | 'other' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string': return 'string';
    case 'boolean': return 'boolean';
    case 'number': return Number.isInteger(v) ? 'integer' : 'number';
    case 'object': return 'object';
    case 'undefined': return 'undefined';
    default: return 'other';
  }
}

function matchesType(v: unknown, t: JsonType): boolean {
  const actual = typeOf(v);
  if (t === 'number') return (actual === 'number' || actual === 'integer') && Number.isFinite(v as number);
  return actual === t;
}

const patterns = new Map<string, RegExp>();
/** Compiled once per pattern: validation sits on the relay's write path. */
const compiled = (pattern: string): RegExp => {
  let re = patterns.get(pattern);
  if (!re) patterns.set(pattern, (re = new RegExp(pattern, 'u')));
  return re;
};

const join = (path: string, key: string | number): string => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key);

/** Validate `value` against `schema`; returns every problem found (empty = valid). */
export function validateSchema(schema: JsonSchema, value: unknown, path = ''): Problem[] {
  const out: Problem[] = [];
  const at = path || '(root)';
  if (schema.type !== undefined) {
    const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as JsonType[];
    if (!types.some((t) => matchesType(value, t))) {
      out.push(problem(at, 'schema', `must be ${types.join(' or ')}, got ${typeOf(value)}`));
      return out;
    }
  }
  if (schema.const !== undefined && value !== schema.const) out.push(problem(at, 'schema', `must be ${JSON.stringify(schema.const)}`));
  if (schema.enum && !schema.enum.includes(value as never)) out.push(problem(at, 'schema', `must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`));
  if (typeof value === 'string') {
    const len = [...value].length;
    if (schema.minLength !== undefined && len < schema.minLength) out.push(problem(at, 'schema', `must be at least ${schema.minLength} characters`));
    if (schema.maxLength !== undefined && len > schema.maxLength) out.push(problem(at, 'schema', `must be at most ${schema.maxLength} characters`));
    if (schema.pattern !== undefined && !compiled(schema.pattern).test(value)) out.push(problem(at, 'schema', `must match /${schema.pattern}/`));
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) out.push(problem(at, 'schema', `must be >= ${schema.minimum}`));
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) out.push(problem(at, 'schema', `must be > ${schema.exclusiveMinimum}`));
    if (schema.maximum !== undefined && value > schema.maximum) out.push(problem(at, 'schema', `must be <= ${schema.maximum}`));
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) out.push(problem(at, 'schema', `must have at least ${schema.minItems} items`));
    if (schema.maxItems !== undefined && value.length > schema.maxItems) out.push(problem(at, 'schema', `must have at most ${schema.maxItems} items`));
    if (schema.items) value.forEach((item, i) => out.push(...validateSchema(schema.items!, item, join(path, i))));
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!Object.hasOwn(obj, key)) out.push(problem(join(path, key), 'missing', 'is required'));
    }
    for (const [key, v] of Object.entries(obj)) {
      const prop = schema.properties?.[key];
      if (prop) out.push(...validateSchema(prop, v, join(path, key)));
      else if (schema.additionalProperties === false) out.push(problem(join(path, key), 'unexpected', 'is not allowed'));
      else if (typeof schema.additionalProperties === 'object') out.push(...validateSchema(schema.additionalProperties, v, join(path, key)));
    }
  }
  return out;
}
