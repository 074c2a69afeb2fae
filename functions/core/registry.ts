import type { CloneRecord, CloneState } from './tenants.js';

/** Fields a step may set alongside a state change. */
export type ClonePatch = Partial<
  Pick<
    CloneRecord,
    | 'database'
    | 'endpoint'
    | 'secretId'
    | 'fingerprint'
    | 'executionName'
    | 'lastError'
    | 'placement'
    | 'version'
    | 'migrations'
    | 'upgrade'
    | 'health'
  >
>;

/**
 * The clone registry. Every write is a single-item conditional write (DynamoDB, and dynalite
 * locally, which has no transactions), so two writers can never both win.
 */
export interface CloneRegistry {
  /**
   * Registers a new PENDING clone unless the tenant has a live one. Returns the record now
   * stored and whether this call created it. A FAILED or DELETED entry is replaced.
   */
  register(record: CloneRecord): Promise<{ created: boolean; record: CloneRecord }>;
  get(tenantId: string): Promise<CloneRecord | null>;
  /**
   * Moves the clone `cloneId` of `tenantId` from one of `from` to `to`, setting `patch`.
   * Throws TenantStateConflictError when the entry is in another state or belongs to another clone.
   */
  transition(
    tenantId: string,
    cloneId: string,
    from: readonly CloneState[],
    to: CloneState,
    patch?: ClonePatch,
  ): Promise<CloneRecord>;
  /** Every entry, or those in one state; `limit` stops after about that many (by tenant id). */
  list(filter?: { state?: CloneState; limit?: number }): Promise<CloneRecord[]>;
}
