// An agent's identity at rest: one BIP-39 mnemonic from which both keys derive — the Nostr
// identity key by NIP-06 (m/44'/1237'/0'/0/0) and a separate payment key (P2PK for Cashu,
// published in NIP-61 kind 10019) on a hardened path NIP-06 never uses (m/44'/1237'/0'/1'/0'),
// so a leaked nsec reveals nothing about the payment key and one backup restores both.
// The mnemonic is sealed with scrypt + XChaCha20-Poly1305; public keys are kept in clear so
// status commands need no passphrase.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import { generateMnemonic, mnemonicToSeedSync, validateMnemonic } from '@scure/bip39';
import { wordlist } from '@scure/bip39/wordlists/english.js';
import { getPublicKey } from 'nostr-tools/pure';
import { npubEncode } from 'nostr-tools/nip19';
import { secp256k1 } from '@noble/curves/secp256k1.js';

export const KEYSTORE_VERSION = 1;
export const NOSTR_KEY_PATH = "m/44'/1237'/0'/0/0";
export const PAYMENT_KEY_PATH = "m/44'/1237'/0'/1'/0'";
/** scrypt cost: 2^17 × r=8 is ~128 MiB and about a second, the NIP-49 recommendation for a server key. */
export const DEFAULT_SCRYPT_LOG_N = 17;

export interface KeystoreFile {
  readonly version: number;
  /** Nostr identity public key (hex, x-only) and its npub. */
  readonly pubkey: string;
  readonly npub: string;
  /** Payment key, compressed ("02"/"03" + x) as NUT-11 P2PK expects. */
  readonly paymentPubkey: string;
  readonly createdAt: number;
  readonly kdf: { readonly name: 'scrypt'; readonly logN: number; readonly r: number; readonly p: number; readonly salt: string };
  readonly cipher: { readonly name: 'xchacha20poly1305'; readonly nonce: string; readonly ciphertext: string };
}

export interface Identity {
  readonly secretKey: Uint8Array;
  readonly pubkey: string;
  readonly npub: string;
  readonly paymentSecretKey: Uint8Array;
  readonly paymentPubkey: string;
}

export class KeystoreError extends Error {
  override name = 'KeystoreError';
}

/** Both keys from a mnemonic (no I/O). */
export function deriveIdentity(mnemonic: string): Identity {
  const words = mnemonic.trim().split(/\s+/).join(' ');
  if (!validateMnemonic(words, wordlist)) throw new KeystoreError('not a valid BIP-39 English mnemonic');
  const root = HDKey.fromMasterSeed(mnemonicToSeedSync(words));
  const nostr = root.derive(NOSTR_KEY_PATH).privateKey;
  const pay = root.derive(PAYMENT_KEY_PATH).privateKey;
  if (!nostr || !pay) throw new KeystoreError('key derivation failed');
  const pubkey = getPublicKey(nostr);
  return { secretKey: nostr, pubkey, npub: npubEncode(pubkey), paymentSecretKey: pay, paymentPubkey: bytesToHex(secp256k1.getPublicKey(pay, true)) };
}

export const newMnemonic = (): string => generateMnemonic(wordlist, 128 * 2);

async function kek(passphrase: string, salt: Uint8Array, logN: number, r: number, p: number): Promise<Uint8Array> {
  // NFKC like NIP-49, so the same passphrase typed on another system opens the file.
  return scryptAsync(new TextEncoder().encode(passphrase.normalize('NFKC')), salt, { N: 2 ** logN, r, p, dkLen: 32, maxmem: 2 ** (logN + 11) });
}

export async function sealIdentity(mnemonic: string, passphrase: string, opts: { logN?: number } = {}): Promise<{ file: KeystoreFile; identity: Identity }> {
  if (passphrase.length < 8) throw new KeystoreError('the passphrase must be at least 8 characters');
  const identity = deriveIdentity(mnemonic);
  const logN = opts.logN ?? DEFAULT_SCRYPT_LOG_N;
  const salt = randomBytes(16);
  const nonce = randomBytes(24);
  const key = await kek(passphrase, salt, logN, 8, 1);
  const aad = new TextEncoder().encode(`bazaar-keystore-v${KEYSTORE_VERSION}:${identity.pubkey}`);
  const ciphertext = xchacha20poly1305(key, nonce, aad).encrypt(new TextEncoder().encode(JSON.stringify({ mnemonic })));
  key.fill(0);
  const file: KeystoreFile = {
    version: KEYSTORE_VERSION,
    pubkey: identity.pubkey,
    npub: identity.npub,
    paymentPubkey: identity.paymentPubkey,
    createdAt: Math.floor(Date.now() / 1000),
    kdf: { name: 'scrypt', logN, r: 8, p: 1, salt: bytesToHex(salt) },
    cipher: { name: 'xchacha20poly1305', nonce: bytesToHex(nonce), ciphertext: bytesToHex(ciphertext) },
  };
  return { file, identity };
}

export function parseKeystore(text: string, path = 'keystore'): KeystoreFile {
  let j: KeystoreFile;
  try {
    j = JSON.parse(text) as KeystoreFile;
  } catch (err) {
    throw new KeystoreError(`${path}: not JSON (${(err as Error).message})`);
  }
  if (j?.version !== KEYSTORE_VERSION) throw new KeystoreError(`${path}: unsupported keystore version ${JSON.stringify(j?.version)} (this build reads ${KEYSTORE_VERSION})`);
  const hex = (v: unknown, n?: number) => typeof v === 'string' && /^[0-9a-f]+$/.test(v) && (n === undefined || v.length === n * 2);
  if (!hex(j.pubkey, 32) || !hex(j.paymentPubkey, 33) || j.kdf?.name !== 'scrypt' || !hex(j.kdf.salt) || j.cipher?.name !== 'xchacha20poly1305' || !hex(j.cipher.nonce, 24) || !hex(j.cipher.ciphertext)) {
    throw new KeystoreError(`${path}: malformed keystore`);
  }
  if (!Number.isInteger(j.kdf.logN) || j.kdf.logN < 10 || j.kdf.logN > 22) throw new KeystoreError(`${path}: scrypt logN out of range`);
  return j;
}

export async function openKeystore(file: KeystoreFile, passphrase: string): Promise<{ identity: Identity; mnemonic: string }> {
  const key = await kek(passphrase, hexToBytes(file.kdf.salt), file.kdf.logN, file.kdf.r, file.kdf.p);
  const aad = new TextEncoder().encode(`bazaar-keystore-v${file.version}:${file.pubkey}`);
  let plain: Uint8Array;
  try {
    plain = xchacha20poly1305(key, hexToBytes(file.cipher.nonce), aad).decrypt(hexToBytes(file.cipher.ciphertext));
  } catch {
    throw new KeystoreError('wrong passphrase (or the keystore was tampered with)');
  } finally {
    key.fill(0);
  }
  const { mnemonic } = JSON.parse(new TextDecoder().decode(plain)) as { mnemonic: string };
  const identity = deriveIdentity(mnemonic);
  if (identity.pubkey !== file.pubkey || identity.paymentPubkey !== file.paymentPubkey) throw new KeystoreError('keystore public keys do not match its sealed mnemonic');
  return { identity, mnemonic };
}

const exists = (p: string) => access(p, constants.F_OK).then(() => true, () => false);

/** Write a new keystore at `path` (mode 0600). Refuses to overwrite. */
export async function createKeystoreFile(path: string, passphrase: string, opts: { mnemonic?: string; logN?: number } = {}): Promise<{ file: KeystoreFile; identity: Identity; mnemonic: string }> {
  if (await exists(path)) throw new KeystoreError(`an identity already exists at ${path}; refusing to overwrite it`);
  const mnemonic = opts.mnemonic ?? newMnemonic();
  const { file, identity } = await sealIdentity(mnemonic, passphrase, opts.logN !== undefined ? { logN: opts.logN } : {});
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify(file, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  // A second init racing this one must not replace it: link-then-rename would be atomic,
  // but exists-check + rename is enough for one operator at a terminal.
  if (await exists(path)) throw new KeystoreError(`an identity already exists at ${path}; refusing to overwrite it`);
  await rename(tmp, path);
  return { file, identity, mnemonic };
}

export async function readKeystoreFile(path: string): Promise<KeystoreFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KeystoreError(`no identity at ${path} (run init first)`);
    throw err;
  }
  return parseKeystore(text, path);
}

export async function unlockKeystoreFile(path: string, passphrase: string): Promise<Identity> {
  return (await openKeystore(await readKeystoreFile(path), passphrase)).identity;
}
