// Fair query execution (strfry's QueryScheduler, made fair per connection): REQ and COUNT
// work runs in slices of a time budget on the event loop. Each turn serves connections round
// robin, one slice each, until the turn's budget is spent, then yields (setImmediate) so
// sockets, writes and new messages get the loop. A connection works on a few of its queries
// at a time (round robin among them), the rest wait in order behind them: a client that
// floods queries slows itself, not others.

export interface QueryJob {
  /** The REQ / COUNT subscription id, for cancelling. */
  readonly subId: string;
  /** NEG: a NIP-77 session's store scan (its ids are a namespace of their own). */
  readonly kind: 'REQ' | 'COUNT' | 'NEG';
  /** Bounded work until `deadline` (performance.now() time); true when finished. Must make progress. */
  step(deadline: number): boolean;
  /** Called once when step() returned true. */
  finish(): void;
  /** Called once when step() or finish() threw; the job is dropped. */
  fail(err: unknown): void;
}

export interface QuerySchedulerOptions {
  /** Time one turn of the scheduler may use before yielding the event loop (ms). */
  readonly sliceMs: number;
  /** Queries of one connection worked on in turn; later ones wait for one of them to finish. */
  readonly interleave: number;
}

interface ConnQueue {
  /** Being worked on, round robin. */
  readonly running: QueryJob[];
  /** Waiting, first in first out. */
  readonly waiting: QueryJob[];
  /** Next running job to step. */
  next: number;
}

export class QueryScheduler<C> {
  private readonly conns = new Map<C, ConnQueue>();
  /** Connections with work, in round-robin order; `cursor` is the next one to serve. */
  private ring: C[] = [];
  private cursor = 0;
  private scheduled = false;
  private readonly opts: QuerySchedulerOptions;
  /** Turns and slices run, for /health and tests. */
  readonly stats = { turns: 0, slices: 0 };

  constructor(opts: QuerySchedulerOptions) {
    this.opts = opts;
  }

  /** Queries of `conn` in progress (running and waiting). */
  pending(conn: C): number {
    const q = this.conns.get(conn);
    return q ? q.running.length + q.waiting.length : 0;
  }

  /** Queries in progress across all connections. */
  get size(): number {
    let n = 0;
    for (const q of this.conns.values()) n += q.running.length + q.waiting.length;
    return n;
  }

  /**
   * Run a query for `conn`. When nothing else is queued anywhere, its first slice runs right
   * away (a small query is answered in the same turn, as before scheduling existed); otherwise
   * it joins the connection's queue and is served in its turn.
   */
  submit(conn: C, job: QueryJob): void {
    if (this.ring.length === 0 && !this.scheduled) {
      if (this.runSlice(job, performance.now() + this.opts.sliceMs)) return;
    }
    let q = this.conns.get(conn);
    if (!q) {
      q = { running: [], waiting: [], next: 0 };
      this.conns.set(conn, q);
      this.ring.push(conn);
    }
    if (q.running.length < this.opts.interleave) q.running.push(job);
    else q.waiting.push(job);
    this.schedule();
  }

  /**
   * Abort `conn`'s queries with this subscription id, of one kind, or without `kind` its REQ and
   * COUNT (a CLOSE, which never touches a NIP-77 session of the same id).
   */
  cancel(conn: C, subId: string, kind?: QueryJob['kind']): void {
    const q = this.conns.get(conn);
    if (!q) return;
    const keep = (j: QueryJob): boolean => j.subId !== subId || (kind === undefined ? j.kind === 'NEG' : j.kind !== kind);
    const running = q.running.filter(keep);
    const waiting = q.waiting.filter(keep);
    if (running.length === q.running.length && waiting.length === q.waiting.length) return;
    q.running.length = 0;
    q.running.push(...running);
    q.waiting.length = 0;
    q.waiting.push(...waiting);
    this.refill(conn, q);
  }

  /** Abort every query of a connection (it closed). */
  drop(conn: C): void {
    if (!this.conns.delete(conn)) return;
    const i = this.ring.indexOf(conn);
    this.ring.splice(i, 1);
    if (i < this.cursor) this.cursor--;
  }

  private schedule(): void {
    if (this.scheduled || this.ring.length === 0) return;
    this.scheduled = true;
    setImmediate(() => this.turn());
  }

  /** One turn: a slice for each connection in round-robin order until the budget is spent. */
  private turn(): void {
    this.scheduled = false;
    this.stats.turns++;
    const deadline = performance.now() + this.opts.sliceMs;
    while (this.ring.length > 0) {
      if (this.cursor >= this.ring.length) this.cursor = 0;
      const conn = this.ring[this.cursor];
      const q = this.conns.get(conn)!;
      if (q.next >= q.running.length) q.next = 0;
      const job = q.running[q.next];
      const done = this.runSlice(job, deadline);
      // The job may have been cancelled from inside (a callback closing the connection).
      if (this.conns.get(conn) === q) {
        if (done) {
          const i = q.running.indexOf(job);
          if (i >= 0) q.running.splice(i, 1);
          this.refill(conn, q);
        } else q.next++;
      }
      if (this.conns.get(conn) === q) this.cursor++;
      if (performance.now() >= deadline) break;
    }
    this.schedule();
  }

  /** Runs one slice; true when the job is over (finished or failed). */
  private runSlice(job: QueryJob, deadline: number): boolean {
    this.stats.slices++;
    let done: boolean;
    try {
      done = job.step(deadline);
    } catch (err) {
      job.fail(err);
      return true;
    }
    if (!done) return false;
    try {
      job.finish();
    } catch (err) {
      job.fail(err);
    }
    return true;
  }

  /** Move waiting jobs up to the running set; forget a connection with nothing left. */
  private refill(conn: C, q: ConnQueue): void {
    while (q.running.length < this.opts.interleave && q.waiting.length > 0) q.running.push(q.waiting.shift()!);
    if (q.running.length === 0) this.drop(conn);
  }
}
