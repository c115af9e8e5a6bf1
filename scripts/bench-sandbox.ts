// `npm run bench:sandbox`: start-to-exit overhead of a trivial command (`true`) in each
// runner, p50/p99 over N runs (after warm-up). Target: bubblewrap p50 under 50 ms.
import { runCommand, type CommandSpec } from '@bazaar/cli-kit/command';
import { createLogger } from '@bazaar/cli-kit/log';
import { BwrapRunner } from '../agents/common/src/sandbox/bwrap-runner.ts';
import { ContainerRunner } from '../agents/common/src/sandbox/container-runner.ts';
import { baseImageTag, imageExists } from '../agents/common/src/sandbox/base-image.ts';
import { connectDocker } from '../agents/common/src/sandbox/podman-service.ts';
import type { Runner } from '../agents/common/src/sandbox/runner.ts';

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function bench(name: string, runner: Runner, runs: number, warmup: number): Promise<void> {
  for (let i = 0; i < warmup; i++) await runner.run({ cmd: ['true'] });
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await runner.run({ cmd: ['true'] });
    ms.push(performance.now() - t0);
    if (r.exitCode !== 0) throw new Error(`${name}: 'true' exited ${String(r.exitCode)}: ${r.stderr}`);
  }
  ms.sort((a, b) => a - b);
  const f = (n: number): string => `${n.toFixed(1)} ms`.padStart(10);
  console.log(`${name.padEnd(24)} runs=${runs}  p50=${f(pct(ms, 50))}  p99=${f(pct(ms, 99))}  min=${f(ms[0])}  max=${f(ms[ms.length - 1])}`);
}

export const benchSandboxCommand: CommandSpec = {
  name: 'bench:sandbox',
  summary: 'Start-to-exit overhead of a trivial command in each sandbox runner (p50/p99).',
  envPrefix: 'BAZAAR_BENCH_',
  flags: {
    runs: { type: 'number', description: 'measured runs per runner', default: 50, integer: true, min: 1, max: 10_000 },
    warmup: { type: 'number', description: 'unmeasured runs first', default: 3, integer: true, min: 0, max: 100 },
    runner: { type: 'string', description: 'which runners', default: 'all', choices: ['all', 'bwrap', 'container'] },
    'docker-socket': { type: 'string', description: 'Docker API endpoint (default: DOCKER_HOST, else a private podman service)', env: 'DOCKER_HOST' },
  },
  async run(flags) {
    const log = createLogger({ name: 'bench-sandbox', level: 'warn' });
    const runs = flags.runs as number;
    const warmup = flags.warmup as number;
    const which = flags.runner as string;
    console.log(`sandbox start-to-exit overhead of \`true\` (node ${process.version}, ${new Date().toISOString()})`);
    if (which !== 'container') {
      const bwrap = new BwrapRunner({ log });
      const cg = await bwrap.cgroupSupport();
      await bench(`bwrap (${cg.version ? `cgroup v${cg.version}` : 'rlimits'})`, bwrap, runs, warmup);
      if (cg.version) await bench('bwrap (rlimits only)', new BwrapRunner({ log, cgroups: 'off' }), runs, warmup);
    }
    if (which !== 'bwrap') {
      const api = await connectDocker({ endpoint: flags['docker-socket'] as string | undefined, startPodman: true });
      if ('unavailable' in api) {
        console.log(`container                skipped: ${api.unavailable}`);
      } else {
        try {
          const image = await baseImageTag();
          if (!(await imageExists(api.docker, image))) console.log(`container                skipped: image ${image} missing (npm run images)`);
          else await bench('container (dockerode)', new ContainerRunner({ docker: api.docker, image, log }), runs, warmup);
        } finally {
          await api.stop();
        }
      }
    }
    return 0;
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await runCommand(benchSandboxCommand, process.argv.slice(2));
}
