import { randomBytes } from 'node:crypto';
import { ensureControlTables, SCHEMA_HISTORY_TABLE } from './control-tables.js';
import type { DatabaseEngine, EngineName, SqlExecutor, SqlTransaction, TableAccessPlan } from './engine.js';
import {
  errorMessage,
  ScriptExecutionError,
  TenantNotFoundError,
  TenantStateConflictError,
  UpgradeFailedError,
  ValidationError,
} from './errors.js';
import { type CanonicalSchema, diffSchemas, fingerprint } from './fingerprint.js';
import { RootImageManager } from './images.js';
import { parseCredentials } from './secrets.js';
import { splitStatements } from './sql-script.js';
import type { LoadedScript, TemplateCatalog } from './templates.js';
import { APP_ROLES, assertTenantId, type CloneRecord, physicalNames } from './tenants.js';
import { applyTenantAccess, type CloneWorkflowDeps } from './workflow/clone-workflow.js';

/** What an upgrade needs: the clone workflow's dependencies, minus placement provisioning. */
export type UpgradeDeps = Pick<
  CloneWorkflowDeps,
  'registry' | 'secrets' | 'catalog' | 'namespace' | 'engineFor' | 'faults' | 'connectionLimit'
>;

/** MySQL only: one row per migration statement applied, so a failed upgrade resumes after it. */
export const MIGRATION_PROGRESS_TABLE = '_clonefactory_migration_progress';

export interface UpgradeOutcome {
  readonly tenantId: string;
  readonly cloneId: string;
  readonly engine: EngineName;
  readonly from: string;
  readonly to: string;
  /** `already`: the tenant's database was at `to` (an earlier run or a retry); nothing ran. */
  readonly action: 'upgraded' | 'already';
  /** The tenant's fingerprint now, equal to a fresh `to`'s. */
  readonly fingerprint: string;
  /** Migration files this call applied. */
  readonly applied: readonly string[];
  /** Statements this call ran. */
  readonly statements: number;
  readonly durationMs: number;
}

export interface UpgradeOptions {
  /** The fleet run this upgrade belongs to: the registry's upgrade status names it. */
  readonly runId?: string;
  /** The tenant's entry as the caller just read it (a fleet item), to save reading it again. */
  readonly record?: CloneRecord;
}

/**
 * Upgrades one READY tenant's database to `to`:
 * 1. under a per-clone lock, reads the version the database itself records;
 * 2. runs the migration path from there. PostgreSQL and SQLite run it in one transaction and
 *    check the fingerprint against a fresh `to` before committing, so a failure leaves the
 *    tenant exactly where it was. MySQL commits DDL statement by statement; each statement's
 *    success is recorded in the database, so a failure is reported precisely and the next
 *    attempt resumes after the last recorded statement;
 * 3. re-aligns the tenant's grants (the migration may add tables);
 * 4. records the version, fingerprint and applied migrations in the registry.
 * Idempotent: a tenant already at `to` is only re-aligned and recorded.
 */
export async function upgradeTenant(
  deps: UpgradeDeps,
  tenantId: string,
  to: string,
  options: UpgradeOptions = {},
): Promise<UpgradeOutcome> {
  const started = performance.now();
  const record =
    options.record?.tenantId === tenantId && options.record.state === 'READY'
      ? options.record
      : await readyRecord(deps, tenantId);
  deps.catalog.checkVersion(to);
  // Refused before the fresh fingerprint, whose root image a downgrade would build for nothing.
  if (deps.catalog.versions.indexOf(record.version) > deps.catalog.versions.indexOf(to))
    throw new ValidationError(`${tenantId} is at ${record.version}, which is newer than ${to}`, 'to');
  const engine = await deps.engineFor(record);
  const database = record.database as string;
  const target = await freshFingerprint(deps, engine, to, record.industry);
  const lockName = `${deps.namespace}_upgrade_${record.cloneId}`;
  const pathFrom = async (from: string): Promise<LoadedScript[]> => {
    const versions = deps.catalog.versions;
    if (versions.indexOf(from) > versions.indexOf(to))
      throw new ValidationError(`${tenantId} is at ${from}, which is newer than ${to}`, 'to');
    if (from === to) return [];
    const path = await deps.catalog.migrationPath(record.engine, from, to);
    await deps.faults?.('Upgrade tenant', 'before', record);
    return path;
  };
  let done: { from: string; statements: number; applied: string[] };
  if (engine.engine === 'mysql') {
    // Statement by statement (DDL commits implicitly), under a server-wide lock.
    done = await engine.withLock(lockName, async () => {
      const from = await currentVersion(engine, database, deps.catalog);
      const path = await pathFrom(from);
      if (!path.length) return { from, statements: 0, applied: [] };
      const statements = await migrateStepwise({ deps, engine, database, record, from, to, path, target });
      return { from, statements, applied: path.map((p) => p.file) };
    });
  } else {
    // One transaction holds the lock, reads the version, migrates, grants, checks, records.
    done = await engine.transaction(database, async (tx) => {
      await tx.lock?.(lockName);
      const from = await versionIn(tx, deps.catalog, database);
      const path = await pathFrom(from);
      if (!path.length) return { from, statements: 0, applied: [] };
      const statements = await migrateIn(tx, { deps, engine, database, record, from, to, path, target });
      return { from, statements, applied: path.map((p) => p.file) };
    });
  }
  const { from, statements, applied } = done;
  // MySQL grants outside transactions: the new tables' grants follow the migration (again,
  // on a retry after a crash in between). The others granted them in its transaction.
  if (!engine.alignTableAccess) {
    const secretId = record.secretId as string;
    const stored = await deps.secrets.get(secretId);
    if (!stored) throw new UpgradeFailedError(tenantId, from, to, 'partial', `secret ${secretId} is missing`);
    await applyTenantAccess(engine, deps, record.cloneId, database, parseCredentials(stored, secretId));
  }
  const migrations = [...(record.migrations ?? [])];
  for (const file of applied) if (!migrations.includes(file)) migrations.push(file);
  await deps.registry.transition(tenantId, record.cloneId, ['READY'], 'READY', {
    version: to,
    fingerprint: target,
    migrations,
    ...(options.runId
      ? {
          upgrade: {
            runId: options.runId,
            to,
            status: 'upgraded',
            durationMs: Math.round(performance.now() - started),
            at: new Date().toISOString(),
          },
        }
      : {}),
  });
  return {
    tenantId,
    cloneId: record.cloneId,
    engine: record.engine,
    from,
    to,
    action: from === to ? 'already' : 'upgraded',
    fingerprint: target,
    applied,
    statements,
    durationMs: performance.now() - started,
  };
}

interface MigrationRun {
  readonly deps: UpgradeDeps;
  readonly engine: DatabaseEngine;
  readonly database: string;
  readonly record: CloneRecord;
  readonly from: string;
  readonly to: string;
  readonly path: readonly LoadedScript[];
  readonly target: string;
}

/**
 * PostgreSQL, SQLite, inside the caller's transaction: every statement, the new tables'
 * grants, the fingerprint check and the version row; any failure rolls all of it back.
 */
async function migrateIn(tx: SqlTransaction, run: MigrationRun): Promise<number> {
  const { engine, record, from, to } = run;
  // The version table exists: the version was just read from it.
  let count = 0;
  for (const script of run.path)
    for (const s of splitStatements(engine.engine, script.sql)) {
      try {
        await tx.query(s.text);
      } catch (cause) {
        const failed = new ScriptExecutionError(script.file, s.index, s.line, s.text, cause);
        throw new UpgradeFailedError(record.tenantId, from, to, 'unchanged', failed.message, undefined, {
          cause,
        });
      }
      count++;
    }
  await engine.alignTableAccess?.(tx, tableAccessPlan(run.deps, record.cloneId));
  await run.deps.faults?.('Upgrade tenant', 'after', record);
  const fp = fingerprint(await tx.introspect());
  if (fp.hash !== run.target)
    throw new UpgradeFailedError(
      record.tenantId,
      from,
      to,
      'unchanged',
      `the migrated schema (fingerprint ${fp.hash.slice(0, 12)}) differs from a fresh ${to} (${run.target.slice(0, 12)}); \`clonectl drift\` shows how`,
    );
  await recordVersion(tx, to, record.industry, fp.hash, run.path);
  return count;
}

/**
 * MySQL: DDL commits implicitly, so each statement runs in its own transaction with the row
 * that records it (for DML the two commit together; for DDL the row follows at once). A
 * statement whose row is there is never run again.
 */
async function migrateStepwise(run: MigrationRun): Promise<number> {
  const { engine, database, record, from, to } = run;
  await engine.transaction(database, async (tx) => {
    await ensureControlTables(tx);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS ${MIGRATION_PROGRESS_TABLE} (migration VARCHAR(128) NOT NULL, statement INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL, applied_at VARCHAR(32) NOT NULL, PRIMARY KEY (migration, statement))`,
    );
  });
  let count = 0;
  for (const script of run.path) {
    const statements = splitStatements(engine.engine, script.sql);
    const done = new Set(
      (
        await engine.transaction(database, (tx) =>
          tx.query<{ statement: number }>(
            `SELECT statement FROM ${MIGRATION_PROGRESS_TABLE} WHERE migration = ? AND sha256 = ?`,
            [script.file, script.sha256],
          ),
        )
      ).map((r) => Number(r.statement)),
    );
    for (const s of statements) {
      if (done.has(s.index)) continue;
      try {
        await engine.transaction(database, async (tx) => {
          await tx.query(s.text);
          await tx.query(
            `INSERT INTO ${MIGRATION_PROGRESS_TABLE} (migration, statement, sha256, applied_at) VALUES (?, ?, ?, ?)`,
            [script.file, s.index, script.sha256, new Date().toISOString()],
          );
        });
      } catch (cause) {
        const failed = new ScriptExecutionError(script.file, s.index, s.line, s.text, cause);
        throw new UpgradeFailedError(
          record.tenantId,
          from,
          to,
          'partial',
          failed.message,
          { file: script.file, applied: done.size, total: statements.length },
          { cause },
        );
      }
      done.add(s.index);
      count++;
    }
  }
  await run.deps.faults?.('Upgrade tenant', 'after', record);
  const fp = fingerprint(await engine.introspect(database));
  if (fp.hash !== run.target)
    throw new UpgradeFailedError(
      record.tenantId,
      from,
      to,
      'partial',
      `every statement ran, but the schema (fingerprint ${fp.hash.slice(0, 12)}) differs from a fresh ${to} (${run.target.slice(0, 12)}); \`clonectl drift\` shows how`,
      { file: run.path.at(-1)?.file ?? '', applied: count, total: count },
    );
  await engine.transaction(database, (tx) => recordVersion(tx, to, record.industry, fp.hash, run.path));
  return count;
}

function tableAccessPlan(deps: Pick<UpgradeDeps, 'namespace'>, cloneId: string): TableAccessPlan {
  const names = physicalNames(deps.namespace, cloneId);
  return {
    ownerRole: names.ownerRole,
    roles: APP_ROLES.map((appRole) => ({ appRole, name: names.roles[appRole] })),
  };
}

async function recordVersion(
  tx: SqlExecutor,
  version: string,
  industry: string,
  hash: string,
  path: readonly LoadedScript[],
): Promise<void> {
  await tx.query(`DELETE FROM ${SCHEMA_HISTORY_TABLE} WHERE version = ?`, [version]);
  await tx.query(
    `INSERT INTO ${SCHEMA_HISTORY_TABLE} (version, industry, fingerprint, applied_by, applied_at) VALUES (?, ?, ?, ?, ?)`,
    [
      version,
      industry,
      hash,
      `migration ${path.map((p) => p.file.split('/').at(-1)).join(',')}`.slice(0, 32),
      new Date().toISOString(),
    ],
  );
}

/** The newest template version the database's own version table records. */
export function currentVersion(
  engine: DatabaseEngine,
  database: string,
  catalog: TemplateCatalog,
): Promise<string> {
  return engine.transaction(database, (tx) => versionIn(tx, catalog, database));
}

async function versionIn(tx: SqlExecutor, catalog: TemplateCatalog, database: string): Promise<string> {
  const rows = await tx.query<{ version: string }>(`SELECT version FROM ${SCHEMA_HISTORY_TABLE}`);
  const known = rows.map((r) => r.version).filter((v) => catalog.versions.includes(v));
  const newest = known.sort((a, b) => catalog.versions.indexOf(a) - catalog.versions.indexOf(b)).at(-1);
  if (!newest) throw new ValidationError(`${database} records no template version`, 'tenant');
  return newest;
}

/** The version rows a tenant's database keeps, oldest first. */
export async function versionHistory(
  engine: DatabaseEngine,
  database: string,
): Promise<{ version: string; fingerprint: string; applied_by: string; applied_at: string }[]> {
  return engine.transaction(database, (tx) =>
    tx.query(
      `SELECT version, fingerprint, applied_by, applied_at FROM ${SCHEMA_HISTORY_TABLE} ORDER BY applied_at`,
    ),
  );
}

async function readyRecord(deps: UpgradeDeps, tenantId: string): Promise<CloneRecord> {
  const record = await deps.registry.get(assertTenantId(tenantId));
  if (!record || record.state === 'DELETED') throw new TenantNotFoundError(tenantId);
  if (record.state !== 'READY' || !record.database || !record.secretId)
    throw new TenantStateConflictError(tenantId, record.state, 'upgrade (it must be READY)');
  return record;
}

/**
 * The fingerprint of a fresh `version` for this industry: its root image's, built once if
 * missing. Remembered per engine, since a fleet upgrade asks once per tenant.
 */
const fresh = new WeakMap<DatabaseEngine, Map<string, Promise<string>>>();

export function freshFingerprint(
  deps: Pick<UpgradeDeps, 'catalog' | 'namespace'>,
  engine: DatabaseEngine,
  version: string,
  industry: string,
): Promise<string> {
  let known = fresh.get(engine);
  if (!known) {
    known = new Map();
    fresh.set(engine, known);
  }
  const key = `${deps.namespace}/${version}/${industry}`;
  let hash = known.get(key);
  if (!hash) {
    hash = new RootImageManager(engine, deps.catalog, { namespace: deps.namespace })
      .ensure(version, industry)
      .then((image) => image.fingerprint);
    known.set(key, hash);
    hash.catch(() => known.delete(key));
  }
  return hash;
}

/**
 * The canonical schema of a fresh `version`: read from a throw-away copy of its root image
 * (a PostgreSQL image takes no connections, by design).
 */
export async function freshSchema(
  deps: Pick<UpgradeDeps, 'catalog' | 'namespace'>,
  engine: DatabaseEngine,
  version: string,
  industry: string,
): Promise<CanonicalSchema> {
  const image = await new RootImageManager(engine, deps.catalog, { namespace: deps.namespace }).ensure(
    version,
    industry,
  );
  const scratch = `${deps.namespace}_scratch_${randomBytes(6).toString('hex')}`;
  await engine.cloneDatabase(image.name, scratch, { kind: 'scratch', createdAt: new Date().toISOString() });
  try {
    return fingerprint(await engine.introspect(scratch)).schema;
  } finally {
    await engine.dropDatabase(scratch);
  }
}

export interface RehearsalResult {
  readonly tenantId: string;
  readonly from: string;
  readonly to: string;
  readonly ok: boolean;
  /** Why the real upgrade would fail. */
  readonly error?: string;
  readonly statements: number;
  readonly durationMs: number;
}

/**
 * A dry run of one tenant's upgrade: a throw-away branch of its live database (data included,
 * with the engine's own copy), the migration run and verified on the branch, then the branch
 * dropped. The tenant itself is only read.
 */
export async function rehearseUpgrade(
  deps: UpgradeDeps,
  tenantId: string,
  to: string,
): Promise<RehearsalResult> {
  const started = performance.now();
  const record = await readyRecord(deps, tenantId);
  deps.catalog.checkVersion(to);
  const engine = await deps.engineFor(record);
  const target = await freshFingerprint(deps, engine, to, record.industry);
  const from = await currentVersion(engine, record.database as string, deps.catalog);
  const branch = `${deps.namespace}_branch_${randomBytes(6).toString('hex')}`;
  await engine.cloneDatabase(record.database as string, branch, {
    kind: 'branch',
    // Not `cloneId`: the branch is not the tenant's clone, and must not pass for it.
    branchOf: record.cloneId,
    createdAt: new Date().toISOString(),
  });
  try {
    if (deps.catalog.versions.indexOf(from) >= deps.catalog.versions.indexOf(to))
      return { tenantId, from, to, ok: true, statements: 0, durationMs: performance.now() - started };
    const path = await deps.catalog.migrationPath(record.engine, from, to);
    const run = { deps, engine, database: branch, record, from, to, path, target };
    const statements =
      engine.engine === 'mysql'
        ? await migrateStepwise(run)
        : await engine.transaction(branch, (tx) => migrateIn(tx, run));
    return { tenantId, from, to, ok: true, statements, durationMs: performance.now() - started };
  } catch (error) {
    return {
      tenantId,
      from,
      to,
      ok: false,
      error: errorMessage(error),
      statements: 0,
      durationMs: performance.now() - started,
    };
  } finally {
    await engine.dropDatabase(branch);
  }
}

export interface DriftEntry {
  readonly tenantId: string;
  readonly engine: EngineName;
  readonly version: string;
  readonly industry: string;
  readonly drifted: boolean;
  /** The live fingerprint and the one its recorded version has. */
  readonly live?: string;
  readonly expected?: string;
  /** What differs, one readable line each (see diffSchemas). */
  readonly differences: readonly string[];
  /** Set when the tenant could not be read. */
  readonly error?: string;
}

/**
 * Compares each READY clone's live fingerprint with a fresh one of its recorded version and
 * industry; for a drifted clone, says what differs. Read-only for tenants.
 */
export async function detectDrift(
  deps: UpgradeDeps,
  filter: { readonly tenantIds?: readonly string[] } = {},
): Promise<DriftEntry[]> {
  const records = (await deps.registry.list({ state: 'READY' })).filter(
    (r) => !filter.tenantIds || filter.tenantIds.includes(r.tenantId),
  );
  const schemas = new Map<string, Promise<CanonicalSchema>>();
  const out: DriftEntry[] = [];
  for (const r of records) {
    const base = { tenantId: r.tenantId, engine: r.engine, version: r.version, industry: r.industry };
    try {
      const engine = await deps.engineFor(r);
      const expected = await freshFingerprint(deps, engine, r.version, r.industry);
      const live = fingerprint(await engine.introspect(r.database as string));
      if (live.hash === expected) {
        out.push({ ...base, drifted: false, live: live.hash, expected, differences: [] });
        continue;
      }
      // One scratch copy per template on a shared server; a dedicated instance has its own.
      const schemaKey = `${r.engine}/${r.version}/${r.industry}${r.placement === 'shared' ? '' : `/${r.cloneId}`}`;
      let schema = schemas.get(schemaKey);
      if (!schema) {
        schema = freshSchema(deps, engine, r.version, r.industry);
        schemas.set(schemaKey, schema);
      }
      out.push({
        ...base,
        drifted: true,
        live: live.hash,
        expected,
        differences: diffSchemas(await schema, live.schema),
      });
    } catch (error) {
      out.push({ ...base, drifted: false, differences: [], error: errorMessage(error) });
    }
  }
  return out;
}
