// Intake: what the provider listens to and how it is routed. One subscription for our job
// kinds, pings to us and escrow releases naming us; one for NIP-09 deletions that reference
// our cancellable jobs only (re-sent as that set changes). A request addressed to someone
// else is dropped unseen; any other is recorded durably once (insert-if-absent by id, so the
// same request from two relays or after a restart is one job) and handed to decide. In a
// provider pool a job is recorded only by the worker whose claim on it wins (pool/claims.ts).
import type { Logger } from 'pino';
import type { Filter, NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { expirationOf } from '@bazaar/dvm-kinds/nostr';
import { PING_KIND } from '@bazaar/dvm-kinds/market/ping';
import { RECEIPT_KIND } from '@bazaar/dvm-kinds/market/receipt';
import { VERDICT_KIND } from '@bazaar/dvm-kinds/market/verdict';
import type { RelayPool, Subscription } from '@bazaar/agents-common/relay-pool';
import { termsFor, type ProviderConfig } from '../config.ts';
import type { JobRecord, ProviderStore } from '../store.ts';
import type { PaymentTerms } from '@bazaar/agents-common/job-state';

export const DELETION_KIND = 5;
/** A deletion filter lists at most this many ids (relays cap filter sizes). */
const IDS_PER_FILTER = 500;
const CANCELLABLE: ReadonlySet<JobRecord['state']> = new Set(['received', 'queued', 'awaiting-payment']);

export interface IntakeOptions {
  readonly pool: RelayPool;
  readonly store: ProviderStore;
  readonly pubkey: string;
  readonly log: Logger;
  readonly config: () => ProviderConfig;
  readonly onRequest: (rec: JobRecord, log: Logger) => Promise<void>;
  readonly onPing: (e: NostrEvent) => Promise<void>;
  readonly onDeletion: (e: NostrEvent) => Promise<void>;
  readonly onRelease: (e: NostrEvent) => Promise<void>;
  /** In a provider pool: claims the job for this worker; false when another worker has it (then it is not recorded here). */
  readonly claim?: (rec: JobRecord, log: Logger) => Promise<boolean>;
  /** Keeps a background task so stop() can wait for it. */
  readonly track: (p: Promise<void>) => void;
}

/** A request as a job just received. */
export function newJobRecord(e: NostrEvent, terms: PaymentTerms): JobRecord {
  const expiration = expirationOf(e);
  const now = Date.now();
  return {
    id: e.id,
    kind: e.kind,
    customer: e.pubkey,
    state: 'received',
    request: e,
    encrypted: e.tags.some((t) => t[0] === 'encrypted'),
    terms,
    receivedAt: now,
    updatedAt: now,
    attempts: 0,
    ...(expiration !== undefined ? { expiration } : {}),
  };
}

export class Intake {
  readonly #o: IntakeOptions;
  readonly #cancellable = new Set<string>();
  #sub: Subscription | undefined;
  #deletions: Subscription | undefined;
  #resubscribe: NodeJS.Immediate | undefined;
  #offChange: (() => void) | undefined;
  #stopped = false;

  constructor(o: IntakeOptions) {
    this.#o = o;
  }

  /** Subscribes; jobs already cancellable (recovered from the store) are watched for deletions. */
  start(): void {
    const o = this.#o;
    for (const rec of o.store.jobsIn([...CANCELLABLE])) this.#cancellable.add(rec.id);
    this.#offChange = o.store.onChange((rec) => {
      const had = this.#cancellable.has(rec.id);
      if (CANCELLABLE.has(rec.state)) this.#cancellable.add(rec.id);
      else this.#cancellable.delete(rec.id);
      if (had !== this.#cancellable.has(rec.id)) this.#deletionsChanged();
    });
    const now = () => Math.floor(Date.now() / 1000);
    const filters = (): Filter[] => [
      { kinds: [...o.config().kinds], since: now() - o.config().lookbackSecs },
      { kinds: [PING_KIND], '#p': [o.pubkey], since: now() - 60 },
      // Escrow releases: the buyer's receipt or the arbiter's verdict, naming us.
      { kinds: [RECEIPT_KIND, VERDICT_KIND], '#p': [o.pubkey], since: now() - 30 * 24 * 3600 },
    ];
    this.#sub = o.pool.subscribe(filters(), (e, url) => o.track(this.#route(e, url)), { refilter: filters });
    this.#subscribeDeletions();
  }

  stop(): void {
    this.#stopped = true;
    clearImmediate(this.#resubscribe);
    this.#offChange?.();
    this.#sub?.close();
    this.#deletions?.close();
  }

  /** Changes in one turn of the event loop (a burst of requests) cost one re-subscription. */
  #deletionsChanged(): void {
    if (this.#resubscribe || this.#stopped) return;
    this.#resubscribe = setImmediate(() => {
      this.#resubscribe = undefined;
      this.#subscribeDeletions();
    });
  }

  /** NIP-09 deletions referencing our cancellable jobs; the new subscription opens before the old one closes. */
  #subscribeDeletions(): void {
    if (this.#stopped) return;
    const old = this.#deletions;
    const filters = (): Filter[] => {
      const ids = [...this.#cancellable];
      const since = Math.floor(Date.now() / 1000) - this.#o.config().lookbackSecs;
      const out: Filter[] = [];
      for (let i = 0; i < ids.length; i += IDS_PER_FILTER) out.push({ kinds: [DELETION_KIND], '#e': ids.slice(i, i + IDS_PER_FILTER), since });
      return out;
    };
    const f = filters();
    this.#deletions = f.length ? this.#o.pool.subscribe(f, (e) => this.#o.track(this.#route(e, '')), { refilter: filters }) : undefined;
    old?.close();
  }

  async #route(e: NostrEvent, url: string): Promise<void> {
    if (this.#stopped) return;
    const o = this.#o;
    try {
      if (e.kind === PING_KIND) return await o.onPing(e);
      if (e.kind === DELETION_KIND) return await o.onDeletion(e);
      if (e.kind === RECEIPT_KIND || e.kind === VERDICT_KIND) return await o.onRelease(e);
      if (o.config().kinds.includes(e.kind)) return await this.#onRequest(e, url);
    } catch (err) {
      o.log.error({ err, eventId: e.id, kind: e.kind }, 'intake failed');
    }
  }

  async #onRequest(e: NostrEvent, relay: string): Promise<void> {
    const o = this.#o;
    const targets = e.tags.filter((t) => t[0] === 'p').map((t) => t[1]);
    if (targets.length && !targets.includes(o.pubkey)) return;
    const log = o.log.child({ jobId: e.id, kind: e.kind, customer: e.pubkey });
    const rec = newJobRecord(e, termsFor(o.config(), e.kind));
    const encrypted = rec.encrypted;
    if (o.claim) {
      // A pool: one worker records the job, the one whose claim is created first.
      if (o.store.get(rec.id)) {
        log.debug({ relay }, 'duplicate request ignored');
        return;
      }
      if (!(await o.claim(rec, log))) return;
    }
    if (!(await o.store.insert(rec))) {
      log.debug({ relay }, 'duplicate request ignored');
      return;
    }
    log.info({ relay, encrypted }, 'job request received');
    await o.onRequest(rec, log);
  }
}
