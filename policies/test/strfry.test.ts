// The strfry plugin, spawned as the real command and fed JSON lines exactly as strfry writes them
// (one request, then wait for its one-line answer, like strfry does).
import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { buildPatchGenRequest, buildPatchGenResult } from '@bazaar/dvm-kinds/kinds/patch-gen';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { alice, bob, sign, T0 } from './helpers.ts';

const root = new URL('../../', import.meta.url).pathname;
const policies = new URL('./fixtures/strfry.jsonc', import.meta.url).pathname;

/** The plugin as strfry runs it: a child process with piped stdio. */
function startPlugin(args: string[] = []) {
  const child = spawn(process.execPath, ['scripts/bazaar.mjs', 'policy', 'strfry', '--policies', policies, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, BAZAAR_POLICY_LOG_LEVEL: 'warn' } });
  const lines = createInterface({ input: child.stdout! });
  const pending: ((l: string) => void)[] = [];
  const queued: string[] = [];
  lines.on('line', (l) => (pending.length ? pending.shift()!(l) : queued.push(l)));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const next = () => new Promise<string>((resolve, reject) => {
    if (queued.length) return resolve(queued.shift()!);
    const timer = setTimeout(() => reject(new Error(`no answer from the plugin; stderr: ${stderr}`)), 30_000);
    pending.push((l) => {
      clearTimeout(timer);
      resolve(l);
    });
  });
  return {
    /** Writes one raw line and returns the parsed answer line. */
    async send(line: string): Promise<{ id: string; action: string; msg?: string }> {
      child.stdin!.write(line + '\n');
      const out = await next();
      return JSON.parse(out);
    },
    async close() {
      child.stdin!.end();
      return { code: await exited, stderr };
    },
  };
}

/** A request line byte-for-byte in strfry's shape. */
const req = (event: NostrEvent, sourceType: string, sourceInfo: string, extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'new', event, receivedAt: T0, sourceType, sourceInfo, ...extra });

t.test('strfry plugin protocol', async (t) => {
  const p = startPlugin();
  t.teardown(async () => void (await p.close()));
  const note = sign({ kind: 1, content: 'hello' });
  t.same(await p.send(req(note, 'IP4', '198.51.100.1')), { id: note.id, action: 'accept' }, 'IP4 accept echoes the id');

  const bad = sign({ kind: 5932, tags: [['i', 'https://git.example.com/r.git', 'url'], ['param', 'time_limit_secs', 'soon']] });
  const r = await p.send(req(bad, 'IP6', '2001:db8::1'));
  t.equal(r.id, bad.id);
  t.equal(r.action, 'reject');
  t.match(r.msg, /^invalid: malformed PatchGen \(5932\): .*tags\.param\[time_limit_secs\].*tags\.param\[repo_ref\]/);

  const prot = sign({ kind: 1, content: 'mine', tags: [['-']] });
  t.same(await p.send(req(prot, 'IP4', '198.51.100.9')), { id: prot.id, action: 'reject', msg: 'auth-required: this event may only be published by its author' }, 'NIP-70 without auth');
  t.same(await p.send(req(prot, 'IP4', '198.51.100.9', { authed: bob.pk })), { id: prot.id, action: 'reject', msg: 'restricted: this event may only be published by its author' }, 'NIP-70 authed as someone else');
  t.same(await p.send(req(prot, 'IP4', '198.51.100.9', { authed: alice.pk })), { id: prot.id, action: 'accept' }, 'NIP-70 authed as the author');
  t.same(await p.send(req(prot, 'Import', '')), { id: prot.id, action: 'accept' }, 'imports are not client writes');
  t.same(await p.send(req(prot, 'IP6', '2001:db8::9', { authed: [alice.pk] })), { id: prot.id, action: 'accept' }, 'authed as a list');

  const expired = sign({ kind: 1, tags: [['expiration', String(T0 - 10)]] });
  t.same(await p.send(req(expired, 'Sync', 'wss://other.example.com')), { id: expired.id, action: 'reject', msg: 'invalid: event has expired' }, 'receivedAt drives NIP-40');

  const spam = sign({ kind: 4444 });
  t.same(await p.send(req(spam, 'IP4', '198.51.100.20')), { id: spam.id, action: 'shadowReject' }, 'no msg: strfry would show it to the client');

  // rate limit: burst 3 per address; Stream/Sync are never limited; another address is still served
  const flood = [];
  for (let i = 0; i < 4; i++) flood.push((await p.send(req(sign({ kind: 1, content: `f${i}` }), 'IP4', '203.0.113.5'))).action);
  t.same(flood, ['accept', 'accept', 'accept', 'reject']);
  t.equal((await p.send(req(sign({ kind: 1, content: 'other' }), 'IP4', '203.0.113.6'))).action, 'accept');
  t.equal((await p.send(req(sign({ kind: 1, content: 'streamed' }), 'Stream', 'wss://upstream.example.com'))).action, 'accept');

  // garbage never crashes the plugin and never desynchronises it: one answer per line
  t.same(await p.send('this is not json'), { id: '', action: 'reject', msg: 'error: plugin received a malformed request' });
  t.same(await p.send(JSON.stringify({ type: 'lookup', event: { id: 'abc' } })), { id: 'abc', action: 'reject', msg: 'error: plugin received an unexpected request type' });
  t.same(await p.send(JSON.stringify({ type: 'new', event: { id: 'abc', kind: 'one' } })), { id: 'abc', action: 'reject', msg: 'invalid: malformed event' });
  t.same(await p.send('null'), { id: '', action: 'reject', msg: 'error: plugin received an unexpected request type' });
  const after = sign({ kind: 1, content: 'still in sync' });
  t.same(await p.send(req(after, 'IP4', '198.51.100.77')), { id: after.id, action: 'accept' }, 'the next real request gets its own answer');

  // market rule without --relay: the plugin has no history, so results for unknown requests are refused
  const request = sign(buildPatchGenRequest({ repoUrl: 'https://git.example.com/r.git', issueBody: 'b', params: { repo_ref: 'main', issue_title: 't', time_limit_secs: 5 }, createdAt: T0 }));
  const result = sign(buildPatchGenResult(request, { patch: 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n' }, { createdAt: T0 }), bob.sk);
  t.match(await p.send(req(result, 'IP4', '198.51.100.78')), { id: result.id, action: 'reject', msg: /^invalid: result does not answer/ });

  const { code, stderr } = await p.close();
  t.equal(code, 0, 'exits cleanly when strfry closes stdin');
  t.match(stderr, /not JSON/, 'problems are logged on stderr');
});

t.test('a bad policy file fails at start with every problem on stderr', async (t) => {
  const child = spawn(process.execPath, ['scripts/bazaar.mjs', 'policy', 'check', '--policies', new URL('./fixtures/strfry.jsonc', import.meta.url).pathname], { cwd: root });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  t.equal(await new Promise((r) => child.on('exit', r)), 0);
  t.match(out, /ok/);
  const bad = spawn(process.execPath, ['scripts/bazaar.mjs', 'policy', 'strfry', '--policies', '/nonexistent/policies.jsonc'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  bad.stderr.on('data', (d) => (err += d));
  t.equal(await new Promise((r) => bad.on('exit', r)), 1);
  t.match(err, /ENOENT/);
});

t.test('handleStrfryLine in process: throwing policies, receivedAt units, source mapping', async (t) => {
  const { handleStrfryLine } = await import('../src/strfry.ts');
  const { emptyStore } = await import('../src/relay-store.ts');
  const e = sign({ kind: 1 });
  const line = (extra: Record<string, unknown>) => JSON.stringify({ type: 'new', event: e, receivedAt: T0, sourceType: 'IP4', sourceInfo: '198.51.100.1', ...extra });
  t.same(await handleStrfryLine(line({}), () => { throw new Error('boom'); }, emptyStore), { id: e.id, action: 'reject', msg: 'error: policy failed' });
  const seen: unknown[] = [];
  const spy = (_ev: unknown, ctx: import('../src/policy.ts').PolicyContext) => {
    seen.push([ctx.source.type, ctx.source.ip, ctx.receivedAt, ctx.authedPubkey ?? null]);
    return { action: 'accept' } as const;
  };
  await handleStrfryLine(line({ receivedAt: T0 * 1000 }), spy, emptyStore);
  await handleStrfryLine(line({ receivedAt: T0 * 1_000_000, sourceType: 'Stream', sourceInfo: 'wss://up.example.com' }), spy, emptyStore);
  await handleStrfryLine(line({ sourceType: 'Sync', authed: 'not-hex' }), spy, emptyStore);
  await handleStrfryLine(line({ sourceType: 'Mystery', authed: alice.pk }), spy, emptyStore);
  t.same(seen, [
    ['ws', '198.51.100.1', T0, null],
    ['stream', 'wss://up.example.com', T0, null],
    ['sync', '198.51.100.1', T0, null],
    ['internal', '198.51.100.1', T0, alice.pk],
  ]);
  const long = await handleStrfryLine(line({}), () => ({ action: 'reject', message: 'invalid: ' + 'x'.repeat(10_000) }), emptyStore);
  t.ok(long.msg!.length <= 2000, 'messages stay under strfry\'s record limit');
});

t.test('runStrfryPlugin: a decision past the timeout is answered error: and its policy is aborted', async (t) => {
  const { PassThrough } = await import('node:stream');
  const { runStrfryPlugin } = await import('../src/strfry.ts');
  const { emptyStore } = await import('../src/relay-store.ts');
  const slow = sign({ kind: 1, content: 'slow' });
  const fast = sign({ kind: 1, content: 'fast' });
  let abortedBy: unknown;
  const input = new PassThrough();
  const output = new PassThrough();
  const answers = createInterface({ input: output });
  const lines: string[] = [];
  const got = new Promise<void>((resolve) => answers.on('line', (l) => {
    lines.push(l);
    if (lines.length === 2) resolve();
  }));
  const done = runStrfryPlugin({
    input,
    output,
    store: emptyStore,
    timeoutMs: 50,
    policy: (e, _ctx, signal) => (e.content !== 'slow' ? { action: 'accept' } : new Promise((resolve) => signal!.addEventListener('abort', () => {
      abortedBy = signal!.reason;
      resolve({ action: 'accept' });
    }))),
  });
  for (const e of [slow, fast]) input.write(JSON.stringify({ type: 'new', event: e, receivedAt: T0, sourceType: 'IP4', sourceInfo: '198.51.100.1' }) + '\n');
  await got;
  t.same(lines.map((l) => JSON.parse(l)), [{ id: slow.id, action: 'reject', msg: 'error: policy timed out' }, { id: fast.id, action: 'accept' }], 'in order; the next request is decided');
  t.match(String(abortedBy), /timed out/, 'the timed-out policy was told to stop');
  input.end();
  t.same(await done, { requests: 2 });
});
