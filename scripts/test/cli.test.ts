import t from 'tap';

t.test('help lists subcommands with their one-line summaries', async (t) => {
  // Run the real CLI: tap itself writes to this process's stdout.
  const { execFileSync } = await import('node:child_process');
  const bin = new URL('../bazaar.mjs', import.meta.url).pathname;
  const out = execFileSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  t.match(out, /relay\s+Run the Bazaar Nostr relay/);
  t.match(out, /up\s+Run the whole local market/);
});
