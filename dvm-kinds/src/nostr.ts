// The NIP-01 data shapes every package shares. Types only: no I/O, no crypto.

export interface NostrEvent {
  id: string;
  pubkey: string;
  created_at: number;
  kind: number;
  tags: string[][];
  content: string;
  sig: string;
}

export type EventTemplate = Pick<NostrEvent, 'kind' | 'tags' | 'content' | 'created_at'>;

/** A NIP-01 filter. Tag filters are `#` + one letter (case-sensitive). */
export interface Filter {
  ids?: string[];
  authors?: string[];
  kinds?: number[];
  since?: number;
  until?: number;
  limit?: number;
  search?: string;
  [tag: `#${string}`]: string[] | undefined;
}

export const isReplaceableKind = (k: number): boolean => k === 0 || k === 3 || (k >= 10000 && k < 20000);
export const isEphemeralKind = (k: number): boolean => k >= 20000 && k < 30000;
export const isAddressableKind = (k: number): boolean => k >= 30000 && k < 40000;

/** The `d` tag value of an event (first `d` tag's value, or ""). */
export function dTag(e: Pick<NostrEvent, 'tags'>): string {
  for (const t of e.tags) if (t[0] === 'd') return t[1] ?? '';
  return '';
}

/** NIP-40: the expiration timestamp, or undefined when absent or unparsable. */
export function expirationOf(e: Pick<NostrEvent, 'tags'>): number | undefined {
  for (const t of e.tags) {
    if (t[0] === 'expiration' && t[1] !== undefined && /^\d+$/.test(t[1])) return Number(t[1]);
  }
  return undefined;
}
