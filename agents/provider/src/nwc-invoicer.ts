// How the provider gets paid over Lightning: its own wallet through NIP-47 (Nostr Wallet
// Connect) — make_invoice to ask, payment_received notifications and lookup_invoice to know.
// Works against any NWC wallet (the devnet's, Alby Hub, ...). Every call has a deadline.
import type { Logger } from 'pino';
import { loadNwcSdk, sdkLogger } from '@bazaar/agents-common/wallet/alby-sdk';
import type { InvoiceRef } from './store.ts';

type Sdk = Awaited<ReturnType<typeof loadNwcSdk>>;
type Client = InstanceType<Sdk['NWCClient']>;

export interface Invoicer {
  makeInvoice(msats: number, description: string, expirySecs: number): Promise<InvoiceRef>;
  /** 'paid' | 'unpaid' | 'expired' per the wallet. */
  lookup(paymentHash: string): Promise<{ state: 'paid' | 'unpaid' | 'expired'; settledAt?: number }>;
  /** Called with the payment hash of every incoming payment the wallet reports. */
  onPaid(listener: (paymentHash: string) => void): () => void;
  info(): Promise<{ alias?: string; methods: string[] }>;
  close(): Promise<void>;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer from the wallet within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export async function connectNwcInvoicer(opts: { uri: string; logger: Logger; timeoutMs?: number }): Promise<Invoicer> {
  const sdk = await loadNwcSdk();
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let client: Client;
  try {
    client = new sdk.NWCClient({ nostrWalletConnectUrl: opts.uri, logger: sdkLogger(opts.logger) } as ConstructorParameters<Sdk['NWCClient']>[0]);
  } catch (err) {
    // The SDK's message may quote the URI; never pass it on.
    throw new Error(`invalid NWC URI (${(err as Error).name})`);
  }
  const listeners = new Set<(hash: string) => void>();
  let unsubscribe: (() => void) | undefined;
  const subscribing = withTimeout(
    client.subscribeNotifications((n) => {
      if (n.notification_type !== 'payment_received') return;
      for (const l of listeners) l(n.notification.payment_hash);
    }, ['payment_received']),
    timeoutMs,
    'subscribe to notifications',
  ).then((u) => { unsubscribe = u; }, (err: Error) => opts.logger.warn({ err: err.message }, 'nwc notifications unavailable; polling lookup_invoice only'));
  return {
    async makeInvoice(msats, description, expirySecs) {
      const tx = await withTimeout(client.makeInvoice({ amount: msats, description, expiry: expirySecs }), timeoutMs, 'make_invoice');
      return { bolt11: tx.invoice, paymentHash: tx.payment_hash, msats: tx.amount, expiresAt: tx.expires_at || Math.floor(Date.now() / 1000) + expirySecs };
    },
    async lookup(paymentHash) {
      const tx = await withTimeout(client.lookupInvoice({ payment_hash: paymentHash }), timeoutMs, 'lookup_invoice');
      if (tx.state === 'settled' || (tx.settled_at ?? 0) > 0) return { state: 'paid', settledAt: tx.settled_at };
      if (tx.expires_at && tx.expires_at < Date.now() / 1000) return { state: 'expired' };
      return { state: 'unpaid' };
    },
    onPaid(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    async info() {
      const i = await withTimeout(client.getInfo(), timeoutMs, 'get_info');
      return { ...(i.alias ? { alias: i.alias } : {}), methods: i.methods ?? [] };
    },
    async close() {
      await subscribing;
      unsubscribe?.();
      client.close();
    },
  };
}
