// The market state: a fold of facts (order-independent, idempotent by event id) into job
// views, a provider directory, the payment graph and per-provider reputation. In memory and
// pure of I/O; `market-index.ts` persists the facts and feeds them in, the sidecar does the
// same from a subscription. Views are recomputed lazily: `add` only marks what changed.
import { authorOf, jobIdOf, normaliseMint, type AnnouncementFact, type Fact, type HeartbeatFact, type JobFact, type ReceiptFact } from './facts.ts';
import { reduceJob, type CashuCheck, type JobState, type JobView } from './job.ts';
import { computeReputation, DEFAULT_REPUTATION_PARAMS, type PaymentGraph, type ProviderReputation, type ReputationJob, type ReputationParams, type ReputationPart } from './reputation.ts';

export interface MarketStateOptions {
  readonly params?: ReputationParams;
  /** Mints whose NUT-07 answers this indexer trusts (Cashu receipts from other mints stay unverified). */
  readonly trustedMints?: readonly string[];
  /** Unix seconds. */
  readonly now?: () => number;
}

export interface DirectoryEntry {
  readonly pubkey: string;
  readonly announcement?: AnnouncementFact;
  readonly heartbeat?: HeartbeatFact;
  /** A heartbeat that has not expired. */
  readonly live: boolean;
  /** Share of the last 24 h (or since the first heartbeat, if later) covered by unexpired heartbeats. */
  readonly uptime24h?: number;
  readonly lastSeen?: number;
}

/** The one empty list the state shares wherever a list is empty (most are). */
const EMPTY: readonly never[] = Object.freeze([]);

/** Fields of a fact that name a key or an event another fact may name too. */
const SHARED_FIELDS = ['buyer', 'provider', 'arbiter', 'requestId', 'resultId'] as const;

/**
 * What the state keeps of a job's view between requests for it: the reputation inputs, the
 * state and the sort keys. The whole view (timeline, feedback lists, receipt details) is
 * reduced again from the job's facts when asked for; kept for every job it was a third of the
 * state (≈35 MiB at 200 000 stored events).
 */
interface JobSummary extends ReputationJob {
  readonly state: JobState;
  readonly requestedAt: number | undefined;
  readonly expiration: number | undefined;
  readonly lastAt: number;
  readonly receipt: ReceiptFact | undefined;
}

// Every summary and part is built with the same fields in the same order (absent ones are
// `undefined`): one hidden class each, where conditional spreads gave V8 tens of thousands.
function summarize(v: JobView): JobSummary {
  return {
    buyer: v.buyer,
    kind: v.kind,
    parts: v.parts.length ? v.parts.map((p): ReputationPart => ({
      provider: p.provider,
      named: p.named,
      accepted: p.accepted,
      result: p.result ? { at: p.result.at } : undefined,
      latencySecs: p.latencySecs,
      payment: p.payment,
      paidMsats: p.paidMsats,
      rating: p.rating,
      disputed: p.disputed,
      disputeLost: p.disputeLost,
    })) : EMPTY,
    state: v.state,
    requestedAt: v.requestedAt,
    expiration: v.expiration,
    lastAt: v.lastAt,
    receipt: v.receipt,
  };
}

interface JobSlot {
  readonly facts: Map<string, JobFact>;
  summary?: JobSummary;
  /** Verified payment edges this job contributes: "buyer provider". */
  edges: readonly string[];
  providers: readonly string[];
}

const UPTIME_WINDOW_SECS = 86_400;

export class MarketState {
  readonly #facts = new Map<string, Fact>();
  /**
   * One copy of every key and referenced event id: each fact decoded from JSON or LMDB carries
   * its own copy of the same 64-character strings (a provider's key once per fact), which was
   * most of the state's strings (216 000 duplicates of 90 000 at 200 000 events).
   */
  readonly #strings = new Map<string, string>();
  readonly #jobs = new Map<string, JobSlot>();
  readonly #dirtyJobs = new Set<string>();
  readonly #providerJobs = new Map<string, Set<string>>();
  readonly #announcements = new Map<string, AnnouncementFact>();
  readonly #heartbeats = new Map<string, HeartbeatFact[]>();
  readonly #lastSeen = new Map<string, number>();
  /** buyer → provider → verified jobs. */
  readonly #paid = new Map<string, Map<string, number>>();
  /** provider → buyer → verified jobs. */
  readonly #paidTo = new Map<string, Map<string, number>>();
  readonly #checks = new Map<string, CashuCheck>();
  readonly #reputation = new Map<string, ProviderReputation>();
  #dirtyProviders = new Set<string>();
  readonly #params: ReputationParams;
  readonly #trustedMints: ReadonlySet<string>;
  readonly #now: () => number;
  readonly #graph: PaymentGraph;

  constructor(o: MarketStateOptions = {}) {
    this.#params = o.params ?? DEFAULT_REPUTATION_PARAMS;
    this.#trustedMints = new Set((o.trustedMints ?? []).map(normaliseMint));
    this.#now = o.now ?? (() => Math.floor(Date.now() / 1000));
    this.#graph = { paidBy: (b) => this.#paid.get(b)?.keys() ?? [] };
  }

  get size(): number {
    return this.#facts.size;
  }

  has(id: string): boolean {
    return this.#facts.has(id);
  }

  /** Add a fact; a fact already known (same event id) changes nothing. Returns whether it was new. */
  add(fact: Fact): boolean {
    if (this.#facts.has(fact.id)) return false;
    const f = this.#share(fact);
    this.#facts.set(f.id, f);
    const author = authorOf(f);
    if (f.t !== 'request' && f.t !== 'receipt' && f.t !== 'dispute' && f.t !== 'verdict') {
      if ((this.#lastSeen.get(author) ?? -1) < f.at) this.#lastSeen.set(author, f.at);
    }
    if (f.t === 'announcement') {
      const cur = this.#announcements.get(f.provider);
      if (!cur || f.at > cur.at || (f.at === cur.at && f.id < cur.id)) this.#announcements.set(f.provider, f);
      this.#touch(f.provider);
      return true;
    }
    if (f.t === 'heartbeat') {
      const list = this.#heartbeats.get(f.provider) ?? this.#heartbeats.set(f.provider, []).get(f.provider)!;
      list.push(f);
      this.#touch(f.provider);
      return true;
    }
    const jobId = jobIdOf(f)!;
    let slot = this.#jobs.get(jobId);
    if (!slot) this.#jobs.set(jobId, (slot = { facts: new Map(), edges: EMPTY, providers: EMPTY }));
    slot.facts.set(f.id, f);
    // A result embedding the request stands for the request: the job must exist under its id.
    this.#dirtyJobs.add(jobId);
    return true;
  }

  #intern(s: string): string {
    const have = this.#strings.get(s);
    if (have !== undefined) return have;
    this.#strings.set(s, s);
    return s;
  }

  /**
   * `f` with its keys and references replaced by the state's one copy of each. In place: the
   * strings put in are equal to the ones taken out, so no holder of `f` can tell (a copy gave
   * every fact an out-of-object property array, 5 MiB at 200 000 events).
   */
  #share<F extends Fact>(f: F): F {
    const o = f as unknown as Record<string, unknown>;
    // Requests and results are named by later facts (requestId, resultId): their ids are shared too.
    if (f.t === 'request' || f.t === 'result') o.id = this.#intern(f.id);
    for (const k of SHARED_FIELDS) if (typeof o[k] === 'string') o[k] = this.#intern(o[k]);
    if (f.t === 'request') o.providers = f.providers.length ? f.providers.map((p) => this.#intern(p)) : EMPTY;
    if (f.t === 'result' && f.request) this.#share(f.request);
    return f;
  }

  /** Record a mint's answer about a Cashu receipt (an observation, not an event). */
  setCashuCheck(receiptId: string, check: CashuCheck): void {
    this.#checks.set(receiptId, check);
    const f = this.#facts.get(receiptId);
    if (f?.t === 'receipt') this.#dirtyJobs.add(f.requestId);
  }

  cashuCheck(receiptId: string): CashuCheck | undefined {
    return this.#checks.get(receiptId);
  }

  /** Cashu receipts from trusted mints whose proofs are not known to be spent (the mint checker's work list). */
  pendingCashuReceipts(): { id: string; mint: string; ys: string[] }[] {
    this.settle();
    const out: { id: string; mint: string; ys: string[] }[] = [];
    for (const slot of this.#jobs.values()) {
      const r = slot.summary?.receipt;
      if (!r || r.method !== 'cashu' || !r.mint || !this.#trustedMints.has(r.mint)) continue;
      if (this.#checks.get(r.id)?.state === 'spent') continue;
      if (!slot.summary!.parts.some((p) => p.provider === r.provider && p.payment === 'unverified')) continue;
      out.push({ id: r.id, mint: r.mint, ys: (r.proofs ?? []).map((p) => p.y) });
    }
    return out;
  }

  /** Recompute the views of jobs that changed; collect the providers whose figures may have moved. */
  settle(): void {
    if (this.#dirtyJobs.size === 0) return;
    const jobs = [...this.#dirtyJobs];
    this.#dirtyJobs.clear();
    const changedEdges: [string, string][] = [];
    for (const id of jobs) {
      const slot = this.#jobs.get(id)!;
      const view = this.#reduce(id, slot);
      const providers = view.parts.map((p) => p.provider);
      const edges = view.buyer === undefined ? [] : view.parts.filter((p) => p.payment === 'verified' && p.provider !== view.buyer).map((p) => `${view.buyer} ${p.provider}`);
      for (const p of slot.providers) if (!providers.includes(p)) this.#providerJobs.get(p)?.delete(id);
      for (const p of providers) (this.#providerJobs.get(p) ?? this.#providerJobs.set(p, new Set()).get(p)!).add(id);
      for (const e of slot.edges) if (!edges.includes(e)) { this.#edge(e, -1); changedEdges.push(e.split(' ') as [string, string]); }
      for (const e of edges) if (!slot.edges.includes(e)) { this.#edge(e, +1); changedEdges.push(e.split(' ') as [string, string]); }
      for (const p of new Set([...slot.providers, ...providers])) this.#touch(p);
      slot.summary = summarize(view);
      slot.edges = edges.length ? edges : EMPTY;
      slot.providers = providers.length ? providers : EMPTY;
    }
    // A new or removed payment b → p changes the cluster of every key whose money reaches b
    // within the cluster radius: walk the payments backwards from b.
    for (const [b, p] of changedEdges) {
      this.#touch(p);
      let frontier = [b];
      const seen = new Set(frontier);
      for (let h = 0; h < this.#params.washHops && frontier.length; h++) {
        const next: string[] = [];
        for (const k of frontier) {
          this.#touch(k);
          for (const from of this.#paidTo.get(k)?.keys() ?? []) if (!seen.has(from)) { seen.add(from); next.push(from); }
        }
        frontier = next;
      }
    }
  }

  /** A provider whose figures may have moved: forget its cached reputation, publish it again. */
  #touch(p: string): void {
    this.#dirtyProviders.add(p);
    this.#reputation.delete(p);
  }

  #edge(e: string, d: number): void {
    const [b, p] = e.split(' ');
    const bump = (m: Map<string, Map<string, number>>, x: string, y: string) => {
      const inner = m.get(x) ?? m.set(x, new Map()).get(x)!;
      const n = (inner.get(y) ?? 0) + d;
      if (n > 0) inner.set(y, n);
      else inner.delete(y);
      if (!inner.size) m.delete(x);
    };
    bump(this.#paid, b, p);
    bump(this.#paidTo, p, b);
  }

  /** Providers whose reputation may have changed since the last call (for the NIP-85 publisher). */
  takeDirtyProviders(): Set<string> {
    this.settle();
    const d = this.#dirtyProviders;
    this.#dirtyProviders = new Set();
    return d;
  }

  /** The whole view of a job, reduced from its facts (without the clock: no `expired`). */
  #reduce(id: string, slot: JobSlot): JobView {
    return reduceJob(id, [...slot.facts.values()], { cashuCheck: (r) => this.#checks.get(r), trustedMints: this.#trustedMints });
  }

  /** `expired` depends on the clock: a requested job whose expiration has passed. */
  #stateNow(s: { readonly state: JobState; readonly expiration?: number | undefined }, now: number): JobState {
    return s.state === 'requested' && s.expiration !== undefined && s.expiration <= now ? 'expired' : s.state;
  }

  job(id: string): JobView | undefined {
    this.settle();
    const slot = this.#jobs.get(id);
    if (!slot) return undefined;
    const v = this.#reduce(id, slot);
    const state = this.#stateNow(v, this.#now());
    return state === v.state ? v : { ...v, state };
  }

  /** Job views, newest request first (jobs known only by a receipt or feedback sort by their latest fact). */
  jobs(o: { provider?: string; state?: JobState; limit?: number } = {}): JobView[] {
    this.settle();
    const now = this.#now();
    const ids = o.provider ? [...(this.#providerJobs.get(o.provider) ?? [])] : [...this.#jobs.keys()];
    const picked: { id: string; key: number }[] = [];
    for (const id of ids) {
      const s = this.#jobs.get(id)!.summary!;
      if (o.state === undefined || this.#stateNow(s, now) === o.state) picked.push({ id, key: s.requestedAt ?? s.lastAt });
    }
    picked.sort((a, b) => b.key - a.key || (a.id < b.id ? -1 : 1));
    return (o.limit !== undefined ? picked.slice(0, o.limit) : picked).map((p) => this.job(p.id)!);
  }

  /** Jobs per state (for /metrics and /api/stats). */
  jobsByState(): Record<JobState, number> {
    this.settle();
    const now = this.#now();
    const out = {} as Record<JobState, number>;
    for (const slot of this.#jobs.values()) {
      const st = this.#stateNow(slot.summary!, now);
      out[st] = (out[st] ?? 0) + 1;
    }
    return out;
  }

  reputation(provider: string): ProviderReputation {
    this.settle();
    let r = this.#reputation.get(provider);
    if (!r) {
      const jobs = [...(this.#providerJobs.get(provider) ?? [])].map((id) => this.#jobs.get(id)!.summary!);
      const lastSeen = this.#lastSeen.get(provider);
      r = computeReputation(provider, jobs, this.#graph, { params: this.#params, ...(lastSeen !== undefined ? { lastSeen } : {}) });
      this.#reputation.set(provider, r);
    }
    return r;
  }

  /** Every key that announced, beat, or took part in a job as a provider. */
  providerKeys(): string[] {
    this.settle();
    return [...new Set([...this.#announcements.keys(), ...this.#heartbeats.keys(), ...this.#providerJobs.keys()])].sort();
  }

  directory(pubkey: string, now = this.#now()): DirectoryEntry {
    const beats = this.#heartbeats.get(pubkey) ?? [];
    let heartbeat: HeartbeatFact | undefined;
    for (const h of beats) if (!heartbeat || h.at > heartbeat.at || (h.at === heartbeat.at && h.id < heartbeat.id)) heartbeat = h;
    const announcement = this.#announcements.get(pubkey);
    const lastSeen = this.#lastSeen.get(pubkey);
    return {
      pubkey,
      ...(announcement ? { announcement } : {}),
      ...(heartbeat ? { heartbeat } : {}),
      live: heartbeat !== undefined && heartbeat.expiration > now,
      ...(beats.length ? { uptime24h: uptime(beats, now) } : {}),
      ...(lastSeen !== undefined ? { lastSeen } : {}),
    };
  }

  /** Market totals for /api/stats. */
  totals(): { facts: number; jobs: number; providers: number; live: number; paidJobs: number; satsPaid: number } {
    this.settle();
    let paidJobs = 0;
    let msats = 0;
    for (const s of this.#jobs.values()) {
      for (const p of s.summary?.parts ?? []) if (p.payment === 'verified') { paidJobs++; msats += p.paidMsats; }
    }
    const keys = this.providerKeys();
    return { facts: this.#facts.size, jobs: this.#jobs.size, providers: keys.length, live: keys.filter((k) => this.directory(k).live).length, paidJobs, satsPaid: Math.floor(msats / 1000) };
  }

  /** A deterministic image of everything derived (tests: reindex equals incremental, sidecar equals relay). */
  snapshot(now = this.#now()): unknown {
    this.settle();
    const jobs = [...this.#jobs.keys()].sort().map((id) => this.#reduce(id, this.#jobs.get(id)!));
    const providers = this.providerKeys().map((k) => ({ directory: this.directory(k, now), reputation: this.reputation(k) }));
    return { facts: [...this.#facts.keys()].sort(), jobs, providers };
  }

  /** Every fact (for persistence checks and the sidecar's store). */
  facts(): IterableIterator<Fact> {
    return this.#facts.values();
  }
}

/** Fraction of the window covered by heartbeats' [created_at, expiration) intervals. */
function uptime(beats: readonly HeartbeatFact[], now: number): number {
  const first = beats.reduce((m, h) => Math.min(m, h.at), Infinity);
  const start = Math.max(now - UPTIME_WINDOW_SECS, first);
  if (now <= start) return 1;
  const iv = beats.map((h) => [Math.max(h.at, start), Math.min(h.expiration, now)] as const).filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
  let covered = 0;
  let curA = -1;
  let curB = -1;
  for (const [a, b] of iv) {
    if (a > curB) { if (curB > curA) covered += curB - curA; curA = a; curB = b; }
    else if (b > curB) curB = b;
  }
  if (curB > curA) covered += curB - curA;
  return Math.round((covered / (now - start)) * 10_000) / 10_000;
}
