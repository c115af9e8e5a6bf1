// The one place loggers are created. Libraries take a logger; CLIs create one here.
import { pino, type Logger } from 'pino';

/** Paths pino censors wherever they appear in a log object. Secrets never reach a log line. */
export const REDACT_PATHS = [
  'nsec', '*.nsec', 'secretKey', '*.secretKey', 'sk', '*.sk', 'privkey', '*.privkey',
  'mnemonic', '*.mnemonic', 'passphrase', '*.passphrase', 'seed', '*.seed',
  'nwcUri', '*.nwcUri', 'nwcUrl', '*.nwcUrl', 'uri', '*.uri', 'secret', '*.secret',
  'token', '*.token', 'tokens', '*.tokens', 'proofs', '*.proofs', 'preimage', '*.preimage',
  'apiKey', '*.apiKey', 'authorization', '*.authorization', 'headers.authorization',
];

/** `fd: 2` sends log lines to stderr, for commands whose stdout is their output (e.g. JSON). */
export function createLogger(opts: { name: string; level?: string; pretty?: boolean; fd?: 1 | 2 }): Logger {
  const level = opts.level ?? process.env.BAZAAR_LOG_LEVEL ?? 'info';
  const fd = opts.fd ?? 1;
  const stream = fd === 2 ? process.stderr : process.stdout;
  const pretty = opts.pretty ?? (stream.isTTY === true && process.env.BAZAAR_LOG_FORMAT !== 'json');
  const options = {
    name: opts.name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', destination: fd } } } : {}),
  };
  return pretty || fd === 1 ? pino(options) : pino(options, pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
