// Sample "coding agents" for the local market (`bazaar up`): tiny deterministic programs that
// take the place of a Claude or Codex CLI, so PatchGen and CodeReview work out of the box with
// no model and no API key. They run exactly where a real agent runs — in the provider's
// sandbox, task on stdin and at $BAZAAR_TASK_FILE, the checkout as cwd — and the provider checks
// their output like any agent's. They are plain Node (present in the sandbox's read-only /usr),
// passed inline with `node -e` because the sandbox sees no file of the provider.
import type { AgentBackendConfig } from './config.ts';

/**
 * PatchGen: follows explicit instructions in the issue — every sentence of the form
 * "In <file>, replace `<old>` with `<new>`." — and nothing else. Exit 1 when there is no
 * such instruction or it changes nothing (the provider then answers with an error).
 */
const PATCH_AGENT = String.raw`
const fs = require('fs'), path = require('path');
const task = fs.readFileSync(process.env.BAZAAR_TASK_FILE, 'utf8');
const tick = String.fromCharCode(96);
const re = new RegExp('In ' + tick + '?([^\\s' + tick + ',]+)' + tick + '?, replace ' + tick + '([^' + tick + ']+)' + tick + ' with ' + tick + '([^' + tick + ']*)' + tick, 'g');
let changed = 0, seen = 0;
for (const m of task.matchAll(re)) {
  seen++;
  const file = path.normalize(m[1]);
  if (path.isAbsolute(file) || file.startsWith('..')) { console.error('refusing to edit ' + m[1]); continue; }
  if (!fs.existsSync(file)) { console.error('no such file: ' + file); continue; }
  const before = fs.readFileSync(file, 'utf8');
  const after = before.split(m[2]).join(m[3]);
  if (after !== before) { fs.writeFileSync(file, after); changed++; console.log('edited ' + file); }
}
if (!seen) { console.error('sample agent: the issue has no instruction of the form: In <file>, replace ' + tick + 'old' + tick + ' with ' + tick + 'new' + tick + '.'); process.exit(1); }
if (!changed) { console.error('sample agent: the instructions changed nothing'); process.exit(1); }
`;

/**
 * CodeReview: reads /workspace/diff.patch and writes a mechanical review: a summary with the
 * size of the change, one `info` note per changed file at its first changed line, and a
 * suggestion. It does not understand code; it says so.
 */
const REVIEW_AGENT = String.raw`
const fs = require('fs');
const diff = fs.readFileSync('/workspace/diff.patch', 'utf8').split('\n');
const files = new Map(); let cur;
for (let i = 0; i < diff.length; i++) {
  const l = diff[i];
  if (l.startsWith('--- ') && (diff[i + 1] || '').startsWith('+++ ')) {
    const strip = (p) => p.split('\t')[0].trim().replace(/^[ab]\//, '');
    const oldP = strip(l.slice(4)), newP = strip(diff[i + 1].slice(4));
    const name = newP === '/dev/null' ? oldP : newP;
    cur = files.get(name) || { add: 0, del: 0, line: 0 }; files.set(name, cur); i++; continue;
  }
  const h = /^@@ -\d+(?:,\d+)? \+(\d+)/.exec(l);
  if (h && cur) { if (!cur.line) cur.line = Math.max(1, Number(h[1])); continue; }
  if (cur && l.startsWith('+')) cur.add++;
  else if (cur && l.startsWith('-')) cur.del++;
}
const add = [...files.values()].reduce((s, f) => s + f.add, 0), del = [...files.values()].reduce((s, f) => s + f.del, 0);
const review = {
  summary: 'Mechanical review by the sample agent of ' + files.size + ' changed file' + (files.size === 1 ? '' : 's') + ' (+' + add + ' / -' + del + ' lines). It checks the shape of the change, not its meaning: a person should read it.',
  approval: 'comment',
  issues: [...files].map(([file, f]) => ({ file, line_start: f.line || 1, severity: 'info', message: '+' + f.add + ' / -' + f.del + ' lines here: make sure the tests cover this change.' })),
  suggestions: ['Run the test suite before merging.'],
};
fs.writeFileSync('/workspace/review.json', JSON.stringify(review, null, 2));
`;

export const SAMPLE_PATCH_AGENT: AgentBackendConfig = { command: ['node', '-e', PATCH_AGENT], allowDomains: [], timeLimitSecs: 120 };
export const SAMPLE_REVIEW_AGENT: AgentBackendConfig = { command: ['node', '-e', REVIEW_AGENT], allowDomains: [], timeLimitSecs: 120 };
