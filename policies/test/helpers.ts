// Test context: a real in-memory ReadStore (nostr-tools filter matching), signed events, a fake clock.
import { matchFilters } from 'nostr-tools/filter';
import { finalizeEvent, getPublicKey } from 'nostr-tools/pure';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { EventTemplate, Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { PolicyContext, ReadStore, Verdict } from '../src/policy.ts';

export class MemoryStore implements ReadStore {
  readonly events: NostrEvent[] = [];
  add(...e: NostrEvent[]): this {
    this.events.push(...e);
    return this;
  }
  async query(filters: Filter[]): Promise<NostrEvent[]> {
    const limit = Math.min(...filters.map((f) => f.limit ?? Infinity));
    return this.events.filter((e) => matchFilters(filters as never, e as never)).sort((a, b) => b.created_at - a.created_at).slice(0, limit);
  }
}

const key = (hex: string) => ({ sk: hexToBytes(hex), pk: getPublicKey(hexToBytes(hex)) });
export const alice = key('1111111111111111111111111111111111111111111111111111111111111111');
export const bob = key('2222222222222222222222222222222222222222222222222222222222222222');
export const carol = key('3333333333333333333333333333333333333333333333333333333333333333');
export const rep = key('4444444444444444444444444444444444444444444444444444444444444444');

export const T0 = 1_763_000_000;
export const sign = (t: Partial<EventTemplate> & { kind: number }, sk: Uint8Array = alice.sk): NostrEvent =>
  finalizeEvent({ created_at: T0, content: '', ...t, tags: (t.tags ?? []).map((x) => [...x]) }, sk) as NostrEvent;

export function ctx(over: Partial<Omit<PolicyContext, 'source'>> & { ip?: string; type?: PolicyContext['source']['type'] } = {}): PolicyContext {
  const { ip, type, ...rest } = over;
  return { source: { type: type ?? 'ws', ip: ip ?? '203.0.113.7', connectionId: 'c1' }, receivedAt: T0, store: new MemoryStore(), ...rest };
}

/** Short form of a verdict for table assertions: "accept", "shadowReject" or the reject message's prefix. */
export const short = (v: Verdict): string => (v.action === 'reject' ? v.message.split(':')[0] + ':' : v.action);
