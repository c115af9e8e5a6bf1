// Policies inside the real relay, over real sockets: a malformed 5932 gets `OK false` with
// `invalid:` and its problems, a flood from one address is `rate-limited:` while another
// client is still served, a shadow-rejected event is acknowledged but never stored, and market
// rules read the relay's LMDB store. The strfry plugin reads the same relay through --relay.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { startRelay } from '@bazaar/relay/server';
import { buildPatchGenRequest, buildPatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { loadPolicyFile } from '../src/load.ts';
import { RelayReadStore } from '../src/relay-store.ts';
import { alice, bob, carol, sign } from './helpers.ts';

const now = () => Math.floor(Date.now() / 1000);
const PATCH = 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n';

/** A raw NIP-01 client bound to a given loopback address, so the relay sees distinct client IPs. */
class Client {
  readonly ws: WebSocket;
  private readonly waiters = new Map<string, (f: unknown[]) => void>();
  private readonly opened: Promise<void>;
  constructor(url: string, localAddress: string) {
    this.ws = new WebSocket(url, { localAddress });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as unknown[];
      const key = f[0] === 'OK' ? `OK:${f[1]}` : f[0] === 'EOSE' || f[0] === 'EVENT' || f[0] === 'CLOSED' ? `${f[0]}:${f[1]}` : String(f[0]);
      if (f[0] === 'EVENT') (this.events[f[1] as string] ??= []).push(f[2] as NostrEvent);
      this.waiters.get(key)?.(f);
    });
  }
  readonly events: Record<string, NostrEvent[]> = {};
  private wait(key: string): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${key}`)), 15_000);
      this.waiters.set(key, (f) => {
        clearTimeout(timer);
        this.waiters.delete(key);
        resolve(f);
      });
    });
  }
  async publish(e: NostrEvent): Promise<[boolean, string]> {
    await this.opened;
    const ok = this.wait(`OK:${e.id}`);
    this.ws.send(JSON.stringify(['EVENT', e]));
    const f = await ok;
    return [f[2] as boolean, f[3] as string];
  }
  async query(subId: string, filter: object): Promise<NostrEvent[]> {
    await this.opened;
    const eose = this.wait(`EOSE:${subId}`);
    this.ws.send(JSON.stringify(['REQ', subId, filter]));
    await eose;
    this.ws.send(JSON.stringify(['CLOSE', subId]));
    return this.events[subId] ?? [];
  }
  close(): void {
    this.ws.terminate();
  }
}

t.test('the relay applies a policy file over real sockets', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-policies-relay-'));
  const policy = await loadPolicyFile(new URL('./fixtures/relay.jsonc', import.meta.url).pathname);
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir, policy, verifyWorkers: 0 });
  const a = new Client(relay.url, '127.0.0.2');
  const b = new Client(relay.url, '127.0.0.3');
  t.teardown(async () => {
    a.close();
    b.close();
    await relay.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // a malformed PatchGen request: OK false, invalid:, every problem listed
  const bad = sign({ kind: 5932, created_at: now(), tags: [['i', 'https://git.example.com/r.git', 'url'], ['param', 'time_limit_secs', 'soon'], ['param', 'colour', 'red']] });
  const [okBad, msgBad] = await a.publish(bad);
  t.equal(okBad, false);
  t.match(msgBad, /^invalid: malformed PatchGen \(5932\): /);
  for (const p of ['tags.param[time_limit_secs]', 'tags.param[repo_ref]', 'tags.param[issue_title]', 'tags.i']) t.ok(msgBad.includes(p), `lists ${p}`);
  t.notOk(msgBad.includes('colour'), 'an unknown param is not a problem');

  // a flood from client A's address is rate-limited; client B is still served
  const results: string[] = [];
  for (let i = 0; i < 8; i++) {
    const [ok, msg] = await a.publish(sign({ kind: 1, created_at: now(), content: `flood ${i}` }));
    results.push(ok ? 'ok' : msg.split(':')[0]);
  }
  t.same(results, ['ok', 'ok', 'ok', 'ok', 'ok', 'rate-limited', 'rate-limited', 'rate-limited']);
  const fromB = sign({ kind: 1, created_at: now(), content: 'from b' }, bob.sk);
  t.same(await b.publish(fromB), [true, ''], 'another client is still served');
  t.same((await b.query('b1', { ids: [fromB.id] })).map((e) => e.id), [fromB.id], 'and its event is stored');

  // shadow-rejected: acknowledged as accepted, but neither stored nor broadcast
  const sub = b.query('live', { kinds: [4444], limit: 0 });
  await sub;
  const spam = sign({ kind: 4444, created_at: now(), content: 'spam' }, carol.sk);
  t.same(await a.publish(spam), [true, ''], 'OK true');
  t.same(await b.query('s1', { ids: [spam.id] }), [], 'not stored');
  t.same(b.events.live ?? [], [], 'not broadcast');

  // market rules read the relay's own store
  const request = sign(buildPatchGenRequest({ repoUrl: 'https://git.example.com/r.git', issueBody: 'fix', params: { repo_ref: 'main', issue_title: 't', time_limit_secs: 5 }, providers: [bob.pk], createdAt: now() }), alice.sk);
  t.same(await b.publish(request), [true, '']);
  const result = sign(buildPatchGenResult(request, { patch: PATCH }, { createdAt: now() }), bob.sk);
  t.same(await b.publish(result), [true, ''], 'a result answering a stored request is accepted');
  const stranger = sign(buildPatchGenResult(request, { patch: PATCH }, { createdAt: now() }), carol.sk);
  t.match(await b.publish(stranger), [false, /^restricted: /], 'from a provider the request did not name: rejected');

  // RelayReadStore reads the same relay over REQ/EOSE
  const store = new RelayReadStore({ url: relay.url, timeoutMs: 5000 });
  t.same((await store.query([{ ids: [request.id] }])).map((e) => e.id), [request.id]);
  await t.rejects(store.query([{ ids: [request.id] }], { signal: AbortSignal.abort() }), /aborted/);

  // the strfry plugin with --relay: market rules see strfry's (here: our relay's) history
  const child = spawn(process.execPath, ['scripts/bazaar.mjs', 'policy', 'strfry', '--policies', new URL('./fixtures/relay.jsonc', import.meta.url).pathname, '--relay', relay.url], { cwd: new URL('../../', import.meta.url).pathname, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const answer = (line: string) => new Promise<{ id: string; action: string; msg?: string }>((resolve) => {
    lines.once('line', (l) => resolve(JSON.parse(l)));
    child.stdin.write(line + '\n');
  });
  const line = (e: NostrEvent) => JSON.stringify({ type: 'new', event: e, receivedAt: now(), sourceType: 'IP4', sourceInfo: '127.0.0.9' });
  t.same(await answer(line(result)), { id: result.id, action: 'accept' }, 'plugin accepts the result: the request is on the relay');
  t.match(await answer(line(stranger)), { id: stranger.id, action: 'reject', msg: /^restricted: / });
  child.stdin.end();
  t.equal(await new Promise((r) => child.on('exit', r)), 0);
});

t.test('RelayReadStore never waits forever on a relay that does not answer', async (t) => {
  const { createServer } = await import('node:net');
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((s) => void sockets.add(s)).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const store = new RelayReadStore({ url: `ws://127.0.0.1:${port}`, timeoutMs: 200 });
  await t.rejects(store.query([{ kinds: [1] }]), /timed out after 200 ms/);
  const ac = new AbortController();
  const pending = store.query([{ kinds: [1] }], { signal: ac.signal });
  ac.abort();
  await t.rejects(pending, /aborted/);
});

t.test("a slow policy on one connection never blocks another connection's writes", async (t) => {
  const { withTimeout, when, kindIn } = await import('../src/combinators.ts');
  const dataDir = mkdtempSync(join(tmpdir(), 'bazaar-policies-relay-'));
  // Kind 9999 waits on a gate that only the test opens; everything else is accepted at once.
  let openGate!: () => void;
  const gate = new Promise<void>((r) => (openGate = r));
  const slow = when(kindIn([9999]), async () => {
    await gate;
    return { action: 'accept' } as const;
  });
  const relay = await startRelay({ port: 0, host: '127.0.0.1', dataDir, policy: withTimeout(slow, 60_000), policyTimeoutMs: 60_000, verifyWorkers: 0 });
  const a = new Client(relay.url, '127.0.0.4');
  const b = new Client(relay.url, '127.0.0.5');
  t.teardown(async () => {
    openGate();
    a.close();
    b.close();
    await relay.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const stuck = sign({ kind: 9999, created_at: now(), content: 'slow' });
  let stuckDone = false;
  const pending = a.publish(stuck).then((r) => {
    stuckDone = true;
    return r;
  });
  const fast = sign({ kind: 1, created_at: now(), content: 'fast' }, bob.sk);
  t.same(await b.publish(fast), [true, ''], "B's write is acknowledged while A's policy call is still running");
  t.notOk(stuckDone, "A's event is still waiting on its policy");
  openGate();
  t.same(await pending, [true, ''], 'and A gets its answer once the policy decides');

  // a policy that exceeds withTimeout's bound is rejected with error:, not left hanging
  const bounded = withTimeout(() => new Promise(() => {}), 200);
  t.same(await bounded(stuck, { source: { type: 'ws', ip: '127.0.0.4', connectionId: 'x' }, receivedAt: now(), store: { query: async () => [] } }), { action: 'reject', message: 'error: policy timed out' });
});
