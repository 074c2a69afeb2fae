import mysql from 'mysql2/promise';
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
  type TenantAccessPlan,
  type TransactionOptions,
} from '../../core/engine.js';
import {
  CloneFactoryError,
  DatabaseExistsError,
  DatabaseNotFoundError,
  EngineUnavailableError,
  errorMessage,
  LoginRefusedError,
  ScriptExecutionError,
  TransientError,
} from '../../core/errors.js';
import type { RawTable } from '../../core/fingerprint.js';
import { assertDatabaseName } from '../../core/identifiers.js';
import { splitStatements } from '../../core/sql-script.js';
import { redactUrl } from './connection-url.js';
import { assertMarker, INTERNAL_TABLE_PATTERN, MARKER_TABLE, parseMarker } from './marker.js';
import { type TenantErrorKind, tenantExecutor } from './tenant-errors.js';

export interface MysqlEngineOptions {
  /** e.g. mysql://root@127.0.0.1:3306 — a user that may create and drop databases. */
  readonly url: string;
  readonly maxConnections?: number;
}

/** Quotes with mysql2's escapeId, refusing qualified names (a dot would split the identifier). */
const q = (name: string) => mysql.escapeId(assertDatabaseName(name), true);
const qt = (table: string) => mysql.escapeId(table, true);

/**
 * MySQL 8 and MariaDB 10.11 through `mysql2`. DDL commits implicitly here, so scripts are
 * not transactional; root images are built under a temporary name and dropped on failure.
 */
export class MysqlEngine implements DatabaseEngine {
  readonly engine = 'mysql' as const;
  readonly location: string;
  private readonly pool: mysql.Pool;
  private flavour?: Promise<'mariadb' | 'mysql'>;
  private sessionFlavour?: Promise<'mariadb' | 'mysql'>;

  constructor(private readonly options: MysqlEngineOptions) {
    this.location = redactUrl(options.url);
    this.pool = mysql.createPool({ uri: options.url, connectionLimit: options.maxConnections ?? 4 });
  }

  async ping(): Promise<void> {
    try {
      await this.pool.query('SELECT 1');
    } catch (cause) {
      throw new EngineUnavailableError('mysql', `${this.location}: ${errorMessage(cause)}`, { cause });
    }
  }

  async databaseExists(name: string): Promise<boolean> {
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      'SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [assertDatabaseName(name)],
    );
    return rows.length === 1;
  }

  async databaseStats(name: string): Promise<{ sizeBytes: number; connections: number }> {
    const db = assertDatabaseName(name);
    const [size] = await this.pool.query<mysql.RowDataPacket[]>(
      'SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS size FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
      [db],
    );
    const [sessions] = await this.pool.query<mysql.RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ?',
      [db],
    );
    return { sizeBytes: Number(size[0]?.size ?? 0), connections: Number(sessions[0]?.n ?? 0) };
  }

  async listDatabases(prefix: string): Promise<string[]> {
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, CHAR_LENGTH(?)) = ? ORDER BY SCHEMA_NAME',
      [prefix, prefix],
    );
    return rows.map((r) => r.name as string);
  }

  async createDatabase(name: string): Promise<void> {
    try {
      await this.pool.query(`CREATE DATABASE ${q(name)}`);
    } catch (error) {
      if ((error as { errno?: number }).errno === 1007) throw new DatabaseExistsError(name);
      throw error;
    }
  }

  async dropDatabase(name: string): Promise<void> {
    await this.pool.query(`DROP DATABASE IF EXISTS ${q(name)}`);
  }

  /**
   * MySQL cannot rename a database. This creates the target and moves every table with one
   * RENAME TABLE statement, which is atomic: the tables appear in the target all at once.
   */
  async renameDatabase(from: string, to: string): Promise<void> {
    if (!(await this.databaseExists(from))) throw new DatabaseNotFoundError(from);
    await this.createDatabase(to);
    const tables = await this.tables(from);
    if (tables.length) {
      await this.pool.query(
        `RENAME TABLE ${tables.map((t) => `${q(from)}.${qt(t)} TO ${q(to)}.${qt(t)}`).join(', ')}`,
      );
    }
    await this.dropDatabase(from);
  }

  async applyScript(name: string, script: SqlScript): Promise<void> {
    const statements = splitStatements('mysql', script.sql);
    const conn = await this.connect(name);
    try {
      for (const s of statements) {
        try {
          await conn.query(s.text);
        } catch (cause) {
          throw new ScriptExecutionError(script.file, s.index, s.line, s.text, cause);
        }
      }
    } finally {
      await conn.end();
    }
  }

  async introspect(name: string): Promise<RawTable[]> {
    const db = assertDatabaseName(name);
    if (!(await this.databaseExists(db))) throw new DatabaseNotFoundError(db);
    const query = async (sql: string, params: unknown[]) =>
      (await this.pool.query<mysql.RowDataPacket[]>(sql, params))[0];
    const tables = await this.tables(db);
    const columns = await query(
      `SELECT TABLE_NAME AS t, COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type,
              IS_NULLABLE AS nullable, CHARACTER_MAXIMUM_LENGTH AS len, NUMERIC_PRECISION AS p, NUMERIC_SCALE AS s
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?`,
      [db],
    );
    const stats = await query(
      `SELECT TABLE_NAME AS t, INDEX_NAME AS name, NON_UNIQUE AS non_unique, COLUMN_NAME AS col
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
      [db],
    );
    // Foreign keys: two single-table reads joined here. A join of KEY_COLUMN_USAGE with
    // REFERENTIAL_CONSTRAINTS makes MariaDB open every schema on the server (78 ms with 200
    // tenant schemas, against under 1 ms for each read alone; see bench/results/clone.json).
    const keyColumns = await query(
      `SELECT TABLE_NAME AS t, CONSTRAINT_NAME AS name, COLUMN_NAME AS col, REFERENCED_TABLE_NAME AS ref_table,
              REFERENCED_COLUMN_NAME AS ref_col
       FROM information_schema.KEY_COLUMN_USAGE
       WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL
       ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`,
      [db],
    );
    const rules = await query(
      `SELECT TABLE_NAME AS t, CONSTRAINT_NAME AS name, DELETE_RULE AS on_delete
       FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`,
      [db],
    );
    const deleteRule = new Map(rules.map((r) => [`${r.t}\u0000${r.name}`, r.on_delete as string]));
    const fks = keyColumns
      .filter((k) => deleteRule.has(`${k.t}\u0000${k.name}`))
      .map((k) => ({
        t: k.t as string,
        name: k.name as string,
        col: k.col as string,
        ref_table: k.ref_table as string,
        ref_col: k.ref_col as string,
        on_delete: deleteRule.get(`${k.t}\u0000${k.name}`) as string,
      }));
    // MySQL 8's CHECK_CONSTRAINTS has no TABLE_NAME (names are unique per schema there);
    // MariaDB's does, and MariaDB allows the same check name on two tables.
    const sameTable = (await this.getFlavour()) === 'mariadb' ? 'AND tc.TABLE_NAME = cc.TABLE_NAME' : '';
    const checks = await query(
      `SELECT tc.TABLE_NAME AS t, cc.CONSTRAINT_NAME AS name, cc.CHECK_CLAUSE AS expression
       FROM information_schema.CHECK_CONSTRAINTS cc
       JOIN information_schema.TABLE_CONSTRAINTS tc
         ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME
        AND tc.CONSTRAINT_TYPE = 'CHECK' ${sameTable}
       WHERE cc.CONSTRAINT_SCHEMA = ? AND tc.TABLE_SCHEMA = ?`,
      [db, db],
    );
    return tables.map((t) => {
      const indexNames = [...new Set(stats.filter((s) => s.t === t).map((s) => s.name as string))];
      const indexColumns = (n: string) =>
        stats.filter((s) => s.t === t && s.name === n).map((s) => s.col as string);
      const fkNames = [...new Set(fks.filter((f) => f.t === t).map((f) => f.name as string))];
      return {
        name: t,
        columns: columns
          .filter((c) => c.t === t)
          .map((c) => ({ name: c.name, type: mysqlType(c), nullable: c.nullable === 'YES' })),
        primaryKey: indexColumns('PRIMARY'),
        foreignKeys: fkNames.map((n) => {
          const parts = fks.filter((f) => f.t === t && f.name === n);
          return {
            columns: parts.map((p) => p.col as string),
            refTable: parts[0]?.ref_table as string,
            refColumns: parts.map((p) => p.ref_col as string),
            onDelete: parts[0]?.on_delete as string,
          };
        }),
        uniques: indexNames
          .filter(
            (n) =>
              n !== 'PRIMARY' && stats.some((s) => s.t === t && s.name === n && Number(s.non_unique) === 0),
          )
          .map(indexColumns),
        indexes: indexNames
          .filter((n) => stats.some((s) => s.t === t && s.name === n && Number(s.non_unique) === 1))
          .map((n) => ({ name: n, columns: indexColumns(n) })),
        checks: checks
          .filter((c) => c.t === t)
          .map((c) => ({ name: c.name as string, expression: c.expression as string })),
      };
    });
  }

  async readMarker(name: string): Promise<Marker | null> {
    const db = assertDatabaseName(name);
    const [found] = await this.pool.query<mysql.RowDataPacket[]>(
      'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
      [db, MARKER_TABLE],
    );
    if (found.length === 0) return null;
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      `SELECT marker FROM ${q(db)}.${qt(MARKER_TABLE)} WHERE id = 1`,
    );
    return parseMarker(rows[0]?.marker as string | undefined);
  }

  async writeMarker(name: string, marker: Marker): Promise<void> {
    const conn = await this.connect(name);
    try {
      for (const [sql, params] of markerStatements(marker)) await conn.query(sql, params);
    } finally {
      await conn.end();
    }
  }

  /**
   * Copies the source's tables (DDL from SHOW CREATE TABLE, rows with INSERT ... SELECT)
   * on one connection with foreign key checks off. On any failure the target is dropped.
   * bench/ compares this with replaying the scripts.
   */
  async cloneDatabase(source: string, target: string, marker?: Marker): Promise<void> {
    const src = assertDatabaseName(source);
    if (!(await this.databaseExists(src))) throw new DatabaseNotFoundError(src);
    const tables = (await this.tables(src)).filter((t) => t !== MARKER_TABLE);
    const ddl: string[] = [];
    for (const t of tables) {
      const [rows] = await this.pool.query<mysql.RowDataPacket[]>(`SHOW CREATE TABLE ${q(src)}.${qt(t)}`);
      ddl.push(rows[0]?.['Create Table'] as string);
    }
    await this.createDatabase(target);
    let conn: mysql.Connection | undefined;
    try {
      conn = await this.connect(target);
      // MySQL cannot rename a database into place: the marker comes first, flagged incomplete
      // until the last table is copied, so that a process killed midway leaves a database its
      // own clone's next attempt recognises as half-made (see adoptDatabase in the workflow).
      if (marker)
        for (const [sql, params] of markerStatements({ ...marker, incomplete: 'true' }))
          await conn.query(sql, params);
      await conn.query('SET FOREIGN_KEY_CHECKS = 0');
      for (const [i, t] of tables.entries()) {
        await conn.query(ddl[i] as string);
        await conn.query(`INSERT INTO ${qt(t)} SELECT * FROM ${q(src)}.${qt(t)}`);
      }
      await conn.query('SET FOREIGN_KEY_CHECKS = 1');
      if (marker) for (const [sql, params] of markerStatements(marker)) await conn.query(sql, params);
    } catch (error) {
      await this.dropDatabase(target);
      throw error;
    } finally {
      await conn?.end();
    }
  }

  async sealImage(_name: string): Promise<void> {
    // MySQL has no template databases; the image's schema is only ever read by the control plane.
  }

  /** `options.durability` does not apply: commits follow the server's innodb_flush_log_at_trx_commit. */
  async transaction<T>(
    name: string,
    fn: (tx: SqlTransaction) => Promise<T>,
    _options?: TransactionOptions,
  ): Promise<T> {
    const conn = await this.connect(name);
    try {
      await conn.beginTransaction();
      try {
        // DDL commits implicitly on MySQL: the schema a transaction sees is the committed one.
        const result = await fn({ ...executor(conn), introspect: () => this.introspect(name) });
        await conn.commit();
        return result;
      } catch (error) {
        await conn.rollback().catch(() => {});
        throw error;
      }
    } finally {
      await conn.end();
    }
  }

  /**
   * Users are `'<role>'@'%'`; their names carry the clone id (MariaDB has no user comments).
   * Privileges are granted per table, not `ON db.*`: that keeps `_` and `%` in database
   * names from acting as wildcards, and keeps control-plane tables read-only.
   */
  async configureTenantAccess(plan: TenantAccessPlan): Promise<void> {
    try {
      await this.configureTenantAccessUnsafe(plan);
    } catch (error) {
      // mysql2 keeps the failed statement on error.sql, and CREATE/ALTER USER statements hold
      // the password: rethrow the server's message alone, with any password masked.
      let message = errorMessage(error);
      for (const role of plan.roles) message = message.split(role.password).join('***');
      throw new CloneFactoryError(`MySQL refused the access setup of ${plan.database}: ${message}`);
    }
  }

  private async configureTenantAccessUnsafe(plan: TenantAccessPlan): Promise<void> {
    const tables = await this.tables(plan.database);
    for (const role of plan.roles) {
      const user = `${mysql.escape(assertDatabaseName(role.name))}@'%'`;
      const password = mysql.escape(role.password);
      const limit = `WITH MAX_USER_CONNECTIONS ${Math.trunc(plan.connectionLimit)}`;
      await this.pool.query(`CREATE USER IF NOT EXISTS ${user} IDENTIFIED BY ${password} ${limit}`);
      await this.pool.query(`ALTER USER ${user} IDENTIFIED BY ${password} ${limit}`);
      await this.pool.query(`REVOKE ALL PRIVILEGES, GRANT OPTION FROM ${user}`);
      for (const t of tables) {
        const allowed = INTERNAL_TABLE_PATTERN.test(t) ? ['SELECT'] : APP_ROLE_PRIVILEGES[role.appRole];
        await this.pool.query(`GRANT ${allowed.join(', ')} ON ${q(plan.database)}.${qt(t)} TO ${user}`);
      }
    }
  }

  async dropTenantAccess(
    plan: Pick<TenantAccessPlan, 'cloneId' | 'database' | 'ownerRole'> & {
      readonly roleNames: readonly string[];
    },
  ): Promise<void> {
    for (const name of plan.roleNames)
      await this.pool.query(`DROP USER IF EXISTS ${mysql.escape(assertDatabaseName(name))}@'%'`);
  }

  async existingRoles(names: readonly string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      "SELECT DISTINCT User AS name FROM mysql.user WHERE Host = '%' AND User IN (?) ORDER BY User",
      [names.map((n) => assertDatabaseName(n))],
    );
    return rows.map((r) => r.name as string);
  }

  endpoint(database: string): Endpoint {
    const u = new URL(this.options.url);
    return { host: u.hostname, port: Number(u.port || 3306), database: assertDatabaseName(database) };
  }

  async openSession(database: string, login: Login, options: SessionOptions = {}): Promise<SqlSession> {
    const { host, port } = this.endpoint(database);
    const conn = await mysql
      .createConnection({
        host,
        port,
        database,
        user: login.username,
        password: login.password,
        connectTimeout: 5000,
      })
      .catch((error: unknown) => {
        throw loginRefusal(error, database) ?? error;
      });
    conn.on('error', () => {});
    try {
      if (options.statementTimeoutMs) {
        // MariaDB counts seconds for every statement; MySQL 8 counts ms, for SELECT only.
        // Asked on a session, once: on AWS the engine object has no admin login to ask with.
        this.sessionFlavour ??= conn
          .query<mysql.RowDataPacket[]>('SELECT VERSION() AS v')
          .then(([rows]) => (/mariadb/i.test(String(rows[0]?.v)) ? 'mariadb' : 'mysql'));
        this.sessionFlavour.catch(() => {
          this.sessionFlavour = undefined;
        });
        if ((await this.sessionFlavour) === 'mariadb')
          await conn.query('SET SESSION max_statement_time = ?', [options.statementTimeoutMs / 1000]);
        else await conn.query('SET SESSION max_execution_time = ?', [Math.trunc(options.statementTimeoutMs)]);
      }
    } catch (error) {
      await conn.end().catch(() => {});
      throw error;
    }
    return { ...tenantExecutor(executor(conn), classifyTenantError), close: () => conn.end() };
  }

  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    // A connection of its own: the lock lives as long as the connection.
    const conn = await mysql.createConnection({ uri: this.options.url });
    conn.on('error', () => {});
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 120) AS ok', [
        `cf:${assertDatabaseName(name)}`,
      ]);
      if (Number(rows[0]?.ok) !== 1) throw new TransientError(`timed out waiting for lock ${name}`);
      return await fn();
    } finally {
      await conn.end();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async tables(db: string): Promise<string[]> {
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
      [db],
    );
    return rows.map((r) => r.name as string);
  }

  private getFlavour(): Promise<'mariadb' | 'mysql'> {
    this.flavour ??= this.pool
      .query<mysql.RowDataPacket[]>('SELECT VERSION() AS v')
      .then(([rows]) => (String(rows[0]?.v).includes('MariaDB') ? 'mariadb' : 'mysql'));
    this.flavour.catch(() => {
      this.flavour = undefined;
    });
    return this.flavour;
  }

  /** A connection of its own with `database` selected, for scripts and session settings. */
  private async connect(database: string): Promise<mysql.Connection> {
    const url = new URL(this.options.url);
    url.pathname = `/${encodeURIComponent(assertDatabaseName(database))}`;
    try {
      const conn = await mysql.createConnection({ uri: url.toString() });
      // A connection the server ends between two queries must fail the next query, not end
      // the process with an unhandled 'error' (as a PostgreSQL one did; see PostgresEngine).
      conn.on('error', () => {});
      return conn;
    } catch (cause) {
      if ((cause as { errno?: number }).errno === 1049) throw new DatabaseNotFoundError(database);
      throw new EngineUnavailableError('mysql', `${this.location}: ${errorMessage(cause)}`, { cause });
    }
  }
}

function executor(conn: mysql.Connection): SqlExecutor {
  return {
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      try {
        const [rows] = await conn.query(sql, params as unknown[]);
        return (Array.isArray(rows) ? rows : []) as T[];
      } catch (error) {
        // 1205 lock wait timeout, 1213 deadlock: try again.
        const errno = (error as { errno?: number }).errno;
        if (errno === 1205 || errno === 1213) throw new TransientError(errorMessage(error), { cause: error });
        throw error;
      }
    },
  };
}

/** MySQL error numbers: privilege refusals, and constraint or value refusals. */
/**
 * A refused tenant login: 1044 (ER_DBACCESS_DENIED_ERROR) comes after authentication, 1045
 * (ER_ACCESS_DENIED_ERROR: unknown user or wrong password) before it.
 */
function loginRefusal(error: unknown, database: string): LoginRefusedError | null {
  const errno = (error as { errno?: number }).errno;
  if (errno === 1044) return new LoginRefusedError(database, true, { cause: error });
  if (errno === 1045) return new LoginRefusedError(database, false, { cause: error });
  return null;
}

const DENIED = new Set([1044, 1142, 1143, 1227, 1370]);
// 1265: "Data truncated for column", an error in strict mode (e.g. '1abc' for an integer).
const REFUSED_VALUES = new Set([1048, 1062, 1264, 1265, 1292, 1364, 1366, 1406, 1451, 1452, 3819, 4025]);

function classifyTenantError(error: unknown): TenantErrorKind {
  const errno = Number((error as { errno?: number }).errno);
  if (DENIED.has(errno)) return 'denied';
  return REFUSED_VALUES.has(errno) ? 'values' : null;
}

function markerStatements(marker: Marker): [string, unknown[]][] {
  return [
    [
      `CREATE TABLE IF NOT EXISTS ${qt(MARKER_TABLE)} (id TINYINT PRIMARY KEY, marker TEXT NOT NULL) ENGINE=InnoDB`,
      [],
    ],
    [`REPLACE INTO ${qt(MARKER_TABLE)} (id, marker) VALUES (1, ?)`, [JSON.stringify(assertMarker(marker))]],
  ];
}

/** Builds a type string normalizeType understands, without MariaDB's integer display widths. */
function mysqlType(c: mysql.RowDataPacket): string {
  const dataType = String(c.data_type).toLowerCase();
  if (dataType === 'tinyint') return String(c.column_type);
  if (dataType === 'decimal' || dataType === 'numeric') return `decimal(${c.p},${c.s})`;
  if (dataType === 'varchar' || dataType === 'char') return `${dataType}(${c.len})`;
  return dataType;
}
