// `npm run images`: builds (or reuses) the sandbox base image and imports it into the
// Docker API endpoint (Docker or podman's service), without any image registry.
import { runCommand, type CommandSpec } from '@bazaar/cli-kit/command';
import { createLogger } from '@bazaar/cli-kit/log';
import { baseImageTag, ensureBaseImage } from '../agents/common/src/sandbox/base-image.ts';
import { connectDocker } from '../agents/common/src/sandbox/podman-service.ts';

export const imagesCommand: CommandSpec = {
  name: 'images',
  summary: 'Build the sandbox base image (debootstrap from the Debian mirror) and import it through the Docker API.',
  details: [
    'The image is tagged bazaar/sandbox-base:<hash of sandbox-images/base/packages.txt>; an existing tag is reused.',
    'With an image registry you can instead: docker build -t bazaar/sandbox-base sandbox-images/base',
  ].join('\n'),
  envPrefix: 'BAZAAR_IMAGES_',
  flags: {
    'docker-socket': { type: 'string', description: 'Docker API endpoint (unix:///path.sock or tcp://host:port; default: a private podman service)', env: 'DOCKER_HOST' },
    'from-tar': { type: 'string', description: 'import this root filesystem tarball instead of running debootstrap' },
    mirror: { type: 'string', description: 'Debian mirror for debootstrap', default: 'http://deb.debian.org/debian', env: 'BAZAAR_DEBIAN_MIRROR' },
    force: { type: 'boolean', description: 'rebuild even when the image exists', default: false },
    'print-tag': { type: 'boolean', description: 'only print the tag the current package list builds', default: false },
  },
  async run(flags) {
    if (flags['print-tag']) {
      console.log(await baseImageTag());
      return 0;
    }
    const log = createLogger({ name: 'images' });
    // DOCKER_HOST / --docker-socket when it answers, else a private podman service for the import.
    const api = await connectDocker({ endpoint: flags['docker-socket'] as string | undefined, startPodman: true });
    if ('unavailable' in api) {
      console.error(`images: ${api.unavailable}`);
      return 1;
    }
    try {
      const tag = await ensureBaseImage(api.docker, {
        log,
        fromTar: flags['from-tar'] as string | undefined,
        mirror: flags.mirror as string,
        force: flags.force as boolean,
      });
      console.log(tag);
      return 0;
    } finally {
      await api.stop();
    }
  },
};

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await runCommand(imagesCommand, process.argv.slice(2));
}
