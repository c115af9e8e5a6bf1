import { formatProblems } from '@bazaar/dvm-kinds/problem';
import { isJobResultKind, parseJobResult } from '@bazaar/dvm-kinds/job';
import { JOB_KINDS } from '@bazaar/dvm-kinds/registry';
import { ACCEPT, reject, type Policy } from '../policy.ts';

/**
 * Job results (6000-6999) must parse: results of our kinds with their full schema and hash tags,
 * other kinds and private (encrypted) results by the NIP-90 envelope (`e` request, `p` customer).
 */
export function validJobResult(): Policy {
  return (event) => {
    if (!isJobResultKind(event.kind)) return ACCEPT;
    const spec = JOB_KINDS.get(event.kind - 1000);
    const encrypted = event.tags.some((t) => t[0] === 'encrypted');
    const parsed = spec && !encrypted ? spec.parseResult(event) : parseJobResult(event);
    if (parsed.ok) return ACCEPT;
    const what = spec ? `${spec.name} result (${event.kind})` : `job result (${event.kind})`;
    return reject(`invalid: malformed ${what}: ${formatProblems(parsed.errors)}`);
  };
}
