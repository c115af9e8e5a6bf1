// Negentropy protocol v1: the reference suite's vectors (hoytech/negentropy), then a seeded
// differential: random pairs of sets reconciled with and without frame size limits must yield
// exactly the set differences. (The byte-level comparison with the C++ reference runs against
// strfry in negentropy-strfry.test.ts.)
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { Negentropy, NegentropyProtocolError } from '../src/sync/negentropy.ts';
import { NegentropyStorage, NegentropyStorageBuilder } from '../src/sync/negentropy-storage.ts';
import { prng } from './random.ts';

const hex = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));
const storageOf = (items: readonly (readonly [number, string])[]): NegentropyStorage => {
  const b = new NegentropyStorageBuilder();
  for (const [ts, id] of items) b.add(ts, id);
  return b.seal();
};

const A = 'eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c';
const B = '39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0';
const C = 'abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba';

t.test('reference vectors', async (t) => {
  // kotlin/src/test/.../FingerprintTest.kt
  t.equal(storageOf([[1678011277, A]]).fingerprint(0, 1).toString('hex'), '6d74e1212fcafc8a81d090f0ffbde8b0');
  const three = storageOf([[1678011277, A], [1678011278, B], [1678011279, C]]);
  t.equal(three.fingerprint(0, 2).toString('hex'), '96b26d110825d4b1805fc56988a3e65d');
  t.equal(three.fingerprint(0, 3).toString('hex'), 'c15ce60f185fd24ae341076caa93daa5');
  // NegentropyBasicTest.kt: the initial message of three items is one IdList over everything.
  t.equal(hex(new Negentropy(three).initiate()), `6100000203${A}${B}${C}`);
  // A message in an unknown version is answered with the highest version spoken.
  t.equal(hex(new Negentropy(three).respond(Buffer.from('62aabbccddeeff', 'hex'))), '61');
  // NegentropyClientServerTest.kt: two initiators reconcile each other's first message.
  const p1 = new Negentropy(storageOf([[1678011277, A], [1678011279, C]]));
  const p2 = new Negentropy(storageOf([[1678011278, B], [1678011279, C]]));
  const init1 = p1.initiate();
  const init2 = p2.initiate();
  t.same(p1.reconcile(init2), { output: null, have: [A], need: [B] });
  t.same(p2.reconcile(init1), { output: null, have: [B], need: [A] });
  // lang1-js-client.txt: the reference JavaScript implementation's initial message over 25 items.
  const lang1 = JSON.parse(readFileSync(new URL('./fixtures/negentropy/lang1-js-client.json', import.meta.url), 'utf8')) as { items: [number, string][]; initiate: string };
  t.equal(hex(new Negentropy(storageOf(lang1.items)).initiate()), lang1.initiate);
});

t.test('storage', async (t) => {
  const b = new NegentropyStorageBuilder(2);
  b.add(5, C);
  b.add(5, A);
  b.add(3, B);
  b.add(5, A); // the same item twice is one item
  const s = b.seal();
  t.equal(s.size, 3);
  t.same([0, 1, 2].map((i) => [s.timestamp(i), s.idHex(i)]), [[3, B], [5, C], [5, A]], 'timestamp order, ties by id bytes');
  t.equal(s.findLowerBound(0, 3, 5, Buffer.alloc(0)), 1);
  t.equal(s.findLowerBound(0, 3, 5, Buffer.from('ac', 'hex')), 2, 'a bound id is a prefix, padded with zeros');
  t.equal(s.findLowerBound(0, 3, 5, Buffer.from(C, 'hex')), 1, 'bounds are inclusive lower bounds');
  t.equal(s.findLowerBound(0, 3, Infinity, Buffer.alloc(0)), 3);
  // Prefix-sum fingerprints agree with summing the ids directly, on sums that carry past 2^256.
  const ff = 'ff'.repeat(32);
  const big = storageOf([[1, ff], [2, 'fe' + 'ff'.repeat(31)], [3, '01' + '00'.repeat(31)]]);
  for (const [lo, hi] of [[0, 3], [1, 3], [0, 2], [2, 2]]) t.equal(big.fingerprint(lo, hi).toString('hex'), naiveFingerprint(big, lo, hi), `fingerprint(${lo}, ${hi})`);
  t.throws(() => NegentropyStorage.fromSorted(new Float64Array([2, 1]), new Uint8Array(64)), /out of order/);
  // Sealing in slices (as the relay does for a large NEG-OPEN) gives the same storage.
  for (const order of ['newest-first', 'oldest-first', 'shuffled'] as const) {
    const items: [number, string][] = [];
    for (let i = 0; i < 30_000; i++) items.push([1_700_000_000 + Math.floor(i / 7), createHash('sha256').update(`${order}${i % 29_000}`).digest('hex')]);
    if (order === 'newest-first') items.reverse();
    if (order === 'shuffled') items.sort((x, y) => (x[1] < y[1] ? -1 : 1));
    const whole = storageOf(items);
    const sliced = new NegentropyStorageBuilder();
    for (const [ts, id] of items) sliced.add(ts, id);
    const sealer = sliced.sealer();
    let steps = 1;
    while (!sealer.step(0)) steps++;
    const got = sealer.result();
    t.ok(order === 'shuffled' || steps > 4, `${order}: sealed in ${steps} slices`);
    t.equal(got.size, whole.size);
    t.ok(got.ids.equals(whole.ids) && got.timestamps.every((v, i) => v === whole.timestamps[i]), `${order}: same items in the same order`);
    t.equal(got.fingerprint(0, got.size).toString('hex'), naiveFingerprint(whole, 0, whole.size), `${order}: same fingerprint`);
  }
  t.throws(() => b.add(-1, A), RangeError);
  t.throws(() => b.add(1, 'XYZ'), RangeError);
});

t.test('malformed messages are protocol errors, never crashes', async (t) => {
  const s = storageOf([[1, A], [2, B]]);
  const bad: [string, string][] = [
    ['', 'empty'],
    ['5f', 'version byte out of range'],
    ['6100', 'bound cut short'],
    ['610021', 'bound key longer than 32 bytes'],
    ['61000001aabb', 'fingerprint cut short'],
    ['6100000205' + A, 'id list shorter than its count'],
    ['6100000ff', 'unknown mode'],
    ['610000' + '80'.repeat(11), 'varint longer than 64 bits'],
  ];
  for (const [msg, why] of bad) t.throws(() => new Negentropy(s).respond(Buffer.from(msg, 'hex')), NegentropyProtocolError, why);
  t.throws(() => new Negentropy(s, 100), RangeError, 'frame size limits below 4096 are refused');
  const client = new Negentropy(s);
  t.throws(() => client.reconcile(Buffer.from('61', 'hex')), /initiate/, 'reconcile() before initiate()');
  client.initiate();
  t.throws(() => client.reconcile(Buffer.from('62', 'hex')), NegentropyProtocolError, 'an initiator cannot downgrade below v1');
});

interface Outcome { have: Set<string>; need: Set<string>; rounds: number; maxClientFrame: number; maxServerFrame: number }

function runSync(client: NegentropyStorage, server: NegentropyStorage, clientLimit: number, serverLimit: number): Outcome {
  const c = new Negentropy(client, clientLimit);
  const srv = new Negentropy(server, serverLimit);
  const have = new Set<string>();
  const need = new Set<string>();
  let msg: Buffer | null = c.initiate();
  let rounds = 0;
  let maxClientFrame = msg.length;
  let maxServerFrame = 0;
  while (msg !== null) {
    if (++rounds > 500) throw new Error('no convergence');
    const answer = srv.respond(msg);
    maxServerFrame = Math.max(maxServerFrame, answer.length);
    const r = c.reconcile(answer);
    // With frame size limits an id can be reported again in a later round (a cut-off answer
    // fingerprints everything after the cut, ranges already settled included): callers de-duplicate.
    for (const id of r.have) have.add(id);
    for (const id of r.need) need.add(id);
    msg = r.output;
    if (msg) maxClientFrame = Math.max(maxClientFrame, msg.length);
  }
  return { have, need, rounds, maxClientFrame, maxServerFrame };
}

t.test('differential: random sets reconcile to exactly their differences', async (t) => {
  const seed = Number(process.env.NEG_DIFF_SEED ?? randomBytes(4).readUInt32LE(0));
  t.comment(`seed ${seed} (NEG_DIFF_SEED=${seed} reproduces)`);
  const rand = prng(seed);
  const cases = [
    { shared: 0, onlyClient: 0, onlyServer: 0 },
    { shared: 0, onlyClient: 5, onlyServer: 0 },
    { shared: 0, onlyClient: 0, onlyServer: 40 },
    { shared: 1000, onlyClient: 0, onlyServer: 0 },
    { shared: 3000, onlyClient: 1, onlyServer: 1 },
    { shared: 5000, onlyClient: 300, onlyServer: 700 },
    { shared: 200, onlyClient: 2000, onlyServer: 2000 },
    { shared: 20000, onlyClient: 3000, onlyServer: 50 },
  ];
  for (const [k, cs] of cases.entries()) {
    // Narrow timestamp ranges force many equal timestamps, so bounds need id prefixes.
    const span = 1 + Math.floor(rand() * (k % 2 === 0 ? 50 : 100000));
    const make = (): [number, string] => [1700000000 + Math.floor(rand() * span), createHash('sha256').update(String(rand())).digest('hex')];
    const shared = Array.from({ length: cs.shared }, make);
    const onlyC = Array.from({ length: cs.onlyClient }, make);
    const onlyS = Array.from({ length: cs.onlyServer }, make);
    const clientS = storageOf([...shared, ...onlyC]);
    const serverS = storageOf([...shared, ...onlyS]);
    for (const [cl, sl] of [[0, 0], [4096, 0], [0, 4096], [4096, 4096], [60000, 500000]] as const) {
      const out = runSync(clientS, serverS, cl, sl);
      const label = `case ${k} (${cs.shared} shared, +${cs.onlyClient}/+${cs.onlyServer}), limits ${cl}/${sl}`;
      t.same([...out.have].sort(), onlyC.map((x) => x[1]).sort(), `${label}: have`);
      t.same([...out.need].sort(), onlyS.map((x) => x[1]).sort(), `${label}: need`);
      if (cl !== 0) t.ok(out.maxClientFrame <= cl, `${label}: client frames within its limit (largest ${out.maxClientFrame} bytes, ${out.rounds} rounds)`);
      if (sl !== 0) t.ok(out.maxServerFrame <= sl, `${label}: server frames within its limit (largest ${out.maxServerFrame} bytes, ${out.rounds} rounds)`);
    }
  }
});

function naiveFingerprint(s: NegentropyStorage, lo: number, hi: number): string {
  let sum = 0n;
  for (let i = lo; i < hi; i++) sum += BigInt('0x' + Buffer.from(s.id(i)).reverse().toString('hex'));
  sum %= 2n ** 256n;
  const le = Buffer.from(sum.toString(16).padStart(64, '0'), 'hex').reverse();
  const n = hi - lo;
  const varint: number[] = [];
  let v = n;
  do { varint.unshift(v % 128); v = Math.floor(v / 128); } while (v > 0);
  for (let i = 0; i < varint.length - 1; i++) varint[i] |= 0x80;
  return createHash('sha256').update(Buffer.concat([le, Buffer.from(varint)])).digest().subarray(0, 16).toString('hex');
}
