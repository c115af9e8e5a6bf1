// The demo's dishonest provider: it announces PatchGen, answers every PatchGen request naming
// it with a patch that breaks the tests while its result claims they passed, and asks to be
// paid with an invoice from its own devnet wallet. Written directly on the wire (the project's
// provider checks its own results and would never offer this), it shows a buyer that verifies
// in its own sandbox refusing to pay and opening a dispute.
// With `escrow`, it asks for a Cashu escrow with the given arbiter instead (its own payment key
// and mint in a kind 10019), and stands by its result when the buyer disputes it (a 39303): the
// arbiter's own replay of the tests then decides.
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { npubEncode } from 'nostr-tools/nip19';
import type { Logger } from 'pino';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { DISPUTE_KIND, parseDispute } from '@bazaar/dvm-kinds/market/dispute';
import { buildDisputeResponse } from '@bazaar/dvm-kinds/market/dispute-response';
import { parseEscrow } from '@bazaar/dvm-kinds/market/escrow';
import { buildPaymentInfo } from '@bazaar/dvm-kinds/market/payment-info';
import { PATCH_GEN_KIND, buildPatchGenResult, parsePatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { LightningWallet } from '@bazaar/agents-common/wallet/lightning';
import { newPaymentKey } from '@bazaar/agents-common/wallet/escrow';

/** Breaks every `a + b` / `a - b` into `a * b`: the sample repository's tests then fail. */
const BROKEN = 'diff --git a/sum.mjs b/sum.mjs\n--- a/sum.mjs\n+++ b/sum.mjs\n@@ -1,4 +1,4 @@\n // A tiny calculator module with a bug for the local market\'s demo: add() subtracts.\n export function add(a, b) {\n-  return a - b;\n+  return a * b;\n }\n';

export interface DishonestEscrow {
  readonly mintUrl: string;
  /** The arbiter's payment key ("02" + x-only) the escrow lock must name. */
  readonly arbiterPaymentKey: string;
}

export async function startDishonestProvider(o: { relayUrl: string; nwcUri?: string; priceMsats: number; logger: Logger; escrow?: DishonestEscrow }): Promise<{ pubkey: string; npub: string; close(): Promise<void> }> {
  const sk = generateSecretKey();
  const pubkey = getPublicKey(sk);
  const sign = (t: EventTemplate) => finalizeEvent(t, sk) as NostrEvent;
  const esc = o.escrow;
  // The devnet's wallet service picks a new connection up within a few seconds.
  let wallet: LightningWallet | undefined;
  for (let i = 0; !wallet && !esc; i++) {
    try {
      if (!o.nwcUri) throw new Error('a Lightning dishonest provider needs nwcUri');
      wallet = await LightningWallet.connect({ nwcUri: o.nwcUri, logger: o.logger, requestTimeoutMs: 5000 });
      await wallet.getInfo();
    } catch (err) {
      await wallet?.close();
      wallet = undefined;
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const w = wallet;
  const pool = new RelayPool({ relays: [o.relayUrl], logger: o.logger, auth: (t) => sign(t) });
  const d = esc ? 'dishonest-escrow-demo' : 'dishonest-demo';
  await pool.publishAny(sign({ ...buildAnnouncement({ d, kinds: [PATCH_GEN_KIND], prices: { [PATCH_GEN_KIND]: { baseMsats: o.priceMsats, perUnitMsats: 0, unit: 'job' } }, terms: { [PATCH_GEN_KIND]: esc ? 'escrow' : 'after-verify' }, ...(esc ? { arbiters: [esc.arbiterPaymentKey], disputeWindowSecs: 60 } : {}), name: 'dishonest demo provider', about: 'Claims its patches pass the tests. They do not.' }) }), { timeoutMs: 10_000 });
  // Buyers lock escrows to the payment key of its 10019 (nothing will ever be redeemed with it).
  if (esc) await pool.publishAny(sign(buildPaymentInfo({ relays: [o.relayUrl], mints: [{ url: esc.mintUrl }], p2pkPubkey: newPaymentKey().pubkey })), { timeoutMs: 10_000 });
  const results = new Map<string, string>();
  const since = Math.floor(Date.now() / 1000) - 5;
  const sub = pool.subscribe([{ kinds: [PATCH_GEN_KIND], '#p': [pubkey], since }, ...(esc ? [{ kinds: [DISPUTE_KIND], '#p': [pubkey], since }] : [])], (ev) => {
    void (async () => {
      if (ev.kind === DISPUTE_KIND) {
        // Disputed: it stands by its result, as a liar would.
        const dp = parseDispute(ev);
        const resultId = dp.ok ? results.get(dp.value.requestId) : undefined;
        if (!dp.ok || !resultId || dp.value.resultId !== resultId) return;
        await pool.publish(sign(buildDisputeResponse({ requestId: dp.value.requestId, resultId, buyer: ev.pubkey, ...(dp.value.arbiter ? { arbiter: dp.value.arbiter } : {}), position: 'stand', message: 'Our tests passed: exit code 0.' })), { timeoutMs: 10_000 });
        return;
      }
      const req = ev;
      if (!parsePatchGenRequest(req).ok) return;
      if (esc) {
        const e = parseEscrow(req);
        if (!e.ok || !e.value) return;
      }
      await pool.publish(sign(buildFeedback({ request: req, status: 'processing', message: 'working on it' })), { timeoutMs: 10_000 });
      const inv = w ? await w.makeInvoice({ amountMsat: o.priceMsats, description: `patch for ${req.id.slice(0, 12)}`, expirySecs: 600 }) : undefined;
      const tpl = buildPatchGenResult(req, { patch: BROKEN, testExitCode: 0 }, { amount: { msats: o.priceMsats, ...(inv ? { bolt11: inv.bolt11 } : {}) } });
      const result = sign(tpl);
      results.set(req.id, result.id);
      await pool.publish(result, { timeoutMs: 10_000 });
    })().catch((err: unknown) => o.logger.error({ err }, 'dishonest provider failed'));
  });
  return {
    pubkey,
    npub: npubEncode(pubkey),
    async close() {
      sub.close();
      // Gone with the demo: a NIP-09 deletion of its announcement, so buyers (and a second
      // demo run) do not find a provider that no longer answers.
      await pool.publishAny(sign({ kind: 5, created_at: Math.floor(Date.now() / 1000), content: 'the demo is over', tags: [['a', `31990:${pubkey}:${d}`], ['k', '31990']] }), { timeoutMs: 5000 }).catch((err: unknown) => o.logger.warn({ err }, 'could not withdraw the announcement'));
      await pool.close();
      await w?.close();
    },
  };
}
