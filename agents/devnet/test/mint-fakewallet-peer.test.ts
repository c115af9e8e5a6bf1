// `bazaar devnet mint --fake-wallet` standing in for nutshell's / CDK's FakeWallet mint in a
// client's test suite: the scenarios of cashu-ts's own integration suite
// (cashubtc/cashu-ts test/integration.test.ts, run by its CI against nutshell and CDK with
// input_fee_ppk 100), ported to node-tap and to the installed cashu-ts 4.8, against the real
// CLI started as that suite's CI starts a mint. Mainnet-style `lnbc` invoices carrying the
// amount, fixed long-expired invoices that melt, P2PK refusals worded as clients expect.
//
// Where we differ from the suite on purpose: it accepts error code 0 (nutshell) or 20008
// (CDK) for a missing P2PK witness; the NUT error table gives 10001 (proof verification
// failed) and 20008 means a bad NUT-20 mint-quote signature, so we answer 10001 and assert it.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckStateEnum,
  MeltQuoteState,
  Mint,
  MintOperationError,
  MintQuoteState,
  OutputData,
  P2PKBuilder,
  Wallet,
  getDecodedToken,
  getEncodedToken,
  sumProofs,
  type MintQuoteBolt11Response,
  type OutputConfig,
  type OutputDataFactory,
  type OutputType,
  type Proof,
  type Token,
} from '@cashu/cashu-ts';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, randomBytes } from '@noble/hashes/utils.js';
import { runBazaar } from './helpers/cli-process.ts';
import './helpers/mint-fixture.ts'; // injects `ws` as cashu-ts's WebSocket

// Fixed invoices from the suite: mainnet, signed by strangers, long expired.
const EXTERNAL_FEE_INVOICE =
  'lnbc20u1p3u27nppp5pm074ffk6m42lvae8c6847z7xuvhyknwgkk7pzdce47grf2ksqwsdpv2phhwetjv4jzqcneypqyc6t8dp6xu6twva2xjuzzda6qcqzpgxqyz5vqsp5sw6n7cztudpl5m5jv3z6dtqpt2zhd3q6dwgftey9qxv09w82rgjq9qyyssqhtfl8wv7scwp5flqvmgjjh20nf6utvv5daw5h43h69yqfwjch7wnra3cn94qkscgewa33wvfh7guz76rzsfg9pwlk8mqd27wavf2udsq3yeuju';
const EXTERNAL_PAY_INVOICE =
  'lnbc20u1p5tj77hsp5hva2cwk48eajjatzje0wwyanfl2dmu87h7c30mnurfmu5mr6ypjspp53cmmk6mgvdrp7xpuf9vfyqyxjl5ce9dqs4prc6jh6eqf5ldmqvvshp55qf3c2rxuxqahgt2d7yp6xdrjdt5r2sm2uqsatyn3v7u0k09mnhqxq9z0rgqcqpnrzjq0xp6zfjhwvmq6tltd09jcdc82ml6eh3alzvnaw8httxcx7tu78syrvfkqqqm0qqqyqqqqlgqqqvx5qqjq9qxpqysgqunatemrzxl5srnxy4jpqeu4rhdfvkx0agvqeumkmx4mvsusc2er4t4h9jg396mfxp0lu72nueehapde6cv42ldd80pryz8jrxky3k5qqm6f4zx';
const P2PK_MELT_INVOICE =
  'lnbc20u1p5tnrdtsp5xaus66jztyj4f4m9wuza7ay9994d5dals6dluvw80dduhhulgxvspp5gsdp48uz9x20etle8j7muweujzxd2w4ay2v6cwzwjy7pff44r4gqhp5jujtt4hgd57c5hskstzkjkxqtfmctfvpfc3wmt3h42a9f2p9sqcsxq9z0rgqcqpnrzjqvxr759n8jl5226n47zw6325pyffxqlpyrjh9ztswvnglhrmtcsfzrw8mqqqf2cqqqqqqqlgqqqqzhsqjq9qxpqysgq2rtnpkqzmwmuf6cw653s63552qf0hgst6xzdywkgekhz836ayrz572cm72r7ejj7w0ktgldlwfu33fpr9dxywx5wqy4tte7smpa9q4gqaaydvv';
const CUSTOM_OUTPUTS_INVOICE =
  'lnbc10n1pn449a7pp5eh3jn9p8hlcq0c0ppcfem2hg9ehptqr9hjk5gst6c0c9qfmrrvgsdq4gdshx6r4ypqkgerjv4ehxcqzpuxqr8pqsp539s9559pdth06j37kexk9zq2pusl4yvy97ruf36jqgyskawlls3s9p4gqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqpqysgqy00qa3xgn03jtwrtpu93rqrp806czmpftj8g97cm0r3d2x4rsvlhp5vzgjyzzazl9xf4gpgd35gmys998tlfu8j5zrk7sf3n2nh3t3gpyul75t';

const dir = mkdtempSync(join(tmpdir(), 'bazaar-fakewallet-peer-'));
const mintProc = runBazaar(['devnet', 'mint', '--fake-wallet', '--fake-wallet-delay', '50', '--input-fee-ppk', '100', '--port', '0', '--data', join(dir, 'mint')]);
const mintUrl = await mintProc.onLine(/mint listening on (http:\/\/\S+)/);
const unit = 'sat';
const opened: Mint[] = [];
t.teardown(async () => {
  for (const m of opened) m.disconnectWebSocket();
  mintProc.kill('SIGTERM');
  await mintProc.done;
  rmSync(dir, { recursive: true, force: true });
});

async function newWallet(opts: ConstructorParameters<typeof Wallet>[1] = { unit }): Promise<Wallet> {
  const mint = new Mint(mintUrl);
  opened.push(mint);
  const wallet = new Wallet(mint, opts);
  await wallet.loadMint();
  return wallet;
}

/** The suite's helper: wait for the NUT-17 "paid" notification of a mint quote. */
async function untilMintQuotePaid(wallet: Wallet, quote: MintQuoteBolt11Response): Promise<void> {
  await wallet.on.onceMintPaid(quote.quote, { timeoutMs: 6_000 });
}

async function funded(wallet: Wallet, amount: number): Promise<Proof[]> {
  const q = await wallet.createMintQuoteBolt11(amount);
  await untilMintQuotePaid(wallet, q);
  return wallet.mintProofsBolt11(amount, q.quote);
}

const amountOf = (ps: readonly Proof[]): number => sumProofs([...ps]).toNumber();
const expectNut10Data = (tt: Test, ps: readonly Proof[], data: string): void => {
  tt.ok(ps.length > 0 && ps.every((p) => (JSON.parse(p.secret) as [string, { data: string }])[1].data === data), `every secret locks to ${data.slice(0, 16)}`);
};

t.test('mint api', async (t) => {
  t.test('get keys, keysets, info', async (t) => {
    const mint = new Mint(mintUrl);
    t.ok((await mint.getKeys()).keysets.length > 0);
    t.ok((await mint.getKeySets()).keysets.length > 0);
    t.ok((await mint.getInfo()).nuts);
  });

  t.test('request mint', async (t) => {
    const wallet = await newWallet();
    const request = await wallet.createMintQuoteBolt11(100);
    await untilMintQuotePaid(wallet, request);
    t.equal((await wallet.checkMintQuoteBolt11(request.quote)).state, MintQuoteState.PAID);
  });

  t.test('mint tokens: the invoice is mainnet-style lnbc and carries the amount', async (t) => {
    const wallet = await newWallet();
    const request = await wallet.createMintQuoteBolt11(1337);
    await untilMintQuotePaid(wallet, request);
    t.ok(request.request.includes('lnbc1337'), `the suite's check: ${request.request.slice(0, 16)}…`);
    t.match(request.request, /^lnbc13370n1/, '1,337 sat = 13,370 nBTC');
    const proofs = await wallet.mintProofsBolt11(1337, request.quote);
    t.equal(amountOf(proofs), 1337);
  });

  t.test('invoice with description', async (t) => {
    const wallet = await newWallet();
    const quote = await wallet.createMintQuoteBolt11(100, 'test description');
    await untilMintQuotePaid(wallet, quote);
    t.ok(quote.request.startsWith('lnbc1u1'), '100 sat = 1 µBTC');
  });

  t.test('get fee for external invoice (an expired one from 2022)', async (t) => {
    const wallet = await newWallet();
    const fee = (await wallet.createMeltQuoteBolt11(EXTERNAL_FEE_INVOICE)).fee_reserve;
    t.ok(fee.toNumber() > 0, 'external invoice: fee reserve > 0');
  });

  t.test('pay external invoice (expired, foreign)', async (t) => {
    const wallet = await newWallet();
    const proofs = await funded(wallet, 3000);
    const meltQuote = await wallet.createMeltQuoteBolt11(EXTERNAL_PAY_INVOICE);
    const fee = meltQuote.fee_reserve.toNumber();
    t.ok(fee > 0);
    t.ok(await wallet.checkMeltQuoteBolt11(meltQuote.quote));
    const sendResponse = await wallet.send(2000 + fee, proofs, { includeFees: true });
    const response = await wallet.meltProofsBolt11(meltQuote, sendResponse.send);
    t.equal(response.quote.state, MeltQuoteState.PAID);
    // External payment: the FakeWallet spends 1 sat of the reserve, the rest comes back (NUT-08).
    t.ok(amountOf(response.change) < fee, `change ${amountOf(response.change)} < fee reserve ${fee}`);
    t.equal(amountOf(response.change), fee - 1, 'all of the reserve but the 1 sat routing fee');
    for (const s of await wallet.checkProofsStates(sendResponse.send)) t.match(s, { state: CheckStateEnum.SPENT, witness: null });
    for (const s of await wallet.checkProofsStates(sendResponse.keep)) t.match(s, { state: CheckStateEnum.UNSPENT, witness: null });
  });

  t.test('send tokens exact without previous split', async (t) => {
    const wallet = await newWallet();
    const proofs = await funded(wallet, 64);
    const { send, keep } = await wallet.send(64, proofs);
    t.equal(send.length, 1);
    t.equal(keep.length, 0);
    t.equal(amountOf(send), 64);
  });

  t.test('send tokens with change', async (t) => {
    const wallet = await newWallet();
    const proofs = await funded(wallet, 100); // 4, 32, 64
    const { send, keep } = await wallet.send(10, proofs, { includeFees: false });
    t.equal(send.length, 2);
    t.equal(keep.length, 5);
    t.equal(amountOf(send), 10);
    t.equal(amountOf(keep), 89, 'the swap paid 1 sat input fee');
  });

  t.test('receive tokens with previous split / previous mint', async (t) => {
    const wallet = await newWallet();
    const proofs = await funded(wallet, 100);
    const { send } = await wallet.send(10, proofs);
    t.ok(await wallet.receive(getEncodedToken({ mint: mintUrl, proofs: send })));
    const minted = await funded(wallet, 64);
    t.ok(await wallet.receive(getEncodedToken({ mint: mintUrl, proofs: minted })));
  });

  t.test('send and receive p2pk: the wrong key is refused with nutshell-style wording', async (t) => {
    const wallet = await newWallet();
    const privKeyAlice = secp256k1.utils.randomSecretKey();
    const privKeyBob = secp256k1.utils.randomSecretKey();
    const pubKeyBob = bytesToHex(secp256k1.getPublicKey(privKeyBob));
    const minted = await funded(wallet, 128);
    const { send } = await wallet.ops.send(64, minted).asP2PK({ pubkey: pubKeyBob }).run();
    expectNut10Data(t, send, pubKeyBob);
    const encoded = getEncodedToken({ mint: mintUrl, proofs: send });
    const result = await wallet.receive(encoded, { privkey: bytesToHex(privKeyAlice) }).catch((e: unknown) => e);
    t.type(result, MintOperationError);
    const e = result as MintOperationError;
    t.equal(e.name, 'MintOperationError');
    t.equal(e.code, 10001, 'NUT error table: proof verification failed');
    t.match(e.message.toLowerCase(), /witness.*p2pk.*signature/, "the suite's wording check (nutshell + cdk)");
    const proofs = await wallet.receive(encoded, { privkey: bytesToHex(privKeyBob) });
    t.equal(amountOf(proofs), 63);
  });

  t.test('send and receive p2pk with additional tags', async (t) => {
    const wallet = await newWallet();
    const privKeyAlice = secp256k1.utils.randomSecretKey();
    const pubKeyAlice = bytesToHex(secp256k1.getPublicKey(privKeyAlice));
    const minted = await funded(wallet, 128);
    const p2pk = new P2PKBuilder().addLockPubkey(pubKeyAlice).addTags([['e', 'abc'], ['p', '123']]).addTag('msg', 'hello').toOptions();
    const { send } = await wallet.ops.send(64, minted).asP2PK(p2pk).run();
    expectNut10Data(t, send, pubKeyAlice);
    for (const p of send) t.same((JSON.parse(p.secret) as [string, { tags: string[][] }])[1].tags, [['e', 'abc'], ['p', '123'], ['msg', 'hello']]);
    const proofs = await wallet.receive(getEncodedToken({ mint: mintUrl, proofs: send }), { privkey: bytesToHex(privKeyAlice) });
    t.equal(amountOf(proofs), 63);
  });

  t.test('send and receive p2bk (blinded keys), ECDSA-style and x-only keys', async (t) => {
    for (const style of ['ecdsa', 'schnorr'] as const) {
      const wallet = await newWallet();
      const privKeyBob = style === 'ecdsa' ? secp256k1.utils.randomSecretKey() : schnorr.utils.randomSecretKey();
      const pubKeyBob = style === 'ecdsa' ? bytesToHex(secp256k1.getPublicKey(privKeyBob)) : '02' + bytesToHex(schnorr.getPublicKey(privKeyBob));
      const minted = await funded(wallet, 128);
      const { send } = await wallet.ops.send(64, minted).asP2PK(new P2PKBuilder().addLockPubkey(pubKeyBob).blindKeys().toOptions()).run();
      for (const p of send) {
        // P' = P + r·G with r = SHA-256("Cashu_P2BK_v1" || x(p·E) || slot 0), as cashu-ts 4.8
        // derives it (the suite's newer copy also mixes in the keyset id).
        t.ok(p.p2pk_e, 'ephemeral key travels with the proof');
        const Zx = secp256k1.Point.fromHex(p.p2pk_e!).multiply(secp256k1.Point.Fn.fromBytes(privKeyBob)).toBytes(true).slice(1, 33);
        const r = secp256k1.Point.Fn.fromBytes(sha256(new Uint8Array([...new TextEncoder().encode('Cashu_P2BK_v1'), ...Zx, 0x00])));
        const blindedKey = secp256k1.Point.fromHex(pubKeyBob).add(secp256k1.Point.BASE.multiply(r)).toHex(true);
        t.equal((JSON.parse(p.secret) as [string, { data: string }])[1].data, blindedKey, `${style}: the lock is Bob's blinded key`);
      }
      const proofs = await wallet.receive(getEncodedToken({ mint: mintUrl, proofs: send }), { privkey: bytesToHex(privKeyBob) });
      t.equal(amountOf(proofs), 63, `${style}: Bob receives`);
    }
  });

  t.test('mint and melt p2pk (a fixed, expired invoice)', async (t) => {
    const wallet = await newWallet(undefined);
    const privKeyBob = secp256k1.utils.randomSecretKey();
    const pubKeyBob = secp256k1.getPublicKey(privKeyBob);
    const mintRequest = await wallet.createMintQuoteBolt11(3000);
    await untilMintQuotePaid(wallet, mintRequest);
    const proofs = await wallet.ops.mintBolt11(3000, mintRequest.quote).asP2PK({ pubkey: bytesToHex(pubKeyBob) }).run();
    const meltRequest = await wallet.createMeltQuoteBolt11(P2PK_MELT_INVOICE);
    t.ok(meltRequest.fee_reserve.toNumber() > 0);
    const unsigned = await wallet.meltProofsBolt11(meltRequest, proofs).catch((e: unknown) => e);
    t.match(unsigned, { code: 10001 }, 'unsigned locked proofs do not melt');
    const response = await wallet.meltProofsBolt11(meltRequest, wallet.signP2PKProofs(proofs, bytesToHex(privKeyBob)));
    t.equal(response.quote.state, MeltQuoteState.PAID);
  });

  t.test('mint deterministic', async (t) => {
    const wallet = await newWallet(undefined);
    const keys = wallet.keyChain.getKeyset();
    const data = OutputData.createSingleDeterministicData(1, randomBytes(64), 1, keys.id);
    const quote = await wallet.createMintQuoteBolt11(1);
    await untilMintQuotePaid(wallet, quote);
    const proof = await wallet.mintProofsBolt11(1, quote.quote, {}, { type: 'custom', data: [data] });
    t.equal(amountOf(proof), 1);
  });

  t.test('websocket updates (one id, then several)', async (t) => {
    const wallet = await newWallet(undefined);
    const mintQuote = await wallet.createMintQuoteBolt11(21);
    const paid = await new Promise<boolean>((res, rej) => {
      void wallet.on.mintQuoteUpdates(
        [mintQuote.quote],
        (p) => {
          if (p.state === MintQuoteState.PAID) res(true);
        },
        rej,
      );
    });
    t.ok(paid);
    const q1 = await wallet.createMintQuoteBolt11(21);
    const q2 = await wallet.createMintQuoteBolt11(22);
    await new Promise<void>((res, rej) => {
      let quotesPaid = 0;
      let unsub: (() => void) | undefined;
      void wallet.on
        .mintQuoteUpdates(
          [q1.quote, q2.quote],
          (u) => {
            if (u.state === MintQuoteState.PAID) quotesPaid++;
            if (quotesPaid === 2) {
              unsub?.();
              res();
            }
          },
          rej,
        )
        .then((u) => (unsub = u));
    });
    t.pass('both quotes reported PAID');
  });

  t.test('websocket proof state + mint quote updates', async (t) => {
    const wallet = await newWallet(undefined);
    const quote = await wallet.createMintQuoteBolt11(63);
    await new Promise((res, rej) => {
      void wallet.on.mintQuotePaid(quote.quote, res, rej);
    });
    const proofs = await wallet.mintProofsBolt11(63, quote.quote);
    const spent = new Promise<void>((res) => {
      void wallet.on.proofStateUpdates(
        proofs,
        (p) => {
          if (p.state === CheckStateEnum.SPENT) res();
        },
        () => {},
      );
    });
    // A keyset id forces a swap (the wallet avoids one when it can).
    const keysetId = wallet.keyChain.getCheapestKeyset().id;
    await wallet.send(21, proofs, { keysetId });
    await spent;
    t.pass('SPENT notified over the websocket');
  });

  t.test('mint with signed quote and payload (NUT-20)', async (t) => {
    const wallet = await newWallet(undefined);
    const privkey = 'd56ce4e446a85bbdaa547b4ec2b073d40ff802831352b8272b7dd7a4de5a7cac';
    const pubkey = bytesToHex(secp256k1.getPublicKey(hexToBytes(privkey)));
    const quote = await wallet.createLockedMintQuote(63, pubkey);
    await untilMintQuotePaid(wallet, quote);
    const proofs = await wallet.mintProofsBolt11(63, quote, { privkey });
    t.ok(proofs.length > 0);
  });
});

t.test('dleq', async (t) => {
  const supported = async (wallet: Wallet): Promise<boolean> => Boolean((wallet.getMintInfo().nuts['12'] as { supported?: boolean } | undefined)?.supported);

  t.test('mint and check dleq', async (t) => {
    const wallet = await newWallet(undefined);
    t.ok(await supported(wallet), 'NUT-12 advertised');
    for (const p of await funded(wallet, 3000)) t.ok(p.dleq?.s && p.dleq.e && p.dleq.r, 'every proof carries e, s, r');
  });

  t.test('send and receive token with dleq; strip it; not enough proofs when required', async (t) => {
    const wallet = await newWallet(undefined);
    const proofs = await funded(wallet, 8);
    const { send } = wallet.sendOffline(4, proofs, { requireDleq: true, exactMatch: false });
    t.ok(send.every((p) => p.dleq?.r));
    t.ok(await wallet.receive(getEncodedToken({ mint: mintUrl, proofs: send } as Token), { requireDleq: true }));
    const more = await funded(wallet, 8);
    const sent = await wallet.send(4, more);
    t.ok(sent.send.every((p) => p.dleq));
    t.ok(getDecodedToken(getEncodedToken({ proofs: sent.send, mint: mintUrl }, { removeDleq: true }), wallet.keyChain.getKeysets().map((k) => k.id)).proofs.every((p) => p.dleq === undefined));
    const stripped = (await funded(wallet, 8)).map((p) => ({ ...p, dleq: undefined }));
    t.throws(() => wallet.sendOffline(4, stripped, { requireDleq: true, exactMatch: false }), new Error('Not enough funds available to send'));
  });

  t.test('receive with invalid dleq', async (t) => {
    const wallet = await newWallet(undefined);
    const proofs = await funded(wallet, 8);
    for (const p of proofs) if (p.dleq) p.dleq.s = (BigInt(`0x${p.dleq.s}`) + 1n).toString(16).padStart(64, '0');
    const exc = await wallet.receive({ mint: mintUrl, proofs, unit: wallet.unit } as Token, { requireDleq: true }).catch((e: unknown) => e);
    t.match(exc, { message: 'Token contains proofs with invalid or missing DLEQ' }, 'refused by the client before any request');
  });
});

t.test('custom outputs', async (t) => {
  const sk = randomBytes(32);
  const hexSk = bytesToHex(sk);
  const hexPk = bytesToHex(secp256k1.getPublicKey(sk));
  // The suite locks to labels ('testKey', 'mintTest', …); cashu-ts 4.8 accepts only real keys.
  const label = (): string => bytesToHex(secp256k1.getPublicKey(secp256k1.utils.randomSecretKey()));
  const [testKey, mintTest, sendKey, keepKey, key1, key2] = Array.from({ length: 6 }, label);
  const p2pkFactory = (pubkey: string): OutputDataFactory => (a, k) => OutputData.createSingleP2PKData({ pubkey }, a, k.id);

  t.test('default keepFactory: locked change all the way, melting a fixed expired invoice', async (t) => {
    const keepFactory: OutputType = { type: 'factory', factory: p2pkFactory(hexPk) };
    const wallet = await newWallet(undefined);
    const quoteRes = await wallet.createMintQuoteBolt11(32);
    await untilMintQuotePaid(wallet, quoteRes);
    const proofs = await wallet.mintProofsBolt11(32, quoteRes.quote, {}, keepFactory);
    expectNut10Data(t, proofs, hexPk);
    const meltQuote = await wallet.createMeltQuoteBolt11(CUSTOM_OUTPUTS_INVOICE);
    const customConfig: OutputConfig = { keep: keepFactory, send: wallet.defaultOutputType() };
    const signedProofs = wallet.signP2PKProofs(proofs, hexSk);
    const { keep: meltKeep, send: meltSend } = await wallet.send(meltQuote.amount.add(meltQuote.fee_reserve), signedProofs, { includeFees: true }, customConfig);
    expectNut10Data(t, meltKeep, hexPk);
    const meltRes = await wallet.meltProofsBolt11(meltQuote, meltSend, {}, keepFactory);
    t.equal(meltRes.quote.state, MeltQuoteState.PAID);
    if (meltRes.change.length > 0) expectNut10Data(t, meltRes.change, hexPk);
    const restAmount = amountOf(meltKeep) - wallet.getFeesForProofs(meltKeep).toNumber();
    const unlocked = await wallet.send(restAmount, wallet.signP2PKProofs(meltKeep, hexSk));
    const newFactory: OutputType = { type: 'factory', factory: (a, k) => OutputData.createSingleP2PKData({ pubkey: testKey }, a, k.id) };
    const newProofs = await wallet.receive({ proofs: unlocked.send, mint: mintUrl, unit: wallet.unit }, {}, newFactory);
    expectNut10Data(t, newProofs, testKey);
  });

  t.test('manual factory mint and send; manual blinding data', async (t) => {
    const wallet = await newWallet(undefined);
    const q = await wallet.createMintQuoteBolt11(21);
    await untilMintQuotePaid(wallet, q);
    expectNut10Data(t, await wallet.mintProofsBolt11(21, q.quote, {}, { type: 'factory', factory: p2pkFactory(mintTest) }), mintTest);
    const proofs = await funded(wallet, 21);
    const amount = amountOf(proofs) - wallet.getFeesForProofs(proofs).toNumber();
    const { send, keep } = await wallet.send(amount, proofs, {}, { send: { type: 'factory', factory: p2pkFactory(sendKey) }, keep: { type: 'factory', factory: p2pkFactory(keepKey) } });
    expectNut10Data(t, send, sendKey);
    if (keep.length) expectNut10Data(t, keep, keepKey);
    const keys = wallet.keyChain.getKeyset();
    const forty = await funded(wallet, 40);
    const data1 = OutputData.createP2PKData({ pubkey: key1 }, 10, keys);
    const data2 = OutputData.createP2PKData({ pubkey: key2 }, 10, keys);
    const sent = await wallet.send(20, forty, {}, { keep: wallet.defaultOutputType(), send: { type: 'custom', data: [...data1, ...data2] } });
    expectNut10Data(t, sent.send.slice(0, data1.length), key1);
    expectNut10Data(t, sent.send.slice(data1.length), key2);
  });
});

t.test('keep vector and reordering', async (t) => {
  const order = [8, 4, 8, 2, 8, 2];
  const wallet = await newWallet(undefined);
  const received = await wallet.receive({ mint: mintUrl, proofs: (await wallet.send(32, await funded(wallet, 64), { includeFees: true })).send, unit: wallet.unit }, {}, { type: 'random', denominations: order });
  t.same(received.map((p) => p.amount.toNumber()), order, 'receive keeps the requested order');
  const proofs = await funded(wallet, 64);
  const fees = wallet.getFeesForProofs(proofs).toNumber();
  const { send } = await wallet.send(32, proofs, {}, { keep: { type: 'random', denominations: [16, 8, ...Array<number>(8 - fees).fill(1)] }, send: { type: 'random', denominations: order } });
  t.same(send.map((p) => p.amount.toNumber()), order, 'send keeps the requested order');
  const partial = await wallet.send(32, await funded(wallet, 64), {}, { keep: { type: 'random', denominations: [16, 8] }, send: { type: 'random', denominations: order } });
  t.same(partial.keep.map((p) => p.amount.toNumber()), [16, 8, 4, 2, 1], 'partial keep denominations are completed');
  const partialSend = await wallet.send(32, await funded(wallet, 64), {}, { keep: { type: 'random', denominations: [8, 4, 8, 1, 8, 2] }, send: { type: 'random', denominations: [16, 8] } });
  t.same(partialSend.send.map((p) => p.amount.toNumber()), [16, 8, 8], 'partial send denominations are completed');
});

t.test('wallet restore: batch restore from the seed', async (t) => {
  const seed = randomBytes(64);
  const wallet = await newWallet({ bip39seed: seed });
  const q = await wallet.createMintQuoteBolt11(70);
  await untilMintQuotePaid(wallet, q);
  const proofs = await wallet.ops.mintBolt11(70, q.quote).asDeterministic(5).run();
  const { proofs: restored, lastCounterWithSignature } = await wallet.batchRestore();
  t.same(restored, proofs);
  t.equal(amountOf(restored), 70);
  t.equal(lastCounterWithSignature, 7);
});
