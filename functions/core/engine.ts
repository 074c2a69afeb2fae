import type { RawTable } from './fingerprint.js';
import type { AppRole } from './tenants.js';

/** The engines the catalogue ships templates for. */
export const ENGINE_NAMES = ['postgresql', 'mysql', 'sqlite'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** A named SQL script; `file` is what errors report (a path relative to root_schemas/). */
export interface SqlScript {
  readonly file: string;
  readonly sql: string;
}

/**
 * Small string facts the control plane attaches to a database it made: the clone or image
 * it belongs to, a checksum. PostgreSQL keeps them in the database comment (readable without
 * connecting to the database); MySQL and SQLite in an internal table inside the database.
 */
export type Marker = Readonly<Record<string, string>>;

/**
 * What the control plane needs from a database engine. One implementation per engine in
 * functions/adapters/engines; core code depends only on this interface.
 * Every `name` is a physical database name and is validated by the implementation.
 */
export interface DatabaseEngine {
  readonly engine: EngineName;
  /** Where the engine is, for messages and logs. Never holds a password. */
  readonly location: string;

  /** Resolves when the server answers; throws EngineUnavailableError otherwise. */
  ping(): Promise<void>;
  databaseExists(name: string): Promise<boolean>;
  /**
   * A database's size on disk and the sessions open on it (SQLite: the file's size; it keeps
   * no count of its readers, so 0). For the health monitor.
   */
  databaseStats(name: string): Promise<{ readonly sizeBytes: number; readonly connections: number }>;
  /** Names of the databases whose name starts with `prefix`, sorted. */
  listDatabases(prefix: string): Promise<string[]>;
  /** Creates an empty database; throws DatabaseExistsError when the name is taken. */
  createDatabase(name: string): Promise<void>;
  /** Drops the database if it exists. Idempotent. */
  dropDatabase(name: string): Promise<void>;
  /** Renames atomically: readers see the old name or the new one with all of its content, never half. */
  renameDatabase(from: string, to: string): Promise<void>;
  /**
   * Runs a multi-statement script statement by statement. On PostgreSQL and SQLite the
   * script runs in one transaction; MySQL commits DDL implicitly. A failure throws
   * ScriptExecutionError naming the file, statement and line.
   */
  applyScript(name: string, script: SqlScript): Promise<void>;
  /** The database's tables, columns, keys, indexes and checks, as the engine reports them. */
  introspect(name: string): Promise<RawTable[]>;
  readMarker(name: string): Promise<Marker | null>;
  writeMarker(name: string, marker: Marker): Promise<void>;
  /**
   * Copies a database with the engine's fastest correct mechanism: PostgreSQL
   * `CREATE DATABASE ... TEMPLATE`, a file copy for SQLite, a table-by-table copy for MySQL.
   * The source's marker is not copied; `marker`, when given, becomes the target's.
   * All or nothing: on failure no target is left. Throws DatabaseExistsError when the target exists.
   */
  cloneDatabase(source: string, target: string, marker?: Marker): Promise<void>;
  /**
   * Makes a finished root image read-only for everyone but the control plane (PostgreSQL:
   * a template database that takes no connections). `dropDatabase` undoes it as needed.
   */
  sealImage(name: string): Promise<void>;
  /**
   * Runs `fn` in one transaction on `name` as the control plane. Placeholders are `?` on
   * every engine (the PostgreSQL adapter numbers them). Rolled back when `fn` throws.
   * MySQL commits DDL implicitly, so there only DML is rolled back.
   */
  transaction<T>(
    name: string,
    fn: (tx: SqlTransaction) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T>;
  /**
   * Creates (or, on a retry, re-aligns) a clone's roles: an owner that cannot log in, one
   * login role per app role with its password, grants per app role, and no PUBLIC access.
   * Idempotent. Refuses (ForeignArtefactError) roles marked with another clone id.
   */
  configureTenantAccess(plan: TenantAccessPlan): Promise<void>;
  /**
   * Inside `tx` on the clone's database: its table ownership and each app role's privileges on
   * every table, the ones a migration just added included, so an upgrade commits its tables
   * with their grants. PostgreSQL and SQLite (nothing to grant) have it; MySQL grants outside
   * any transaction, so an upgrade there calls {@link configureTenantAccess} afterwards.
   */
  alignTableAccess?(tx: SqlTransaction, plan: TableAccessPlan): Promise<void>;
  /** Drops a clone's roles (after its database is gone, or together with its privileges). Idempotent. */
  dropTenantAccess(
    plan: Pick<TenantAccessPlan, 'cloneId' | 'database' | 'ownerRole'> & {
      readonly roleNames: readonly string[];
    },
  ): Promise<void>;
  /**
   * Login and owner roles whose name starts with `prefix`, with the marker they carry (PostgreSQL
   * keeps it in the role's comment). For the reconciler; absent where roles carry no marker.
   */
  listMarkedRoles?(prefix: string): Promise<{ name: string; marker: Marker | null }[]>;
  /** Which of these role names exist; for rollback checks and the reconciler. */
  existingRoles(names: readonly string[]): Promise<string[]>;
  /** Where a tenant connects to `database`. */
  endpoint(database: string): Endpoint;
  /** Opens a session on `database` as a tenant login. Throws when the login is refused. */
  openSession(database: string, login: Login, options?: SessionOptions): Promise<SqlSession>;
  /**
   * Runs `fn` holding an exclusive lock named `name` (a database-name-like word) across every
   * process that uses this server: a PostgreSQL advisory lock, MySQL GET_LOCK, a pid file for
   * SQLite. Root image builds use it so that racing builders wait instead of colliding.
   */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Closes pools and handles. */
  close(): Promise<void>;
}

/** A parameterised statement runner; rows come back as plain objects. */
export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface TransactionOptions {
  /**
   * `commit` (the default): the commit is on disk when the call returns. `deferred`: it is
   * visible at once and atomic as ever, but reaches the disk with the next durable write to
   * the same database (PostgreSQL: any later synchronous commit on the server, since the WAL
   * is flushed in order; SQLite: the next synced write to the file). A crash before then
   * loses the whole transaction, never part of it. Only for a database nobody uses yet whose
   * workflow makes a durable write next, as the clone workflow's security step does. MySQL
   * ignores it (its commits follow the server's innodb_flush_log_at_trx_commit).
   */
  readonly durability?: 'commit' | 'deferred';
}

/** The executor of {@link DatabaseEngine.transaction}. */
export interface SqlTransaction extends SqlExecutor {
  /**
   * The schema as this transaction sees it, uncommitted DDL included (PostgreSQL, SQLite), so
   * that a migration can be verified before it commits. MySQL has committed its DDL already.
   */
  introspect(): Promise<RawTable[]>;
  /**
   * Takes an exclusive lock named `name` until the transaction ends (PostgreSQL: an advisory
   * transaction lock, the same key as {@link DatabaseEngine.withLock}). Absent where the
   * transaction itself excludes other writers (SQLite's BEGIN IMMEDIATE) or cannot hold one.
   */
  lock?(name: string): Promise<void>;
}

export interface SqlSession extends SqlExecutor {
  close(): Promise<void>;
}

/** Settings of a tenant session. */
export interface SessionOptions {
  /** Statements running longer are cancelled by the server (PostgreSQL, MySQL; SQLite has none). */
  readonly statementTimeoutMs?: number;
}

export interface Login {
  readonly username: string;
  readonly password: string;
}

export interface Endpoint {
  readonly host?: string;
  readonly port?: number;
  readonly database: string;
  /** SQLite only: the file. */
  readonly path?: string;
}

/** What configureTenantAccess needs; passwords live only in memory and in the secret store. */
export interface TenantAccessPlan {
  readonly cloneId: string;
  readonly database: string;
  readonly ownerRole: string;
  readonly roles: readonly { readonly appRole: AppRole; readonly name: string; readonly password: string }[];
  /** Per login role. */
  readonly connectionLimit: number;
}

/** What {@link DatabaseEngine.alignTableAccess} needs: role names, no password. */
export interface TableAccessPlan {
  readonly ownerRole: string;
  readonly roles: readonly { readonly appRole: AppRole; readonly name: string }[];
}

/** Table privileges per app role, enforced by each engine's own grants. */
export const APP_ROLE_PRIVILEGES: Readonly<
  Record<AppRole, readonly ('SELECT' | 'INSERT' | 'UPDATE' | 'DELETE')[]>
> = {
  admin: ['SELECT', 'INSERT', 'UPDATE', 'DELETE'],
  user: ['SELECT', 'INSERT', 'UPDATE'],
  analyst: ['SELECT'],
};
