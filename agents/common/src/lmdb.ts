// The one way the agents open an LMDB environment (provider, buyer, arbiter, wallet, devnet).
import { open, type RootDatabase } from 'lmdb';

/**
 * The map size every agent store reserves: address space, not disk or memory (the file grows
 * as data is written; pages become resident only when touched). Without one, lmdb-js starts
 * with a 128 KiB map and remaps each time the file outgrows it, and it keeps every earlier
 * mapping for readers that may still use it, so a store that grew to N bytes holds maps of
 * about 2N. 64 GiB is far beyond any agent's books, and a process opening ten such stores
 * still uses well under 1 % of x86-64's 128 TiB of user address space. (The relay reserves
 * 256 GiB for events: relay/src/store/lmdb-tables.ts DEFAULT_MAP_SIZE.)
 */
export const AGENT_LMDB_MAP_SIZE = 64 * 2 ** 30;

/** lmdb's `open` with the agents' map size (an explicit `mapSize` in `options` wins). */
export function openLmdb(options: Parameters<typeof open>[0]): RootDatabase {
  return open({ mapSize: AGENT_LMDB_MAP_SIZE, ...options });
}
