// Children started through the testkit die with the process that started them, even when
// that process is SIGKILLed (as tap does to a test file past its timeout) and runs no cleanup.
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dieWithParent, findSetpriv } from '../src/die-with-parent.ts';
import { findNatsServer } from '../src/nats.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/start-children.ts', import.meta.url));

/** State letter and start time (clock ticks since boot) of a process, or null when there is none. */
function procStat(pid: number): { state: string; start: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, start: rest[19]! };
  } catch {
    return null;
  }
}

/** Whether the process that had `start` as its start time still runs (a zombie or a reused pid does not count). */
function running(pid: number, start: string): boolean {
  const s = procStat(pid);
  return s !== null && s.start === start && s.state !== 'Z' && s.state !== 'X';
}

/** Polls /proc until the process is gone; false if it still runs after `ms`. */
async function goneWithin(pid: number, start: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (running(pid, start)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

const setpriv = findSetpriv();
const noSetpriv = setpriv === null ? 'util-linux setpriv with --pdeathsig is not installed here (scripts/setup.sh installs it); children are spawned unwrapped' : false;

t.test('dieWithParent wraps the command in setpriv --pdeathsig KILL, keeping its arguments', { skip: noSetpriv }, async (t) => {
  t.same(dieWithParent('/bin/echo', ['a b', '--x']), [setpriv, ['--pdeathsig', 'KILL', '--', '/bin/echo', 'a b', '--x']]);
});

t.test('nats-server and startChild children die when their parent is SIGKILLed', { skip: noSetpriv }, async (t) => {
  const nats = findNatsServer();
  if (!nats.path) t.comment(`nats-server part skipped: ${nats.reason}`);
  const work = mkdtempSync(join(tmpdir(), 'bazaar-testkit-dwp-'));
  const parent = spawn(process.execPath, ['--import=tsx', FIXTURE, nats.path ?? '', work], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(parent, 'exit');
  const started: { pid: number; start: string }[] = [];
  t.teardown(async () => {
    // Whatever the outcome, nothing of this test keeps running.
    if (parent.exitCode === null && parent.signalCode === null) {
      parent.kill('SIGKILL');
      await exited;
    }
    for (const c of started) if (running(c.pid, c.start)) process.kill(c.pid, 'SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });
  const line = await Promise.race([
    once(createInterface({ input: parent.stdout! }), 'line').then(([l]) => l as string),
    exited.then(([code, signal]) => { throw new Error(`the parent exited before it started its children (code ${code}, signal ${signal})`); }),
  ]);
  const pids = JSON.parse(line) as Record<string, number>;
  t.same(Object.keys(pids).sort(), nats.path ? ['child', 'nats'] : ['child']);
  for (const [name, pid] of Object.entries(pids)) {
    const s = procStat(pid);
    t.ok(s && s.state !== 'Z', `${name} (pid ${pid}) runs while its parent does`);
    if (s) started.push({ pid, start: s.start });
  }

  parent.kill('SIGKILL');
  await exited;
  for (const [i, [name, pid]] of Object.entries(pids).entries()) {
    t.ok(await goneWithin(pid, started[i]!.start, 10_000), `${name} (pid ${pid}) is gone after its parent was SIGKILLed`);
  }
});
