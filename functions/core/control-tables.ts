import type { SqlExecutor } from './engine.js';

/** The clone's record of the template versions it went through; fleet upgrades add rows. */
export const SCHEMA_HISTORY_TABLE = '_clonefactory_schema_history';
/** One row once a tenant's sample data is in. */
export const SEED_TABLE = '_clonefactory_seed';

/**
 * Tables the control plane keeps inside every tenant database, in SQL that all three engines
 * accept. Root images carry them already, so that a new clone needs no DDL for them; the
 * steps still create them if missing (a clone of an older image).
 */
export const CONTROL_TABLES_DDL = [
  `CREATE TABLE IF NOT EXISTS ${SCHEMA_HISTORY_TABLE} (version VARCHAR(16) NOT NULL PRIMARY KEY, industry VARCHAR(32) NOT NULL, fingerprint VARCHAR(64) NOT NULL, applied_by VARCHAR(32) NOT NULL, applied_at VARCHAR(32) NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ${SEED_TABLE} (tenant_id VARCHAR(64) NOT NULL PRIMARY KEY, size INTEGER NOT NULL, seeded_at VARCHAR(32) NOT NULL)`,
] as const;

export async function ensureControlTables(tx: SqlExecutor): Promise<void> {
  for (const ddl of CONTROL_TABLES_DDL) await tx.query(ddl);
}
