/**
 * Key schemas of the registry tables: one definition read by the CDK constructs and by the
 * local bootstrap that creates the same tables in dynalite.
 */
export interface TableSchema {
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly indexes: readonly {
    readonly name: string;
    readonly partitionKey: string;
    readonly sortKey?: string;
  }[];
}

export const CLONES_TABLE: TableSchema = {
  partitionKey: 'tenantId',
  indexes: [{ name: 'by-state', partitionKey: 'state', sortKey: 'tenantId' }],
};

export const USER_MAPPINGS_TABLE: TableSchema = {
  partitionKey: 'userId',
  indexes: [
    { name: 'by-email', partitionKey: 'emailLower' },
    { name: 'by-tenant', partitionKey: 'tenantId', sortKey: 'userId' },
  ],
};

/** Fleet upgrade runs, by run id; few enough to scan. */
export const UPGRADE_RUNS_TABLE: TableSchema = {
  partitionKey: 'runId',
  indexes: [],
};
