// A relay cluster on NATS JetStream. Every node keeps its own LMDB store and its own live
// subscriptions; what they share is one stream of accepted events:
//
//   client ─EVENT─► node A: signature, policies ─► publish to the stream (message id = event id)
//                      ◄── stream ack ── then store locally, broadcast, OK true
//   stream ──► each node's durable consumer ──► relay.addEvent(cluster: 'stream') ──► store,
//              live subscribers, market index; ack once stored (a node that stops resumes there)
//
// Ephemeral events go over core NATS (`<prefix>.ephemeral`), never into the stream. A node
// that is new, lost its data, or fell behind the stream's retention catches up from a peer by
// NIP-77 (peers register their URLs in a KV bucket), while already following the stream.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy, DeliverPolicy, DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType,
  type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import { isEphemeralKind, type NostrEvent } from '@bazaar/dvm-kinds/nostr';
import type { AddEventResult, RelayCore } from '../relay.ts';
import type { EventStore } from '../store/event-store.ts';
import { syncWithRelay, type SyncSummary } from '../sync/sync-client.ts';
import { checkClusterOptions, type ClusterOptions } from './cluster-options.ts';

export type { ClusterOptions } from './cluster-options.ts';

/** What a running cluster node reports (logs, /health, tests). */
export interface ClusterStatus {
  readonly node: string;
  readonly stream: string;
  readonly published: number;
  readonly consumed: number;
  readonly stored: number;
  /** Stream messages whose event was refused here (expired meanwhile, malformed). */
  readonly refused: number;
  readonly ephemeralIn: number;
  readonly ephemeralOut: number;
  /** Outcome of the last NIP-77 catch-up, once one ran. */
  readonly catchUp: { readonly from: string; readonly need: number; readonly stored: number; readonly elapsedMs: number } | { readonly error: string } | undefined;
  readonly caughtUp: boolean;
}

const NODE_HEADER = 'Bazaar-Node';
/** Peers refresh their registry entry this often; entries older than 3× count as gone. */
const REGISTER_EVERY_MS = 10_000;

interface PeerEntry {
  readonly url: string;
  readonly caughtUp: boolean;
  readonly at: number;
}

/**
 * One node's link to the cluster. `connectCluster` reaches NATS and makes sure the stream and
 * the peer registry exist (so a relay fails at start, not at its first event, when NATS is
 * unreachable); the relay core takes `replicate` as its hook; `start` follows the stream,
 * registers the node and catches up; `close` stops all of it.
 */
export class RelayCluster {
  readonly opts: Required<Omit<ClusterOptions, 'peerUrl' | 'retentionEvents'>> & Pick<ClusterOptions, 'peerUrl' | 'retentionEvents'>;
  private readonly nc: NatsConnection;
  private readonly js: JetStreamClient;
  private readonly jsm: JetStreamManager;
  private readonly registry: KV;
  private readonly log: Logger;
  private readonly dataDir: string | undefined;
  private core: RelayCore | undefined;
  private store: EventStore | undefined;
  private messages: ConsumerMessages | undefined;
  private ephemeralSub: Subscription | undefined;
  private registerTimer: NodeJS.Timeout | undefined;
  private consuming: Promise<void> | undefined;
  private catchingUp: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private closed = false;
  private peerUrl: string | undefined;
  private caughtUp = false;
  private counters = { published: 0, consumed: 0, stored: 0, refused: 0, ephemeralIn: 0, ephemeralOut: 0 };
  private lastCatchUp: ClusterStatus['catchUp'];
  private outgoing: { publishes: (() => void)[]; acks: JsMsg[]; scheduled: boolean } = { publishes: [], acks: [], scheduled: false };

  private constructor(opts: RelayCluster['opts'], nc: NatsConnection, jsm: JetStreamManager, registry: KV, log: Logger, dataDir: string | undefined) {
    this.opts = opts;
    this.nc = nc;
    this.js = jetstream(nc);
    this.jsm = jsm;
    this.registry = registry;
    this.log = log;
    this.dataDir = dataDir;
  }

  static async connect(options: ClusterOptions, deps: { logger: Logger; dataDir?: string }): Promise<RelayCluster> {
    checkClusterOptions(options);
    const retentionSecs = options.retentionSecs ?? 7 * 86_400;
    const opts = {
      stream: 'BAZAAR_EVENTS', subjectPrefix: 'bazaar', retentionSecs, duplicateWindowSecs: Math.min(120, retentionSecs), replicas: 1,
      catchUp: true, inflight: 512, publishTimeoutMs: 5000, ...options,
    };
    const log = deps.logger.child({ component: 'cluster', node: opts.node });
    const servers = opts.servers.split(',').map((s) => s.trim().replace(/^nats:\/\//, ''));
    let nc: NatsConnection;
    try {
      // Reconnect forever: a partition heals, the durable consumer resumes where it was.
      // noAsyncTraces: nats.js would build two Error objects (stack traces) per publish in case it
      // fails — 1.7 % of a cluster relay's CPU in a profile; our errors are logged by message.
      // (A third, built when each request completes, cannot be turned off: 1.2 %.)
      nc = await connect({ servers, name: `bazaar-relay-${opts.node}`, maxReconnectAttempts: -1, reconnectTimeWait: 1000, timeout: 5000, noAsyncTraces: true });
    } catch (err) {
      throw new Error(`cannot reach NATS at ${opts.servers}: ${(err as Error).message}`);
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: 5000 });
      await ensureStream(jsm, opts, log);
      const registry = await new Kvm(nc).create(`${opts.stream}_nodes`, { history: 1, replicas: opts.replicas });
      log.info({ servers: opts.servers, stream: opts.stream }, 'connected to the cluster');
      return new RelayCluster(opts, nc, jsm, registry, log, deps.dataDir);
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw new Error(`NATS at ${opts.servers} has no usable JetStream (run nats-server with -js): ${(err as Error).message}`);
    }
  }

  /** The relay core's `replicate` hook: to the stream (resolves on its ack), or ephemeral over core NATS. */
  readonly replicate = (event: NostrEvent, raw: string): Promise<void> => {
    if (this.closed) return Promise.reject(new Error('this node has left the cluster'));
    return new Promise<void>((resolve, reject) => {
      this.outgoing.publishes.push(() => {
        try {
          this.publishNow(event, raw).then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      });
      this.sendSoon();
    });
  };

  /** To the stream (resolves on its ack), or ephemeral over core NATS. Throws when the connection is closed. */
  private publishNow(event: NostrEvent, raw: string): Promise<void> {
    const h = headers();
    h.set(NODE_HEADER, this.opts.node);
    if (isEphemeralKind(event.kind)) {
      this.counters.ephemeralOut++;
      this.nc.publish(`${this.opts.subjectPrefix}.ephemeral`, raw, { headers: h });
      return Promise.resolve();
    }
    return this.js.publish(`${this.opts.subjectPrefix}.events.${event.kind}`, raw, {
      msgID: event.id,
      headers: h,
      timeout: this.opts.publishTimeoutMs,
      expect: { streamName: this.opts.stream },
    }).then(() => {
      this.counters.published++;
    });
  }

  /**
   * Publishes and acks go out together once per event-loop turn. nats.js writes its buffer to
   * the socket once per burst of synchronous calls, and each event's publish (and each message's
   * ack) would otherwise be a burst of its own: one socket write per message, the cluster's
   * largest cost per event in a profile (11 % of a one-node cluster relay's CPU).
   */
  private sendSoon(): void {
    if (this.outgoing.scheduled) return;
    this.outgoing.scheduled = true;
    setImmediate(() => {
      const { publishes, acks } = this.outgoing;
      this.outgoing = { publishes: [], acks: [], scheduled: false };
      // A connection closed meanwhile throws: unacked messages are redelivered, publishes refused.
      for (const m of acks) {
        try {
          m.ack();
        } catch {
          break;
        }
      }
      for (const send of publishes) send();
    });
  }

  /**
   * Follow the stream into `core` (durable consumer named after the node), receive ephemeral
   * events, register this node for peers at `url`, and catch up by NIP-77 if needed.
   */
  async start(core: RelayCore, store: EventStore, url: string): Promise<void> {
    this.core = core;
    this.store = store;
    this.peerUrl = this.opts.peerUrl ?? url;
    const { stream, node } = this.opts;
    let created = false;
    try {
      await this.jsm.consumers.info(stream, node);
    } catch {
      created = true;
      await this.jsm.consumers.add(stream, {
        durable_name: node,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: `${this.opts.subjectPrefix}.events.>`,
        ack_wait: 60e9,
        max_ack_pending: Math.max(1000, this.opts.inflight * 4),
      });
    }
    const gap = await this.behindRetention();
    const marker = this.readMarker();
    this.caughtUp = !created && !gap && marker;
    this.log.info({ consumer: created ? 'created' : 'resumed', behindRetention: gap, caughtUpBefore: marker }, 'following the stream');
    const consumer = await this.js.consumers.get(stream, node);
    this.messages = await consumer.consume({ max_messages: this.opts.inflight });
    this.consuming = this.consume(this.messages);
    this.ephemeralSub = this.nc.subscribe(`${this.opts.subjectPrefix}.ephemeral`, {
      callback: (err, msg) => {
        if (err || !this.core) return;
        if (msg.headers?.get(NODE_HEADER) === node) return; // our own: already delivered here
        this.counters.ephemeralIn++;
        let event: unknown;
        try {
          event = JSON.parse(msg.string());
        } catch {
          return;
        }
        void this.core.addEvent(event, { source: 'stream', sourceInfo: `cluster:${stream}`, cluster: 'stream' });
      },
    });
    await this.register();
    this.registerTimer = setInterval(() => void this.register().catch((err: unknown) => this.log.warn({ err }, 'cluster registry refresh failed')), REGISTER_EVERY_MS);
    this.registerTimer.unref();
    if (!this.caughtUp) {
      if (this.opts.catchUp) this.catchingUp = this.catchUpFromPeers();
      else this.log.warn('this node may lack events older than the stream holds (catch-up is off)');
    }
  }

  /** Resolves when a running catch-up has finished (immediately when none runs). */
  async caughtUpPromise(): Promise<void> {
    await this.catchingUp;
  }

  status(): ClusterStatus {
    return { node: this.opts.node, stream: this.opts.stream, ...this.counters, catchUp: this.lastCatchUp, caughtUp: this.caughtUp };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    clearInterval(this.registerTimer);
    this.ephemeralSub?.unsubscribe();
    // Stop pulling; messages being stored finish and are acked, the rest are redelivered later.
    await Promise.race([this.messages?.close().catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    await Promise.race([this.consuming?.catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
    await this.catchingUp?.catch(() => undefined);
    // Without NATS (a partition) none of this can complete: give up after a few seconds.
    const bounded = (p: Promise<unknown>): Promise<unknown> => Promise.race([p.catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    await bounded(this.registry.delete(this.opts.node));
    await bounded(this.nc.drain());
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    this.log.info(this.status(), 'left the cluster');
  }

  /** Store each stream message through the relay's pipeline, ack once it is durable here. */
  private async consume(messages: ConsumerMessages): Promise<void> {
    const core = this.core!;
    const sourceInfo = `cluster:${this.opts.stream}`;
    let inflight = 0;
    let slot: (() => void) | undefined;
    for await (const m of messages) {
      this.counters.consumed++;
      let event: unknown;
      try {
        event = JSON.parse(m.string());
      } catch {
        this.log.warn({ seq: m.seq }, 'stream message is not JSON; skipped');
        m.term();
        continue;
      }
      inflight++;
      // Expiry on arrival is judged at the stream's timestamp: every node decides alike.
      const acceptedAt = Math.floor(m.info.timestampNanos / 1e9);
      void core.addEvent(event, { source: 'stream', sourceInfo, cluster: 'stream', acceptedAt }).then((r: AddEventResult) => {
        this.account(m, r);
        inflight--;
        const s = slot;
        slot = undefined;
        s?.();
      });
      // Backpressure: no more pulls while the store is this far behind.
      if (inflight >= this.opts.inflight) await new Promise<void>((r) => (slot = r));
    }
  }

  private account(m: JsMsg, r: AddEventResult): void {
    if (r.ok && r.message === '') this.counters.stored++;
    else if (!r.ok && r.message.startsWith('error:')) {
      // Our own failure (disk, shutdown): let the stream redeliver it.
      this.log.warn({ seq: m.seq, reason: r.message }, 'stream event not stored; redelivery');
      m.nak(1000);
      return;
    } else if (!r.ok) this.counters.refused++;
    this.outgoing.acks.push(m);
    this.sendSoon();
  }

  /** Is the consumer's position before the stream's first message (events lost to retention)? */
  private async behindRetention(): Promise<boolean> {
    const [si, ci] = await Promise.all([this.jsm.streams.info(this.opts.stream), this.jsm.consumers.info(this.opts.stream, this.opts.node)]);
    // Sequences are contiguous: messages from the next one we need up to first_seq - 1 existed and are gone.
    return si.state.first_seq > ci.ack_floor.stream_seq + 1;
  }

  private async register(): Promise<void> {
    const entry: PeerEntry = { url: this.peerUrl!, caughtUp: this.caughtUp, at: Date.now() };
    await this.registry.put(this.opts.node, JSON.stringify(entry));
  }

  private async peers(): Promise<{ node: string; entry: PeerEntry }[]> {
    const out: { node: string; entry: PeerEntry }[] = [];
    for await (const key of await this.registry.keys()) {
      if (key === this.opts.node) continue;
      const e = await this.registry.get(key);
      if (!e || e.operation !== 'PUT') continue;
      try {
        const entry = JSON.parse(e.string()) as PeerEntry;
        if (Date.now() - entry.at < 3 * REGISTER_EVERY_MS) out.push({ node: key, entry });
      } catch {
        // not ours
      }
    }
    // Caught-up peers first, the freshest first.
    return out.sort((a, b) => Number(b.entry.caughtUp) - Number(a.entry.caughtUp) || b.entry.at - a.entry.at);
  }

  /** NIP-77 from the first peer that completes; the stream is followed meanwhile. */
  private async catchUpFromPeers(): Promise<void> {
    const peers = await this.peers();
    if (peers.length === 0) {
      // The first node of a cluster has nobody to ask: what the stream holds is all there is.
      this.log.info('no peer to catch up from; following the stream only');
      this.markCaughtUp();
      return;
    }
    for (const { node, entry } of peers) {
      if (this.closed) return;
      try {
        const summary: SyncSummary = await syncWithRelay({
          url: entry.url,
          store: this.store!,
          ingest: (event) => this.core!.addEvent(event, { source: 'sync', sourceInfo: entry.url, cluster: 'peer' }),
          filter: {},
          direction: 'down',
          signal: this.abort.signal,
          logger: this.log,
        });
        this.lastCatchUp = { from: entry.url, need: summary.need, stored: summary.stored, elapsedMs: summary.elapsedMs };
        this.log.info({ peer: node, url: entry.url, need: summary.need, stored: summary.stored, rounds: summary.rounds, elapsedMs: summary.elapsedMs }, 'caught up from a peer by NIP-77');
        this.markCaughtUp();
        return;
      } catch (err) {
        this.lastCatchUp = { error: (err as Error).message };
        this.log.warn({ peer: node, url: entry.url, err: (err as Error).message }, 'catch-up from this peer failed; trying the next');
      }
    }
    this.log.error('no peer could be synced from: this node may lack events older than the stream holds; it retries at its next start');
  }

  private markerPath(): string | undefined {
    return this.dataDir === undefined ? undefined : join(this.dataDir, 'cluster.json');
  }

  /** Did this data directory complete a catch-up for this stream and node? */
  private readMarker(): boolean {
    const p = this.markerPath();
    if (p === undefined || !existsSync(p)) return false;
    try {
      const m = JSON.parse(readFileSync(p, 'utf8')) as { stream?: string; node?: string; servers?: string };
      return m.stream === this.opts.stream && m.node === this.opts.node;
    } catch {
      return false;
    }
  }

  private markCaughtUp(): void {
    this.caughtUp = true;
    const p = this.markerPath();
    if (p !== undefined) {
      writeFileSync(`${p}.tmp`, `${JSON.stringify({ stream: this.opts.stream, node: this.opts.node, caughtUpAt: new Date().toISOString() })}\n`);
      renameSync(`${p}.tmp`, p);
    }
    void this.register().catch(() => undefined);
  }
}

async function ensureStream(jsm: JetStreamManager, opts: RelayCluster['opts'], log: Logger): Promise<void> {
  const subjects = [`${opts.subjectPrefix}.events.>`];
  try {
    const info = await jsm.streams.info(opts.stream);
    const have = info.config.subjects ?? [];
    if (!subjects.every((s) => have.includes(s))) throw new Error(`stream ${opts.stream} exists with subjects ${JSON.stringify(have)}, not ${JSON.stringify(subjects)}`);
    return;
  } catch (err) {
    if (!/not found/i.test((err as Error).message)) throw err;
  }
  await jsm.streams.add({
    name: opts.stream,
    subjects,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: opts.retentionSecs * 1e9,
    ...(opts.retentionEvents !== undefined ? { max_msgs: opts.retentionEvents } : {}),
    duplicate_window: opts.duplicateWindowSecs * 1e9,
    num_replicas: opts.replicas,
    discard: DiscardPolicy.Old,
  });
  log.info({ stream: opts.stream, subjects, retentionSecs: opts.retentionSecs, replicas: opts.replicas }, 'created the cluster stream');
}
