// NIP-47 (Nostr Wallet Connect) wire pieces shared by our client (nwc-client.ts) and the
// devnet's wallet service: event kinds, the two encryption schemes, the connection URI.
import { hexToBytes } from '@noble/hashes/utils.js';
import { getPublicKey } from 'nostr-tools/pure';
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import { normalizeRelayUrl } from '../relay-url.ts';

export const NWC_KINDS = { info: 13194, request: 23194, response: 23195, notificationNip04: 23196, notificationNip44: 23197 } as const;

export const NWC_ENCRYPTIONS = ['nip44_v2', 'nip04'] as const;
export type NwcEncryption = (typeof NWC_ENCRYPTIONS)[number];

/** The notification kind a client of `enc` listens on. */
export const notificationKind = (enc: NwcEncryption): number => (enc === 'nip44_v2' ? NWC_KINDS.notificationNip44 : NWC_KINDS.notificationNip04);

export function nwcEncrypt(secretHex: string, peerPubkey: string, plaintext: string, enc: NwcEncryption): string {
  return enc === 'nip04' ? nip04.encrypt(secretHex, peerPubkey, plaintext) : nip44.encrypt(plaintext, nip44.getConversationKey(hexToBytes(secretHex), peerPubkey));
}

export function nwcDecrypt(secretHex: string, peerPubkey: string, payload: string, enc: NwcEncryption): string {
  return enc === 'nip04' ? nip04.decrypt(secretHex, peerPubkey, payload) : nip44.decrypt(payload, nip44.getConversationKey(hexToBytes(secretHex), peerPubkey));
}

export interface NwcConnectionUri {
  readonly walletPubkey: string;
  /** Normalised relay URLs (at least one). */
  readonly relays: readonly string[];
  /** The client secret (hex). Never log it. */
  readonly secret: string;
  readonly clientPubkey: string;
  readonly lud16?: string;
}

/**
 * Parses `nostr+walletconnect://<wallet pubkey>?relay=…&secret=…` (also the legacy
 * `nostrwalletconnect:` spellings). Errors name what is wrong and never quote the URI,
 * which holds the secret.
 */
export function parseNwcUri(uri: string): NwcConnectionUri {
  const m = /^(?:nostr\+walletconnect|nostrwalletconnect):(?:\/\/)?([^?/]*)\/?\?(.*)$/i.exec(uri.trim());
  if (!m) throw new Error('invalid NWC connection URI: expected nostr+walletconnect://<wallet pubkey>?relay=…&secret=…');
  const walletPubkey = m[1].toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(walletPubkey)) throw new Error('invalid NWC connection URI: the wallet pubkey is not 64 hex characters');
  const q = new URLSearchParams(m[2]);
  const secret = (q.get('secret') ?? '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(secret)) throw new Error('invalid NWC connection URI: the secret is missing or not 64 hex characters');
  const relays: string[] = [];
  for (const r of q.getAll('relay')) {
    const n = normalizeRelayUrl(r);
    if (n === undefined) throw new Error(`invalid NWC connection URI: relay ${JSON.stringify(r.slice(0, 200))} is not a ws:// or wss:// URL`);
    if (!relays.includes(n)) relays.push(n);
  }
  if (!relays.length) throw new Error('invalid NWC connection URI: no relay');
  let clientPubkey: string;
  try {
    clientPubkey = getPublicKey(hexToBytes(secret));
  } catch {
    throw new Error('invalid NWC connection URI: the secret is not a valid key');
  }
  const lud16 = q.get('lud16');
  return { walletPubkey, relays, secret, clientPubkey, ...(lud16 ? { lud16 } : {}) };
}
