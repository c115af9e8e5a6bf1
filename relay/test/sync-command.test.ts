// `bazaar relay sync` as a user runs it: the real CLI process against real relays on loopback.
// Its help, its refusals of bad flags (exit 2) and of relays it cannot sync with (exit 1, the
// reason on stderr), the human summary, and progress on a terminal (the CLI under `script`, so
// its stderr is a pseudo-terminal). strfry interop lives in negentropy-strfry.test.ts.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { openLmdbStore } from '../src/store/lmdb-store.ts';
import { TestClient, signer, startTestRelay, type TestRelay } from './helpers.ts';

const root = new URL('../..', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'bazaar-sync-cli-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }

/** The CLI as a child process; resolves with its exit code and output whatever the code. */
function cli(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['scripts/bazaar.mjs', 'relay', 'sync', ...args], { cwd: root, env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function publish(url: string, events: readonly NostrEvent[]): Promise<void> {
  const c = await TestClient.connect(url);
  const oks = await Promise.all(events.map((e) => c.publish(e)));
  await c.close();
  if (oks.some(([ok]) => !ok)) throw new Error(`not accepted: ${JSON.stringify(oks.find(([ok]) => !ok))}`);
}

async function idsIn(dataDir: string): Promise<string[]> {
  const store = await openLmdbStore({ path: dataDir, purgeIntervalMs: 0 });
  try {
    return (await store.query([{ limit: 10_000 }])).map((j) => (JSON.parse(j) as NostrEvent).id).sort();
  } finally {
    await store.close();
  }
}

const alice = signer();
const base = Math.floor(Date.now() / 1000) - 3600;
const make = (n: number, label: string): NostrEvent[] => Array.from({ length: n }, (_, i) => alice.sign({ kind: 1, created_at: base + i, content: `${label} ${i}` }));

t.test('--help describes every flag, exit 0', async (t) => {
  const r = await cli(['--help']);
  t.equal(r.code, 0);
  for (const flag of ['--data', '--from', '--filter', '--direction', '--policies', '--frame-size-limit', '--timeout', '--json', '--progress']) t.match(r.stdout, flag, `mentions ${flag}`);
  t.match(r.stdout, /Exit code 0 when the sync completed, 1 when it failed/);
});

t.test('bad flags: exit 2 with what is wrong, nothing written', async (t) => {
  const data = join(work, 'bad-flags');
  const cases: [string[], RegExp][] = [
    [[], /--from is required/],
    [['--from', 'http://relay.example'], /--from must be a ws:\/\/ or wss:\/\/ URL \(got "http:\/\/relay.example"\)/],
    [['--from', 'relay.example'], /--from must be a ws:\/\/ or wss:\/\/ URL/],
    [['--from', 'ws://127.0.0.1:1', '--filter', '{kinds:[1]}'], /--filter is not valid JSON/],
    [['--from', 'ws://127.0.0.1:1', '--filter', '{"kinds":"x"}'], /--filter: invalid: "kinds"/],
    [['--from', 'ws://127.0.0.1:1', '--filter', '[]'], /--filter: an empty array selects nothing/],
    [['--from', 'ws://127.0.0.1:1', '--direction', 'sideways'], /direction/],
    [['--from', 'ws://127.0.0.1:1', '--frame-size-limit', '100'], /--frame-size-limit must be 0 or at least 4096/],
  ];
  for (const [args, want] of cases) {
    const r = await cli(['--data', data, ...args]);
    t.equal(r.code, 2, `exit 2 for ${args.join(' ') || '(no flags)'}`);
    t.match(r.stderr, want);
    t.equal(r.stdout, '', 'no summary');
  }
});

t.test('relays it cannot sync with: exit 1 and the reason', async (t) => {
  const data = join(work, 'unreachable');
  const refused = await cli(['--data', data, '--from', 'ws://127.0.0.1:1']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /connection to ws:\/\/127\.0\.0\.1:1 failed: .*ECONNREFUSED/);
  const unknownHost = await cli(['--data', data, '--from', 'ws://no-such-host.invalid']);
  t.equal(unknownHost.code, 1);
  t.match(unknownHost.stderr, /connection to ws:\/\/no-such-host\.invalid failed/);

  // A relay without NIP-77 answers NEG-OPEN with a NOTICE.
  const off = await startTestRelay('ws', { negentropy: false });
  t.teardown(() => off.close());
  const noNeg = await cli(['--data', data, '--from', off.url]);
  t.equal(noNeg.code, 1);
  t.match(noNeg.stderr, /does not speak NIP-77/);

  // A relay that refuses the filter: NEG-ERR's reason reaches the user.
  const small = await startTestRelay('ws', { negentropy: { maxSyncEvents: 10 } });
  t.teardown(() => small.close());
  await publish(small.url, make(20, 'blocked'));
  const blocked = await cli(['--data', data, '--from', small.url]);
  t.equal(blocked.code, 1);
  t.match(blocked.stderr, /blocked: /);
});

t.test('the summary: have/need, what happened to each event, bytes and seconds', async (t) => {
  const remote = await startTestRelay('ws');
  t.teardown(() => remote.close());
  const shared = make(30, 'shared');
  const onlyRemote = make(40, 'remote');
  const onlyLocal = make(25, 'local');
  await publish(remote.url, [...shared, ...onlyRemote]);
  const data = join(work, 'summary');
  const local: TestRelay = await startTestRelay('ws', { dataDir: data });
  await publish(local.url, [...shared, ...onlyLocal]);
  await local.close();

  const r = await cli(['--data', data, '--from', remote.url, '--direction', 'both']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^synced with ${remote.url.replace(/[.]/g, '\\.')} \\(both\\) in [\\d.]+ s, \\d+ negentropy rounds?\\n`));
  t.match(r.stdout, /local events matching the filter: 55\n/);
  t.match(r.stdout, /need 40 \(the other relay has, we lacked\): 40 downloaded — 40 stored, 0 already had or older versions, 0 refused, 0 no longer served/);
  t.match(r.stdout, /have 25 \(we have, the other relay lacked\): 25 uploaded — 25 accepted, 0 refused/);
  t.match(r.stdout, /bytes: [\d.]+ (B|KiB|MiB) in, [\d.]+ (B|KiB|MiB) out/);
  t.equal(r.stderr, '', 'no progress when stderr is not a terminal');
  const union = [...shared, ...onlyRemote, ...onlyLocal].map((e) => e.id).sort();
  t.same(await idsIn(data), union, 'the directory holds the union');
  const c = await TestClient.connect(remote.url);
  t.same((await c.query('all', { limit: 500 })).map((e) => e.id).sort(), union, 'the other relay holds the union');
  await c.close();

  const down = await cli(['--data', data, '--from', remote.url]);
  t.equal(down.code, 0);
  t.match(down.stdout, /need 0 .*\n\s+have 0 \(we have, the other relay lacked\): not uploaded \(--direction up or both\)/, 'nothing left to do');
});

let haveScript = true;
try {
  execFileSync('script', ['--version'], { stdio: 'ignore' });
} catch {
  haveScript = false;
}

t.test('progress on a terminal', { skip: haveScript ? false : 'progress on a TTY: util-linux `script` (gives the CLI a pseudo-terminal) is not installed' }, async (t) => {
  const remote = await startTestRelay('ws');
  t.teardown(() => remote.close());
  await publish(remote.url, make(300, 'tty'));
  const data = join(work, 'tty');
  const cmd = [process.execPath, 'scripts/bazaar.mjs', 'relay', 'sync', '--data', data, '--from', remote.url].map((a) => `'${a}'`).join(' ');
  const out = await new Promise<{ code: number; text: string }>((resolve) => {
    // `script -e` returns the command's exit code; its output is the terminal's (stdout and stderr).
    execFile('script', ['-qefc', cmd, '/dev/null'], { cwd: root, maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, text: stdout }));
  });
  t.equal(out.code, 0, out.text);
  const updates = out.text.split('\r\x1b[K').slice(1, -1);
  t.ok(updates.length >= 2, `progress lines rewrite one terminal line (${updates.length} updates)`);
  t.ok(updates.some((u) => /^round \d+: have 0, need 300; down \d+\/300, up 0\/0; [\d.]+ (B|KiB|MiB) in, [\d.]+ (B|KiB|MiB) out; [\d.]+ s/.test(u)), 'rounds with have/need, transfer counts, bytes and seconds');
  t.match(out.text, /need 300 \(the other relay has, we lacked\): 300 downloaded — 300 stored/, 'then the summary');
  t.equal((await idsIn(data)).length, 300);
});
