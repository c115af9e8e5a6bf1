// The market's HTTP JSON API and the marketplace page, served on the relay's own port through
// the transport interface (uws and ws alike). Read-only views of the market state.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { priceFor, type Pricebook } from '@bazaar/dvm-kinds/pricing';
import type { HttpRequest, HttpResponse } from '../transport/transport.ts';
import type { MarketState } from './state.ts';
import type { JobView } from './job.ts';
import { JOB_STATES } from './job.ts';

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-store' };
const HEX64 = /^[0-9a-f]{64}$/;

const json = (status: number, body: unknown): HttpResponse => ({ status, headers: JSON_HEADERS, body: JSON.stringify(body) });
const bad = (message: string): HttpResponse => json(400, { error: message });

/** One provider as the API and the page show it. */
export function providerJson(state: MarketState, pubkey: string): Record<string, unknown> {
  const d = state.directory(pubkey);
  const r = state.reputation(pubkey);
  const a = d.announcement;
  return {
    pubkey,
    name: a?.name ?? null,
    about: a?.about ?? null,
    kinds: a?.kinds ?? [],
    prices: a?.prices ?? {},
    terms: a?.terms ?? {},
    capacity: a?.capacity ?? d.heartbeat?.capacity ?? null,
    isolation: a?.isolation ?? null,
    models: a?.models ?? [],
    region: a?.region ?? null,
    announcedAt: a?.at ?? null,
    live: d.live,
    heartbeat: d.heartbeat ? { at: d.heartbeat.at, expiration: d.heartbeat.expiration, status: d.heartbeat.status, active: d.heartbeat.active, capacity: d.heartbeat.capacity } : null,
    uptime24h: d.uptime24h ?? null,
    lastSeen: d.lastSeen ?? null,
    reputation: {
      tier: r.tier, rank: r.rank, successRate: r.successRate, jobs: r.jobsSeen, requests: r.requests, accepted: r.accepted, delivered: r.resultsDelivered,
      paid: r.paidJobs, disputesOpened: r.disputesOpened, disputesLost: r.disputesLost, medianLatencySecs: r.medianLatencySecs, p90LatencySecs: r.p90LatencySecs,
      satsEarned: r.satsEarned, rating: r.rating ?? null, buyers: r.buyers, excluded: r.excluded, perKind: r.perKind,
    },
  };
}

/** The price a buyer pays for one job of `kind` at zero units (the base, capped, with the tier premium). */
function priceOf(state: MarketState, pubkey: string, kind: number | undefined): number | undefined {
  const a = state.directory(pubkey).announcement;
  if (!a) return undefined;
  const tier = state.reputation(pubkey).tier;
  const kinds = kind !== undefined ? [kind] : a.kinds;
  let best: number | undefined;
  for (const k of kinds) {
    // Announcement prices are keyed by the kind as text (JSON object keys); a Pricebook indexes by number.
    const p = priceFor(k, a.prices as unknown as Pricebook, 0, { tier });
    if (p.ok && (best === undefined || p.value.msats < best)) best = p.value.msats;
  }
  return best;
}

export function jobJson(v: JobView): Record<string, unknown> {
  return {
    id: v.id, kind: v.kind ?? null, buyer: v.buyer ?? null, requestedAt: v.requestedAt ?? null, requestSource: v.requestSource ?? null, state: v.state,
    providersNamed: v.providersNamed, bidMsats: v.bidMsats ?? null, expiration: v.expiration ?? null,
    escrow: v.escrow ? { mint: v.escrow.mint, amount: v.escrow.amount, unit: v.escrow.unit } : null,
    providers: v.parts.map((p) => ({
      pubkey: p.provider, named: p.named, accepted: p.accepted, result: p.result ?? null, latencySecs: p.latencySecs ?? null, payment: p.payment,
      paymentProblem: p.paymentProblem ?? null, paidMsats: p.paidMsats, rating: p.rating ?? null, disputed: p.disputed, disputeLost: p.disputeLost, verdict: p.verdict ?? null,
    })),
    receipt: v.receipt ? { id: v.receipt.id, at: v.receipt.at, provider: v.receipt.provider, amountMsats: v.receipt.amountMsats, method: v.receipt.method } : null,
    dispute: v.dispute ? { id: v.dispute.id, at: v.dispute.at, provider: v.dispute.provider, arbiter: v.dispute.arbiter } : null,
    verdict: v.verdict ? { id: v.verdict.id, at: v.verdict.at, ruling: v.verdict.ruling, providerShare: v.verdict.providerShare ?? null } : null,
    timeline: v.timeline,
  };
}

function intParam(q: URLSearchParams, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined | Error {
  const raw = q.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^\d{1,16}$/.test(raw) || Number(raw) > max) return new Error(`${name} must be a non-negative integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got ${JSON.stringify(raw.slice(0, 40))}`);
  return Number(raw);
}

const WEB_DIR = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'web');
const STATIC: Record<string, string> = { '/': 'index.html', '/index.html': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css' };
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

/** Static files of the page, read once (no build step, nothing loaded from outside the relay). */
function loadStatic(): Map<string, HttpResponse> {
  const out = new Map<string, HttpResponse>();
  for (const [path, file] of Object.entries(STATIC)) {
    const body = readFileSync(join(WEB_DIR, file), 'utf8');
    out.set(path, {
      status: 200,
      headers: {
        'Content-Type': TYPES[file.split('.').pop()!],
        'Cache-Control': 'no-cache',
        // Everything comes from this relay: scripts, styles, the websocket.
        'Content-Security-Policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'",
        'X-Content-Type-Options': 'nosniff',
      },
      body,
    });
  }
  return out;
}

export interface MarketHttpOptions {
  readonly state: () => MarketState;
  readonly reputationPubkey: string;
  /** Serve the marketplace page at `/` (default true). */
  readonly page?: boolean;
}

/** A router: answers market paths, returns undefined for everything else (the relay's own routes). */
export function marketHttp(o: MarketHttpOptions): (req: HttpRequest) => HttpResponse | undefined {
  const files = o.page === false ? new Map<string, HttpResponse>() : loadStatic();
  return (req) => {
    const [path, query = ''] = req.path.split('?', 2);
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    const accept = req.headers.accept ?? '';
    // `/` with Accept: application/nostr+json stays NIP-11.
    if (files.has(path) && !(path === '/' && accept.includes('application/nostr+json'))) return files.get(path);
    if (!path.startsWith('/api/')) return undefined;
    const q = new URLSearchParams(query);
    const state = o.state();
    if (path === '/api/providers') {
      const kind = intParam(q, 'kind', 65535);
      const maxPrice = intParam(q, 'max_price');
      const minTier = intParam(q, 'min_tier', 3);
      for (const v of [kind, maxPrice, minTier]) if (v instanceof Error) return bad(v.message);
      const live = q.get('live');
      if (live !== null && !['0', '1', 'true', 'false'].includes(live)) return bad('live must be 1 or 0');
      const list = state.providerKeys().filter((pk) => {
        const d = state.directory(pk);
        if (kind !== undefined && !(d.announcement?.kinds.includes(kind as number) ?? false)) return false;
        if (minTier !== undefined && state.reputation(pk).tier < (minTier as number)) return false;
        if (live === '1' || live === 'true') { if (!d.live) return false; }
        if (maxPrice !== undefined) {
          const p = priceOf(state, pk, kind as number | undefined);
          if (p === undefined || p > (maxPrice as number)) return false;
        }
        return true;
      });
      // Best first: rank, then live, then key (stable).
      list.sort((a, b) => state.reputation(b).rank - state.reputation(a).rank || Number(state.directory(b).live) - Number(state.directory(a).live) || (a < b ? -1 : 1));
      const providers = list.map((pk) => ({ ...providerJson(state, pk), priceMsats: priceOf(state, pk, kind as number | undefined) ?? null }));
      return json(200, { providers, reputationPubkey: o.reputationPubkey });
    }
    const pm = /^\/api\/providers\/([^/]+)$/.exec(path);
    if (pm) {
      if (!HEX64.test(pm[1])) return bad('provider must be a 64-character lowercase hex pubkey');
      if (!state.providerKeys().includes(pm[1])) return json(404, { error: 'unknown provider' });
      const r = state.reputation(pm[1]);
      const jobs = state.jobs({ provider: pm[1], limit: 50 }).map(jobJson);
      return json(200, { ...providerJson(state, pm[1]), charts: { hourly: r.hourly, latencies: r.latencies }, jobs });
    }
    if (path === '/api/jobs') {
      const limit = intParam(q, 'limit', 500);
      if (limit instanceof Error) return bad(limit.message);
      const provider = q.get('provider');
      if (provider !== null && !HEX64.test(provider)) return bad('provider must be a 64-character lowercase hex pubkey');
      const st = q.get('state');
      if (st !== null && !(JOB_STATES as readonly string[]).includes(st)) return bad(`state must be one of ${JOB_STATES.join(', ')}`);
      const jobs = state.jobs({ ...(provider ? { provider } : {}), ...(st ? { state: st as JobView['state'] } : {}), limit: (limit as number | undefined) ?? 50 });
      return json(200, { jobs: jobs.map(jobJson) });
    }
    const jm = /^\/api\/jobs\/([^/]+)$/.exec(path);
    if (jm) {
      if (!HEX64.test(jm[1])) return bad('job id must be a 64-character lowercase hex event id');
      const v = state.job(jm[1]);
      return v ? json(200, jobJson(v)) : json(404, { error: 'unknown job' });
    }
    if (path === '/api/stats') return json(200, { ...state.totals(), jobsByState: state.jobsByState(), reputationPubkey: o.reputationPubkey });
    return json(404, { error: 'no such API path' });
  };
}
