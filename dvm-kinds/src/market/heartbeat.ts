// Provider heartbeat (kind 11998, replaceable): "I am up, this busy", expiring by NIP-40.
import type { EventTemplate } from '../nostr.ts';
import { fail, problem, type Parsed, type Problem, result } from '../problem.ts';
import { checkKind, nowSecs, parseUint, readSingleTag, readUintTag, tagsNamed, type EventLike, shapeProblems } from '../tags.ts';
import { isJobRequestKind } from '../job.ts';

export const HEARTBEAT_KIND = 11998;
export const HEARTBEAT_STATUSES = ['online', 'busy', 'draining'] as const;
export type HeartbeatStatus = (typeof HEARTBEAT_STATUSES)[number];
/** Default lifetime of a heartbeat: a provider missing two beats drops out of the directory. */
export const DEFAULT_HEARTBEAT_TTL_SECS = 120;

export interface Heartbeat {
  readonly pubkey?: string;
  readonly createdAt: number;
  readonly expiration: number;
  readonly status: HeartbeatStatus;
  /** Jobs running now and the most it runs at once (`["load", active, capacity]`). */
  readonly active: number;
  readonly capacity: number;
  readonly kinds: readonly number[];
  /** A provider pool (several processes under one identity): how many workers `load` sums (`["workers", n]`). */
  readonly workers?: number;
}

export interface HeartbeatInput {
  readonly status?: HeartbeatStatus;
  readonly active: number;
  readonly capacity: number;
  readonly kinds?: readonly number[];
  readonly workers?: number;
  readonly createdAt?: number;
  readonly ttlSecs?: number;
}

export function buildHeartbeat(h: HeartbeatInput): EventTemplate {
  const created = h.createdAt ?? nowSecs();
  return {
    kind: HEARTBEAT_KIND,
    created_at: created,
    content: '',
    tags: [['status', h.status ?? 'online'], ['load', String(h.active), String(h.capacity)], ...(h.kinds ?? []).map((k) => ['k', String(k)]), ...(h.workers !== undefined ? [['workers', String(h.workers)]] : []), ['expiration', String(created + (h.ttlSecs ?? DEFAULT_HEARTBEAT_TTL_SECS))]],
  };
}

export function parseHeartbeat(e: EventLike): Parsed<Heartbeat> {
  const shape = shapeProblems(e);
  if (shape.length) return fail(shape);
  const out: Problem[] = [];
  checkKind(e, HEARTBEAT_KIND, out, 'heartbeat');
  const expiration = readUintTag(e.tags, 'expiration', out, true);
  if (expiration !== undefined && expiration <= e.created_at) out.push(problem('tags.expiration', 'invalid', 'a heartbeat expires after it was created'));
  const status = readSingleTag(e.tags, 'status', out, true)?.[1];
  if (status !== undefined && !(HEARTBEAT_STATUSES as readonly string[]).includes(status)) out.push(problem('tags.status', 'invalid', `status must be one of ${HEARTBEAT_STATUSES.join(', ')}`));
  const load = readSingleTag(e.tags, 'load', out, true);
  const active = parseUint(load?.[1]);
  const capacity = parseUint(load?.[2]);
  if (load && (active === undefined || capacity === undefined)) out.push(problem('tags.load', 'invalid', 'load is ["load", "<active>", "<capacity>"] with integers'));
  const workers = readUintTag(e.tags, 'workers', out, false);
  if (workers === 0) out.push(problem('tags.workers', 'invalid', 'a pool has at least one worker'));
  const kinds: number[] = [];
  for (const t of tagsNamed(e.tags, 'k')) {
    const k = parseUint(t[1]);
    if (k === undefined || !isJobRequestKind(k)) out.push(problem('tags.k', 'invalid', `a k tag names a job request kind, got ${JSON.stringify(t[1] ?? null)}`));
    else kinds.push(k);
  }
  return result(out, () => ({
    ...(e.pubkey !== undefined ? { pubkey: e.pubkey } : {}),
    createdAt: e.created_at,
    expiration: expiration!,
    status: status as HeartbeatStatus,
    active: active!,
    capacity: capacity!,
    kinds,
    ...(workers !== undefined ? { workers } : {}),
  }));
}
