// The BIP-340 implementation behind the relay's signature checks, shared by
// verify.ts and verify-worker.mjs (plain JavaScript so a worker thread can load
// it without a TypeScript loader).
//
// Preference order (measured on a 2-core x86-64 box, see relay/README.md):
//   native — the system libsecp256k1 (Debian `libsecp256k1-1`, ≥ 0.2 with the
//            schnorrsig module) called through koffi's prebuilt FFI: ≈40 µs/verify
//   wasm   — tiny-secp256k1 (libsecp256k1 compiled to WebAssembly): ≈210 µs/verify
// The native backend is used only when koffi loads, the library is found, and a
// BIP-340 self-test passes; otherwise the WASM one is used, so the relay works
// on any machine. BAZAAR_VERIFY_BACKEND=wasm|native|auto overrides the choice;
// BAZAAR_LIBSECP256K1=/path/to/libsecp256k1.so picks the library file.
import { createRequire } from 'node:module';
import { verifySchnorr } from 'tiny-secp256k1';

/**
 * Known answer for the load-time self-test: a BIP-340 signature of sha256("bazaar") by the key
 * sha256("bazaar verify self-test"), made with @noble/curves (aux_rand = 32 zero bytes) and
 * checked against tiny-secp256k1 too; `bad` is the same signature with its last nibble changed.
 */
const SELF_TEST = {
  pubkey: '94c7f801158ea0a926d4132be727d2d2a27b8b89859839cabff6362ba2292ef7',
  msg: '131a0b6c32e4f927894683e6a932b0e11bd26a4e23e20cb59d744734418f95d2',
  good: '1fec900a3d9bcfa6a7cfd8f3c5ea3fb7d6b05326c2703ab5ab26f2545dcef1994aa68f491807316798b71ae0e8fbad8ec1b2a03eed1e5407a05dc360edb93a59',
  bad: '1fec900a3d9bcfa6a7cfd8f3c5ea3fb7d6b05326c2703ab5ab26f2545dcef1994aa68f491807316798b71ae0e8fbad8ec1b2a03eed1e5407a05dc360edb93a50',
};

const LIBRARY_CANDIDATES = ['libsecp256k1.so.2', 'libsecp256k1.so.1', 'libsecp256k1.so', 'libsecp256k1.dylib'];

/** @returns {{ name: 'wasm', verify: (id: Uint8Array, pubkey: Uint8Array, sig: Uint8Array) => boolean }} */
export function wasmBackend() {
  return {
    name: 'wasm',
    verify(id, pubkey, sig) {
      try {
        return verifySchnorr(id, pubkey, sig);
      } catch {
        // Not a curve point, or a scalar out of range: an invalid signature.
        return false;
      }
    },
  };
}

/**
 * libsecp256k1 through koffi. Throws when koffi, the library or its
 * schnorrsig module is missing.
 * @param {string | undefined} libraryPath
 */
export function nativeBackend(libraryPath) {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi');
  const candidates = libraryPath ? [libraryPath] : LIBRARY_CANDIDATES;
  let lib;
  const errors = [];
  for (const name of candidates) {
    try {
      lib = koffi.load(name);
      break;
    } catch (err) {
      errors.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!lib) throw new Error(`libsecp256k1 not found (${errors.join('; ')})`);
  const contextCreate = lib.func('void *secp256k1_context_create(unsigned int flags)');
  const xonlyParse = lib.func('int secp256k1_xonly_pubkey_parse(void *ctx, _Out_ uint8_t *pubkey, const uint8_t *input32)');
  const schnorrVerify = lib.func('int secp256k1_schnorrsig_verify(void *ctx, const uint8_t *sig64, const uint8_t *msg, size_t msglen, const uint8_t *pubkey)');
  // SECP256K1_CONTEXT_NONE: verification needs no precomputed tables in the context.
  // The context is never freed: one per thread, alive as long as the thread.
  const ctx = contextCreate(1);
  if (!ctx) throw new Error('secp256k1_context_create failed');
  // The parsed-key struct is opaque, 64 bytes in every libsecp256k1 release.
  const parsed = new Uint8Array(64);
  return {
    name: 'native',
    /** Callers pass exactly 32/32/64 bytes: libsecp256k1 reads fixed lengths from these pointers. */
    verify(id, pubkey, sig) {
      if (id.length !== 32 || pubkey.length !== 32 || sig.length !== 64) return false;
      if (xonlyParse(ctx, parsed, pubkey) !== 1) return false;
      return schnorrVerify(ctx, sig, id, 32, parsed) === 1;
    },
  };
}

/** @param {{ verify: (id: Uint8Array, pubkey: Uint8Array, sig: Uint8Array) => boolean }} b */
function passesSelfTest(b) {
  const h = (s) => Buffer.from(s, 'hex');
  return b.verify(h(SELF_TEST.msg), h(SELF_TEST.pubkey), h(SELF_TEST.good)) === true && b.verify(h(SELF_TEST.msg), h(SELF_TEST.pubkey), h(SELF_TEST.bad)) === false;
}

/**
 * Picks the backend: 'native' when requested or available, else 'wasm'.
 * @param {{ backend?: 'auto' | 'native' | 'wasm'; libraryPath?: string }} [opts]
 * @returns {{ name: 'native' | 'wasm'; verify: (id: Uint8Array, pubkey: Uint8Array, sig: Uint8Array) => boolean; fallbackReason?: string }}
 */
export function loadSchnorrBackend(opts = {}) {
  const want = opts.backend ?? process.env.BAZAAR_VERIFY_BACKEND ?? 'auto';
  if (want !== 'auto' && want !== 'native' && want !== 'wasm') throw new Error(`unknown signature backend ${JSON.stringify(want)} (auto, native or wasm)`);
  if (want === 'wasm') return wasmBackend();
  let reason;
  try {
    const native = nativeBackend(opts.libraryPath ?? (process.env.BAZAAR_LIBSECP256K1 || undefined));
    if (passesSelfTest(native)) return native;
    reason = 'native libsecp256k1 failed the BIP-340 self-test';
  } catch (err) {
    reason = err instanceof Error ? err.message : String(err);
  }
  if (want === 'native') throw new Error(`native signature backend unavailable: ${reason}`);
  return { ...wasmBackend(), fallbackReason: reason };
}
