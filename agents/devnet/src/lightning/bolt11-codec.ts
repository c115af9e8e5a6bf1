// BOLT11 encode/sign and strict decode for the dev Lightning network. Invoices are
// ordinary regtest (`lnbcrt`) payment requests signed with the payee account's node
// key, so any BOLT11 decoder (bolt11, light-bolt11-decoder, wallets) reads them.
import bolt11 from 'bolt11';
import { LightningError } from './errors.ts';

/** bitcoinjs-style network descriptor for regtest: invoices start with `lnbcrt`. */
export const REGTEST = { bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, validWitnessVersions: [0, 1] } as const;

/** BOLT11 caps a tagged field at 1023 five-bit words, i.e. 639 bytes of description. */
export const MAX_DESCRIPTION_BYTES = 639;

export interface InvoiceFields {
  readonly amountMsat: number;
  readonly paymentHash: string;
  readonly paymentSecret: string;
  /** Either a description or a description hash (BOLT11 `d` or `h`). */
  readonly description?: string;
  readonly descriptionHash?: string;
  readonly expirySecs: number;
  /** Unix seconds. */
  readonly timestamp: number;
}

export interface DecodedInvoice {
  /** Normalised (lower-case, no `lightning:` prefix) payment request. */
  readonly bolt11: string;
  readonly network: string;
  readonly amountMsat: number | undefined;
  readonly paymentHash: string;
  readonly description: string | undefined;
  readonly descriptionHash: string | undefined;
  /** Unix seconds. */
  readonly timestamp: number;
  readonly expirySecs: number;
  readonly expiresAt: number;
  /** Compressed public key that signed the invoice (verified by signature recovery). */
  readonly payee: string;
}

const HEX32 = /^[0-9a-f]{64}$/;

const FEATURE_BITS = {
  word_length: 4,
  var_onion_optin: { required: true, supported: true },
  payment_secret: { required: true, supported: true },
} as const;

export function normalizeBolt11(input: string): string {
  let s = input.trim().toLowerCase();
  if (s.startsWith('lightning:')) s = s.slice('lightning:'.length);
  return s;
}

/** Builds and signs an invoice with `nodeSecretHex`; returns the payment request string. */
export function encodeInvoice(fields: InvoiceFields, nodeSecretHex: string, nodePubkeyHex: string): string {
  const tags: { tagName: string; data: string | number | object }[] = [
    { tagName: 'payment_hash', data: fields.paymentHash },
    { tagName: 'payment_secret', data: fields.paymentSecret },
  ];
  if (fields.descriptionHash !== undefined) tags.push({ tagName: 'purpose_commit_hash', data: fields.descriptionHash });
  else tags.push({ tagName: 'description', data: fields.description ?? '' });
  tags.push(
    // Modern BOLT11: payment secret and variable-length onion are required features.
    { tagName: 'feature_bits', data: FEATURE_BITS as never },
    { tagName: 'expire_time', data: fields.expirySecs },
    { tagName: 'min_final_cltv_expiry', data: 18 },
    // An explicit payee tag makes the signature check strict: a decoder recovering a
    // different key from a tampered invoice rejects it instead of inventing a payee.
    { tagName: 'payee_node_key', data: nodePubkeyHex },
  );
  const unsigned = bolt11.encode({
    network: { ...REGTEST, validWitnessVersions: [...REGTEST.validWitnessVersions] },
    millisatoshis: String(fields.amountMsat),
    timestamp: fields.timestamp,
    tags: tags as never,
  }, false);
  const signed = bolt11.sign(unsigned, nodeSecretHex);
  if (!signed.paymentRequest) throw new Error('bolt11 signing produced no payment request');
  return signed.paymentRequest;
}

/** Decodes and verifies a payment request. Throws LightningError('INVALID_INVOICE') with the reason. */
export function decodeInvoice(input: string): DecodedInvoice {
  if (typeof input !== 'string' || input.trim() === '') throw new LightningError('INVALID_INVOICE', 'invoice is empty');
  const pr = normalizeBolt11(input);
  let d: ReturnType<typeof bolt11.decode>;
  try {
    d = bolt11.decode(pr);
  } catch (err) {
    throw new LightningError('INVALID_INVOICE', `invoice does not decode: ${(err as Error).message}`);
  }
  const tags = d.tagsObject;
  const paymentHash = tags.payment_hash;
  if (!paymentHash || !HEX32.test(paymentHash)) throw new LightningError('INVALID_INVOICE', 'invoice has no payment hash');
  if (!d.payeeNodeKey) throw new LightningError('INVALID_INVOICE', 'invoice signature does not recover a payee');
  const timestamp = d.timestamp ?? 0;
  const expirySecs = tags.expire_time ?? 3600;
  const msat = d.millisatoshis;
  return {
    bolt11: pr,
    network: d.network?.bech32 ?? 'unknown',
    amountMsat: msat === null || msat === undefined ? undefined : Number(msat),
    paymentHash,
    description: tags.description,
    descriptionHash: tags.purpose_commit_hash,
    timestamp,
    expirySecs,
    expiresAt: timestamp + expirySecs,
    payee: d.payeeNodeKey,
  };
}
