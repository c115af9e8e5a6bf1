// `bazaar relay sync`: reconcile a relay's data directory with another relay by NIP-77, as
// `strfry sync` does. Works whether or not a relay is running on that directory: LMDB lets
// several processes share it (one writer at a time, serialised by LMDB's lock; the store
// re-reads its sequence numbers inside each write). Downloaded events go through the relay's
// own ingest pipeline (relay.addEvent: signature, policies, replaceable and deletion rules).
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandSpec, FlagValues } from '@bazaar/cli-kit/command';
import { UsageError } from '@bazaar/cli-kit/command';
import { createLogger } from '@bazaar/cli-kit/log';
import type { Filter } from '@bazaar/dvm-kinds/nostr';
import { checkFilter } from '../filter.ts';
import { DEFAULT_RELAY_LIMITS } from '../limits.ts';
import { MIN_FRAME_SIZE_LIMIT } from './negentropy.ts';
import type { SyncDirection, SyncProgress } from './sync-client.ts';

export const syncCommand: CommandSpec = {
  name: 'sync',
  summary: 'Reconcile a relay data directory with another relay by NIP-77 negentropy: download what it lacks (and optionally upload).',
  envPrefix: 'BAZAAR_RELAY_SYNC_',
  flags: {
    data: { type: 'string', default: './data/relay', description: 'Data directory of the local relay (LMDB files; created if missing). The relay may be running' },
    from: { type: 'string', description: 'The other relay, ws:// or wss:// (required)' },
    filter: { type: 'string', default: '{}', description: 'NIP-01 filter (JSON object) selecting the events to reconcile; an array of filters reconciles their union (strfry and Bazaar relays accept it)' },
    direction: { type: 'string', choices: ['down', 'up', 'both'], default: 'down', description: 'down: fetch what the other relay has; up: send it what we have; both' },
    policies: { type: 'string', description: "Write-policy file for downloaded events, as for 'bazaar relay'; 'none' runs none. Default: the relay's built-in policy" },
    'frame-size-limit': { type: 'number', integer: true, min: 0, default: 60_000, description: `Largest negentropy message we send, bytes before hex (0 = unlimited, else >= ${MIN_FRAME_SIZE_LIMIT})` },
    timeout: { type: 'number', integer: true, min: 1, default: 30, description: 'Give up when the other relay sends nothing for this many seconds' },
    json: { type: 'boolean', default: false, description: 'Print the summary as JSON' },
    progress: { type: 'boolean', description: 'Show progress on stderr (default: when stderr is a terminal)' },
    'log-level': { type: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'warn', description: 'Log level' },
  },
  details: `Both sides compare the filter's events by id and created_at (negentropy: a few round trips,
bandwidth proportional to the difference), then the missing events move: down as REQs by id, each
stored through this relay's ingest pipeline (signature, policies, replaceable and deletion rules);
up as EVENTs, counted by the other relay's OKs. The summary gives have/need counts (have: we have
and the other lacks; need: the other has and we lack), what happened to each event, bytes and seconds.
Exit code 0 when the sync completed, 1 when it failed (the reason is printed), 2 on bad flags.
Examples:
  bazaar relay sync --data ./data/relay --from wss://relay.example.com
  bazaar relay sync --from ws://127.0.0.1:7777 --filter '{"kinds":[31990,11998]}' --direction both`,
  run: runSync,
};

async function runSync(f: FlagValues): Promise<number> {
  const from = f.from as string | undefined;
  if (from === undefined) throw new UsageError('--from is required: the relay to sync with (ws:// or wss://)');
  if (!/^wss?:\/\/[^/\s]/.test(from)) throw new UsageError(`--from must be a ws:// or wss:// URL (got ${JSON.stringify(from)})`);
  let rawFilter: unknown;
  try {
    rawFilter = JSON.parse(f.filter as string);
  } catch {
    throw new UsageError(`--filter is not valid JSON: ${JSON.stringify(f.filter)}`);
  }
  const rawFilters = Array.isArray(rawFilter) ? rawFilter : [rawFilter];
  if (rawFilters.length === 0) throw new UsageError('--filter: an empty array selects nothing');
  const filters: Filter[] = [];
  for (const r of rawFilters) {
    const checked = checkFilter(r);
    if (!checked.ok) throw new UsageError(`--filter: ${checked.message}`);
    filters.push(checked.filter);
  }
  const filter: Filter | Filter[] = Array.isArray(rawFilter) ? filters : filters[0];
  const frameSizeLimit = f['frame-size-limit'] as number;
  if (frameSizeLimit !== 0 && frameSizeLimit < MIN_FRAME_SIZE_LIMIT) throw new UsageError(`--frame-size-limit must be 0 or at least ${MIN_FRAME_SIZE_LIMIT}`);
  const direction = f.direction as SyncDirection;
  const logger = createLogger({ name: 'relay-sync', level: f['log-level'] as string, fd: 2 });
  const { policyFromFlag } = await import('../cli.ts');
  const policy = await policyFromFlag(f.policies as string | undefined, logger);

  const dataDir = resolve(f.data as string);
  mkdirSync(dataDir, { recursive: true });
  const { openLmdbStore } = await import('../store/lmdb-store.ts');
  const { createVerifier, invalidReason } = await import('../ingest/verify.ts');
  const { RelayCore } = await import('../relay.ts');
  const { syncWithRelay } = await import('./sync-client.ts');
  // The expiry purge belongs to the relay that owns the directory; a sync only adds events.
  const store = await openLmdbStore({ path: dataDir, logger, purgeIntervalMs: 0 });
  const verifier = createVerifier({ logger });
  const core = new RelayCore({
    store,
    verify: async (e) => {
      const outcome = await verifier.check(e);
      return outcome === 'valid' ? null : invalidReason(outcome);
    },
    limits: DEFAULT_RELAY_LIMITS,
    info: { name: 'bazaar', description: '', authRequired: false, restrictedWrites: false },
    logger,
    negentropy: false,
    ...(policy ? { policy } : {}),
  });
  const showProgress = (f.progress as boolean | undefined) ?? process.stderr.isTTY === true;
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const summary = await syncWithRelay({
      url: from,
      store,
      ingest: (event) => core.addEvent(event, { source: 'sync', sourceInfo: from }),
      filter,
      direction,
      frameSizeLimit,
      idleTimeoutMs: (f.timeout as number) * 1000,
      signal: abort.signal,
      logger,
      ...(showProgress ? { onProgress: (p: SyncProgress) => process.stderr.write(`\r\x1b[K${progressLine(p)}`) } : {}),
    });
    if (showProgress) process.stderr.write('\r\x1b[K');
    process.stdout.write(f.json ? `${JSON.stringify({ from, dataDir, filter, direction, ...summary })}\n` : summaryText(from, direction, summary));
    return 0;
  } catch (err) {
    if (showProgress) process.stderr.write('\n');
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    core.negentropy?.stop();
    await verifier.close();
    await store.close();
  }
}

const n = (x: number): string => x.toLocaleString('en-US');

function bytes(b: number): string {
  if (b < 1024) return `${b} B`;
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${(b / 1024 / 1024).toFixed(1)} MiB`;
}

function progressLine(p: SyncProgress): string {
  const secs = (p.elapsedMs / 1000).toFixed(1);
  if (p.phase === 'scanning') return `scanning local events… ${secs} s`;
  if (p.phase === 'connecting') return `${n(p.localEvents)} local events; connecting… ${secs} s`;
  const done = p.stored + p.duplicate + p.rejected;
  return `round ${p.rounds}: have ${n(p.have)}, need ${n(p.need)}; down ${n(done)}/${n(p.need)}, up ${n(p.accepted + p.refused)}/${n(p.have)}; ` +
    `${bytes(p.bytesIn)} in, ${bytes(p.bytesOut)} out; ${secs} s`;
}

function summaryText(from: string, direction: SyncDirection, p: SyncProgress): string {
  const lines = [
    `synced with ${from} (${direction}) in ${(p.elapsedMs / 1000).toFixed(2)} s, ${p.rounds} negentropy round${p.rounds === 1 ? '' : 's'}`,
    `  local events matching the filter: ${n(p.localEvents)}`,
    `  need ${n(p.need)} (the other relay has, we lacked)` + (direction === 'up' ? ': not downloaded' :
      `: ${n(p.downloaded)} downloaded — ${n(p.stored)} stored, ${n(p.duplicate)} already had or older versions, ${n(p.rejected)} refused, ${n(p.missing)} no longer served`),
    `  have ${n(p.have)} (we have, the other relay lacked)` + (direction === 'down' ? ': not uploaded (--direction up or both)' :
      `: ${n(p.uploaded)} uploaded — ${n(p.accepted)} accepted, ${n(p.refused)} refused`),
    `  bytes: ${bytes(p.bytesIn)} in, ${bytes(p.bytesOut)} out`,
  ];
  return `${lines.join('\n')}\n`;
}
