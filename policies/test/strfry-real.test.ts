// The strfry plugin inside a real strfry (relay.writePolicy.plugin): strfry spawns it with
// `/bin/sh -c`, writes one JSON line per event and turns each answer into the client's OK.
// Uses the prebuilt strfry beside the project (../shared/bin/strfry or BAZAAR_STRFRY); skipped,
// with the reason, where there is none.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { findStrfry, startStrfryChild } from '@bazaar/testkit/strfry';
import { buildPatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { sign } from './helpers.ts';

const root = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const policies = fileURLToPath(new URL('./fixtures/strfry-real.jsonc', import.meta.url));
const strfry = findStrfry(root, process.env.BAZAAR_STRFRY);
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** One client connection: send a frame, wait for the frame that answers it. */
async function connect(url: string) {
  const ws = new WebSocket(url);
  await new Promise<void>((res, rej) => {
    ws.once('open', () => res());
    ws.once('error', rej);
  });
  const frames: unknown[][] = [];
  const waiters: { match: (f: unknown[]) => boolean; resolve: (f: unknown[]) => void }[] = [];
  ws.on('message', (data) => {
    const f = JSON.parse(String(data)) as unknown[];
    const i = waiters.findIndex((w) => w.match(f));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(f);
    else frames.push(f);
  });
  const next = (match: (f: unknown[]) => boolean): Promise<unknown[]> => {
    const i = frames.findIndex(match);
    if (i >= 0) return Promise.resolve(frames.splice(i, 1)[0]);
    return new Promise((resolve) => waiters.push({ match, resolve }));
  };
  return {
    async publish(e: NostrEvent): Promise<[boolean, string]> {
      ws.send(JSON.stringify(['EVENT', e]));
      const ok = await next((f) => f[0] === 'OK' && f[1] === e.id);
      return [ok[2] as boolean, ok[3] as string];
    },
    async query(filter: Record<string, unknown>): Promise<string[]> {
      const sub = `q${Math.random().toString(36).slice(2)}`;
      ws.send(JSON.stringify(['REQ', sub, filter]));
      const ids: string[] = [];
      for (;;) {
        const f = await next((x) => x[1] === sub && (x[0] === 'EVENT' || x[0] === 'EOSE'));
        if (f[0] === 'EOSE') break;
        ids.push((f[2] as NostrEvent).id);
      }
      ws.send(JSON.stringify(['CLOSE', sub]));
      return ids.sort();
    },
    close: () => ws.close(),
  };
}

t.test('the policies run inside a real strfry as its write-policy plugin', { skip: strfry.path ? false : strfry.reason! }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bazaar-strfry-plugin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const plugin = `cd ${q(root)} && exec ${q(process.execPath)} scripts/bazaar.mjs policy strfry --policies ${q(policies)}`;
  // The plugin's first answer includes Node's start-up, which a loaded test machine can stretch
  // past strfry's default 10 s; the protocol is the same at any timeout.
  const relay = await startStrfryChild({ binary: strfry.path!, workDir: dir, writePolicyPlugin: plugin, writePolicyTimeoutSeconds: 120 });
  t.teardown(() => relay.stop());
  const c = await connect(relay.url);
  t.teardown(() => c.close());
  const now = Math.floor(Date.now() / 1000);

  const note = sign({ kind: 1, content: 'hello strfry', created_at: now });
  t.same(await c.publish(note), [true, ''], 'accepted by the plugin, stored by strfry');

  const bad = sign({ kind: 5932, created_at: now, tags: [['i', 'https://git.example.com/r.git', 'url'], ['param', 'time_limit_secs', 'soon']] });
  const [badOk, badMsg] = await c.publish(bad);
  t.equal(badOk, false, 'a malformed job request is refused');
  t.match(badMsg, /^invalid: malformed PatchGen \(5932\)/, "the plugin's reason reaches the client");

  const request = buildPatchGenRequest({ repoUrl: 'https://git.example.com/r.git', issueBody: 'fix it', params: { repo_ref: 'main', issue_title: 't', time_limit_secs: 60 }, createdAt: now });
  const known = sign({ ...request, tags: [...request.tags, ['param', 'model', 'any']] });
  t.same(await c.publish(known), [true, ''], 'a job request with a param the rules do not know is accepted');

  const spam = sign({ kind: 4444, created_at: now });
  t.same(await c.publish(spam), [true, ''], 'a shadow-rejected event looks accepted');

  const burst = [];
  for (let i = 0; i < 3; i++) burst.push(await c.publish(sign({ kind: 1, content: `burst ${i}`, created_at: now })));
  t.same(burst.map(([ok]) => ok), [true, true, false], 'the per-address bucket (burst 4) runs out');
  t.match(burst[2][1], /^rate-limited:/);

  t.same(await c.query({ kinds: [4444] }), [], 'the shadow-rejected event was not stored');
  t.same(await c.query({ kinds: [5932] }), [known.id], 'only the well-formed job request was stored');
  t.equal((await c.query({ kinds: [1] })).length, 3, 'the note and the two events within the burst were stored');
});
