import pg from 'pg';
import {
  APP_ROLE_PRIVILEGES,
  type DatabaseEngine,
  type Endpoint,
  type Login,
  type Marker,
  type SessionOptions,
  type SqlExecutor,
  type SqlScript,
  type SqlSession,
  type SqlTransaction,
  type TableAccessPlan,
  type TenantAccessPlan,
  type TransactionOptions,
} from '../../core/engine.js';
import {
  DatabaseExistsError,
  DatabaseNotFoundError,
  EngineUnavailableError,
  errorMessage,
  ForeignArtefactError,
  LoginRefusedError,
  ScriptExecutionError,
  TransientError,
} from '../../core/errors.js';
import type { RawTable } from '../../core/fingerprint.js';
import { assertDatabaseName } from '../../core/identifiers.js';
import { splitStatements } from '../../core/sql-script.js';
import { redactUrl, withDatabase } from './connection-url.js';
import { assertMarker, INTERNAL_TABLE_PATTERN, parseMarker } from './marker.js';
import { scramSha256Verifier } from './scram.js';
import { type TenantErrorKind, tenantExecutor } from './tenant-errors.js';

/** How PostgreSQL copies a template: WAL_LOG (15+ default) or FILE_COPY (checkpoints; see bench/). */
export type PostgresCloneStrategy = 'WAL_LOG' | 'FILE_COPY';

export interface PostgresEngineOptions {
  /** A superuser (or CREATEDB + CREATEROLE) URL to the maintenance database, e.g. postgres://postgres@127.0.0.1:5432/postgres. */
  readonly url: string;
  readonly cloneStrategy?: PostgresCloneStrategy;
  /** Upper bound of admin connections this engine keeps open. */
  readonly maxConnections?: number;
  /**
   * Keep a connection to each database that per-database work opened, for this many ms of
   * idleness, so that a long-lived process (the local control plane) pays the connection
   * set-up of a new clone once instead of once per step. 0 (the default, and what Lambda uses:
   * a frozen container never times out its idle clients) opens a fresh client every time.
   * Every operation that needs a database free of sessions (drop, rename, seal, clone from it)
   * closes this engine's kept connection to it first.
   */
  readonly keepDatabaseConnectionsMs?: number;
}

const q = (name: string) => pg.escapeIdentifier(assertDatabaseName(name));

/** PostgreSQL through `pg`. One small admin pool; short-lived clients for per-database work. */
export class PostgresEngine implements DatabaseEngine {
  readonly engine = 'postgresql' as const;
  readonly location: string;
  private readonly admin: pg.Pool;
  private readonly databasePools = new Map<string, pg.Pool>();
  private serverVersion?: Promise<number>;

  constructor(private readonly options: PostgresEngineOptions) {
    this.location = redactUrl(options.url);
    this.admin = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 4 });
    // An idle client that loses its server must not crash the process.
    this.admin.on('error', () => {});
  }

  async ping(): Promise<void> {
    try {
      await this.admin.query('SELECT 1');
    } catch (cause) {
      throw new EngineUnavailableError('postgresql', `${this.location}: ${errorMessage(cause)}`, { cause });
    }
  }

  async databaseExists(name: string): Promise<boolean> {
    const r = await this.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      assertDatabaseName(name),
    ]);
    return r.rowCount === 1;
  }

  async databaseStats(name: string): Promise<{ sizeBytes: number; connections: number }> {
    const r = await this.admin.query<{ size: string; connections: string }>(
      'SELECT pg_database_size($1) AS size, (SELECT count(*) FROM pg_stat_activity WHERE datname = $1) AS connections',
      [assertDatabaseName(name)],
    );
    return { sizeBytes: Number(r.rows[0]?.size ?? 0), connections: Number(r.rows[0]?.connections ?? 0) };
  }

  async listDatabases(prefix: string): Promise<string[]> {
    const r = await this.admin.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1 ORDER BY datname',
      [prefix],
    );
    return r.rows.map((row) => row.datname);
  }

  async createDatabase(name: string): Promise<void> {
    await this.adminDdl(name, `CREATE DATABASE ${q(name)}`);
  }

  async dropDatabase(name: string): Promise<void> {
    await this.releaseDatabase(name);
    // A template database cannot be dropped until it is unmarked; FORCE ends stray sessions.
    const r = await this.admin.query<{ datistemplate: boolean }>(
      'SELECT datistemplate FROM pg_database WHERE datname = $1',
      [assertDatabaseName(name)],
    );
    if (r.rows[0]?.datistemplate) await this.admin.query(`ALTER DATABASE ${q(name)} WITH IS_TEMPLATE false`);
    await this.admin.query(`DROP DATABASE IF EXISTS ${q(name)} WITH (FORCE)`);
  }

  async renameDatabase(from: string, to: string): Promise<void> {
    if (!(await this.databaseExists(from))) throw new DatabaseNotFoundError(from);
    await this.releaseDatabase(from);
    await this.adminDdl(to, `ALTER DATABASE ${q(from)} RENAME TO ${q(to)}`);
  }

  async applyScript(name: string, script: SqlScript): Promise<void> {
    const statements = splitStatements('postgresql', script.sql);
    await this.withClient(name, async (client) => {
      await client.query('BEGIN');
      for (const s of statements) {
        try {
          await client.query(s.text);
        } catch (cause) {
          await client.query('ROLLBACK');
          throw new ScriptExecutionError(script.file, s.index, s.line, s.text, cause);
        }
      }
      await client.query('COMMIT');
    });
  }

  async introspect(name: string): Promise<RawTable[]> {
    return this.withClient(name, (client) => introspectPostgres(client));
  }

  async readMarker(name: string): Promise<Marker | null> {
    const r = await this.admin.query<{ comment: string | null }>(
      "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
      [assertDatabaseName(name)],
    );
    return parseMarker(r.rows[0]?.comment);
  }

  async writeMarker(name: string, marker: Marker): Promise<void> {
    // COMMENT is a utility statement and takes no bind parameters; the marker alphabet is
    // restricted by assertMarker and the literal is escaped by the driver.
    const text = JSON.stringify(assertMarker(marker));
    await this.admin.query(`COMMENT ON DATABASE ${q(name)} IS ${pg.escapeLiteral(text)}`);
  }

  async cloneDatabase(source: string, target: string, marker?: Marker): Promise<void> {
    const strategy =
      (await this.version()) >= 150000 ? ` STRATEGY = ${this.options.cloneStrategy ?? 'WAL_LOG'}` : '';
    if (!(await this.databaseExists(source))) throw new DatabaseNotFoundError(source);
    if (await this.databaseExists(target)) throw new DatabaseExistsError(target);
    // Made under a staging name, marked, then renamed into place: a process killed between
    // CREATE DATABASE and its marker leaves an unmarked copy under the staging name, which
    // only this clone's own next attempt uses (and drops), never an unmarked database under
    // the clone's name, which the next attempt would have to refuse as foreign.
    const staging = assertDatabaseName(`${target}__new`);
    if (await this.databaseExists(staging)) await this.dropDatabase(staging);
    await this.releaseDatabase(source);
    try {
      await this.adminDdl(staging, `CREATE DATABASE ${q(staging)} TEMPLATE ${q(source)}${strategy}`);
    } catch (error) {
      // 55006: PostgreSQL copies a database only while nobody is connected to it (a live
      // tenant being branched); a retry a moment later usually finds it idle.
      if ((error as { code?: string }).code === '55006')
        throw new TransientError(
          `cannot copy ${source} while sessions are open on it (PostgreSQL copies an idle database only)`,
          { cause: error },
        );
      throw error;
    }
    try {
      // CREATE DATABASE gives PUBLIC CONNECT and TEMP; close it at once, not only when the
      // clone's roles are configured.
      await this.admin.query(`REVOKE ALL ON DATABASE ${q(staging)} FROM PUBLIC`);
      if (marker) await this.writeMarker(staging, marker);
      await this.admin.query(`ALTER DATABASE ${q(staging)} RENAME TO ${q(target)}`);
    } catch (error) {
      await this.dropDatabase(staging);
      if ((error as { code?: string }).code === '42P04') throw new DatabaseExistsError(target);
      throw error;
    }
  }

  async sealImage(name: string): Promise<void> {
    // No connections means CREATE DATABASE ... TEMPLATE never meets "source database is being
    // accessed by other users", and no tenant role can ever read the image.
    await this.releaseDatabase(name);
    await this.admin.query(`REVOKE ALL ON DATABASE ${q(name)} FROM PUBLIC`);
    await this.admin.query(`ALTER DATABASE ${q(name)} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`);
  }

  async transaction<T>(
    name: string,
    fn: (tx: SqlTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    return this.withClient(name, async (client) => {
      await client.query(
        // An asynchronous commit: the next synchronous one on the server flushes the WAL past it.
        options.durability === 'deferred' ? 'BEGIN; SET LOCAL synchronous_commit = off' : 'BEGIN',
      );
      try {
        const result = await fn({
          ...executor(client),
          introspect: () => introspectPostgres(client),
          lock: async (lockName) => {
            await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
              `clonefactory:${assertDatabaseName(lockName)}`,
            ]);
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  async configureTenantAccess(plan: TenantAccessPlan): Promise<void> {
    await this.closeServerDatabases();
    const marker = pg.escapeLiteral(
      JSON.stringify(
        assertMarker({ kind: 'role', cloneId: plan.cloneId, createdAt: new Date().toISOString() }),
      ),
    );
    const roles = [plan.ownerRole, ...plan.roles.map((r) => r.name)];
    await this.assertRolesOwned(roles, plan.cloneId);
    const limits = 'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS';
    // The owner inherits pg_database_owner's USAGE on schema public: foreign-key checks run
    // as the owner of the referencing table, so without it every cascading DELETE fails.
    await this.ensureRole(plan.ownerRole, `NOLOGIN INHERIT ${limits}`, marker);
    for (const role of plan.roles) {
      const options = `LOGIN NOINHERIT ${limits} CONNECTION LIMIT ${Math.trunc(plan.connectionLimit)} PASSWORD ${pg.escapeLiteral(scramSha256Verifier(role.password))}`;
      await this.ensureRole(role.name, options, marker);
    }
    // The owner cannot log in; an owner that could would be able to re-grant CONNECT to PUBLIC.
    await this.admin.query(`ALTER DATABASE ${q(plan.database)} OWNER TO ${q(plan.ownerRole)}`);
    await this.admin.query(`REVOKE ALL ON DATABASE ${q(plan.database)} FROM PUBLIC`);
    const logins = plan.roles.map((r) => q(r.name)).join(', ');
    await this.admin.query(`GRANT CONNECT ON DATABASE ${q(plan.database)} TO ${logins}`);
    await this.transaction(plan.database, (tx) => this.alignTableAccess(tx, plan));
  }

  /**
   * The clone's table privileges inside `tx`: tables owned by its owner, each app role's
   * privileges on every table (read-only on control-plane tables), and no grant held by any
   * other role. Run by configureTenantAccess, and by an upgrade in its migration's transaction.
   */
  async alignTableAccess(tx: SqlTransaction, plan: TableAccessPlan): Promise<void> {
    const logins = plan.roles.map((r) => q(r.name)).join(', ');
    await tx.query('REVOKE ALL ON SCHEMA public FROM PUBLIC');
    await tx.query(`GRANT USAGE ON SCHEMA public TO ${q(plan.ownerRole)}`);
    await tx.query(`GRANT USAGE ON SCHEMA public TO ${logins}`);
    // Cloned tables belong to whoever built the image: hand them to the clone's owner.
    const tables = await tx.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')",
    );
    if (tables.length)
      await tx.query(
        tables
          .map((t) => `ALTER TABLE public.${pg.escapeIdentifier(t.name)} OWNER TO ${q(plan.ownerRole)}`)
          .join(';\n'),
      );
    // A branch is copied from a live tenant, grants included: only this clone's roles keep any.
    const ours = new Set([plan.ownerRole, ...plan.roles.map((r) => r.name)]);
    const granted = await tx.query<{ role: string; me: string }>(
      `SELECT DISTINCT pg_get_userbyid(a.grantee) AS role, current_user AS me
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
       WHERE n.nspname = 'public' AND a.grantee <> 0 AND a.grantee <> c.relowner
       UNION
       SELECT DISTINCT pg_get_userbyid(a.grantee), current_user
       FROM pg_namespace n, aclexplode(n.nspacl) a
       WHERE n.nspname = 'public' AND a.grantee <> 0 AND a.grantee <> n.nspowner`,
    );
    for (const { role, me } of granted) {
      if (ours.has(role) || role === me) continue;
      const r = pg.escapeIdentifier(role);
      await tx.query(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${r}`);
      await tx.query(`REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ${r}`);
      await tx.query(`REVOKE ALL ON SCHEMA public FROM ${r}`);
    }
    // One round trip for the grants: identifiers only, no parameters, so one simple query.
    const grants: string[] = [];
    for (const role of plan.roles) {
      const privileges = APP_ROLE_PRIVILEGES[role.appRole];
      for (const t of tables) {
        const table = `public.${pg.escapeIdentifier(t.name)}`;
        grants.push(`REVOKE ALL ON TABLE ${table} FROM ${q(role.name)}`);
        // Control-plane tables are readable, never writable, by tenant roles.
        const allowed = INTERNAL_TABLE_PATTERN.test(t.name) ? ['SELECT'] : privileges;
        grants.push(`GRANT ${allowed.join(', ')} ON TABLE ${table} TO ${q(role.name)}`);
      }
      if (privileges.includes('INSERT'))
        grants.push(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${q(role.name)}`);
    }
    if (grants.length) await tx.query(grants.join(';\n'));
  }

  async dropTenantAccess(
    plan: Pick<TenantAccessPlan, 'cloneId' | 'database' | 'ownerRole'> & {
      readonly roleNames: readonly string[];
    },
  ): Promise<void> {
    const all = [plan.ownerRole, ...plan.roleNames];
    const existing = await this.existingRoles(all);
    if (existing.length === 0) return;
    await this.assertRolesOwned(existing, plan.cloneId);
    if (await this.databaseExists(plan.database)) {
      await this.withClient(plan.database, (c) => c.query(`DROP OWNED BY ${existing.map(q).join(', ')}`));
      const r = await this.admin.query<{ owner: string }>(
        'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
        [plan.database],
      );
      if (r.rows[0]?.owner === plan.ownerRole)
        await this.admin.query(`ALTER DATABASE ${q(plan.database)} OWNER TO CURRENT_USER`);
    }
    for (const role of existing) await this.admin.query(`DROP ROLE IF EXISTS ${q(role)}`);
  }

  async existingRoles(names: readonly string[]): Promise<string[]> {
    const r = await this.admin.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY rolname',
      [names.map((n) => assertDatabaseName(n))],
    );
    return r.rows.map((row) => row.rolname);
  }

  endpoint(database: string): Endpoint {
    const u = new URL(this.options.url);
    return { host: u.hostname, port: Number(u.port || 5432), database: assertDatabaseName(database) };
  }

  async openSession(database: string, login: Login, options: SessionOptions = {}): Promise<SqlSession> {
    const { host, port } = this.endpoint(database);
    const client = new pg.Client({
      host,
      port,
      database,
      user: login.username,
      password: login.password,
      connectionTimeoutMillis: 5000,
      ...(options.statementTimeoutMs ? { statement_timeout: Math.trunc(options.statementTimeoutMs) } : {}),
    });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      // The server has ended a refused session already; what is left is this side's socket,
      // which closes on its own time (waiting for it cost the isolation probe about 3 ms).
      client.end().catch(() => {});
      throw loginRefusal(error, database) ?? error;
    }
    return { ...tenantExecutor(executor(client), classifyTenantError), close: () => client.end() };
  }

  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    // A client of its own: waiting on a pool client could starve the pool that `fn` needs.
    const client = new pg.Client({ connectionString: this.options.url, statement_timeout: 120_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [
        `clonefactory:${assertDatabaseName(name)}`,
      ]);
      return await fn();
    } finally {
      await client.end();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.databasePools.keys()].map((name) => this.releaseDatabase(name)));
    await this.admin.end();
  }

  /** Ends the kept connections to `name`, if any. */
  private async releaseDatabase(name: string): Promise<void> {
    const pool = this.databasePools.get(name);
    if (!pool) return;
    this.databasePools.delete(name);
    await pool.end().catch(() => {});
  }

  /**
   * PostgreSQL grants CONNECT on `postgres` and `template1` to PUBLIC by default, which
   * would let any tenant login open them. Closed once per engine instance; idempotent.
   */
  private closedServerDatabases?: Promise<void>;
  private closeServerDatabases(): Promise<void> {
    this.closedServerDatabases ??= (async () => {
      await this.admin.query('REVOKE CONNECT ON DATABASE postgres FROM PUBLIC');
      await this.admin.query('REVOKE CONNECT ON DATABASE template1 FROM PUBLIC');
    })();
    this.closedServerDatabases.catch(() => {
      this.closedServerDatabases = undefined;
    });
    return this.closedServerDatabases;
  }

  /**
   * Creates the role, or aligns an existing one, and writes its marker comment in the same
   * transaction: a role never exists without the clone id that owns it.
   */
  private async ensureRole(name: string, options: string, marker: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.admin.connect();
      const returned = lent(client);
      try {
        await client.query('BEGIN');
        const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
          assertDatabaseName(name),
        ]);
        await client.query(`${exists.rowCount ? 'ALTER' : 'CREATE'} ROLE ${q(name)} ${options}`);
        await client.query(`COMMENT ON ROLE ${q(name)} IS ${marker}`);
        await client.query('COMMIT');
        return;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        const code = (error as { code?: string }).code;
        // 42710/23505: a concurrent retry created it first; the next attempt aligns it.
        if (attempt > 0 || (code !== '42710' && code !== '23505')) throw error;
      } finally {
        client.release(returned());
      }
    }
  }

  async listMarkedRoles(prefix: string): Promise<{ name: string; marker: Marker | null }[]> {
    const r = await this.admin.query<{ rolname: string; comment: string | null }>(
      "SELECT rolname, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE left(rolname, length($1)) = $1 ORDER BY rolname",
      [prefix],
    );
    return r.rows.map((row) => ({ name: row.rolname, marker: parseMarker(row.comment) }));
  }

  /** Refuses roles whose comment names another clone. */
  private async assertRolesOwned(names: readonly string[], cloneId: string): Promise<void> {
    const r = await this.admin.query<{ rolname: string; comment: string | null }>(
      "SELECT rolname, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = ANY($1::text[])",
      [names.map((n) => assertDatabaseName(n))],
    );
    for (const row of r.rows) {
      const owner = parseMarker(row.comment)?.cloneId;
      if (owner !== cloneId) throw new ForeignArtefactError('role', row.rolname, owner ?? '(unmarked)');
    }
  }

  private version(): Promise<number> {
    this.serverVersion ??= this.admin
      .query<{ server_version_num: string }>('SHOW server_version_num')
      .then((r) => Number(r.rows[0]?.server_version_num ?? 0));
    // A failed lookup is not remembered: the next call asks again.
    this.serverVersion.catch(() => {
      this.serverVersion = undefined;
    });
    return this.serverVersion;
  }

  /** Runs DDL that creates `name`, translating "already exists" (however it surfaces) into DatabaseExistsError. */
  private async adminDdl(name: string, sql: string): Promise<void> {
    try {
      await this.admin.query(sql);
    } catch (error) {
      // 42P04 duplicate_database; 23505 when two sessions race for the same name in pg_database.
      const code = (error as { code?: string }).code;
      if (code === '42P04' || code === '23505') throw new DatabaseExistsError(name);
      throw error;
    }
  }

  private async withClient<T>(name: string, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const database = assertDatabaseName(name);
    const keepMs = this.options.keepDatabaseConnectionsMs ?? 0;
    let client: pg.ClientBase & { release?: (error?: Error | boolean) => void };
    try {
      if (keepMs > 0) {
        let pool = this.databasePools.get(database);
        if (!pool) {
          pool = new pg.Pool({
            connectionString: withDatabase(this.options.url, database),
            max: 2,
            idleTimeoutMillis: keepMs,
            allowExitOnIdle: true,
          });
          // A kept client whose session ends (DROP DATABASE ... FORCE elsewhere) is dropped by
          // the pool; it must not crash the process.
          pool.on('error', () => {});
          this.databasePools.set(database, pool);
        }
        client = await pool.connect();
      } else {
        const fresh = new pg.Client({ connectionString: withDatabase(this.options.url, database) });
        fresh.on('error', () => {});
        try {
          await fresh.connect();
        } catch (error) {
          await fresh.end().catch(() => {});
          throw error;
        }
        client = fresh;
      }
    } catch (cause) {
      if ((cause as { code?: string }).code === '3D000') {
        await this.releaseDatabase(database);
        throw new DatabaseNotFoundError(name);
      }
      throw new EngineUnavailableError('postgresql', `${this.location}: ${errorMessage(cause)}`, { cause });
    }
    let failure: unknown;
    const returned = lent(client);
    try {
      return await fn(client);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      const ended = returned();
      if (client.release) {
        // A client that failed is not trusted with the next step's work: it is closed.
        client.release(failure !== undefined || ended);
      } else await (client as pg.Client).end();
    }
  }
}

/**
 * Watches a client while it is out of its pool, which then has no 'error' listener (pg-pool
 * removes its own): a session the server ends between two queries (DROP DATABASE ... WITH
 * (FORCE) from another operation) would otherwise emit an unhandled 'error' and end the
 * process; instead the next query fails. Call the returned function when giving the client
 * back: it stops watching and says whether the server ended the session, so that such a
 * client is closed rather than reused. (Found by the reliability suite's load test: `clonectl
 * serve` died while tenants were deleted under its health monitor.)
 */
function lent(client: pg.ClientBase): () => boolean {
  let ended = false;
  const onError = () => {
    ended = true;
  };
  client.on('error', onError);
  return () => {
    client.removeListener('error', onError);
    return ended;
  };
}

/** `?` placeholders become `$1..$n` (our SQL never has a `?` inside a literal). */
function executor(client: pg.ClientBase): SqlExecutor {
  return {
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      let n = 0;
      const text = params.length ? sql.replace(/\?/g, () => `$${++n}`) : sql;
      try {
        return (await client.query(text, params as unknown[])).rows as T[];
      } catch (error) {
        // 40001 serialization failure, 40P01 deadlock, 55P03 lock not available: try again.
        const code = (error as { code?: string }).code;
        if (code === '40001' || code === '40P01' || code === '55P03')
          throw new TransientError(errorMessage(error), { cause: error });
        throw error;
      }
    },
  };
}

/**
 * A refused tenant login: 42501 (no CONNECT on the database) and 55000 (a template database
 * that takes no connections, such as a root image) come after authentication; 28P01 (wrong
 * password) and 28000 (no such role, or no pg_hba entry) before it.
 */
function loginRefusal(error: unknown, database: string): LoginRefusedError | null {
  const code = (error as { code?: string }).code;
  if (code === '42501' || code === '55000') return new LoginRefusedError(database, true, { cause: error });
  if (code === '28P01' || code === '28000') return new LoginRefusedError(database, false, { cause: error });
  return null;
}

/** PostgreSQL: 42501 insufficient privilege; classes 22 (data) and 23 (integrity). */
function classifyTenantError(error: unknown): TenantErrorKind {
  const code = String((error as { code?: string }).code ?? '');
  if (code === '42501') return 'denied';
  return code.startsWith('23') || code.startsWith('22') ? 'values' : null;
}

const FK_ACTIONS: Record<string, string> = {
  a: 'no action',
  r: 'restrict',
  c: 'cascade',
  n: 'set null',
  d: 'set default',
};

/** The four catalogue reads of {@link introspectPostgres}: parameterless, so sent as one batch. */
const INTROSPECT_SQL = [
  `SELECT c.oid, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
  `SELECT a.attrelid AS table_oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`,
  `SELECT con.conrelid AS table_oid, con.conname AS name, con.contype AS type,
            ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns,
            rc.relname AS ref_table,
            ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
                  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS ref_columns,
            con.confdeltype AS on_delete, pg_get_constraintdef(con.oid) AS definition, con.conindid AS index_oid
     FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_class rc ON rc.oid = con.confrelid
     WHERE n.nspname = 'public' AND con.contype IN ('p', 'f', 'u', 'c')`,
  `SELECT i.indrelid AS table_oid, i.indexrelid AS index_oid, ic.relname AS name, i.indisunique AS unique, i.indisprimary AS primary,
            ARRAY(SELECT COALESCE(a.attname, '(expression)') FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
                  LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS columns
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'`,
].join(';\n');

interface IntrospectRows {
  tables: { oid: number; name: string };
  columns: { table_oid: number; name: string; type: string; notnull: boolean };
  constraints: {
    table_oid: number;
    name: string;
    type: string;
    columns: string[];
    ref_table: string | null;
    ref_columns: string[] | null;
    on_delete: string;
    definition: string;
    index_oid: number;
  };
  indexes: {
    table_oid: number;
    index_oid: number;
    name: string;
    unique: boolean;
    primary: boolean;
    columns: string[];
  };
}

/** Reads the public schema from the catalogs. Exported for the health monitor and drift checks. */
export async function introspectPostgres(client: pg.ClientBase): Promise<RawTable[]> {
  // One round trip (the simple query protocol answers each statement in turn): the fingerprint
  // check of every clone runs this while its isolation probe opens three sessions beside it.
  const results = (await client.query(INTROSPECT_SQL)) as unknown as pg.QueryResult[];
  const [tables, columns, constraints, indexes] = results as [
    pg.QueryResult<IntrospectRows['tables']>,
    pg.QueryResult<IntrospectRows['columns']>,
    pg.QueryResult<IntrospectRows['constraints']>,
    pg.QueryResult<IntrospectRows['indexes']>,
  ];
  const constraintIndexes = new Set(
    constraints.rows.filter((c) => c.type === 'u' || c.type === 'p').map((c) => c.index_oid),
  );
  return tables.rows.map((t) => {
    const mine = constraints.rows.filter((c) => c.table_oid === t.oid);
    const myIndexes = indexes.rows.filter(
      (i) => i.table_oid === t.oid && !i.primary && !constraintIndexes.has(i.index_oid),
    );
    return {
      name: t.name,
      columns: columns.rows
        .filter((c) => c.table_oid === t.oid)
        .map((c) => ({ name: c.name, type: c.type, nullable: !c.notnull })),
      primaryKey: mine.find((c) => c.type === 'p')?.columns ?? [],
      foreignKeys: mine
        .filter((c) => c.type === 'f')
        .map((c) => ({
          columns: c.columns,
          refTable: c.ref_table ?? '',
          refColumns: c.ref_columns ?? [],
          onDelete: FK_ACTIONS[c.on_delete] ?? c.on_delete,
        })),
      uniques: [
        ...mine.filter((c) => c.type === 'u').map((c) => c.columns),
        ...myIndexes.filter((i) => i.unique).map((i) => i.columns),
      ],
      indexes: myIndexes.filter((i) => !i.unique).map((i) => ({ name: i.name, columns: i.columns })),
      checks: mine.filter((c) => c.type === 'c').map((c) => ({ name: c.name, expression: c.definition })),
    };
  });
}
