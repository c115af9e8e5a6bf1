// The arbiter's durable memory (LMDB): one record per case, keyed by the job request id. Each
// move of the case machine is one write transaction. The decision — ruling, the digest of the
// one release we sign, the signed verdict — is written once, in the transaction that moves the
// case to `decided`, and a second decision for the same job is refused: this is what keeps an
// arbiter from ever signing two conflicting releases, across restarts.
import type { Database, RootDatabase } from 'lmdb';
import { openLmdb } from '@bazaar/agents-common/lmdb';
import type { NostrEvent } from '@bazaar/dvm-kinds/nostr';
import { nextCaseState, type Case, type CaseEvent, type CaseState, type Decision } from './case.ts';

export const ARBITER_DB_VERSION = 1;

export class StoreError extends Error {
  override name = 'StoreError';
}

export class ArbiterStore {
  readonly #root: RootDatabase;
  readonly #cases: Database<Case, string>;

  private constructor(root: RootDatabase) {
    this.#root = root;
    this.#cases = root.openDB<Case, string>({ name: 'cases' });
  }

  /** Opens (creating) the store; `readOnly` for status commands beside a running arbiter. */
  static open(path: string, o: { readOnly?: boolean } = {}): ArbiterStore {
    const root = openLmdb({ path, maxDbs: 4, ...(o.readOnly ? { readOnly: true } : {}) });
    const meta = root.openDB<number, string>({ name: 'meta' });
    const v = meta.get('version');
    if (v === undefined && !o.readOnly) meta.putSync('version', ARBITER_DB_VERSION);
    else if (v !== undefined && v !== ARBITER_DB_VERSION) {
      void root.close();
      throw new StoreError(`arbiter database ${path} has version ${v}; this build reads ${ARBITER_DB_VERSION}`);
    }
    return new ArbiterStore(root);
  }

  get(id: string): Case | undefined {
    return this.#cases.get(id);
  }

  /** Records a new case; false when one exists for this job already (repeated disputes are one case). */
  create(c: Case): boolean {
    return this.#root.transactionSync(() => {
      if (this.#cases.get(c.id)) return false;
      this.#cases.putSync(c.id, c);
      return true;
    });
  }

  update(id: string, patch: Partial<Omit<Case, 'id' | 'state' | 'decision' | 'verdict'>>): Case {
    return this.#root.transactionSync(() => {
      const cur = this.#cases.get(id);
      if (!cur) throw new StoreError(`no case ${id}`);
      const next = { ...cur, ...patch, updatedAt: Date.now() } as Case;
      this.#cases.putSync(id, next);
      return next;
    });
  }

  step(id: string, event: Exclude<CaseEvent, 'decide'>, patch: Partial<Omit<Case, 'id' | 'state' | 'decision' | 'verdict'>> = {}): Case {
    return this.#root.transactionSync(() => {
      const cur = this.#cases.get(id);
      if (!cur) throw new StoreError(`no case ${id}`);
      const state = nextCaseState(cur.state, event);
      if (!state) throw new StoreError(`a ${cur.state} case cannot take "${event}"`);
      const next = { ...cur, ...patch, state, updatedAt: Date.now() } as Case;
      this.#cases.putSync(id, next);
      return next;
    });
  }

  /**
   * The one decision of a case, with its signed verdict, durable before anything is published.
   * Refused (StoreError) when the case is decided already: the caller publishes the stored one.
   */
  decide(id: string, decision: Decision, verdict: NostrEvent, patch: Partial<Omit<Case, 'id' | 'state' | 'decision' | 'verdict'>> = {}): Case {
    return this.#root.transactionSync(() => {
      const cur = this.#cases.get(id);
      if (!cur) throw new StoreError(`no case ${id}`);
      if (cur.decision) throw new StoreError(`case ${id} is decided already (${cur.decision.ruling})`);
      const state = nextCaseState(cur.state, 'decide');
      if (!state) throw new StoreError(`a ${cur.state} case cannot be decided`);
      const next: Case = { ...cur, ...patch, state, decision, verdict, updatedAt: Date.now() };
      this.#cases.putSync(id, next);
      return next;
    });
  }

  *cases(): Generator<Case> {
    for (const { value } of this.#cases.getRange()) yield value;
  }

  inState(states: readonly CaseState[]): Case[] {
    return [...this.cases()].filter((c) => states.includes(c.state));
  }

  counts(): Record<CaseState, number> {
    const out = { open: 0, unavailable: 0, decided: 0, published: 0, rejected: 0 } as Record<CaseState, number>;
    for (const c of this.cases()) out[c.state]++;
    return out;
  }

  async close(): Promise<void> {
    await this.#root.close();
  }
}
