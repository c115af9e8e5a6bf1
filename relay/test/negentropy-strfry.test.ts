// NIP-77 interop with the real strfry (the reference relay, whose negentropy is the reference
// C++ implementation), both ways:
//  - `strfry sync ws://<ours> --dir both`: strfry initiates, our relay answers;
//  - `bazaar relay sync --from ws://<strfry> --direction both`, run as the CLI on the data
//    directory of our relay while it is running: we initiate, strfry answers;
//  - the same negentropy messages sent to both relays holding the same set get byte-identical answers.
// After each sync both hold the same set of events (compared by id). Skipped, with the reason,
// where no strfry binary is present: the project never requires it.
import { execFile, spawn } from 'node:child_process';
import { dieWithParent } from '@bazaar/testkit/die-with-parent';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { findStrfry, startStrfryChild, type StrfryChild } from '@bazaar/testkit/strfry';
import { Negentropy } from '../src/sync/negentropy.ts';
import { NegentropyStorageBuilder } from '../src/sync/negentropy-storage.ts';
import { TestClient, signer, startTestRelay, type Frame, type TestRelay } from './helpers.ts';

const root = new URL('../..', import.meta.url).pathname;
const strfry = findStrfry(root, process.env.BAZAAR_STRFRY);
const run = promisify(execFile);
// Relay processes, a NATS or strfry server, thousands of signed events: minutes on a loaded 2-core machine.
t.setTimeout(10 * 60_000);

if (!strfry.path) {
  t.test('NIP-77 interop with strfry', { skip: `strfry interop: ${strfry.reason}` }, () => {});
} else {
  const binary = strfry.path;
  const work = mkdtempSync(join(tmpdir(), 'bazaar-strfry-sync-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const conf = join(work, 'strfry.conf');

  /** Runs a strfry subcommand on its database (the relay may be running: strfry shares LMDB too). */
  const strfryCmd = async (args: string[], input?: string): Promise<string> => {
    if (input === undefined) return (await run(binary, [`--config=${conf}`, ...args], { cwd: work, maxBuffer: 256 * 1024 * 1024 })).stdout;
    const child = spawn(...dieWithParent(binary, [`--config=${conf}`, ...args]), { cwd: work, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.end(input);
    const code = await new Promise<number | null>((r) => child.on('close', r));
    if (code !== 0) throw new Error(`strfry ${args[0]} exited ${code}: ${err.slice(-2000)}`);
    return out;
  };
  const strfryIds = async (): Promise<string[]> =>
    (await strfryCmd(['scan', '{}'])).trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as NostrEvent).id).sort();
  const ourItems = (relay: TestRelay): [number, string][] => {
    const items: [number, string][] = [];
    const c = relay.core.opts.store.openIdScan({}, { add: (ts, id, off) => items.push([ts, Buffer.from(id.subarray(off, off + 32)).toString('hex')]) });
    while (!c.step(Infinity));
    return items;
  };
  const ourIds = (relay: TestRelay): string[] => ourItems(relay).map(([, id]) => id).sort();

  const alice = signer();
  const bob = signer();
  const base = Math.floor(Date.now() / 1000) - 86_400;
  let n = 0;
  /** Signed events of several kinds, authors and timestamps (many equal timestamps). */
  const make = (count: number, label: string): NostrEvent[] =>
    Array.from({ length: count }, (_, i) => (i % 2 ? alice : bob).sign({ kind: [1, 7, 1111, 30023][i % 4], created_at: base + Math.floor(n++ / 5), content: `${label} ${i}`, tags: i % 4 === 3 ? [['d', `${label}-${i}`]] : [] }));
  const jsonl = (evs: NostrEvent[]): string => evs.map((e) => JSON.stringify(e)).join('\n') + '\n';

  let strfryRelay: StrfryChild | undefined;
  let ours: TestRelay | undefined;
  t.teardown(async () => {
    await strfryRelay?.stop();
    await ours?.close();
  });

  t.test('strfry sync --dir both against our relay', async (t) => {
    strfryRelay = await startStrfryChild({ binary, workDir: work });
    ours = await startTestRelay('uws');
    const shared = make(600, 'shared');
    const onlyStrfry = make(250, 'strfry');
    const onlyOurs = make(200, 'ours');
    await strfryCmd(['import'], jsonl([...shared, ...onlyStrfry]));
    const c = await TestClient.connect(ours.url);
    for (const e of [...shared, ...onlyOurs]) c.send(['EVENT', e]);
    await c.waitFor((f) => f[0] === 'OK' && f[1] === onlyOurs.at(-1)!.id, 60_000);
    await c.close();
    t.equal(ourIds(ours).length, 800);
    t.equal((await strfryIds()).length, 850);

    // strfry initiates with its default 60 kB frames; our relay answers.
    await strfryCmd(['sync', ours.url, '--dir', 'both']);
    const want = [...shared, ...onlyStrfry, ...onlyOurs].map((e) => e.id).sort();
    t.same(await strfryIds(), want, 'strfry holds the union');
    t.same(ourIds(ours), want, 'our relay holds the union');

    // Again with strfry's smallest frames (many rounds, frame-limit cuts on its side) and a filter.
    const more = make(300, 'more');
    await strfryCmd(['import'], jsonl(more.filter((_, i) => i % 2 === 0)));
    const d = await TestClient.connect(ours.url);
    const odd = more.filter((_, i) => i % 2 === 1);
    for (const e of odd) d.send(['EVENT', e]);
    await d.waitFor((f) => f[0] === 'OK' && f[1] === odd.at(-1)!.id, 60_000);
    await d.close();
    await strfryCmd(['sync', ours.url, '--dir', 'both', '--frame-size-limit', '4096', '--filter', JSON.stringify({ kinds: [1, 7, 1111, 30023] })]);
    const all = [...want, ...more.map((e) => e.id)].sort();
    t.same(await strfryIds(), all, 'strfry holds the union (4 kB frames)');
    t.same(ourIds(ours), all, 'our relay holds the union (4 kB frames)');
  });

  t.test('the same negentropy messages get byte-identical answers from strfry and our relay', async (t) => {
    if (!strfryRelay || !ours) return t.fail('previous test did not start the relays');
    t.same(ourIds(ours), await strfryIds(), 'both hold the same set');
    // A client that has every third event plus some of its own, with 4 kB frames: several rounds.
    const builder = new NegentropyStorageBuilder();
    for (const [ts, id] of ourItems(ours)) if (parseInt(id.slice(0, 2), 16) % 3 === 0) builder.add(ts, id);
    for (const e of make(40, 'client-only')) builder.add(e.created_at, e.id);
    const mine = builder.seal();
    const a = new Negentropy(mine, 4096);
    const b = new Negentropy(mine, 4096);
    const sa = await TestClient.connect(ours.url);
    const sb = await TestClient.connect(strfryRelay.url);
    t.teardown(() => sa.close());
    t.teardown(() => sb.close());
    const ask = async (c: TestClient, verb: string, msg: Buffer): Promise<string> => {
      const from = c.frames.length;
      c.send(verb === 'NEG-OPEN' ? ['NEG-OPEN', 'x', {}, msg.toString('hex')] : ['NEG-MSG', 'x', msg.toString('hex')]);
      const f: Frame = await c.waitFor((f) => (f[0] === 'NEG-MSG' || f[0] === 'NEG-ERR') && f[1] === 'x', 30_000, from);
      if (f[0] !== 'NEG-MSG') throw new Error(`NEG-ERR ${String(f[2])}`);
      return f[2] as string;
    };
    let msgA: Buffer | null = a.initiate();
    let msgB: Buffer | null = b.initiate();
    let rounds = 0;
    let identical = 0;
    for (let verb = 'NEG-OPEN'; msgA !== null && msgB !== null; verb = 'NEG-MSG') {
      rounds++;
      const [ra, rb]: string[] = await Promise.all([ask(sa, verb, msgA), ask(sb, verb, msgB)]);
      if (ra === rb) identical++;
      else t.fail(`round ${rounds}: answers differ (ours ${ra.length / 2} bytes, strfry ${rb.length / 2} bytes)`);
      msgA = a.reconcile(Buffer.from(ra, 'hex')).output;
      msgB = b.reconcile(Buffer.from(rb, 'hex')).output;
    }
    t.equal(identical, rounds, `all ${rounds} answers byte-identical`);
    t.ok(rounds >= 2, 'several rounds');
  });

  t.test('bazaar relay sync --from strfry --direction both, while our relay runs on the same directory', async (t) => {
    if (!strfryRelay || !ours) return t.fail('previous test did not start the relays');
    const onlyStrfry = make(300, 'later-strfry');
    const onlyOurs = make(150, 'later-ours');
    await strfryCmd(['import'], jsonl(onlyStrfry));
    const c = await TestClient.connect(ours.url);
    for (const e of onlyOurs) c.send(['EVENT', e]);
    await c.waitFor((f) => f[0] === 'OK' && f[1] === onlyOurs.at(-1)!.id, 60_000);
    const before = ourIds(ours);
    const { stdout } = await run(process.execPath, ['scripts/bazaar.mjs', 'relay', 'sync', '--data', ours.dataDir, '--from', strfryRelay.url, '--direction', 'both', '--json', '--frame-size-limit', '4096'], { cwd: root, env: { ...process.env, BAZAAR_LOG_FORMAT: 'json' } });
    const summary = JSON.parse(stdout) as Record<string, number>;
    t.match(summary, { need: 300, have: 150, stored: 300, uploaded: 150, accepted: 150, rejected: 0, refused: 0, missing: 0 }, 'the summary counts');
    t.ok(summary.rounds >= 1 && summary.bytesIn > 0 && summary.bytesOut > 0 && summary.elapsedMs > 0);
    const want = [...before, ...onlyStrfry.map((e) => e.id)].sort();
    await new Promise((r) => setImmediate(r)); // the relay's read snapshot renews on the next turn
    t.same(ourIds(ours), want, 'our relay holds the union');
    t.same(await strfryIds(), want, 'strfry holds the union');
    // The relay still writes after another process wrote its directory.
    const after = alice.sign({ kind: 1, content: 'after the sync' });
    t.same(await c.publish(after), [true, '']);
    t.same((await c.query('after', { ids: [after.id] })).map((e) => e.id), [after.id]);
    t.same((await c.query('synced', { ids: [onlyStrfry[0].id] })).map((e) => e.id), [onlyStrfry[0].id], 'synced events are served');
    await c.close();

    // A second run finds nothing to do.
    const again = JSON.parse((await run(process.execPath, ['scripts/bazaar.mjs', 'relay', 'sync', '--data', ours.dataDir, '--from', strfryRelay.url, '--direction', 'both', '--json', '--filter', JSON.stringify({ kinds: [1, 7, 1111, 30023] })], { cwd: root })).stdout) as Record<string, number>;
    t.match(again, { need: 0, have: 1, uploaded: 1, accepted: 1 }, 'only the event published since');
  });
}
