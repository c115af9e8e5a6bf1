// Test keys and signing: real BIP-340 signatures through nostr-tools.
import { finalizeEvent, getPublicKey } from 'nostr-tools/pure';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { EventTemplate, NostrEvent } from '../src/nostr.ts';

const key = (hex: string) => {
  const sk = hexToBytes(hex);
  return { sk, pk: getPublicKey(sk) };
};

/** Fixed identities so fixtures are reproducible. */
export const buyer = key('1111111111111111111111111111111111111111111111111111111111111111');
export const provider = key('2222222222222222222222222222222222222222222222222222222222222222');
export const arbiter = key('3333333333333333333333333333333333333333333333333333333333333333');
export const relayKey = key('4444444444444444444444444444444444444444444444444444444444444444');

export const sign = (t: EventTemplate, sk: Uint8Array): NostrEvent => finalizeEvent({ ...t, tags: t.tags.map((x) => [...x]) }, sk) as NostrEvent;
export const template = (e: NostrEvent): EventTemplate => ({ kind: e.kind, created_at: e.created_at, content: e.content, tags: e.tags });
export const T0 = 1_763_000_000;
