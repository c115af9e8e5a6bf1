// The demo's dishonest provider: it announces PatchGen, answers every PatchGen request naming
// it with a patch that breaks the tests while its result claims they passed, and asks to be
// paid with an invoice from its own devnet wallet. Written directly on the wire (the project's
// provider checks its own results and would never offer this), it shows a buyer that verifies
// in its own sandbox refusing to pay and opening a dispute.
import { finalizeEvent, generateSecretKey, getPublicKey } from 'nostr-tools/pure';
import { npubEncode } from 'nostr-tools/nip19';
import type { Logger } from 'pino';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildFeedback } from '@bazaar/dvm-kinds/feedback';
import { buildAnnouncement } from '@bazaar/dvm-kinds/market/announcement';
import { PATCH_GEN_KIND, buildPatchGenResult, parsePatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { RelayPool } from '@bazaar/agents-common/relay-pool';
import { LightningWallet } from '@bazaar/agents-common/wallet/lightning';

/** Breaks every `a + b` / `a - b` into `a * b`: the sample repository's tests then fail. */
const BROKEN = 'diff --git a/sum.mjs b/sum.mjs\n--- a/sum.mjs\n+++ b/sum.mjs\n@@ -1,4 +1,4 @@\n // A tiny calculator module with a bug for the local market\'s demo: add() subtracts.\n export function add(a, b) {\n-  return a - b;\n+  return a * b;\n }\n';

export async function startDishonestProvider(o: { relayUrl: string; nwcUri: string; priceMsats: number; logger: Logger }): Promise<{ pubkey: string; npub: string; close(): Promise<void> }> {
  const sk = generateSecretKey();
  const pubkey = getPublicKey(sk);
  const sign = (t: EventTemplate) => finalizeEvent(t, sk) as NostrEvent;
  // The devnet's wallet service picks a new connection up within a few seconds.
  let wallet: LightningWallet | undefined;
  for (let i = 0; !wallet; i++) {
    try {
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
  await pool.publishAny(sign({ ...buildAnnouncement({ d: 'dishonest-demo', kinds: [PATCH_GEN_KIND], prices: { [PATCH_GEN_KIND]: { baseMsats: o.priceMsats, perUnitMsats: 0, unit: 'job' } }, terms: { [PATCH_GEN_KIND]: 'after-verify' }, name: 'dishonest demo provider', about: 'Claims its patches pass the tests. They do not.' }) }), { timeoutMs: 10_000 });
  const sub = pool.subscribe([{ kinds: [PATCH_GEN_KIND], '#p': [pubkey], since: Math.floor(Date.now() / 1000) - 5 }], (req) => {
    void (async () => {
      if (!parsePatchGenRequest(req).ok) return;
      await pool.publish(sign(buildFeedback({ request: req, status: 'processing', message: 'working on it' })), { timeoutMs: 10_000 });
      const inv = await w.makeInvoice({ amountMsat: o.priceMsats, description: `patch for ${req.id.slice(0, 12)}`, expirySecs: 600 });
      const tpl = buildPatchGenResult(req, { patch: BROKEN, testExitCode: 0 }, { amount: { msats: o.priceMsats, bolt11: inv.bolt11 } });
      await pool.publish(sign(tpl), { timeoutMs: 10_000 });
    })().catch((err: unknown) => o.logger.error({ err }, 'dishonest provider failed'));
  });
  return {
    pubkey,
    npub: npubEncode(pubkey),
    async close() {
      sub.close();
      // Gone with the demo: a NIP-09 deletion of its announcement, so buyers (and a second
      // demo run) do not find a provider that no longer answers.
      await pool.publishAny(sign({ kind: 5, created_at: Math.floor(Date.now() / 1000), content: 'the demo is over', tags: [['a', `31990:${pubkey}:dishonest-demo`], ['k', '31990']] }), { timeoutMs: 5000 }).catch((err: unknown) => o.logger.warn({ err }, 'could not withdraw the announcement'));
      await pool.close();
      await w.close();
    },
  };
}
