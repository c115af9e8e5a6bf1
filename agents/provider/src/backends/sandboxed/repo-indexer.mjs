// Runs INSIDE the sandbox (plain Node, no dependencies): walks a checkout, hashes every
// file and extracts symbols with per-language patterns, printing one JSON object
// { files, symbols } to stdout. The repo is untrusted input, which is why this is here and
// not in the provider process. Usage: node repo-indexer.mjs <root> [maxFiles] [symbols=1]
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const [root = '/repo', maxArg = '100000', symArg = '1'] = process.argv.slice(2);
const maxFiles = Number(maxArg);
const wantSymbols = symArg === '1';
const MAX_SYMBOL_BYTES = 2 * 1024 * 1024;

const LANG = {
  '.ts': 'typescript', '.tsx': 'typescript', '.mts': 'typescript', '.cts': 'typescript',
  '.js': 'javascript', '.jsx': 'javascript', '.mjs': 'javascript', '.cjs': 'javascript',
  '.py': 'python', '.go': 'go', '.rs': 'rust', '.c': 'c', '.h': 'c', '.cc': 'cpp', '.cpp': 'cpp', '.hpp': 'cpp',
  '.java': 'java', '.kt': 'kotlin', '.rb': 'ruby', '.php': 'php', '.cs': 'csharp', '.swift': 'swift',
  '.sh': 'shell', '.bash': 'shell', '.md': 'markdown', '.json': 'json', '.yaml': 'yaml', '.yml': 'yaml', '.toml': 'toml',
  '.html': 'html', '.css': 'css', '.sql': 'sql',
};
const PATTERNS = {
  typescript: [[/^\s*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\*?\s+([A-Za-z_$][\w$]*)/, 'function'], [/^\s*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+([A-Za-z_$][\w$]*)/, 'class'], [/^\s*(?:export\s+)?interface\s+([A-Za-z_$][\w$]*)/, 'interface'], [/^\s*(?:export\s+)?type\s+([A-Za-z_$][\w$]*)\s*[=<]/, 'type'], [/^\s*export\s+(?:const|let|var)\s+([A-Za-z_$][\w$]*)/, 'variable']],
  python: [[/^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)/, 'function'], [/^\s*class\s+([A-Za-z_]\w*)/, 'class']],
  go: [[/^func\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)/, 'function'], [/^type\s+([A-Za-z_]\w*)/, 'type']],
  rust: [[/^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+([A-Za-z_]\w*)/, 'function'], [/^\s*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|trait)\s+([A-Za-z_]\w*)/, 'type']],
  c: [[/^[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\([^;]*$/, 'function']],
  java: [[/^\s*(?:public|private|protected)?\s*(?:static\s+)?(?:final\s+)?(?:abstract\s+)?class\s+([A-Za-z_]\w*)/, 'class']],
  ruby: [[/^\s*def\s+([A-Za-z_][\w?!]*)/, 'function'], [/^\s*class\s+([A-Z]\w*)/, 'class']],
  shell: [[/^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)\s*\{/, 'function']],
};
PATTERNS.javascript = PATTERNS.typescript.filter(([, k]) => k !== 'interface' && k !== 'type');
PATTERNS.cpp = PATTERNS.c;

const files = [];
const symbols = [];
let truncated = false;
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch {
    return;
  }
  for (const e of entries) {
    if (files.length >= maxFiles) {
      truncated = true;
      return;
    }
    const full = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === '.git') continue;
      walk(full);
    } else if (e.isFile() && !lstatSync(full).isSymbolicLink()) {
      const path = relative(root, full);
      const bytes = readFileSync(full);
      const dot = e.name.lastIndexOf('.');
      const language = dot > 0 ? LANG[e.name.slice(dot).toLowerCase()] : undefined;
      files.push({ path, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), ...(language ? { language } : {}) });
      const pats = language && PATTERNS[language];
      if (wantSymbols && pats && bytes.length <= MAX_SYMBOL_BYTES) {
        bytes.toString('utf8').split('\n').forEach((line, i) => {
          for (const [re, kind] of pats) {
            const m = re.exec(line);
            if (m) {
              symbols.push({ name: m[1], kind, path, line: i + 1 });
              break;
            }
          }
        });
      }
    }
  }
}
walk(root);
process.stdout.write(JSON.stringify({ files, symbols, truncated }));
