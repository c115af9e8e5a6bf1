// The path-glob rule of the microstandard (allow_path / deny_path / RepoIndex paths):
// one definition, used by providers' sandboxes and buyers' verifiers alike.
import t from 'tap';
import { globMatch } from '../src/diff.ts';

t.test('globMatch', async (t) => {
  const yes: [string, string][] = [
    ['src/a.ts', 'src/a.ts'],
    ['src/*.ts', 'src/a.ts'],
    ['src/**', 'src/x/y/z.ts'],
    ['src/**/*.ts', 'src/x/y.ts'],
    ['**/*.md', 'docs/a.md'],
    ['docs', 'docs/a/b.md'],
    ['docs/', 'docs/a/b.md'],
    ['src/*', 'src/x/y.ts'],
    ['?.txt', 'a.txt'],
    ['a.b', 'a.b'],
  ];
  const no: [string, string][] = [
    ['docs', 'docsx/a.md'],
    ['src/*.ts', 'src/x/y.ts'],
    ['src/*.ts', 'lib/a.ts'],
    ['a.b', 'axb'],
    ['?.txt', 'ab.txt'],
    ['', 'a'],
    ['/', 'a'],
    ['src/(a)', 'src/a'],
  ];
  for (const [g, p] of yes) t.ok(globMatch(g, p), `${g} matches ${p}`);
  for (const [g, p] of no) t.notOk(globMatch(g, p), `${g} does not match ${p}`);
});
