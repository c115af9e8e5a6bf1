// NUT-11 / NUT-14 spending-condition verification against the cashubtc/nuts test vectors.
import t from 'tap';
import { createHash } from 'node:crypto';
import { schnorr } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { sigAllMessage, verifyTransactionConditions, parseWellKnownSecret, spendingConditions } from '../src/mint/spending-conditions.ts';
import { sigAllMeltMessage, sigAllMeltMultisig, sigAllSwapMessage, sigAllSwaps, sigInputs } from './fixtures/nut11-vectors.ts';

const NOW = 1_700_000_000;
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

t.test('SIG_INPUTS vectors', async (t) => {
  for (const v of sigInputs) {
    const run = (): void => verifyTransactionConditions([v.proof], [], NOW);
    if (v.valid) t.doesNotThrow(run, v.name);
    else t.throws(run, { name: 'MintError', code: 10001 }, v.name);
  }
});

t.test('SIG_ALL message aggregation matches the vector digests', async (t) => {
  const msg = sigAllMessage(sigAllSwapMessage.inputs, sigAllSwapMessage.outputs);
  t.equal(msg, sigAllSwapMessage.msg);
  t.equal(sha(msg), sigAllSwapMessage.sha256);
  t.equal(sha(sigAllMessage(sigAllMeltMessage.inputs, sigAllMeltMessage.outputs, sigAllMeltMessage.quote)), sigAllMeltMessage.sha256);
});

t.test('SIG_ALL swap and HTLC vectors', async (t) => {
  for (const v of sigAllSwaps) {
    const run = (): void => verifyTransactionConditions(v.inputs, v.outputs, NOW);
    if (v.valid) t.doesNotThrow(run, v.name);
    else t.throws(run, { name: 'MintError', code: 10001 }, v.name);
  }
});

t.test('SIG_ALL melt vectors commit to the quote id', async (t) => {
  t.doesNotThrow(() => verifyTransactionConditions(sigAllMeltMessage.inputs, sigAllMeltMessage.outputs, NOW, sigAllMeltMessage.quote), 'valid melt');
  t.doesNotThrow(() => verifyTransactionConditions(sigAllMeltMultisig.inputs, sigAllMeltMultisig.outputs, NOW, sigAllMeltMultisig.quote), 'valid multisig melt');
  t.throws(() => verifyTransactionConditions(sigAllMeltMessage.inputs, sigAllMeltMessage.outputs, NOW, 'another-quote'), 'same signature on another quote is rejected');
  t.throws(() => verifyTransactionConditions(sigAllMeltMessage.inputs, [], NOW, sigAllMeltMessage.quote), 'dropping an output breaks the signature');
});

t.test('malformed secrets are rejected, never treated as unlocked', async (t) => {
  const key = bytesToHex(schnorr.getPublicKey(new Uint8Array(32).fill(7)));
  const pk = '02' + key;
  const mk = (tags: string[][]): string => JSON.stringify(['P2PK', { nonce: '00', data: pk, tags }]);
  const bad: [string, string][] = [
    ['duplicate tag', mk([['n_sigs', '1'], ['n_sigs', '1']])],
    ['unknown sigflag', mk([['sigflag', 'SIG_NONE']])],
    ['n_sigs above key count', mk([['n_sigs', '2']])],
    ['n_sigs zero', mk([['n_sigs', '0']])],
    ['duplicate key across parity', mk([['pubkeys', '03' + key]])],
    ['not a point', mk([['pubkeys', '02' + 'ff'.repeat(32)]])],
    ['n_sigs_refund without refund keys', mk([['locktime', '1'], ['n_sigs_refund', '1']])],
  ];
  for (const [name, secret] of bad) {
    t.throws(() => spendingConditions(parseWellKnownSecret(secret)!), { name: 'MintError', code: 10001 }, name);
  }
  t.throws(() => parseWellKnownSecret(JSON.stringify(['FOO', { nonce: '1', data: 'x' }])), 'unknown NUT-10 kind fails closed');
  t.equal(parseWellKnownSecret('a6f1b2'), undefined, 'plain secret');
});

t.test('locktime follows the injected clock', async (t) => {
  const sk = new Uint8Array(32).fill(9);
  const refundSk = new Uint8Array(32).fill(11);
  const pk = '02' + bytesToHex(schnorr.getPublicKey(sk));
  const refund = '02' + bytesToHex(schnorr.getPublicKey(refundSk));
  const secret = JSON.stringify(['P2PK', { nonce: 'aa', data: pk, tags: [['locktime', String(NOW)], ['refund', refund]] }]);
  const sig = bytesToHex(schnorr.sign(sha256(utf8ToBytes(secret)), refundSk));
  const proof = { secret, C: '02' + '11'.repeat(32), witness: JSON.stringify({ signatures: [sig] }) };
  t.throws(() => verifyTransactionConditions([proof], [], NOW - 1), 'refund key alone before the locktime');
  t.doesNotThrow(() => verifyTransactionConditions([proof], [], NOW), 'refund key at the locktime');
  const noRefund = { secret: JSON.stringify(['P2PK', { nonce: 'bb', data: pk, tags: [['locktime', String(NOW)]] }]), C: proof.C };
  t.throws(() => verifyTransactionConditions([noRefund], [], NOW - 1), 'no witness before the locktime');
  t.doesNotThrow(() => verifyTransactionConditions([noRefund], [], NOW + 1), 'expired lock without refund keys is anyone-can-spend');
});
