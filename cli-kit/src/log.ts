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

export function createLogger(opts: { name: string; level?: string; pretty?: boolean }): Logger {
  const level = opts.level ?? process.env.BAZAAR_LOG_LEVEL ?? 'info';
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && process.env.BAZAAR_LOG_FORMAT !== 'json');
  return pino({
    name: opts.name,
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}

export type { Logger };
