// The policy contract: a policy is a plain function of the event and its context.
// Composition is explicit (see combinators); the relay runs exactly one policy.
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';

export type Verdict =
  | { readonly action: 'accept' }
  /** `message` starts with a NIP-01 prefix (`blocked:`, `invalid:`, `rate-limited:`, …). */
  | { readonly action: 'reject'; readonly message: string }
  /** Reported to the client as accepted (`OK true`), but neither stored nor broadcast. */
  | { readonly action: 'shadowReject'; readonly message?: string };

/** Read access to the relay's store, for policies that look at history (market rules, reputation). */
export interface ReadStore {
  query(filters: Filter[], opts?: { signal?: AbortSignal }): Promise<NostrEvent[]>;
}

export interface PolicyContext {
  readonly source: {
    /** How the event arrived (mirrors strfry's sourceType). */
    readonly type: 'ws' | 'import' | 'stream' | 'sync' | 'internal';
    /** Remote IP address for `ws`, otherwise a description of the source. */
    readonly ip: string;
    readonly connectionId: string;
  };
  /** NIP-42 authenticated pubkey of the connection, if any (the first, when it authenticated several). */
  readonly authedPubkey?: string;
  /** Every pubkey the connection authenticated as (NIP-42 allows several); absent when none. */
  readonly authedPubkeys?: readonly string[];
  /** Unix seconds when the relay received the event. */
  readonly receivedAt: number;
  readonly store: ReadStore;
  /** Size in bytes of the EVENT message / event JSON as received, when known. */
  readonly size?: number;
}

/**
 * A policy decides one event. `signal` (Nostrify's `NPolicy.call(event, signal)`) aborts when
 * nobody waits for the answer any more — the check timed out, the relay is closing: a policy that
 * does I/O or long work passes it on (`ctx.store.query(filters, { signal })`) and stops. The
 * relay, the strfry plugin and every combinator always pass one.
 */
export type Policy = (event: NostrEvent, ctx: PolicyContext, signal?: AbortSignal) => Verdict | Promise<Verdict>;

/** The pubkeys a context says the connection authenticated as. */
export const authedPubkeysOf = (ctx: PolicyContext): readonly string[] => ctx.authedPubkeys ?? (ctx.authedPubkey !== undefined ? [ctx.authedPubkey] : []);

export const ACCEPT: Verdict = Object.freeze({ action: 'accept' });
export const accept = (): Verdict => ACCEPT;
export const reject = (message: string): Verdict => ({ action: 'reject', message });
export const shadowReject = (message?: string): Verdict => (message === undefined ? { action: 'shadowReject' } : { action: 'shadowReject', message });
