// Per-job cgroups for the bubblewrap runner: memory and pids limits, cpu and peak
// memory metering, OOM detection and whole-tree kill. cgroup v1 (one hierarchy per
// controller, as on these hosts) and v2 (unified) are both supported; the job cgroups
// live under `<controller>/<parent>/<job>` at the top of each hierarchy.
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { signalPids } from './proc.ts';

export interface CgroupSupport {
  readonly version: 1 | 2 | null;
  /** Why cgroups are not usable (when version is null). */
  readonly why?: string;
  readonly root: string;
}

const exists = (p: string): Promise<boolean> => access(p, constants.F_OK).then(() => true, () => false);
const writable = (p: string): Promise<boolean> => access(p, constants.W_OK).then(() => true, () => false);

export async function detectCgroups(root = '/sys/fs/cgroup'): Promise<CgroupSupport> {
  try {
    if (await exists(join(root, 'cgroup.controllers'))) {
      const controllers = (await readFile(join(root, 'cgroup.controllers'), 'utf8')).split(/\s+/);
      const missing = ['memory', 'pids'].filter((c) => !controllers.includes(c));
      if (missing.length) return { version: null, root, why: `cgroup v2 lacks the ${missing.join(', ')} controller(s)` };
      if (!(await writable(join(root, 'cgroup.subtree_control')))) return { version: null, root, why: `${root} is not writable (not root, or not delegated)` };
      return { version: 2, root };
    }
    const memory = join(root, 'memory');
    const pids = join(root, 'pids');
    if (!(await exists(join(memory, 'memory.limit_in_bytes')))) return { version: null, root, why: `no cgroup v1 memory controller at ${memory}` };
    if (!(await exists(join(pids, 'cgroup.procs')))) return { version: null, root, why: `no cgroup v1 pids controller at ${pids}` };
    if (!(await writable(memory)) || !(await writable(pids))) return { version: null, root, why: `${memory} or ${pids} is not writable (not root?)` };
    return { version: 1, root };
  } catch (err) {
    return { version: null, root, why: `cannot read ${root}: ${(err as Error).message}` };
  }
}

const cpuacctDirs = new Map<string, Promise<string | null>>();
function cpuacctDir(root: string): Promise<string | null> {
  let found = cpuacctDirs.get(root);
  if (!found) {
    found = (async () => {
      for (const name of ['cpuacct', 'cpu,cpuacct', 'cpuacct,cpu']) {
        if (await exists(join(root, name, 'cpuacct.usage'))) return join(root, name);
      }
      return null;
    })();
    cpuacctDirs.set(root, found);
  }
  return found;
}

const readNumber = async (p: string): Promise<number | null> => {
  try {
    const n = Number((await readFile(p, 'utf8')).trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
};

const readKeyed = async (p: string, key: string): Promise<number | null> => {
  try {
    const line = (await readFile(p, 'utf8')).split('\n').find((l) => l.startsWith(`${key} `));
    return line ? Number(line.slice(key.length + 1)) : null;
  } catch {
    return null;
  }
};

export class JobCgroup {
  readonly version: 1 | 2;
  /** Every directory created for the job (v1: one per controller). */
  private readonly dirs: { memory: string; pids: string; cpu: string | null };

  private constructor(version: 1 | 2, dirs: { memory: string; pids: string; cpu: string | null }) {
    this.version = version;
    this.dirs = dirs;
  }

  /** Creates the job's cgroup(s) with memory (no swap) and pids limits. */
  static async create(support: CgroupSupport, parent: string, name: string, limits: { memoryBytes: number; pids: number }): Promise<JobCgroup> {
    if (support.version === 2) {
      const base = join(support.root, parent);
      await mkdir(base, { recursive: true });
      // Controllers must be enabled top-down for the job cgroups to get memory/pids files.
      await writeFile(join(support.root, 'cgroup.subtree_control'), '+memory +pids').catch(() => undefined);
      await writeFile(join(base, 'cgroup.subtree_control'), '+memory +pids').catch(() => undefined);
      const dir = join(base, name);
      await mkdir(dir);
      const cg = new JobCgroup(2, { memory: dir, pids: dir, cpu: dir });
      await writeFile(join(dir, 'memory.max'), String(limits.memoryBytes));
      await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined);
      await writeFile(join(dir, 'pids.max'), String(limits.pids));
      return cg;
    }
    if (support.version !== 1) throw new Error(`cgroups unavailable: ${support.why ?? 'unknown'}`);
    const memory = join(support.root, 'memory', parent, name);
    const pids = join(support.root, 'pids', parent, name);
    const cpuRoot = await cpuacctDir(support.root);
    const cpu = cpuRoot ? join(cpuRoot, parent, name) : null;
    await Promise.all([memory, pids, cpu].map((d) => (d ? mkdir(d, { recursive: true }) : undefined)));
    const cg = new JobCgroup(1, { memory, pids, cpu });
    await Promise.all([
      writeFile(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes))
        // Without swap accounting this file is absent; the memory limit alone still applies.
        .then(() => writeFile(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes)).catch(() => undefined)),
      writeFile(join(pids, 'pids.max'), String(limits.pids)),
    ]);
    return cg;
  }

  /** The cgroup.procs files a process writes its own pid into to join the job. */
  get procsFiles(): string[] {
    const set = new Set([this.dirs.memory, this.dirs.pids, ...(this.dirs.cpu ? [this.dirs.cpu] : [])]);
    return [...set].map((d) => join(d, 'cgroup.procs'));
  }

  async pids(): Promise<number[]> {
    try {
      const txt = await readFile(join(this.dirs.pids, 'cgroup.procs'), 'utf8');
      return txt.split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  async cpuSeconds(): Promise<number | null> {
    if (this.version === 2) {
      const usec = await readKeyed(join(this.dirs.memory, 'cpu.stat'), 'usage_usec');
      return usec === null ? null : usec / 1e6;
    }
    if (!this.dirs.cpu) return null;
    const ns = await readNumber(join(this.dirs.cpu, 'cpuacct.usage'));
    return ns === null ? null : ns / 1e9;
  }

  async peakMemoryBytes(): Promise<number | null> {
    return this.version === 2
      ? readNumber(join(this.dirs.memory, 'memory.peak'))
      : readNumber(join(this.dirs.memory, 'memory.max_usage_in_bytes'));
  }

  /** Number of OOM kills inside the job's cgroup. */
  async oomKills(): Promise<number> {
    const file = this.version === 2 ? 'memory.events' : 'memory.oom_control';
    return (await readKeyed(join(this.dirs.memory, file), 'oom_kill')) ?? 0;
  }

  async signalAll(signal: NodeJS.Signals, except?: number): Promise<void> {
    if (signal === 'SIGKILL' && this.version === 2 && (await exists(join(this.dirs.pids, 'cgroup.kill')))) {
      await writeFile(join(this.dirs.pids, 'cgroup.kill'), '1').catch(() => undefined);
      return;
    }
    signalPids((await this.pids()).filter((p) => p !== except), signal);
  }

  /** Kills whatever is left and removes the job's cgroup directories. */
  async destroy(): Promise<void> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const left = await this.pids();
      if (left.length === 0) break;
      signalPids(left, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all([...new Set([this.dirs.memory, this.dirs.pids, this.dirs.cpu])].map((d) => (d ? rmdir(d).catch(() => undefined) : undefined)));
  }
}
