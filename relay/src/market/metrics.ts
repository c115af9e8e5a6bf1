// `/metrics` in the Prometheus text format (prom-client). The relay's hot paths only bump
// plain integer counters they already keep (RelayCore.stats / rejections); everything here
// is read at scrape time in `collect()`, so indexing and serving cost nothing per event.
// The one per-REQ observation is the time to EOSE, a histogram bucket increment.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpRequest, HttpResponse } from '../transport/transport.ts';
import type { RelayCore } from '../relay.ts';
import type { MarketIndex } from './market-index.ts';
import type { ReputationPublisher } from './publisher.ts';
import { JOB_STATES } from './job.ts';

export interface RelayMetrics {
  readonly registry: Registry;
  /** Feed to RelayCoreOptions.onQuery. */
  observeQuery(ms: number): void;
  http(req: HttpRequest): Promise<HttpResponse> | undefined;
}

/** Set a counter to an absolute total kept elsewhere (prom-client counters only go up by inc). */
function setTotal(c: Counter<string>, value: number, labels?: Record<string, string>): void {
  if (labels) {
    c.remove(labels);
    c.inc(labels, value);
  } else {
    c.reset();
    c.inc(value);
  }
}

export function createRelayMetrics(o: { core: () => RelayCore | undefined; index?: () => MarketIndex | undefined; publisher?: () => ReputationPublisher | undefined }): RelayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'bazaar_relay_process_' });
  new Gauge({ name: 'bazaar_relay_connections', help: 'Open client connections', registers: [registry], collect() { this.set(o.core()?.clients.size ?? 0); } });
  new Gauge({ name: 'bazaar_relay_subscriptions', help: 'Open live subscriptions', registers: [registry], collect() { this.set(o.core()?.subscriptions.size ?? 0); } });
  new Counter({ name: 'bazaar_relay_events_received_total', help: 'EVENT messages and addEvent calls received', registers: [registry], collect() { setTotal(this, o.core()?.stats.eventsReceived ?? 0); } });
  new Counter({ name: 'bazaar_relay_events_stored_total', help: 'Events stored', registers: [registry], collect() { setTotal(this, o.core()?.stats.eventsStored ?? 0); } });
  new Counter({ name: 'bazaar_relay_events_sent_total', help: 'EVENT frames sent to clients (stored query results and live deliveries)', registers: [registry], collect() { setTotal(this, o.core()?.stats.eventsSent ?? 0); } });
  new Counter({ name: 'bazaar_relay_reqs_total', help: 'REQ messages received', registers: [registry], collect() { setTotal(this, o.core()?.stats.reqs ?? 0); } });
  new Counter({
    name: 'bazaar_relay_events_rejected_total', help: 'Events refused, by the NIP-01 prefix of the reason', labelNames: ['reason'], registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(o.core()?.rejections ?? {})) this.inc({ reason }, n);
    },
  });
  const query = new Histogram({ name: 'bazaar_relay_query_seconds', help: 'REQ time to EOSE', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  if (o.index) {
    new Gauge({
      name: 'bazaar_market_jobs', help: 'Jobs in the market index by state', labelNames: ['state'], registers: [registry],
      collect() {
        const by = o.index!()?.state.jobsByState() ?? {};
        for (const s of JOB_STATES) this.set({ state: s }, (by as Record<string, number>)[s] ?? 0);
      },
    });
    new Gauge({
      name: 'bazaar_market_providers', help: 'Providers in the directory', labelNames: ['live'], registers: [registry],
      collect() {
        const t = o.index!()?.state.totals();
        this.set({ live: 'true' }, t?.live ?? 0);
        this.set({ live: 'false' }, (t?.providers ?? 0) - (t?.live ?? 0));
      },
    });
    new Counter({ name: 'bazaar_market_index_events_total', help: 'Market events the index applied', registers: [registry], collect() { setTotal(this, o.index!()?.counters.factsApplied ?? 0); } });
    new Gauge({ name: 'bazaar_market_index_cursor', help: 'Last store sequence number the index applied', registers: [registry], collect() { this.set(o.index!()?.cursor ?? 0); } });
    new Gauge({ name: 'bazaar_market_sats_paid', help: 'Sats paid with a verified proof, over all jobs', registers: [registry], collect() { this.set(o.index!()?.state.totals().satsPaid ?? 0); } });
  }
  if (o.publisher) {
    new Counter({ name: 'bazaar_market_assertions_published_total', help: 'NIP-85 assertions published', registers: [registry], collect() { setTotal(this, o.publisher!()?.published ?? 0); } });
  }
  return {
    registry,
    observeQuery: (ms) => query.observe(ms / 1000),
    http(req) {
      if (req.path.split('?')[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return undefined;
      return registry.metrics().then((body) => ({ status: 200, headers: { 'Content-Type': registry.contentType }, body }));
    },
  };
}
