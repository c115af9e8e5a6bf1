// Realistic signed events for the relay benchmarks: a NIP-90 market's traffic
// (job requests, results, feedback, announcements) mixed with ordinary social
// traffic (notes, reactions, profiles, contact lists). Signed with nostr-wasm
// (libsecp256k1 in WASM), the fastest signer measured here.
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { initNostrWasm, type Nostr } from 'nostr-wasm';
import type { EventTemplate, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { buildTextGenRequest } from '@bazaar/dvm-kinds/kinds/text-gen';
import { buildSandboxRunRequest } from '@bazaar/dvm-kinds/kinds/sandbox-run';
import { buildRepoIndexRequest } from '@bazaar/dvm-kinds/kinds/repo-index';
import { buildPatchGenRequest } from '@bazaar/dvm-kinds/kinds/patch-gen';
import { rng } from '@bazaar/testkit/rng';
import { buildCodeReviewRequest } from '@bazaar/dvm-kinds/kinds/code-review';

let nwPromise: Promise<Nostr> | undefined;
export const nostrWasm = (): Promise<Nostr> => (nwPromise ??= initNostrWasm());


export interface Key {
  readonly sk: Uint8Array;
  readonly pubkey: string;
}

const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export async function makeKeys(n: number): Promise<Key[]> {
  const nw = await nostrWasm();
  return Array.from({ length: n }, () => {
    const sk = nw.generateSecretKey();
    return { sk, pubkey: toHex(nw.getPublicKey(sk)) };
  });
}

export async function signEvent(key: Key, tmpl: { kind: number; created_at: number; tags: string[][]; content: string }): Promise<NostrEvent> {
  const nw = await nostrWasm();
  const ev = { ...tmpl, id: '', pubkey: '', sig: '' };
  nw.finalizeEvent(ev, key.sk);
  return ev;
}

/** The kinds the corpus mixes, with their share of the traffic. */
export const CORPUS_MIX = [
  { what: 'kind 1 note', share: 0.3 },
  { what: 'kind 7 reaction', share: 0.15 },
  { what: 'kind 5xxx job request', share: 0.15 },
  { what: 'kind 7000 job feedback', share: 0.15 },
  { what: 'kind 6xxx job result', share: 0.12 },
  { what: 'kind 31990 announcement', share: 0.03 },
  { what: 'kind 0 profile / kind 3 contacts', share: 0.1 },
] as const;

export const JOB_KINDS = [5050, 5930, 5931, 5932, 5933] as const;

const WORDS = 'the relay market job result proof sandbox invoice sats nostr event provider buyer arbiter patch review index test ok done running queue zap note reply thread hello world 日本 🎉 café'.split(' ');

export interface CorpusOptions {
  readonly count: number;
  readonly seed?: number;
  readonly authors?: number;
  /** created_at values are spread over [now - spanSecs, now]. */
  readonly now?: number;
  readonly spanSecs?: number;
}

/**
 * Generates `count` signed events in created_at order. Job results and
 * feedback refer to earlier requests (e/p/request tags), so the #e/#p queries
 * of the benchmark have real targets.
 */
export async function generateCorpus(opts: CorpusOptions): Promise<NostrEvent[]> {
  const rand = rng(opts.seed ?? 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const keys = await makeKeys(opts.authors ?? 500);
  // A fifth of the keys act as providers, the rest as buyers and social users.
  const providers = keys.slice(0, Math.max(1, Math.floor(keys.length / 5)));
  const users = keys.slice(providers.length);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const span = opts.spanSecs ?? 30 * 86_400;
  const words = (n: number): string => Array.from({ length: n }, () => pick(WORDS)).join(' ');
  const requests: NostrEvent[] = [];
  const notes: NostrEvent[] = [];
  const out: NostrEvent[] = [];
  for (let i = 0; i < opts.count; i++) {
    const created_at = now - span + Math.floor((span * i) / opts.count);
    const r = rand();
    let key: Key;
    let kind: number;
    let tags: string[][] = [];
    let content = '';
    if (r < 0.3 || notes.length === 0) {
      key = pick(users);
      kind = 1;
      content = words(8 + Math.floor(rand() * 60));
      if (notes.length && rand() < 0.4) {
        const parent = pick(notes);
        tags = [['e', parent.id, '', 'reply'], ['p', parent.pubkey]];
      }
      if (rand() < 0.2) tags.push(['t', pick(WORDS)]);
    } else if (r < 0.45) {
      key = pick(users);
      kind = 7;
      const target = pick(notes);
      content = rand() < 0.8 ? '+' : '🤙';
      tags = [['e', target.id], ['p', target.pubkey], ['k', '1']];
    } else if (r < 0.6 || requests.length === 0) {
      // Job requests are built by dvm-kinds, so they pass the relay's validJobRequest policy.
      key = pick(users);
      const common = {
        bidMsats: 1000 * (1 + Math.floor(rand() * 100)),
        expiration: now + 86_400 * 365,
        createdAt: created_at,
        ...(rand() < 0.6 ? { providers: [pick(providers).pubkey] } : {}),
      };
      const repoUrl = `https://git.example.com/repo-${Math.floor(rand() * 50)}.git`;
      const timeLimit = 60 + Math.floor(rand() * 600);
      const k = pick(JOB_KINDS);
      let tmpl: EventTemplate;
      if (k === 5050) tmpl = buildTextGenRequest({ ...common, prompt: words(12) });
      else if (k === 5930) tmpl = buildSandboxRunRequest({ ...common, repoUrl, params: { cmd: ['npm ci', 'npm test'], time_limit_secs: timeLimit, repo_ref: 'main' } });
      else if (k === 5931) tmpl = buildRepoIndexRequest({ ...common, repoUrl, params: { repo_ref: 'main' } });
      else if (k === 5932) tmpl = buildPatchGenRequest({ ...common, repoUrl, issueBody: words(40), params: { repo_ref: 'main', issue_title: words(6), time_limit_secs: timeLimit, test_cmd: 'npm test' } });
      else tmpl = buildCodeReviewRequest({ ...common, repoUrl, params: { base_ref: 'main', head_ref: `feature-${Math.floor(rand() * 20)}`, depth: 'quick' } });
      kind = tmpl.kind;
      tags = tmpl.tags;
      content = tmpl.content;
    } else if (r < 0.75) {
      key = pick(providers);
      kind = 7000;
      const req = pick(requests);
      const status = pick(['payment-required', 'processing', 'success', 'error', 'partial'] as const);
      tags = [['status', status, status === 'error' ? 'sandbox timed out' : ''], ['e', req.id], ['p', req.pubkey]];
      if (status === 'payment-required') tags.push(['amount', String(1000 * (1 + Math.floor(rand() * 100))), 'lnbc10u1p' + 'q'.repeat(200)]);
    } else if (r < 0.87) {
      key = pick(providers);
      const req = pick(requests);
      kind = req.kind + 1000;
      content = JSON.stringify({ exitCode: 0, stdout: words(30), stdoutSha256: 'ab'.repeat(32), cpuSeconds: rand() * 30 });
      tags = [['request', JSON.stringify(req)], ['e', req.id], ['p', req.pubkey], ['amount', String(1000 * (1 + Math.floor(rand() * 100)))]];
    } else if (r < 0.9) {
      key = pick(providers);
      kind = 31990;
      const ks = JOB_KINDS.filter(() => rand() < 0.5);
      if (ks.length === 0) ks.push(5930);
      tags = [['d', `bazaar-${key.pubkey.slice(0, 8)}`], ...ks.map((k) => ['k', String(k)])];
      content = JSON.stringify({ name: `provider ${key.pubkey.slice(0, 6)}`, about: words(20), prices: ks.map((k) => ({ kind: k, base: 1000 })) });
    } else {
      key = pick(users);
      if (rand() < 0.5) {
        kind = 0;
        content = JSON.stringify({ name: `user${key.pubkey.slice(0, 6)}`, about: words(15), picture: 'https://example.com/a.png' });
      } else {
        kind = 3;
        tags = Array.from({ length: 5 + Math.floor(rand() * 100) }, () => ['p', pick(keys).pubkey]);
      }
    }
    const ev = await signEvent(key, { kind, created_at, tags, content });
    out.push(ev);
    if (kind === 1) notes.push(ev);
    else if (kind >= 5000 && kind < 6000) requests.push(ev);
  }
  return out;
}

/** Writes events as JSON lines (atomically: temp file then rename). */
export async function writeCorpus(path: string, events: readonly NostrEvent[]): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const out = createWriteStream(tmp);
  for (const e of events) if (!out.write(JSON.stringify(e) + '\n')) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  renameSync(tmp, path);
}

export async function readCorpus(path: string): Promise<NostrEvent[]> {
  const out: NostrEvent[] = [];
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) if (line) out.push(JSON.parse(line) as NostrEvent);
  return out;
}

/** Loads the cached corpus at `path` when it holds at least `count` events, else generates and caches one. */
export async function loadOrGenerateCorpus(path: string, opts: CorpusOptions): Promise<{ events: NostrEvent[]; cached: boolean }> {
  if (existsSync(path)) {
    const events = await readCorpus(path);
    if (events.length >= opts.count) return { events: events.slice(0, opts.count), cached: true };
  }
  const events = await generateCorpus(opts);
  await writeCorpus(path, events);
  return { events, cached: false };
}
