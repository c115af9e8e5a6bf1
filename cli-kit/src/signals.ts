// The one way a long-running `bazaar` command ends: on SIGINT or SIGTERM it logs the
// signal, runs its own shutdown once, and resolves (shutdown errors are logged, not thrown).
import type { Logger } from 'pino';

export function untilSignal(shutdown: () => Promise<void> | void, log: Pick<Logger, 'info' | 'error'>, message = 'shutting down'): Promise<void> {
  return new Promise<void>((done) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      log.info({ signal }, message);
      Promise.resolve()
        .then(shutdown)
        .then(done, (err: unknown) => {
          log.error({ err }, 'error while shutting down');
          done();
        });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
