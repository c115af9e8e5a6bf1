// strfry write-policy plugin protocol (docs/plugins.md, src/PluginEventSifter.h): one JSON request
// per stdin line, exactly one JSON response per line on stdout, in order, echoing the event id
// (strfry treats an id mismatch as a plugin failure). Logs go to stderr only.
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { withTimeout } from './combinators.ts';
import type { Policy, PolicyContext, ReadStore, Verdict } from './policy.ts';

export interface StrfryRequest {
  readonly type: string;
  readonly event: NostrEvent;
  readonly receivedAt: number;
  readonly sourceType: 'IP4' | 'IP6' | 'Import' | 'Stream' | 'Sync' | string;
  readonly sourceInfo: string;
  /** NIP-42 pubkey the connection authenticated as (newer strfry versions). */
  readonly authed?: string | readonly string[];
}

export interface StrfryResponse {
  readonly id: string;
  readonly action: 'accept' | 'reject' | 'shadowReject';
  readonly msg?: string;
}

const SOURCE_TYPES: Readonly<Record<string, PolicyContext['source']['type']>> = { IP4: 'ws', IP6: 'ws', Import: 'import', Stream: 'stream', Sync: 'sync' };

const isEvent = (e: unknown): e is NostrEvent => {
  const x = e as NostrEvent;
  return typeof x === 'object' && x !== null && typeof x.id === 'string' && typeof x.pubkey === 'string' && Number.isInteger(x.kind) && Number.isInteger(x.created_at) && typeof x.content === 'string' && typeof x.sig === 'string' && Array.isArray(x.tags) && x.tags.every((t) => Array.isArray(t) && t.every((v) => typeof v === 'string'));
};

/** strfry sends seconds; tolerate milli/microseconds so a version change cannot break NIP-40 checks. */
const toSeconds = (t: unknown): number | undefined => {
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) return undefined;
  if (t > 1e14) return Math.floor(t / 1e6);
  if (t > 1e11) return Math.floor(t / 1e3);
  return Math.floor(t);
};

/** strfry reads plugin answers with an 8 KiB record limit: keep messages well under it. */
export const MAX_MSG_CHARS = 2000;
const clip = (m: string): string => (m.length > MAX_MSG_CHARS ? `${m.slice(0, MAX_MSG_CHARS - 1)}…` : m);

// A shadow-reject carries no msg: strfry forwards msg in the client's `OK true`, which would tell
// the client its event was dropped (strfry's docs/plugins.md: msg is only used for reject).
const verdictToResponse = (id: string, v: Verdict): StrfryResponse =>
  v.action === 'accept' ? { id, action: 'accept' } : v.action === 'reject' ? { id, action: 'reject', msg: clip(v.message) } : { id, action: 'shadowReject' };

/** Decide one request line. Never throws: bad input becomes a reject with an `error:`/`invalid:` message. */
export async function handleStrfryLine(line: string, policy: Policy, store: ReadStore, log?: Pick<Logger, 'warn' | 'debug'>, connectionId = 'strfry', signal?: AbortSignal): Promise<StrfryResponse> {
  let req: Partial<StrfryRequest>;
  try {
    req = JSON.parse(line);
  } catch {
    log?.warn({ length: line.length }, 'strfry plugin: input line is not JSON');
    return { id: '', action: 'reject', msg: 'error: plugin received a malformed request' };
  }
  const rawId = (req as { event?: { id?: unknown } } | null)?.event?.id;
  const id = typeof rawId === 'string' ? rawId : '';
  if (typeof req !== 'object' || req === null || req.type !== 'new') {
    log?.warn({ type: (req as { type?: unknown } | null)?.type }, 'strfry plugin: unexpected request type');
    return { id, action: 'reject', msg: 'error: plugin received an unexpected request type' };
  }
  if (!isEvent(req.event)) return { id, action: 'reject', msg: 'invalid: malformed event' };
  const sourceType = SOURCE_TYPES[req.sourceType ?? ''];
  if (!sourceType) log?.warn({ sourceType: req.sourceType }, 'strfry plugin: unknown sourceType, treating the event as internal');
  const receivedAt = toSeconds(req.receivedAt) ?? Math.floor(Date.now() / 1000);
  // `authed` is the NIP-42 pubkey of the connection; tolerate a list (several AUTHs).
  const authed = (Array.isArray(req.authed) ? req.authed : [req.authed]).filter((k): k is string => typeof k === 'string' && /^[0-9a-f]{64}$/.test(k));
  const ctx: PolicyContext = {
    source: { type: sourceType ?? 'internal', ip: typeof req.sourceInfo === 'string' ? req.sourceInfo : '', connectionId },
    ...(authed.length ? { authedPubkey: authed[0], authedPubkeys: authed } : {}),
    receivedAt,
    store,
    size: Buffer.byteLength(JSON.stringify(req.event)),
  };
  let verdict: Verdict;
  try {
    verdict = await policy(req.event, ctx, signal);
  } catch (err) {
    log?.warn({ eventId: id, err }, 'strfry plugin: policy failed');
    verdict = { action: 'reject', message: 'error: policy failed' };
  }
  log?.debug({ eventId: id, kind: req.event.kind, action: verdict.action, reason: verdict.action === 'accept' ? undefined : verdict.message }, 'strfry plugin decision');
  return verdictToResponse(id, verdict);
}

/**
 * Runs the plugin loop until `input` ends: requests are decided one at a time, in order, so the
 * Nth output line always answers the Nth request. Blank lines are not requests and get no answer.
 * A decision past `timeoutMs` is answered `error: policy timed out` and its policy's AbortSignal
 * aborts, so the policy stops instead of running on behind later requests.
 */
export async function runStrfryPlugin(opts: { input: Readable; output: Writable; policy: Policy; store: ReadStore; timeoutMs?: number; log?: Pick<Logger, 'warn' | 'debug' | 'info'> }): Promise<{ requests: number }> {
  const policy = withTimeout(opts.policy, opts.timeoutMs ?? 2000);
  const rl = createInterface({ input: opts.input, crlfDelay: Infinity, terminal: false });
  let requests = 0;
  for await (const line of rl) {
    if (line.trim() === '') continue;
    requests++;
    const res = await handleStrfryLine(line, policy, opts.store, opts.log);
    if (!opts.output.write(JSON.stringify(res) + '\n')) await new Promise((r) => opts.output.once('drain', r));
  }
  opts.log?.info({ requests }, 'strfry plugin: input closed');
  return { requests };
}
