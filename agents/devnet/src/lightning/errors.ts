// Typed failures of the dev Lightning network. The NWC service maps `code` to a NIP-47
// error code; the message is for people and never contains a secret.

export const LightningErrorCode = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  UNKNOWN_ACCOUNT: 'UNKNOWN_ACCOUNT',
  ACCOUNT_EXISTS: 'ACCOUNT_EXISTS',
  INVALID_INVOICE: 'INVALID_INVOICE',
  UNKNOWN_INVOICE: 'UNKNOWN_INVOICE',
  ALREADY_PAID: 'ALREADY_PAID',
  EXPIRED: 'EXPIRED',
  SELF_PAYMENT: 'SELF_PAYMENT',
  INSUFFICIENT_BALANCE: 'INSUFFICIENT_BALANCE',
  FEE_LIMIT: 'FEE_LIMIT',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  ABORTED: 'ABORTED',
} as const;

export type LightningErrorCode = (typeof LightningErrorCode)[keyof typeof LightningErrorCode];

export class LightningError extends Error {
  override name = 'LightningError';
  readonly code: LightningErrorCode;
  constructor(code: LightningErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function isLightningError(err: unknown, code?: LightningErrorCode): err is LightningError {
  return err instanceof LightningError && (code === undefined || err.code === code);
}
