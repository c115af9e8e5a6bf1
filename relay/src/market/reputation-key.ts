// The relay's reputation key: its own Nostr key (not the operator's identity) that signs the
// NIP-85 assertions. Stored in the data directory, mode 0600 in a 0700 directory. With a
// passphrase (BAZAAR_RELAY_KEY_PASSPHRASE) the file holds a NIP-49 `ncryptsec` (scrypt +
// XChaCha20-Poly1305) instead of hex; without one the key is plain hex, like an SSH host key,
// because a relay restarts unattended and a passphrase it must read from its own
// environment would protect nothing the file permissions do not.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { decrypt, encrypt } from 'nostr-tools/nip49';

export interface ReputationKey {
  readonly secretKey: Uint8Array;
  /** Hex x-only public key (announced in NIP-11 as `reputation_pubkey`). */
  readonly pubkey: string;
  /** How the key is kept at rest. */
  readonly atRest: 'ncryptsec' | 'plain-0600';
}

export class ReputationKeyError extends Error {}

/** Load the key at `file`, creating it (and its directory, 0700) on first use. */
export function loadOrCreateReputationKey(file: string, o: { passphrase?: string } = {}): ReputationKey {
  const passphrase = o.passphrase || undefined;
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) chmodSync(file, 0o600); // never leave it readable by others
    const text = readFileSync(file, 'utf8').trim();
    let sk: Uint8Array;
    if (text.startsWith('ncryptsec1')) {
      if (!passphrase) throw new ReputationKeyError(`the reputation key ${file} is encrypted (NIP-49): set BAZAAR_RELAY_KEY_PASSPHRASE`);
      try {
        sk = decrypt(text, passphrase);
      } catch {
        throw new ReputationKeyError(`cannot decrypt the reputation key ${file}: wrong passphrase?`);
      }
      return { secretKey: sk, pubkey: getPublicKey(sk), atRest: 'ncryptsec' };
    }
    if (!/^[0-9a-f]{64}$/.test(text)) throw new ReputationKeyError(`the reputation key ${file} is neither 64 hex characters nor an ncryptsec`);
    sk = hexToBytes(text);
    if (passphrase) write(file, encrypt(sk, passphrase)); // a passphrase given later encrypts the key in place
    return { secretKey: sk, pubkey: getPublicKey(sk), atRest: passphrase ? 'ncryptsec' : 'plain-0600' };
  }
  const sk = generateSecretKey();
  write(file, passphrase ? encrypt(sk, passphrase) : bytesToHex(sk));
  return { secretKey: sk, pubkey: getPublicKey(sk), atRest: passphrase ? 'ncryptsec' : 'plain-0600' };
}

function write(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${text}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}
