import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { getPublicKey } from 'nostr-tools/pure';
import { privateKeyFromSeedWords } from 'nostr-tools/nip06';
import { bytesToHex } from '@noble/hashes/utils.js';
import { createKeystoreFile, deriveIdentity, KeystoreError, readKeystoreFile, unlockKeystoreFile } from '../src/identity/keystore.ts';
import { isTerminal, JOB_STATES, nextJobState, recoverJobState } from '../src/job-state.ts';

// NIP-06 test vector: the nostr key derived from these words.
const VECTOR = { mnemonic: 'leader monkey parrot ring guide accident before fence cannon height naive bean', sk: '7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a' };

t.test('identity: NIP-06 vector, separate payment key', async (t) => {
  const id = deriveIdentity(VECTOR.mnemonic);
  t.equal(bytesToHex(id.secretKey), VECTOR.sk);
  t.equal(bytesToHex(id.secretKey), bytesToHex(privateKeyFromSeedWords(VECTOR.mnemonic)), 'agrees with nostr-tools nip06');
  t.equal(id.pubkey, getPublicKey(id.secretKey));
  t.not(bytesToHex(id.paymentSecretKey), VECTOR.sk, 'payment key differs from the identity key');
  t.match(id.paymentPubkey, /^0[23][0-9a-f]{64}$/);
  t.throws(() => deriveIdentity('not a mnemonic at all'), KeystoreError);
});

t.test('keystore: sealed at rest, opens with the passphrase only, refuses to overwrite', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keys.json');
  const made = await createKeystoreFile(path, 'correct horse battery', { logN: 10 });
  const text = readFileSync(path, 'utf8');
  t.notOk(text.includes(made.mnemonic.split(' ')[0] + ' '), 'mnemonic not in clear');
  t.notOk(text.includes(bytesToHex(made.identity.secretKey)), 'secret key not in clear');
  t.equal(statSync(path).mode & 0o777, 0o600, 'mode 0600');
  const file = await readKeystoreFile(path);
  t.equal(file.pubkey, made.identity.pubkey);
  const opened = await unlockKeystoreFile(path, 'correct horse battery');
  t.equal(bytesToHex(opened.secretKey), bytesToHex(made.identity.secretKey));
  t.equal(opened.paymentPubkey, made.identity.paymentPubkey);
  await t.rejects(unlockKeystoreFile(path, 'wrong passphrase!'), /wrong passphrase/);
  await t.rejects(createKeystoreFile(path, 'another passphrase', { logN: 10 }), /refusing to overwrite/);
  t.equal(readFileSync(path, 'utf8'), text, 'file untouched by the refused init');
  const tampered = JSON.parse(text);
  tampered.cipher.ciphertext = tampered.cipher.ciphertext.replace(/^./, (c: string) => (c === '0' ? '1' : '0'));
  writeFileSync(join(dir, 'bad.json'), JSON.stringify(tampered));
  await t.rejects(unlockKeystoreFile(join(dir, 'bad.json'), 'correct horse battery'), KeystoreError);
  writeFileSync(join(dir, 'v9.json'), JSON.stringify({ ...tampered, version: 9 }));
  await t.rejects(readKeystoreFile(join(dir, 'v9.json')), /unsupported keystore version/);
  await t.rejects(createKeystoreFile(join(dir, 'short.json'), 'short', { logN: 10 }), /at least 8/);
});

t.test('job state machine', async (t) => {
  const walk = (...evs: string[]) => evs.reduce<string>((s, e) => {
    const r = nextJobState(s as never, { type: e } as never);
    if (!r.ok) throw new Error(r.reason);
    return r.state;
  }, 'received');
  t.equal(walk('accept', 'start', 'finish', 'paid'), 'settled');
  t.equal(walk('accept', 'start', 'finish', 'unpaid', 'paid'), 'settled', 'a late payment still settles');
  t.equal(walk('accept', 'request-payment', 'prepaid', 'start', 'finish-prepaid'), 'settled', 'prepaid: settled when the result is out');
  // One meaning per event: the payment before the work and the payment after it are different events.
  t.throws(() => walk('accept', 'request-payment', 'paid'), /awaiting-payment job cannot paid/);
  t.throws(() => walk('accept', 'start', 'finish', 'prepaid'), /delivered job cannot prepaid/);
  t.throws(() => walk('accept', 'request-payment', 'prepaid', 'start', 'finish-prepaid', 'paid'), /settled job cannot paid/, 'a prepaid job is never paid twice');
  t.equal(walk('accept', 'cancel'), 'cancelled');
  t.throws(() => walk('accept', 'start', 'cancel'), /running job cannot cancel/, 'cannot cancel a started job');
  t.throws(() => walk('accept', 'start', 'finish', 'finish'), /cannot finish/, 'never delivers twice');
  t.throws(() => walk('reject', 'accept'));
  t.same(recoverJobState('running', 1), { ok: true, state: 'queued' }, 'a crashed run is retried once');
  t.same(recoverJobState('running', 2), { ok: true, state: 'failed' }, 'and then failed');
  t.same(recoverJobState('delivered', 1), { ok: true, state: 'delivered' }, 'a delivered job keeps watching its invoice');
  for (const s of JOB_STATES) if (isTerminal(s)) t.same(recoverJobState(s, 0), { ok: true, state: s });
});
