// The LMDB environment and its named tables, opened the same way by the store (reads,
// on the relay's thread) and by the writer (on its own thread, or inline): one place
// that knows the table names, their key codecs and the environment options.
import { open, type Database, type RootDatabase } from 'lmdb';
import { indexKeyEncoder, readU32 } from './lmdb-codec.ts';

export type Db = Database<Buffer, Buffer | number>;

/**
 * Default LMDB map size: address space reserved up front, not disk (the file grows as data
 * is written). lmdb-js otherwise starts at 128 KiB and remaps at every doubling, and each
 * earlier mapping stays resident beside the new one: that cost 2.5× the database size in RSS.
 */
export const DEFAULT_MAP_SIZE = 256 * 2 ** 30;

export const EMPTY = Buffer.alloc(0);
export const MAX_U32 = 0xffffffff;

export interface Tables {
  readonly root: RootDatabase;
  /** `schemaVersion`, `nextSeq`. */
  readonly meta: Database<unknown, string>;
  /** seq (u32) → packed header ‖ canonical JSON. */
  readonly events: Database<Buffer, number>;
  /** id (32 B) → seq. */
  readonly ids: Db;
  /** replaceable/addressable address → seq of the current version. */
  readonly slots: Db;
  /** id ‖ deleter pubkey → flags (bit 0: the deletion had ["k","1059"]). */
  readonly deletedIds: Db;
  /** address → u64 created_at of the newest `a` deletion. */
  readonly deletedAddrs: Db;
  readonly byPubkeyKind: Db;
  readonly byPubkey: Db;
  readonly byKind: Db;
  readonly byTag: Db;
  readonly byTime: Db;
  /** u64 expiration ‖ seq. */
  readonly byExpiry: Db;
}

export interface EnvOptions {
  readonly path: string;
  readonly mapSize?: number;
  readonly pageSize?: number;
}

/**
 * Opens the environment and every table. Several threads of one process may each call
 * this for the same path: lmdb-js shares one LMDB environment between them.
 */
export function openTables(opts: EnvOptions): Tables {
  const root: RootDatabase = open({
    path: opts.path,
    noSubdir: false, // always a directory (lmdb-js would treat a path with an extension as a file)
    maxDbs: 16,
    mapSize: opts.mapSize ?? DEFAULT_MAP_SIZE,
    ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
  });
  const binary = (name: string): Db => root.openDB<Buffer, Buffer>(name, { keyEncoding: 'binary', encoding: 'binary' }) as unknown as Db;
  const index = (name: string): Db =>
    root.openDB<Buffer, Buffer>(name, { encoding: 'binary', keyEncoder: indexKeyEncoder } as never) as unknown as Db;
  return {
    root,
    meta: root.openDB<unknown, string>('meta', {}),
    events: root.openDB<Buffer, number>('events', { keyEncoding: 'uint32', encoding: 'binary' }),
    ids: binary('ids'),
    slots: binary('slots'),
    deletedIds: binary('deleted-ids'),
    deletedAddrs: binary('deleted-addrs'),
    byPubkeyKind: index('idx-pubkey-kind'),
    byPubkey: index('idx-pubkey'),
    byKind: index('idx-kind'),
    byTag: index('idx-tag'),
    byTime: index('idx-created-at'),
    byExpiry: index('idx-expiration'),
  };
}

/** The seq of a stored id (committed, or written earlier in the current write transaction). */
export function seqOfId(t: Tables, idBytes: Uint8Array): number | undefined {
  const v = t.ids.getBinaryFast(idBytes as Buffer);
  return v === undefined ? undefined : readU32(v, 0);
}

/** The next sequence number to hand out: above every stored event and every number used before. */
export function loadNextSeq(t: Tables): number {
  let next = 1;
  for (const k of t.events.getKeys({ reverse: true, limit: 1 })) next = (k as number) + 1;
  const saved = t.meta.get('nextSeq');
  return typeof saved === 'number' && saved > next ? saved : next;
}
