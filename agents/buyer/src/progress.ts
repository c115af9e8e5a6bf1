// What a person watching `bazaar buyer …` sees: one line per step as it happens, with the
// elapsed time and the money spent so far. Scripts use --json instead and get one document.
import type { ProgressEvent, RunReport } from './market-client.ts';

const short = (hex: string): string => `${hex.slice(0, 8)}…`;
/** Sats with millisats shown only when there are some (1.1 sats, not "1 sat" for 1,100 msats). */
export function formatSats(msats: number): string {
  const whole = Math.floor(msats / 1000);
  const rest = Math.round(msats) % 1000;
  return rest ? `${whole.toLocaleString('en-US')}.${String(rest).padStart(3, '0').replace(/0+$/, '')}` : whole.toLocaleString('en-US');
}
const sats = (msats: number): string => `${formatSats(msats)} sat${msats === 1000 ? '' : 's'}`;

export class ProgressPrinter {
  readonly #started = Date.now();
  readonly #write: (line: string) => void;
  readonly #budgetMsats: number;
  #spentMsats = 0;

  constructor(o: { budgetMsats: number; write?: (line: string) => void }) {
    this.#budgetMsats = o.budgetMsats;
    this.#write = o.write ?? ((l) => process.stderr.write(`${l}\n`));
  }

  #line(text: string): void {
    const secs = ((Date.now() - this.#started) / 1000).toFixed(1).padStart(6);
    this.#write(`[${secs}s] ${text}${this.#spentMsats ? `   (spent ${sats(this.#spentMsats)} of ${sats(this.#budgetMsats)})` : ''}`);
  }

  on = (e: ProgressEvent): void => {
    switch (e.type) {
      case 'discovered':
        this.#line(`${e.candidates} provider${e.candidates === 1 ? '' : 's'} usable${e.excluded.length ? `, ${e.excluded.length} left out (${e.excluded.slice(0, 3).map((x) => `${short(x.pubkey)} ${x.reason}`).join('; ')}${e.excluded.length > 3 ? '; …' : ''})` : ''}`);
        break;
      case 'skipped':
        this.#line(`skipped ${short(e.provider)}: ${e.reason}`);
        break;
      case 'posted':
        this.#line(`attempt ${e.attempt}: job ${short(e.jobId)} posted to ${short(e.provider)}${e.quoteMsats !== undefined ? ` (up to ${sats(e.quoteMsats)}` : ' (price unannounced'}, pay ${e.pay === 'escrow' ? 'by escrow' : `by ${e.pay} after verify`})`);
        break;
      case 'feedback':
        this.#line(`${short(e.jobId)} ${e.status}${e.message ? `: ${e.message}` : ''}${e.amountMsats !== undefined ? ` [${sats(e.amountMsats)}]` : ''}`);
        break;
      case 'result':
        this.#line(`${short(e.jobId)} result received`);
        break;
      case 'verifying':
        this.#line(`${short(e.jobId)} verifying on our own machine…`);
        break;
      case 'verified':
        this.#line(e.ok ? `${short(e.jobId)} verified: every check passed` : `${short(e.jobId)} verification FAILED: ${e.failed.join('; ')}`);
        break;
      case 'paying':
        this.#line(`${short(e.jobId)} paying ${sats(e.amountMsats)} ${e.method === 'escrow' ? 'by releasing the escrow' : `over ${e.method}`}${e.when === 'prepay' ? ' (asked up front)' : ''}`);
        break;
      case 'paid':
        this.#spentMsats += e.amountMsats + e.feesMsats;
        this.#line(`${short(e.jobId)} paid ${sats(e.amountMsats)}${e.feesMsats ? ` + ${sats(e.feesMsats)} fees` : ''}`);
        break;
      case 'receipt':
        this.#line(`${short(e.jobId)} receipt ${short(e.receiptId)} published`);
        break;
      case 'disputed':
        this.#line(`${short(e.jobId)} not paid; dispute ${short(e.disputeId)} published`);
        break;
      case 'refused':
        this.#line(`${short(e.jobId)} not paid: ${e.reason}`);
        break;
      case 'cancelled':
      case 'failed':
        this.#line(`${short(e.jobId)} ${e.type}: ${e.reason}`);
        break;
    }
  };
}

/** The closing lines for a person: outcome, who, what it cost, where the result is. */
export function summary(r: RunReport): string {
  const lines = [`${r.outcome.toUpperCase()}  ${r.task}`];
  if (r.provider) lines.push(`provider   ${r.provider}`);
  if (r.jobId) lines.push(`job        ${r.jobId}`);
  if (r.payment) lines.push(`paid       ${sats(r.payment.amountMsats)} (${r.payment.method}, ${r.payment.when})${r.receiptId ? `; receipt ${r.receiptId}` : ''}`);
  lines.push(`spent      ${sats(r.spentMsats)} of a ${sats(r.budgetMsats)} budget`);
  if (r.verification) {
    for (const c of r.verification.checks) lines.push(`  ${c.passed ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? ` — ${c.detail}` : ''}`);
  }
  if (r.disputeIds.length) lines.push(`dispute    ${r.disputeIds.join(', ')}`);
  if (r.reason && r.outcome !== 'paid') lines.push(`why        ${r.reason}`);
  return lines.join('\n');
}
