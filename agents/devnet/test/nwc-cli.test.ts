// `bazaar devnet` one-shot commands, run in-process through the CLI framework.
import t from 'tap';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from '@bazaar/cli-kit/command';
import { devnetCommand } from '../src/cli.ts';
import { tempDir } from './helpers/network.ts';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { out += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try {
    const code = await runCommand(devnetCommand, args, 'bazaar devnet');
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

t.test('account add / list / fund / balance / invoice / pay', async (t) => {
  const dir = tempDir(t, 'bazaar-devnet-cli-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = ['--data', dir, '--log-level', 'silent'];

  const add = await run(['account', 'add', 'alice', '--fund', '100', '--relay', 'ws://127.0.0.1:4999', ...data]);
  t.equal(add.code, 0);
  const uri = add.out.trim();
  t.match(uri, /^nostr\+walletconnect:\/\/[0-9a-f]{64}\?relay=ws%3A%2F%2F127\.0\.0\.1%3A4999&secret=[0-9a-f]{64}$/);
  const file = join(dir, 'connections', 'alice.nwc');
  t.equal(readFileSync(file, 'utf8').trim(), uri);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.notOk(add.err.includes('secret='), 'the URI goes to stdout only');

  t.equal((await run(['account', 'add', 'alice', ...data])).code, 2, 'duplicate account is a usage error');
  t.equal((await run(['account', 'add', 'Not Valid', ...data])).code, 1);
  t.equal((await run(['account', 'add', 'bob', ...data])).code, 0);
  const extra = await run(['account', 'connect', 'bob', '--label', 'phone', '--max-amount', '5', ...data]);
  t.equal(extra.code, 0);
  t.equal(statSync(join(dir, 'connections', 'bob.phone.nwc')).mode & 0o777, 0o600);

  t.same(await run(['fund', 'bob', '5', ...data]), { code: 0, out: 'bob: 5 sat\n', err: '' });
  t.equal((await run(['fund', 'bob', '-3', ...data])).code, 2);
  t.equal((await run(['fund', 'bob', '1.5', ...data])).code, 2);
  t.equal((await run(['fund', 'nobody', '3', ...data])).code, 1);
  t.same((await run(['balance', 'alice', '--msat', ...data])).out, '100000\n');

  const inv = await run(['invoice', 'bob', '21', '--description', 'coffee', ...data]);
  t.match(inv.out, /^lnbcrt210n1/);
  const pay = await run(['pay', 'alice', inv.out.trim(), ...data]);
  t.equal(pay.code, 0);
  t.match(pay.out, /paid 21 sat to bob/);
  const again = await run(['pay', 'alice', inv.out.trim(), ...data]);
  t.equal(again.code, 1);
  t.match(again.err, /already paid/);

  const list = JSON.parse((await run(['account', 'list', '--json', ...data])).out) as { accounts: { name: string; balanceMsat: number; connections: unknown[] }[]; invariant: { ok: boolean } };
  t.same(list.accounts.map((a) => [a.name, a.balanceMsat, a.connections.length]), [['alice', 79_000, 1], ['bob', 26_000, 2]]);
  t.ok(list.invariant.ok);
  const walletPubkey = /^nostr\+walletconnect:\/\/([0-9a-f]{64})/.exec(uri)![1];
  const rev = await run(['account', 'revoke', 'alice', ...data]);
  t.equal(rev.code, 0);
  t.match(rev.out, new RegExp(`revoked connection ${walletPubkey}`));
  t.notOk(existsSync(file), 'URI file removed');
  t.equal((await run(['account', 'revoke', 'alice', ...data])).code, 2, 'nothing left to revoke');
  const listed = JSON.parse((await run(['account', 'list', '--json', ...data])).out) as { accounts: { name: string; connections: unknown[] }[] };
  t.equal(listed.accounts.find((a) => a.name === 'alice')?.connections.length, 0);
  t.equal((await run(['account', 'list', '--help'])).code, 0);
  t.equal((await run(['balance', ...data])).code, 2, 'missing NAME');
});
