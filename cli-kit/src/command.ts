// A tiny, dependency-free command framework shared by every `bazaar` subcommand:
// flags from argv, then BAZAAR_* environment variables, then defaults; `--help`
// everywhere; one clear line and exit code 2 on bad input.
import { parseArgs } from 'node:util';

export type FlagType = 'string' | 'number' | 'boolean';

export interface FlagSpec {
  readonly type: FlagType;
  readonly description: string;
  readonly default?: string | number | boolean;
  /** Environment variable read when the flag is absent. Defaults to `${envPrefix}${UPPER_SNAKE(name)}`. */
  readonly env?: string | false;
  readonly choices?: readonly string[];
  readonly short?: string;
  /** Repeatable string flag (collected into an array). */
  readonly multiple?: boolean;
  /** For numbers: accept only integers within [min, max]. */
  readonly integer?: boolean;
  readonly min?: number;
  readonly max?: number;
}

export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

export interface CommandSpec {
  readonly name: string;
  readonly summary: string;
  /** Extra usage text printed by --help after the flags. */
  readonly details?: string;
  /** e.g. "NAME SATS" */
  readonly positionals?: string;
  readonly envPrefix?: string;
  readonly flags?: Readonly<Record<string, FlagSpec>>;
  readonly subcommands?: Readonly<Record<string, () => Promise<CommandSpec>>>;
  readonly run?: (flags: FlagValues, positionals: string[]) => Promise<number | void> | number | void;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

const upperSnake = (s: string): string => s.replace(/-/g, '_').toUpperCase();

export function envName(spec: CommandSpec, flag: string, f: FlagSpec): string | undefined {
  if (f.env === false) return undefined;
  return f.env ?? `${spec.envPrefix ?? 'BAZAAR_'}${upperSnake(flag)}`;
}

export function helpText(spec: CommandSpec, path: string, summaries: Readonly<Record<string, string>> = {}): string {
  const lines: string[] = [];
  const subs = Object.keys(spec.subcommands ?? {});
  const usage = [`Usage: ${path}`];
  if (subs.length) usage.push(spec.run ? '[COMMAND]' : 'COMMAND');
  if (spec.flags && Object.keys(spec.flags).length) usage.push('[flags]');
  if (spec.positionals) usage.push(spec.positionals);
  lines.push(usage.join(' '), '', spec.summary, '');
  if (subs.length) {
    lines.push('Commands:');
    const width = Math.max(...subs.map((s) => s.length)) + 2;
    for (const s of subs) lines.push(`  ${summaries[s] ? `${s.padEnd(width)}${summaries[s]}` : s}`);
    lines.push('', `Run '${path} COMMAND --help' for a command's flags.`, '');
  }
  const flags = Object.entries(spec.flags ?? {});
  if (flags.length) {
    lines.push('Flags:');
    for (const [name, f] of flags) {
      const left = `  ${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'boolean' ? '' : ` <${f.type === 'number' ? 'n' : 'value'}>`}`;
      const extra: string[] = [];
      if (f.choices) extra.push(`one of: ${f.choices.join(', ')}`);
      if (f.default !== undefined) extra.push(`default: ${String(f.default)}`);
      const env = envName(spec, name, f);
      if (env) extra.push(`env: ${env}`);
      lines.push(`${left.padEnd(30)} ${f.description}${extra.length ? ` (${extra.join('; ')})` : ''}`);
    }
    lines.push('  -h, --help'.padEnd(31) + 'Show this help');
    lines.push('');
  }
  if (spec.details) lines.push(spec.details.trimEnd(), '');
  return lines.join('\n');
}

function coerce(name: string, f: FlagSpec, raw: string | boolean, from: string): string | number | boolean {
  if (f.type === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off|)$/i.test(raw)) return false;
    throw new UsageError(`${from} must be true or false, got ${JSON.stringify(raw)}`);
  }
  const s = String(raw);
  if (f.type === 'number') {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${from} must be a number, got ${JSON.stringify(s)}`);
    if (f.integer && !Number.isInteger(n)) throw new UsageError(`${from} must be an integer, got ${JSON.stringify(s)}`);
    if (f.min !== undefined && n < f.min) throw new UsageError(`${from} must be at least ${f.min}, got ${n}`);
    if (f.max !== undefined && n > f.max) throw new UsageError(`${from} must be at most ${f.max}, got ${n}`);
    return n;
  }
  if (f.choices && !f.choices.includes(s)) throw new UsageError(`${from} must be one of ${f.choices.join(', ')}, got ${JSON.stringify(s)}`);
  void name;
  return s;
}

/** Parse argv for one command (no subcommand handling). Throws UsageError. */
export function parseFlags(spec: CommandSpec, argv: string[], env: NodeJS.ProcessEnv = process.env): { flags: FlagValues; positionals: string[]; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, f] of Object.entries(spec.flags ?? {})) {
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string', ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true, allowNegative: true });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
    // `--budget -5`: node reads -5 as a flag. Say how to write it, so the value's own check can answer.
    const dashed = /^Option '(--[\w-]+)[^']*' argument is ambiguous/.exec(msg);
    if (dashed) throw new UsageError(`${dashed[1]} takes a value; one that starts with "-" is written ${dashed[1]}=VALUE`);
    throw new UsageError(msg);
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (values.help) return { flags: {}, positionals: parsed.positionals, help: true };
  const flags: FlagValues = {};
  for (const [name, f] of Object.entries(spec.flags ?? {})) {
    const v = values[name];
    if (v !== undefined) {
      flags[name] = Array.isArray(v) ? v.map((x) => coerce(name, f, x, `--${name}`) as string) : coerce(name, f, v, `--${name}`);
      continue;
    }
    const e = envName(spec, name, f);
    const ev = e ? env[e] : undefined;
    if (ev !== undefined && ev !== '') {
      flags[name] = f.multiple ? ev.split(',').map((x) => coerce(name, f, x.trim(), e!) as string) : coerce(name, f, ev, e!);
      continue;
    }
    if (f.default !== undefined) flags[name] = f.multiple ? [String(f.default)] : f.default;
  }
  return { flags, positionals: parsed.positionals, help: false };
}

/** Run a command tree. Returns the process exit code; never throws on user error. */
export async function runCommand(spec: CommandSpec, argv: string[], path = spec.name): Promise<number> {
  const first = argv[0];
  const subs = spec.subcommands ?? {};
  if (first !== undefined && !first.startsWith('-') && Object.hasOwn(subs, first)) {
    return runCommand(await subs[first](), argv.slice(1), `${path} ${first}`);
  }
  try {
    const { flags, positionals, help } = parseFlags(spec, argv);
    if (help) {
      process.stdout.write(helpText(spec, path, await subcommandSummaries(spec)) + '\n');
      return 0;
    }
    if (!spec.run) {
      if (first === undefined) {
        process.stderr.write(helpText(spec, path, await subcommandSummaries(spec)) + '\n');
        return 2;
      }
      throw new UsageError(`unknown command ${JSON.stringify(first)} (commands: ${Object.keys(subs).join(', ')})`);
    }
    const code = await spec.run(flags, positionals);
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${path}: ${err.message} (see '${path} --help')\n`);
      return 2;
    }
    process.stderr.write(`${path}: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

/** One line per subcommand for --help; a subcommand that fails to load is listed by name only. */
async function subcommandSummaries(spec: CommandSpec): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  await Promise.all(
    Object.entries(spec.subcommands ?? {}).map(async ([name, load]) => {
      try {
        out[name] = (await load()).summary.split('\n')[0];
      } catch {
        // listed without a summary
      }
    }),
  );
  return out;
}
