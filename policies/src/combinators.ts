// Composition you can see: seq, any, not, when, withTimeout. Each returns a plain Policy.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { ACCEPT, reject, shadowReject, type Policy, type PolicyContext, type Verdict } from './policy.ts';

/** Calls a policy, turning a throw (sync or async) into `error:` so one bad rule never crashes the relay. */
async function call(policy: Policy, event: NostrEvent, ctx: PolicyContext): Promise<Verdict> {
  try {
    return await policy(event, ctx);
  } catch (err) {
    return reject(`error: policy failed: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** All must accept; the first reject or shadowReject wins and later policies are not run. */
export function seq(...policies: Policy[]): Policy {
  if (policies.length === 0) return () => ACCEPT;
  if (policies.length === 1) {
    const only = policies[0];
    return (event, ctx) => call(only, event, ctx);
  }
  return async (event, ctx) => {
    for (const p of policies) {
      const v = await call(p, event, ctx);
      if (v.action !== 'accept') return v;
    }
    return ACCEPT;
  };
}

/** The first acceptance wins; when none accepts, the first policy's verdict is returned. */
export function any(...policies: Policy[]): Policy {
  return async (event, ctx) => {
    let first: Verdict | undefined;
    for (const p of policies) {
      const v = await call(p, event, ctx);
      if (v.action === 'accept') return v;
      first ??= v;
    }
    return first ?? reject('blocked: no policy accepted the event');
  };
}

/** Inverts a policy: its acceptance becomes `reject(message)`, its rejection an acceptance. */
export function not(policy: Policy, message: string): Policy {
  return async (event, ctx) => ((await call(policy, event, ctx)).action === 'accept' ? reject(message) : ACCEPT);
}

export type Predicate = (event: NostrEvent, ctx: PolicyContext) => boolean;

/** Runs `then` only for events matching `predicate` (others get `otherwise`, by default accepted). */
export function when(predicate: Predicate, then: Policy, otherwise?: Policy): Policy {
  return (event, ctx) => {
    let match: boolean;
    try {
      match = predicate(event, ctx);
    } catch (err) {
      return reject(`error: policy predicate failed: ${(err as Error)?.message ?? String(err)}`);
    }
    if (match) return call(then, event, ctx);
    return otherwise ? call(otherwise, event, ctx) : ACCEPT;
  };
}

/** Predicates for `when`. */
export const kindIn = (kinds: readonly number[] | ((k: number) => boolean)): Predicate => {
  if (typeof kinds === 'function') return (e) => kinds(e.kind);
  const set = new Set(kinds);
  return (e) => set.has(e.kind);
};

/**
 * Bounds a policy's time: a slow one yields `reject('error: policy timed out')` (or `onTimeout`)
 * instead of holding the writer; a throwing one yields `error:`. The timer is always cleared.
 */
export function withTimeout(policy: Policy, ms: number, onTimeout: Verdict = reject('error: policy timed out')): Policy {
  return (event, ctx) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<Verdict>((resolve) => {
      timer = setTimeout(() => resolve(onTimeout), ms);
    });
    return Promise.race([call(policy, event, ctx), timeout]).finally(() => clearTimeout(timer));
  };
}

/** Turns a policy's rejections into shadow-rejections: the client sees `OK true`, nothing is stored (for spam you do not want to teach). */
export function shadow(policy: Policy): Policy {
  return async (event, ctx) => {
    const v = await call(policy, event, ctx);
    return v.action === 'reject' ? shadowReject(v.message) : v;
  };
}
