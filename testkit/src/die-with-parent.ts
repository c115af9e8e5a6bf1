// Children of a test that must not outlive it. tap ends a test file that runs past its timeout
// with a signal; a SIGKILLed (or default-SIGTERMed) node process runs no cleanup, so whatever
// it spawned (nats-server, a relay, strfry, a devnet) would keep running, holding ports, store
// directories and CPU on a shared machine. Linux's PR_SET_PDEATHSIG asks the kernel to signal
// a child when its parent dies, whatever the reason; node cannot call prctl, but util-linux's
// `setpriv --pdeathsig KILL -- CMD …` sets it and then execs CMD, so the child keeps setpriv's
// pid (CMD's own pid, as without the wrapper) and the setting survives the exec.
import { execFileSync } from 'node:child_process';

let setpriv: string | null | undefined;

/** util-linux's setpriv when it is present and knows --pdeathsig (util-linux ≥ 2.33), else null. */
export function findSetpriv(): string | null {
  if (setpriv !== undefined) return setpriv;
  setpriv = null;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = `${dir}/setpriv`;
    try {
      // One real use of the option proves both that the binary runs and that it knows it.
      execFileSync(candidate, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 5000 });
      setpriv = candidate;
      break;
    } catch {
      // absent or too old: next
    }
  }
  return setpriv;
}

/**
 * `command args…` rewritten so that the kernel SIGKILLs the process when the thread that
 * spawns it dies: `setpriv --pdeathsig KILL -- command args…`, as spawn's first two
 * arguments: `spawn(...dieWithParent(cmd, args), options)`. Spawn from the main thread (the
 * parent-death signal follows the spawning thread, and a worker thread's exit would fire it).
 * Without setpriv the command is returned unchanged, and such a child can still outlive a
 * killed parent.
 */
export function dieWithParent(command: string, args: readonly string[]): [command: string, args: string[]] {
  const wrapper = findSetpriv();
  return wrapper === null ? [command, [...args]] : [wrapper, ['--pdeathsig', 'KILL', '--', command, ...args]];
}
