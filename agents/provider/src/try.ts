// `bazaar provider try`: a plain NIP-90 customer with a throwaway key. It posts one
// SandboxRun job, prints the feedback and the result, and — with --pay-with — pays the
// invoice it is sent, but only an invoice for the job it posted (the event's `e` tags name
// exactly that request, a result's embedded request is that request, the event is addressed
// to us) whose bolt11 amount is the `amount` tag's, and never more than --max-sats: the
// wallet it pays from is opened with per-payment and per-job limits of --max-sats.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { FEEDBACK_KIND } from '@bazaar/dvm-kinds/feedback';
import { SANDBOX_RUN_KIND, SANDBOX_RUN_RESULT_KIND, parseSandboxRunResult } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { formatProblems } from '@bazaar/dvm-kinds/problem';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { normalizeRelayUrl } from '@bazaar/agents-common/relay-url';
import { decodeInvoice } from '@bazaar/agents-common/wallet/lightning';
import { Wallet } from '@bazaar/agents-common/wallet/wallet';

export interface TryOptions {
  readonly relay: string;
  readonly cmds: readonly string[];
  readonly timeLimitSecs: number;
  /** File holding the NWC URI to pay from; without it the invoice is only shown. */
  readonly payWith?: string;
  readonly maxSats: number;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** Why an invoice event is not one this customer will pay, or undefined when it is. */
export function invoiceProblem(e: NostrEvent, job: NostrEvent, maxMsat: number): string | undefined {
  const refs = e.tags.filter((t) => t[0] === 'e').map((t) => t[1]);
  if (!refs.length || refs.some((id) => id !== job.id)) return `it references ${refs.length ? refs.map((id) => id?.slice(0, 12)).join(', ') : 'no request'}, not only our job ${job.id.slice(0, 12)}`;
  if (!e.tags.some((t) => t[0] === 'p' && t[1] === job.pubkey)) return 'it is not addressed to us (p tag)';
  if (e.kind === SANDBOX_RUN_RESULT_KIND) {
    const parsed = parseSandboxRunResult(e);
    // The parser also checks that an embedded request is the one the `e` tag names.
    if (!parsed.ok) return `the result does not parse: ${formatProblems(parsed.errors)}`;
  }
  const amount = e.tags.find((t) => t[0] === 'amount');
  if (!amount?.[2]) return 'it carries no invoice';
  if (!/^\d+$/.test(amount[1] ?? '')) return `its amount tag ${JSON.stringify(amount[1])} is not a number of msats`;
  let invoiceMsat: number;
  try {
    invoiceMsat = decodeInvoice(amount[2]).amountMsat;
  } catch (err) {
    return (err as Error).message;
  }
  if (invoiceMsat !== Number(amount[1])) return `the invoice is for ${invoiceMsat} msats but the amount tag says ${amount[1]}`;
  if (invoiceMsat > maxMsat) return `it asks ${Math.ceil(invoiceMsat / 1000)} sats, more than --max-sats ${maxMsat / 1000} (raise --max-sats to pay it)`;
  return undefined;
}

export async function tryJob(o: TryOptions): Promise<number> {
  const relay = normalizeRelayUrl(o.relay);
  if (!relay) throw new Error(`--relay must be a ws:// or wss:// URL, got ${JSON.stringify(o.relay)}`);
  let nwcUri: string | undefined;
  if (o.payWith) {
    try {
      nwcUri = readFileSync(o.payWith, 'utf8').trim();
    } catch (err) {
      o.err(`error: cannot read --pay-with: ${(err as Error).message}`);
      return 1;
    }
  }
  const maxMsat = o.maxSats * 1000;
  const sk = generateSecretKey();
  const me = getPublicKey(sk);
  const job = finalizeEvent({ kind: SANDBOX_RUN_KIND, created_at: Math.floor(Date.now() / 1000), content: '', tags: [...o.cmds.map((c) => ['param', 'cmd', c]), ['param', 'time_limit_secs', String(o.timeLimitSecs)]] }, sk) as NostrEvent;
  const pool = new RelayPool({ relays: [relay], logger: o.logger, auth: (t) => finalizeEvent(t, sk) as NostrEvent });
  const walletDir = nwcUri ? await mkdtemp(join(tmpdir(), 'bazaar-try-')) : undefined;
  let wallet: Wallet | undefined;
  try {
    if (nwcUri && walletDir) {
      try {
        wallet = await Wallet.open({ logger: o.logger, dataDir: walletDir, limits: { perPaymentMsat: maxMsat, perJobMsat: maxMsat }, lightning: { nwcUri } });
      } catch (err) {
        o.err(`error: ${(err as Error).message}`);
        return 1;
      }
    }
    return await run(o, job, me, pool, wallet, maxMsat);
  } finally {
    await wallet?.close();
    await pool.close();
    if (walletDir) await rm(walletDir, { recursive: true, force: true });
  }
}

function run(o: TryOptions, job: NostrEvent, me: string, pool: RelayPool, wallet: Wallet | undefined, maxMsat: number): Promise<number> {
  return new Promise<number>((resolve) => {
    const ac = new AbortController();
    let done = false;
    let paid = false;
    let paying = false;
    const finish = (code: number, msg?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      ac.abort();
      if (msg) (code ? o.err : o.out)(msg);
      resolve(code);
    };
    const timer = setTimeout(() => finish(1, `error: no result within ${o.timeoutMs} ms`), o.timeoutMs);

    /** Pays the event's invoice if it is one we agreed to; returns false (and finishes) otherwise. */
    const pay = async (e: NostrEvent): Promise<boolean> => {
      const problem = invoiceProblem(e, job, maxMsat);
      if (problem) {
        finish(1, `error: not paying this invoice: ${problem}`);
        return false;
      }
      const [, msats, bolt11] = e.tags.find((t) => t[0] === 'amount')!;
      o.out(`invoice    ${msats} msats`);
      if (!wallet) {
        finish(0, 'pay it with any Lightning wallet, or rerun with --pay-with <NWC URI file>');
        return false;
      }
      if (paid || paying) {
        finish(1, 'error: not paying a second invoice for the same job');
        return false;
      }
      paying = true;
      try {
        await wallet.pay(bolt11!, { jobId: job.id, maxAmountMsat: maxMsat, signal: ac.signal });
        paid = true;
        o.out('paid       (the preimage is the proof of payment)');
        return true;
      } catch (err) {
        finish(1, `error: payment failed: ${(err as Error).message}`);
        return false;
      } finally {
        paying = false;
      }
    };

    pool.subscribe([{ kinds: [SANDBOX_RUN_RESULT_KIND, FEEDBACK_KIND], '#e': [job.id] }], (e) => {
      if (done) return;
      void (async () => {
        const status = e.tags.find((x) => x[0] === 'status');
        if (e.kind === FEEDBACK_KIND) {
          o.out(`feedback   ${status?.[1]}${status?.[2] ? `: ${status[2]}` : ''}`);
          if (status?.[1] === 'error') finish(1);
          else if (status?.[1] === 'payment-required' || status?.[1] === 'payment_required') {
            if (await pay(e)) o.out('waiting for the result');
          }
          return;
        }
        o.out(`result     kind ${e.kind}\n${e.content}`);
        const amount = e.tags.find((x) => x[0] === 'amount');
        if (!amount?.[2]) return finish(0, amount ? `price ${amount[1]} msats (no invoice)` : undefined);
        if (paid) return finish(0, 'already paid up front');
        if (await pay(e)) finish(0);
      })();
    }, { signal: ac.signal });

    void pool.publish(job, { timeoutMs: Math.min(o.timeoutMs, 10_000), signal: ac.signal }).then(([r]) => {
      if (!r?.ok) return finish(1, `error: the relay refused the job: ${r?.message ?? 'no answer'}`);
      o.out(`posted job ${job.id} (kind 5930) as ${me.slice(0, 12)}… to ${r.url}`);
    });
  });
}
