// Test helper: runs the real `bazaar` CLI as a child process (as a user or a client test
// suite would), collects its output and waits for lines on stdout; killed after 90 s.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';

const BAZAAR = fileURLToPath(new URL('../../../../scripts/bazaar.mjs', import.meta.url));

export interface CliProcess {
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
  /** Resolves with the first capture group (or the match) of the first stdout match of `re`. */
  onLine(re: RegExp): Promise<string>;
}

export function runBazaar(args: string[]): CliProcess {
  // Dies with the test process even when tap kills it (die-with-parent.ts).
  const child = spawn(...dieWithParent(process.execPath, [BAZAAR, ...args]), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BAZAAR_LOG_LEVEL: 'warn' } });
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: (s: string) => void }[] = [];
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    for (const w of [...waiters]) {
      const m = stdout.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[1] ?? m[0]);
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return {
    done,
    kill: (s) => child.kill(s),
    onLine: (re) =>
      new Promise((resolve, reject) => {
        const m = stdout.match(re);
        if (m) return resolve(m[1] ?? m[0]);
        waiters.push({ re, resolve });
        void done.then(() => reject(new Error(`exited before ${re}: ${stderr.slice(0, 400)}`)));
      }),
  };
}
