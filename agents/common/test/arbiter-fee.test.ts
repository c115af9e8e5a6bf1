// The loser's checks on an arbiter's fee (arbiter-fee.ts), with real signed BOLT11 invoices: who
// owes it (the loser; nobody on a split), and every reason to refuse — an amount other than the
// verdict's or the announced fee, a payee other than the announced node, no announcement.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { encodeInvoice } from '@bazaar/devnet/lightning/bolt11-codec';
import type { ArbiterAnnouncement } from '@bazaar/dvm-kinds/market/arbiter';
import type { DisputeVerdict } from '@bazaar/dvm-kinds/market/verdict';
import { checkArbiterFee, loserOf } from '../src/arbiter-fee.ts';

function node(): { secret: string; pubkey: string } {
  const sk = secp256k1.utils.randomSecretKey();
  return { secret: bytesToHex(sk), pubkey: bytesToHex(secp256k1.getPublicKey(sk, true)) };
}
const invoice = (n: { secret: string; pubkey: string }, amountMsat: number) =>
  encodeInvoice({ amountMsat, paymentHash: bytesToHex(randomBytes(32)), paymentSecret: bytesToHex(randomBytes(32)), description: 'arbitration fee', expirySecs: 3600, timestamp: Math.floor(Date.now() / 1000) }, n.secret, n.pubkey);

const arbiterNode = node();
const ann = (o: Partial<ArbiterAnnouncement> = {}): ArbiterAnnouncement => ({ d: 'bazaar-arbiter', createdAt: 1, kinds: [5932], responseWindowSecs: 60, public: false, fee: { msats: 7000, payer: 'loser' }, lightningNode: arbiterNode.pubkey, ...o });
const verdict = (ruling: DisputeVerdict['ruling'], bolt11: string | undefined, msats = 7000) => ({ requestId: 'r', buyer: 'b', provider: 'p', ruling, reason: '', checks: [], fee: { msats, ...(bolt11 ? { bolt11 } : {}) } }) as unknown as DisputeVerdict;

t.test('the loser owes the fee; a split has no loser', async (t) => {
  t.same([loserOf('provider'), loserOf('buyer'), loserOf('split')], ['buyer', 'provider', undefined]);
  const bolt11 = invoice(arbiterNode, 7000);
  t.match(checkArbiterFee(verdict('provider', bolt11), 'buyer', ann()), { owed: true, ok: true, msats: 7000 }, 'the buyer lost: it pays');
  t.same(checkArbiterFee(verdict('provider', bolt11), 'provider', ann()), { owed: false }, 'the winner owes nothing');
  t.match(checkArbiterFee(verdict('buyer', bolt11), 'provider', ann()), { owed: true, ok: true }, 'the provider lost: it pays');
  t.same(checkArbiterFee(verdict('split', bolt11), 'buyer', ann()), { owed: false }, 'split: nobody');
});

t.test('a fee that is not what was announced is refused, with the reason', async (t) => {
  const right = invoice(arbiterNode, 7000);
  const refused = (r: ReturnType<typeof checkArbiterFee>) => (r.owed && !r.ok ? r.reason : 'not refused');
  t.match(refused(checkArbiterFee(verdict('provider', invoice(arbiterNode, 8000)), 'buyer', ann())), /asks 8000 msat, the verdict's fee is 7000/, 'an invoice for more than the fee tag');
  t.match(refused(checkArbiterFee(verdict('provider', invoice(arbiterNode, 9000), 9000), 'buyer', ann())), /asks 9000 msat, the arbiter announced 7000/, 'a fee above the announced one');
  t.match(refused(checkArbiterFee(verdict('provider', invoice(node(), 7000)), 'buyer', ann())), /not the node .* the arbiter announced/, 'another payee');
  t.match(refused(checkArbiterFee(verdict('provider', right), 'buyer', undefined)), /no announcement/, 'no announcement');
  t.match(refused(checkArbiterFee(verdict('provider', right), 'buyer', ann({ lightningNode: undefined }))), /no lightning_node/, 'no announced node');
  t.match(refused(checkArbiterFee(verdict('provider', right), 'buyer', ann({ fee: undefined }))), /did not announce a loser-pays fee/, 'no announced fee');
  t.match(refused(checkArbiterFee(verdict('provider', undefined), 'buyer', ann())), /no invoice/, 'no invoice');
  t.match(refused(checkArbiterFee(verdict('provider', 'lnbc1notaninvoice'), 'buyer', ann())), /does not decode/, 'garbage');
});
