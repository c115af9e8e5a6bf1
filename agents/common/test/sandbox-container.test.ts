// The escape suite against containers: dockerode driving the real podman service (or
// Docker) through the Docker API, with the sandbox base image built/imported once.
import t from 'tap';
import { pino } from 'pino';
import { ensureBaseImage } from '../src/sandbox/base-image.ts';
import { ContainerRunner } from '../src/sandbox/container-runner.ts';
import { detectRunners } from '../src/sandbox/detect.ts';
import { escapeSuite } from './sandbox-escape-suite.ts';
import { proxySuite } from './sandbox-proxy-suite.ts';
import { connectDocker } from '../src/sandbox/podman-service.ts';

const log = pino({ level: process.env.BAZAAR_TEST_LOG ?? 'silent' });
// $DOCKER_HOST (scripts/test.sh serves podman's API) or a private podman service for this file.
const api = await connectDocker({ startPodman: true });

if ('unavailable' in api) {
  // Nothing to test on a machine without podman (or Docker): a skip that says why. Podman
  // installed but not serving is a failure, never a skip (CI installs podman).
  if (api.attempted) t.fail(`a Docker API should be there but is not: ${api.unavailable}`);
  else t.test('container sandbox', { skip: `no container engine here: ${api.unavailable}` }, async () => {});
} else {
  t.teardown(() => api.stop());
  t.comment(`Docker API at ${api.endpoint}`);
  // The first run on a machine debootstraps and imports the base image (1-3 min); later runs reuse it.
  t.setTimeout(15 * 60_000);
  const image = await ensureBaseImage(api.docker, { log });
  const runner = new ContainerRunner({ docker: api.docker, image, log });

  t.test('container escape suite', async (t) => {
    escapeSuite(t, runner);
  });

  t.test('containers and the credential proxy', async (t) => {
    proxySuite(t, runner);
  });

  t.test('the container runs with the seed flags', async (t) => {
    const r = await runner.run({ cmd: ['sh', '-c', 'id -u; grep -E "^Cap(Eff|Bnd)" /proc/self/status; grep NoNewPrivs /proc/self/status; ulimit -n; touch /workspace/x && /workspace/x; mount | grep -E " /workspace | / "'] });
    t.equal(r.reason, 'exit');
    t.match(r.stdout, /^65534\n/);
    t.match(r.stdout, /CapEff:\s+0000000000000000/);
    t.match(r.stdout, /CapBnd:\s+0000000000000000/);
    t.match(r.stdout, /NoNewPrivs:\s+1/);
    t.match(r.stdout, /\n1024\n/);
    t.match(r.stderr, /Permission denied/, 'the tmpfs workspace is noexec');
    t.match(r.stdout, /on \/workspace type tmpfs \([^)]*noexec/);
    t.match(r.stdout, /on \/ type \w+ \(ro/);
  });

  t.test('a missing image is a clear error; a missing command is the job failing (127)', async (t) => {
    await t.rejects(runner.run({ cmd: ['true'], image: 'bazaar/no-such-image:0' }), /npm run images/);
    await t.rejects(runner.run({ cmd: ['true'], repo: '/tmp/a:b' }), /contains ':'/);
    await t.rejects(runner.run({ cmd: ['true'], mounts: [{ hostPath: '/tmp', sandboxPath: '/x:rw', readOnly: true }] }), /contains ':'/);
    const missing = await runner.run({ cmd: ['definitely-not-a-command'] });
    t.match(missing, { reason: 'exit', exitCode: 127, stderr: /definitely-not-a-command/ });
  });

  t.test('detectRunners reports both runners and why one is not usable', async (t) => {
    const found = await detectRunners({ log, dockerSocket: api.endpoint, image });
    t.match(found.find((r) => r.kind === 'container'), { available: true, details: { image } });
    t.match(found.find((r) => r.kind === 'bwrap'), { available: true });
    const gvisor = await detectRunners({ log, dockerSocket: api.endpoint, image, runtime: 'runsc-not-configured' });
    t.match(gvisor.find((r) => r.kind === 'container'), { available: false, why: /runtime runsc-not-configured/ });
    // podman lists runtimes it knows of even when not installed, and its compat API ignores a
    // per-container runtime: the probe container catches both rather than running under runc.
    const runsc = await detectRunners({ log, dockerSocket: api.endpoint, image, runtime: 'runsc' });
    t.match(runsc.find((r) => r.kind === 'container'), { available: false, why: /runsc/ });
    const nowhere = await detectRunners({ log, dockerSocket: 'unix:///nonexistent/docker.sock', image });
    t.match(nowhere.find((r) => r.kind === 'container'), { available: false, why: /no Docker API/ });
  });
}
