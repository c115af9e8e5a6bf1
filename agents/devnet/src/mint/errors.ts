// NUT error responses: every failure the mint reports to a client is a MintError,
// serialised as `{ detail, code }` with the codes of cashubtc/nuts error_codes.md.

export const MintErrorCode = {
  /** Generic: bad request shape, malformed JSON, unknown quote, unknown route. */
  generic: 10000,
  proofVerificationFailed: 10001,
  proofsAlreadySpent: 11001,
  proofsPending: 11002,
  outputsAlreadySigned: 11003,
  outputsPending: 11004,
  transactionNotBalanced: 11005,
  amountOutOfLimits: 11006,
  duplicateInputs: 11007,
  duplicateOutputs: 11008,
  multipleUnits: 11009,
  unitMismatch: 11010,
  amountlessInvoice: 11011,
  amountMismatch: 11012,
  unitNotSupported: 11013,
  maxInputsExceeded: 11014,
  maxOutputsExceeded: 11015,
  keysetUnknown: 12001,
  keysetInactive: 12002,
  quoteNotPaid: 20001,
  quoteAlreadyIssued: 20002,
  lightningPaymentFailed: 20004,
  quotePending: 20005,
  invoiceAlreadyPaid: 20006,
  quoteExpired: 20007,
  quoteSignatureInvalid: 20008,
  quotePubkeyInvalid: 20009,
} as const;

export class MintError extends Error {
  override name = 'MintError';
  readonly code: number;
  readonly status: number;
  constructor(code: number, detail: string, status = 400) {
    super(detail);
    this.code = code;
    this.status = status;
  }
  toJSON(): { detail: string; code: number } {
    return { detail: this.message, code: this.code };
  }
}

export const fail = (code: number, detail: string): never => {
  throw new MintError(code, detail);
};
