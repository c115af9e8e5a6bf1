// The workspace dependency graph is the real one: a package reaches another only through
// a declared dependency (`@bazaar/x`), never through a relative path out of its folder
// (e.g. `../../scripts/lib`), which npm, tsc project boundaries and readers cannot see.
import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] };

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'data' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts|mjs|js)$/.test(name)) out.push(p);
  }
  return out;
}

// Static imports/exports and dynamic import() with a literal specifier.
const SPECIFIER = /(?:^|[^\w$.])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|(?:^|[^\w$.])import\s*\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

for (const ws of rootPkg.workspaces) {
  t.test(`${ws}: imports stay inside the package or go through declared dependencies`, async (t) => {
    const pkgDir = join(root, ws);
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { name: string; dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
    const declared = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {}), pkg.name]);
    const escapes: string[] = [];
    const undeclared: string[] = [];
    const files = sourceFiles(pkgDir);
    t.ok(files.length > 0, 'the package has source files');
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(SPECIFIER)) {
        const spec = m[1] ?? m[2] ?? m[3];
        const where = `${relative(root, file)}: ${spec}`;
        if (spec.startsWith('.')) {
          const target = resolve(dirname(file), spec);
          if (relative(pkgDir, target).startsWith('..')) escapes.push(where);
        } else if (spec.startsWith('@bazaar/')) {
          const name = spec.split('/').slice(0, 2).join('/');
          if (!declared.has(name)) undeclared.push(where);
        }
      }
    }
    t.same(escapes, [], 'no relative import leaves the package folder');
    t.same(undeclared, [], 'every @bazaar/* import is a declared dependency');
  });
}
