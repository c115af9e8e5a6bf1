// Test helper: a dev Lightning network in a fresh temp directory, closed and removed on teardown,
// with the money-conservation invariant checked after every test that uses it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { Test } from 'tap';
import { LightningNetwork } from '../../src/lightning/network.ts';

export const silentLogger: Logger = pino({ level: 'silent' });

/** The test object tap passes to a subtest. */
export type TapTest = Test;

/**
 * A fresh temp directory, removed when `t` ends — after whatever was opened in it later and
 * closed by its own teardown (tap runs teardowns last-registered first).
 */
export function tempDir(t: TapTest, prefix = 'bazaar-ln-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function openTestNetwork(t: TapTest, opts: { now?: () => number; path?: string } = {}): LightningNetwork {
  const dir = opts.path ?? tempDir(t);
  const net = LightningNetwork.open({ path: dir, logger: silentLogger, ...(opts.now ? { now: opts.now } : {}) });
  t.teardown(async () => {
    // Assertions are not allowed in teardown; a broken invariant fails the test by throwing.
    const inv = net.checkInvariant();
    await net.close();
    if (!inv.ok) throw new Error(`money not conserved: balances ${inv.balancesMsat} + in flight ${inv.inFlightMsat} != funded ${inv.totalFundedMsat}`);
  });
  return net;
}

/** Asserts money conservation on the network (call at the end of a test). */
export function assertConserved(t: TapTest, net: LightningNetwork): void {
  const inv = net.checkInvariant();
  t.ok(inv.ok, `money conserved: balances ${inv.balancesMsat} + in flight ${inv.inFlightMsat} == funded ${inv.totalFundedMsat}`);
}

/** A settable clock in milliseconds. */
export function manualClock(startMs = Date.now()): { now: () => number; advance: (secs: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (secs) => { t += secs * 1000; } };
}
