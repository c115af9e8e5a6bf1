// Types for verify-backend.mjs (plain JavaScript so worker threads can load it without a TypeScript loader).

export type BackendName = 'native' | 'wasm';

export interface SchnorrBackend {
  readonly name: BackendName;
  /** BIP-340 verify of a 32-byte message (the event id) by a 32-byte x-only pubkey. Never throws. */
  verify(id: Uint8Array, pubkey: Uint8Array, sig: Uint8Array): boolean;
  /** Why the native backend was not used, when 'auto' fell back to 'wasm'. */
  readonly fallbackReason?: string;
}

export function wasmBackend(): SchnorrBackend;
/** Throws when koffi, libsecp256k1 or its schnorrsig module is missing. */
export function nativeBackend(libraryPath?: string): SchnorrBackend;
/** 'auto' (default, or BAZAAR_VERIFY_BACKEND): native when it loads and passes a self-test, else wasm. */
export function loadSchnorrBackend(opts?: { backend?: 'auto' | BackendName; libraryPath?: string }): SchnorrBackend;
