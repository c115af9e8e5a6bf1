import { formatProblems } from '@bazaar/dvm-kinds/problem';
import { isJobRequestKind, parseJobRequest } from '@bazaar/dvm-kinds/job';
import { JOB_KINDS } from '@bazaar/dvm-kinds/registry';
import { ACCEPT, reject, type Policy } from '../policy.ts';

/**
 * Job requests (5000-5999) must parse: our kinds with their full schema (every problem listed
 * in the `invalid:` message), other NIP-90 kinds and private (encrypted) requests by the envelope.
 */
export function validJobRequest(): Policy {
  return (event) => {
    if (!isJobRequestKind(event.kind)) return ACCEPT;
    const spec = JOB_KINDS.get(event.kind);
    const encrypted = event.tags.some((t) => t[0] === 'encrypted');
    const parsed = spec && !encrypted ? spec.parseRequest(event) : parseJobRequest(event);
    if (parsed.ok) return ACCEPT;
    const what = spec ? `${spec.name} (${event.kind})` : `job request (${event.kind})`;
    return reject(`invalid: malformed ${what}: ${formatProblems(parsed.errors)}`);
  };
}
