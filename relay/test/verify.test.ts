import t from 'tap';
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { finalizeEvent, generateSecretKey, getEventHash, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import {
  checkEventSync,
  computeEventId,
  createVerifier,
  defaultVerifierWorkers,
  invalidReason,
  isWellFormedEvent,
  signatureBackend,
  verifyEventSync,
  type VerifyOutcome,
} from '../src/ingest/verify.ts';
import { loadSchnorrBackend, nativeBackend, wasmBackend } from '../src/ingest/verify-backend.mjs';
import { schnorr } from '@noble/curves/secp256k1.js';

const BACKENDS = ['native', 'wasm'] as const;

const sk = generateSecretKey();
const otherSk = generateSecretKey();

const sign = (kind: number, content: string, tags: string[][] = [], created_at = 1_700_000_000, key = sk): NostrEvent =>
  finalizeEvent({ kind, content, tags, created_at }, key) as NostrEvent;

/** Re-sign nothing, but recompute the id after a mutation (so only the signature is wrong). */
const withFreshId = (e: NostrEvent): NostrEvent => ({ ...e, id: computeEventId(e) });

const flipHex = (hex: string, at: number): string => hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1);

const contents = {
  plain: 'hello nostr',
  empty: '',
  nip01Escapes: 'line\nbreak "quote" back\\slash cr\r tab\t bs\b ff\f end',
  lineSeparators: 'a\u2028b\u2029c',
  controlChars: 'nul\u0000 soh\u0001 us\u001f del\u007f',
  unicode: 'héllo wörld — 日本語 🎉 𝄞 \u00a0',
  jsonLooking: '{"content":"[0,\\"x\\"]"}',
  long: 'x'.repeat(64_000),
};

t.test('computeEventId is sha256 of the NIP-01 serialisation, matching nostr-tools', async (t) => {
  const pk = getPublicKey(sk);
  const e = sign(1, 'hi', [['p', pk]], 1_700_000_123);
  const manual = `[0,"${pk}",1700000123,1,[["p","${pk}"]],"hi"]`;
  t.equal(computeEventId(e), createHash('sha256').update(manual).digest('hex'));
  for (const [name, content] of Object.entries(contents)) {
    const ev = sign(1, content, [['t', content.slice(0, 50)]]);
    t.equal(computeEventId(ev), getEventHash(ev), `${name}: same id as nostr-tools`);
    t.equal(computeEventId(ev), ev.id, `${name}: id matches`);
  }
});

t.test('serialisation follows NIP-01 escaping', async (t) => {
  const pk = getPublicKey(sk);
  const base = { pubkey: pk, created_at: 1, kind: 1, tags: [] as string[][] };
  const idOf = (raw: string) => createHash('sha256').update(`[0,"${pk}",1,1,[],${raw}]`, 'utf8').digest('hex');
  // The seven NIP-01 escapes.
  t.equal(computeEventId({ ...base, content: '\n"\\\r\t\b\f' }), idOf('"\\n\\"\\\\\\r\\t\\b\\f"'));
  // U+2028/U+2029 and non-ASCII are written verbatim (UTF-8), not \u-escaped.
  t.equal(computeEventId({ ...base, content: '\u2028\u2029é🎉' }), idOf('"\u2028\u2029é🎉"'));
  // '/' is not escaped.
  t.equal(computeEventId({ ...base, content: 'a/b' }), idOf('"a/b"'));
  // Other C0 controls: \u00XX with lowercase hex, as JSON.stringify and every mainstream library write them.
  t.equal(computeEventId({ ...base, content: '\u0001\u001f' }), idOf('"\\u0001\\u001f"'));
});

t.test('valid events verify (sync and through the pool)', async (t) => {
  const pk = getPublicKey(otherSk);
  const events = [
    ...Object.values(contents).map((c) => sign(1, c)),
    sign(5930, '', [['i', 'https://example.com/repo.git', 'url'], ['param', 'cmd', 'npm test'], ['p', pk]]),
    sign(6930, '{"exitCode":0}', [['e', 'a'.repeat(64)], ['p', pk], ['request', '{"kind":5930}'], ['amount', '1000']]),
    sign(7000, '', [['status', 'payment-required'], ['amount', '21000', 'lnbc210n1...'], ['e', 'b'.repeat(64)]]),
    sign(31990, '{"name":"p"}', [['d', 'x'], ['k', '5930'], ['k', '5050']]),
    sign(0, '{"name":"alice"}'),
    sign(65535, 'max kind', [[]], 0),
  ];
  for (const e of events) {
    t.equal(checkEventSync(e), 'valid', `kind ${e.kind} sync`);
    t.ok(verifyEventSync(e));
  }
  for (const backend of BACKENDS) {
    for (const workers of [0, 1, 2]) {
      const v = createVerifier({ workers, backend });
      t.equal(v.backend, backend);
      t.same(await v.checkBatch(events), events.map(() => 'valid'), `${backend}, workers=${workers}`);
      t.equal(v.pending, 0);
      await v.close();
    }
  }
});

t.test('tampered events fail with the right reason', async (t) => {
  const e = sign(1, 'original', [['t', 'x']]);
  const other = sign(1, 'other');
  const cases: [string, NostrEvent, VerifyOutcome][] = [
    ['id', { ...e, id: flipHex(e.id, 10) }, 'bad-id'],
    ['content', { ...e, content: 'Original' }, 'bad-id'],
    ['tags', { ...e, tags: [['t', 'y']] }, 'bad-id'],
    ['tag added', { ...e, tags: [['t', 'x'], []] }, 'bad-id'],
    ['created_at', { ...e, created_at: e.created_at + 1 }, 'bad-id'],
    ['kind', { ...e, kind: 2 }, 'bad-id'],
    ['pubkey', { ...e, pubkey: getPublicKey(otherSk) }, 'bad-id'],
    ['sig bit', { ...e, sig: flipHex(e.sig, 70) }, 'bad-sig'],
    ['sig r', { ...e, sig: flipHex(e.sig, 5) }, 'bad-sig'],
    ['sig of another event', { ...e, sig: other.sig }, 'bad-sig'],
    ['content, id recomputed', withFreshId({ ...e, content: 'forged' }), 'bad-sig'],
    ['pubkey, id recomputed', withFreshId({ ...e, pubkey: getPublicKey(otherSk) }), 'bad-sig'],
  ];
  for (const backend of BACKENDS) {
    const v = createVerifier({ workers: 1, backend });
    const inline = createVerifier({ workers: 0, backend });
    for (const [name, ev, want] of cases) {
      t.equal(checkEventSync(ev), want, `${name} (sync)`);
      t.equal(await v.check(ev), want, `${name} (${backend} pool)`);
      t.equal(await inline.check(ev), want, `${name} (${backend} inline)`);
      t.notOk(await v.verify(ev));
    }
    await v.close();
    await inline.close();
  }
  t.match(invalidReason('bad-sig'), /^invalid: /);
  t.match(invalidReason('bad-id'), /^invalid: /);
  t.match(invalidReason('malformed'), /^invalid: /);
});

t.test('malformed input never throws, just fails', async (t) => {
  const e = sign(1, 'ok');
  const notOnCurve = withFreshId({ ...e, pubkey: '0'.repeat(63) + '5' }); // x=5: x^3+7 = 132 is not a square mod p
  const xAboveP = withFreshId({ ...e, pubkey: 'f'.repeat(64) });
  const sigSAboveN = { ...e, sig: e.sig.slice(0, 64) + 'f'.repeat(64) };
  const sigRAboveP = { ...e, sig: 'f'.repeat(64) + e.sig.slice(64) };
  const malformed: [string, unknown][] = [
    ['null', null],
    ['undefined', undefined],
    ['string', JSON.stringify(e)],
    ['array', [e]],
    ['number', 42],
    ['empty object', {}],
    ['missing sig', { ...e, sig: undefined }],
    ['uppercase id', { ...e, id: e.id.toUpperCase() }],
    ['uppercase pubkey', { ...e, pubkey: e.pubkey.toUpperCase() }],
    ['non-hex id', { ...e, id: 'z' + e.id.slice(1) }],
    ['short id', { ...e, id: e.id.slice(2) }],
    ['long pubkey', { ...e, pubkey: e.pubkey + '00' }],
    ['short sig', { ...e, sig: e.sig.slice(0, 126) }],
    ['long sig', { ...e, sig: e.sig + 'ab' }],
    ['non-hex sig', { ...e, sig: 'g'.repeat(128) }],
    ['sig with whitespace', { ...e, sig: ' ' + e.sig.slice(1) }],
    ['numeric id', { ...e, id: 1 }],
    ['kind negative', { ...e, kind: -1 }],
    ['kind too big', { ...e, kind: 65536 }],
    ['kind fractional', { ...e, kind: 1.5 }],
    ['kind string', { ...e, kind: '1' }],
    ['created_at negative', { ...e, created_at: -1 }],
    ['created_at float', { ...e, created_at: 1.5 }],
    ['created_at huge', { ...e, created_at: 1e300 }],
    ['created_at NaN', { ...e, created_at: Number.NaN }],
    ['created_at string', { ...e, created_at: String(e.created_at) }],
    ['tags not array', { ...e, tags: {} }],
    ['tag not array', { ...e, tags: ['e'] }],
    ['tag with number', { ...e, tags: [['e', 1]] }],
    ['tag with null', { ...e, tags: [['e', null]] }],
    ['content number', { ...e, content: 5 }],
    ['content missing', { ...e, content: undefined }],
  ];
  for (const backend of BACKENDS) {
    const v = createVerifier({ workers: 1, backend });
    const inline = createVerifier({ workers: 0, backend });
    for (const [name, ev] of malformed) {
      t.equal(isWellFormedEvent(ev), false, `${name}: not well-formed`);
      t.doesNotThrow(() => t.equal(checkEventSync(ev), 'malformed', `${name} (sync)`));
      t.equal(await v.check(ev), 'malformed', `${name} (${backend} pool)`);
    }
    for (const [name, ev] of [
      ['pubkey not on the curve', notOnCurve],
      ['pubkey x >= p', xAboveP],
      ['sig s >= n', sigSAboveN],
      ['sig r >= p', sigRAboveP],
    ] as const) {
      t.ok(isWellFormedEvent(ev), `${name}: well-formed`);
      t.doesNotThrow(() => t.equal(checkEventSync(ev), 'bad-sig', `${name} (sync)`));
      t.equal(await v.check(ev), 'bad-sig', `${name} (${backend} pool)`);
      t.equal(await inline.check(ev), 'bad-sig', `${name} (${backend} inline)`);
    }
    await v.close();
    await inline.close();
  }
});

t.test('pool: many concurrent calls give the same answers as the sync path', async (t) => {
  const events: NostrEvent[] = [];
  for (let i = 0; i < 600; i++) {
    const e = sign(1, `note ${i}`, [['t', String(i % 7)]], 1_700_000_000 + i);
    // Every third event gets a bad signature, every fifth a bad id.
    if (i % 3 === 0) events.push({ ...e, sig: flipHex(e.sig, 100) });
    else if (i % 5 === 0) events.push({ ...e, content: e.content + '!' });
    else events.push(e);
  }
  const expected = events.map(checkEventSync);
  t.ok(expected.includes('valid') && expected.includes('bad-sig') && expected.includes('bad-id'));
  const v = createVerifier({ workers: 2, maxBatch: 37, backend: 'native' });
  t.equal(v.workers, 2);
  // Issued across several event-loop turns and interleaved with batch calls.
  const singles = events.map((e, i) => (i % 2 ? v.check(e) : new Promise<VerifyOutcome>((res) => setImmediate(() => res(v.check(e))))));
  const batch = v.checkBatch(events);
  t.same(await Promise.all(singles), expected);
  t.same(await batch, expected);
  t.equal(v.pending, 0);
  await v.close();
});

t.test('close finishes queued work, is idempotent, and later calls reject', async (t) => {
  const events = Array.from({ length: 300 }, (_, i) => sign(1, `close ${i}`));
  const ports = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
  const portsBefore = ports();
  const v = createVerifier({ workers: 2, maxBatch: 16 });
  t.equal(ports(), portsBefore + 2, 'one message port per worker while open');
  const inFlight = v.checkBatch(events);
  t.ok(v.pending > 0, 'work is queued');
  const c1 = v.close();
  const c2 = v.close();
  t.equal(c1, c2, 'same close promise');
  t.same(await inFlight, events.map(() => 'valid'), 'queued checks completed');
  await c1;
  t.equal(v.pending, 0);
  t.equal(ports(), portsBefore, 'no worker left behind after close');
  await t.rejects(v.check(events[0]), /closed/);
  // Closing a verifier that never did any work is fine too.
  await createVerifier({ workers: 1 }).close();
  await createVerifier({ workers: 0 }).close();
});

t.test('close lets workers exit on their own, never terminating one inside a native call', async (t) => {
  // worker.terminate() during (or just after) a koffi call aborts the process with
  // "napi_throw" (koffi#190); close() must ask the workers to stop instead.
  const terminate = Worker.prototype.terminate;
  let terminated = 0;
  Worker.prototype.terminate = function (this: Worker) {
    terminated++;
    return terminate.call(this);
  };
  t.teardown(() => {
    Worker.prototype.terminate = terminate;
  });
  const events = Array.from({ length: 64 }, (_, i) => sign(1, `stop ${i}`));
  for (let round = 0; round < 4; round++) {
    const v = createVerifier({ workers: 2, maxBatch: 8, backend: 'native' });
    // Alternate: closed while the workers are still loading, and closed with work in flight.
    const work = round % 2 ? v.checkBatch(events) : Promise.resolve(events.map(() => 'valid' as const));
    await v.close();
    t.same(await work, events.map(() => 'valid'), `round ${round}: every check answered`);
  }
  t.equal(terminated, 0, 'no worker was terminated');
});

t.test('bad options are rejected clearly', async (t) => {
  t.throws(() => createVerifier({ workers: -1 }), RangeError);
  t.throws(() => createVerifier({ workers: 1.5 }), RangeError);
  t.throws(() => createVerifier({ maxBatch: 0 }), RangeError);
});

t.test('backends: native libsecp256k1 is installed (scripts/setup.sh) and is the default', async (t) => {
  t.equal(signatureBackend.name, 'native', `native backend loads (${signatureBackend.fallbackReason ?? ''}); run scripts/setup.sh to install libsecp256k1-1`);
  t.equal(loadSchnorrBackend({ backend: 'wasm' }).name, 'wasm');
  t.throws(() => loadSchnorrBackend({ backend: 'native', libraryPath: '/nonexistent/libsecp256k1.so' }), /libsecp256k1 not found/);
  const fallback = loadSchnorrBackend({ backend: 'auto', libraryPath: '/nonexistent/libsecp256k1.so' });
  t.equal(fallback.name, 'wasm', 'auto falls back to WASM');
  t.match(fallback.fallbackReason, /not found/);
  t.throws(() => loadSchnorrBackend({ backend: 'fast' as never }), /unknown signature backend/);
  t.throws(() => createVerifier({ backend: 'fast' as never }), /unknown signature backend/);
  t.equal(defaultVerifierWorkers('native'), 0, 'native checks inline by default');
  t.ok(defaultVerifierWorkers('wasm') >= 1, 'WASM checks on workers by default');
  const v = createVerifier({ backend: 'wasm' });
  t.equal(v.workers, defaultVerifierWorkers('wasm'));
  await v.close();
});

t.test('backends agree with each other and with @noble/curves on random and edge inputs', async (t) => {
  const native = nativeBackend();
  const wasm = wasmBackend();
  const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  let valid = 0;
  let disagreements = 0;
  for (let i = 0; i < 300; i++) {
    const sk = rand(32);
    const pk = schnorr.getPublicKey(sk);
    const msg = rand(32);
    const sig = schnorr.sign(msg, sk, rand(32));
    const variants: [Uint8Array, Uint8Array, Uint8Array][] = [
      [msg, pk, sig],
      [rand(32), pk, sig],
      [msg, rand(32), sig], // a random x is on the curve about half the time
      [msg, pk, Uint8Array.from(sig, (b, j) => (j === i % 64 ? b ^ 1 : b))],
      [msg, pk, rand(64)],
    ];
    for (const [m, p, s] of variants) {
      const expected = (() => {
        try {
          return schnorr.verify(s, m, p);
        } catch {
          return false;
        }
      })();
      const n = native.verify(m, p, s);
      const w = wasm.verify(m, p, s);
      if (n !== expected || w !== expected) disagreements++;
      if (expected) valid++;
    }
  }
  t.equal(disagreements, 0, 'native, wasm and noble agree');
  t.equal(valid, 300, 'exactly the untampered signatures verify');
  // Wrong lengths never reach libsecp256k1 (it reads fixed lengths from the pointers).
  t.equal(native.verify(new Uint8Array(31), new Uint8Array(32), new Uint8Array(64)), false);
  t.equal(native.verify(new Uint8Array(32), new Uint8Array(33), new Uint8Array(64)), false);
  t.equal(native.verify(new Uint8Array(32), new Uint8Array(32), new Uint8Array(63)), false);
  t.equal(wasm.verify(new Uint8Array(32), new Uint8Array(32), new Uint8Array(63)), false);
});
