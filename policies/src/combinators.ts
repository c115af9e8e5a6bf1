// Composition you can see: seq, any, not, when, withTimeout, shadow. Each returns a plain Policy
// and passes the caller's AbortSignal on to the policies it runs.
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { ACCEPT, reject, shadowReject, type Policy, type PolicyContext, type Verdict } from './policy.ts';

const failed = (err: unknown): Verdict => reject(`error: policy failed: ${(err as Error)?.message ?? String(err)}`);
const aborted = (signal: AbortSignal): Verdict => reject(`error: policy check aborted${signal.reason instanceof Error ? `: ${signal.reason.message}` : ''}`);

const isPromise = (v: Verdict | Promise<Verdict>): v is Promise<Verdict> => typeof (v as Promise<Verdict>).then === 'function';

/**
 * Calls a policy, turning a throw (sync or async) into `error:` so one bad rule never crashes the
 * relay. A synchronous verdict stays synchronous: pipelines of cheap rules cost no microtasks.
 */
function call(policy: Policy, event: NostrEvent, ctx: PolicyContext, signal: AbortSignal | undefined): Verdict | Promise<Verdict> {
  let v: Verdict | Promise<Verdict>;
  try {
    v = policy(event, ctx, signal);
  } catch (err) {
    return failed(err);
  }
  return isPromise(v) ? v.then(undefined, failed) : v;
}

/** All must accept; the first reject or shadowReject wins and later policies are not run (nor after an abort). */
export function seq(...policies: Policy[]): Policy {
  if (policies.length === 0) return () => ACCEPT;
  const run = (i: number, event: NostrEvent, ctx: PolicyContext, signal: AbortSignal | undefined): Verdict | Promise<Verdict> => {
    for (; i < policies.length; i++) {
      if (signal?.aborted) return aborted(signal);
      const v = call(policies[i], event, ctx, signal);
      if (isPromise(v)) {
        const next = i + 1;
        return v.then((r) => (r.action !== 'accept' || next === policies.length ? r : run(next, event, ctx, signal)));
      }
      if (v.action !== 'accept') return v;
    }
    return ACCEPT;
  };
  return (event, ctx, signal) => run(0, event, ctx, signal);
}

/** The first acceptance wins; when none accepts, the first policy's verdict is returned. */
export function any(...policies: Policy[]): Policy {
  return async (event, ctx, signal) => {
    let first: Verdict | undefined;
    for (const p of policies) {
      if (signal?.aborted) return aborted(signal);
      const v = await call(p, event, ctx, signal);
      if (v.action === 'accept') return v;
      first ??= v;
    }
    return first ?? reject('blocked: no policy accepted the event');
  };
}

/** Inverts a policy: its acceptance becomes `reject(message)`, its rejection an acceptance. */
export function not(policy: Policy, message: string): Policy {
  return async (event, ctx, signal) => ((await call(policy, event, ctx, signal)).action === 'accept' ? reject(message) : ACCEPT);
}

export type Predicate = (event: NostrEvent, ctx: PolicyContext) => boolean;

/** Runs `then` only for events matching `predicate` (others get `otherwise`, by default accepted). */
export function when(predicate: Predicate, then: Policy, otherwise?: Policy): Policy {
  return (event, ctx, signal) => {
    let match: boolean;
    try {
      match = predicate(event, ctx);
    } catch (err) {
      return reject(`error: policy predicate failed: ${(err as Error)?.message ?? String(err)}`);
    }
    if (match) return call(then, event, ctx, signal);
    return otherwise ? call(otherwise, event, ctx, signal) : ACCEPT;
  };
}

/** Predicates for `when`. */
export const kindIn = (kinds: readonly number[] | ((k: number) => boolean)): Predicate => {
  if (typeof kinds === 'function') return (e) => kinds(e.kind);
  const set = new Set(kinds);
  return (e) => set.has(e.kind);
};

/** Why a withTimeout policy's signal aborted. */
export class PolicyTimeoutError extends Error {
  override name = 'PolicyTimeoutError';
  constructor(ms: number) {
    super(`policy timed out after ${ms} ms`);
  }
}

/**
 * Bounds a policy's time: a slow one yields `reject('error: policy timed out')` (or `onTimeout`)
 * instead of holding the writer, and the signal it was given aborts (reason: PolicyTimeoutError)
 * so that it stops its work. A throwing one yields `error:`. The timer is always cleared; an abort
 * of the caller's signal reaches the policy too.
 */
export function withTimeout(policy: Policy, ms: number, onTimeout: Verdict = reject('error: policy timed out')): Policy {
  return (event, ctx, signal) => {
    if (signal?.aborted) return aborted(signal);
    const ac = new AbortController();
    const forward = (): void => ac.abort(signal!.reason);
    signal?.addEventListener('abort', forward, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<Verdict>((resolve) => {
      timer = setTimeout(() => {
        ac.abort(new PolicyTimeoutError(ms));
        resolve(onTimeout);
      }, ms);
    });
    return Promise.race([call(policy, event, ctx, ac.signal), timeout]).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', forward);
    });
  };
}

/** Turns a policy's rejections into shadow-rejections: the client sees `OK true`, nothing is stored (for spam you do not want to teach). */
export function shadow(policy: Policy): Policy {
  return async (event, ctx, signal) => {
    const v = await call(policy, event, ctx, signal);
    return v.action === 'reject' ? shadowReject(v.message) : v;
  };
}
