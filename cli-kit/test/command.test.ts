import t from 'tap';
import { parseFlags, helpText, type CommandSpec } from '../src/command.ts';

const spec: CommandSpec = {
  name: 'demo',
  summary: 'demo command',
  envPrefix: 'BAZAAR_DEMO_',
  flags: {
    port: { type: 'number', integer: true, min: 0, max: 65535, default: 4869, description: 'port' },
    host: { type: 'string', default: '127.0.0.1', description: 'host' },
    mode: { type: 'string', choices: ['a', 'b'], description: 'mode' },
    verbose: { type: 'boolean', description: 'verbose' },
  },
};

t.test('flags override env, env overrides defaults', async (t) => {
  t.same(parseFlags(spec, [], {}).flags, { port: 4869, host: '127.0.0.1' });
  t.same(parseFlags(spec, [], { BAZAAR_DEMO_PORT: '1234', BAZAAR_DEMO_VERBOSE: 'yes' }).flags, { port: 1234, host: '127.0.0.1', verbose: true });
  t.same(parseFlags(spec, ['--port', '99'], { BAZAAR_DEMO_PORT: '1234' }).flags.port, 99);
  t.same(parseFlags(spec, ['--port=7', '--mode', 'b']).flags, { port: 7, host: '127.0.0.1', mode: 'b' });
});

t.test('bad input is a UsageError with one clear line', async (t) => {
  for (const argv of [['--port', 'x'], ['--port', '1.5'], ['--port', '70000'], ['--mode', 'c'], ['--nope'], ['--port']]) {
    t.throws(() => parseFlags(spec, argv, {}), { name: 'UsageError' }, argv.join(' '));
  }
  t.throws(() => parseFlags(spec, [], { BAZAAR_DEMO_PORT: 'abc' }), /BAZAAR_DEMO_PORT must be a number/);
  t.throws(() => parseFlags(spec, ['--port', '-5'], {}), { name: 'UsageError', message: '--port takes a value; one that starts with "-" is written --port=VALUE' });
  t.throws(() => parseFlags(spec, ['--port=-5'], {}), { name: 'UsageError', message: /--port/ }, 'written that way, the value\'s own check answers');
});

t.test('help lists flags with their env names and defaults', async (t) => {
  t.equal(parseFlags(spec, ['--help']).help, true);
  const h = helpText(spec, 'bazaar demo');
  t.match(h, /--port <n>/);
  t.match(h, /env: BAZAAR_DEMO_PORT/);
  t.match(h, /default: 4869/);
});
