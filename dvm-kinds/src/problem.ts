// Total parsing: every parser returns a Parsed<T> listing every problem it found, never throws.

export type ProblemCode =
  | 'missing' // a required tag, field or param is absent
  | 'invalid' // present but malformed (not a number, bad hex, bad URL, ...)
  | 'unexpected' // present but not allowed here (unknown param, too many tags)
  | 'kind' // the event kind is not the one this parser reads
  | 'schema' // content or params violate the published JSON schema
  | 'mismatch' // a value disagrees with another (hash, reference, count)
  | 'encrypted'; // the payload is encrypted: open it first

export interface Problem {
  /** Where: `kind`, `tags.param[cmd]`, `content.commands[0].exit_code`, ... */
  readonly path: string;
  readonly code: ProblemCode;
  readonly message: string;
}

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly Problem[] };

export const problem = (path: string, code: ProblemCode, message: string): Problem => ({ path, code, message });
export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
export const fail = <T = never>(errors: readonly Problem[]): Parsed<T> => ({ ok: false, errors });

/** `ok(value)` when there are no problems, otherwise `fail(problems)`. */
export const result = <T>(problems: readonly Problem[], value: () => T): Parsed<T> => (problems.length ? fail(problems) : ok(value()));

/** One line per problem, for NIP-01 `invalid:` messages and logs. */
export function formatProblems(problems: readonly Problem[], max = 10): string {
  const shown = problems.slice(0, max).map((p) => `${p.path}: ${p.message}`);
  if (problems.length > max) shown.push(`and ${problems.length - max} more`);
  return shown.join('; ');
}
