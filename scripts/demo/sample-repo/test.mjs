// The sample repository's tests: node test.mjs exits 0 when they pass.
import { add, mul } from './sum.mjs';

const cases = [
  ['add(2, 3)', add(2, 3), 5],
  ['add(-1, 1)', add(-1, 1), 0],
  ['mul(3, 4)', mul(3, 4), 12],
];
let failed = 0;
for (const [name, got, want] of cases) {
  if (got !== want) {
    console.error(`FAIL ${name} = ${got}, expected ${want}`);
    failed++;
  }
}
if (failed) process.exit(1);
console.log(`ok: ${cases.length} tests`);
