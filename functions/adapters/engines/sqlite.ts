import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants, statSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type {
  DatabaseEngine,
  Endpoint,
  Login,
  Marker,
  SqlExecutor,
  SqlScript,
  SqlSession,
  SqlTransaction,
  TenantAccessPlan,
  TransactionOptions,
} from '../../core/engine.js';
import {
  AccessDeniedError,
  DatabaseExistsError,
  DatabaseNotFoundError,
  errorMessage,
  LoginRefusedError,
  ScriptExecutionError,
  TransientError,
} from '../../core/errors.js';
import type { RawTable } from '../../core/fingerprint.js';
import { assertDatabaseName, quoteSqliteIdentifier as qi } from '../../core/identifiers.js';
import { splitStatements } from '../../core/sql-script.js';
import type { AppRole } from '../../core/tenants.js';
import { acquirePidLock } from '../pid-lock.js';
import { assertMarker, INTERNAL_TABLE_PATTERN, MARKER_TABLE, parseMarker } from './marker.js';
import { type TenantErrorKind, tenantExecutor } from './tenant-errors.js';

export interface SqliteEngineOptions {
  /** The one directory all SQLite databases live in. Names map to `<dir>/<name>.db`; no path comes from input. */
  readonly dir: string;
  /**
   * Keep the control plane's write connection to each database for this many ms of
   * idleness, so that the steps of one clone (schema history, sample data, access table,
   * verification) open the file and load its schema once rather than once each. 0 (the
   * default) closes it after every use. Whatever removes or replaces a file (drop, rename,
   * clone into, seal) closes it first, and a kept connection whose file is no longer the one
   * it opened (another process replaced or removed it) is closed instead of used.
   */
  readonly keepConnectionsMs?: number;
}

/** A control-plane connection lent to one caller at a time; `done` gives it back. */
interface Lent {
  readonly db: Database.Database;
  readonly query: SqlExecutor['query'];
  done(): void;
}

interface Kept {
  readonly db: Database.Database;
  readonly query: SqlExecutor['query'];
  /** The inode the connection opened. */
  readonly ino: number;
  busy: boolean;
  timer?: NodeJS.Timeout;
}

const SIDE_FILES = ['-journal', '-wal', '-shm'];

/** SQLite has no users: this internal table holds each app role's token hash and access mode. */
const ACCESS_TABLE = '_clonefactory_access';

/** SQLite through better-sqlite3 (version 12: 13 needs Node 22). A database is a 0600 file. */
export class SqliteEngine implements DatabaseEngine {
  readonly engine = 'sqlite' as const;
  readonly location: string;
  /** Kept control-plane connections, by file path (see keepConnectionsMs). */
  private readonly kept = new Map<string, Kept>();

  constructor(private readonly options: SqliteEngineOptions) {
    this.location = `sqlite:${options.dir}`;
  }

  /** The file of a database; the name is validated, so the path cannot leave the directory. */
  path(name: string): string {
    return join(this.options.dir, `${assertDatabaseName(name)}.db`);
  }

  async ping(): Promise<void> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
  }

  async databaseExists(name: string): Promise<boolean> {
    return exists(this.path(name));
  }

  async databaseStats(name: string): Promise<{ sizeBytes: number; connections: number }> {
    try {
      return { sizeBytes: (await stat(this.path(name))).size, connections: 0 };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new DatabaseNotFoundError(name);
      throw error;
    }
  }

  async listDatabases(prefix: string): Promise<string[]> {
    let files: string[];
    try {
      files = await readdir(this.options.dir);
    } catch {
      return [];
    }
    return files
      .filter((f) => f.endsWith('.db') && f.startsWith(prefix))
      .map((f) => f.slice(0, -3))
      .sort();
  }

  async createDatabase(name: string): Promise<void> {
    await this.ping();
    try {
      const handle = await open(this.path(name), 'wx', 0o600);
      await handle.close();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new DatabaseExistsError(name);
      throw error;
    }
  }

  async dropDatabase(name: string): Promise<void> {
    const path = this.path(name);
    this.release(path);
    await Promise.all([path, ...SIDE_FILES.map((s) => path + s)].map((p) => rm(p, { force: true })));
  }

  /** A hard link then an unlink: the new name appears whole or not at all, and never overwrites. */
  async renameDatabase(from: string, to: string): Promise<void> {
    const source = this.path(from);
    this.release(source);
    this.release(this.path(to));
    if (!(await exists(source))) throw new DatabaseNotFoundError(from);
    try {
      await link(source, this.path(to));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new DatabaseExistsError(to);
      throw error;
    }
    await unlink(source);
  }

  async applyScript(name: string, script: SqlScript): Promise<void> {
    const statements = splitStatements('sqlite', script.sql);
    await this.writing(name, (db) => {
      db.exec('BEGIN');
      for (const s of statements) {
        try {
          db.exec(s.text);
        } catch (cause) {
          db.exec('ROLLBACK');
          throw new ScriptExecutionError(script.file, s.index, s.line, s.text, cause);
        }
      }
      db.exec('COMMIT');
    });
  }

  async introspect(name: string): Promise<RawTable[]> {
    return this.withDb(name, (db) => introspectSqlite(db));
  }

  async readMarker(name: string): Promise<Marker | null> {
    // A sealed file (a root image, 0400) never changes in place: its marker is read once per
    // file, and again only if the file is no longer the same (inode, size, times). Every clone
    // reads its image's marker, which otherwise costs a file open and a schema load.
    const path = this.path(name);
    const s = await stat(path, { bigint: true }).catch(() => null);
    const stamp = s && (s.mode & 0o222n) === 0n ? `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` : null;
    const known = stamp ? sealedMarkers.get(path) : undefined;
    if (known && known.stamp === stamp) return known.marker && { ...known.marker };
    const marker = this.readMarkerNow(name);
    if (stamp) {
      if (sealedMarkers.size >= 1000) sealedMarkers.clear();
      sealedMarkers.set(path, { stamp, marker });
    }
    return marker;
  }

  private readMarkerNow(name: string): Marker | null {
    return this.withDb(name, (db) => {
      const table = db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?")
        .get(MARKER_TABLE);
      if (!table) return null;
      const row = db.prepare(`SELECT marker FROM ${qi(MARKER_TABLE)} WHERE id = 1`).get() as
        | { marker: string }
        | undefined;
      return parseMarker(row?.marker);
    });
  }

  async writeMarker(name: string, marker: Marker): Promise<void> {
    await this.writing(name, (db) => writeMarkerRow(db, marker));
  }

  /**
   * Copies the file (a reflink where the filesystem has them) to a temporary name, replaces
   * the marker there, syncs it, then links it into place: a half-copied file never has the
   * target's name, and the name never points at data that is not on disk.
   */
  async cloneDatabase(source: string, target: string, marker?: Marker): Promise<void> {
    const from = this.path(source);
    const to = this.path(target);
    this.release(to);
    const found = await stat(from).catch(() => null);
    if (!found) throw new DatabaseNotFoundError(source);
    if (await exists(to)) throw new DatabaseExistsError(target);
    const tmp = `${to}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      // A live tenant (the source of a branch) may be written meanwhile: a read transaction
      // holds SQLite's SHARED lock, so no writer commits while the file is copied. A sealed
      // file (a root image, mode 0400) never changes in place and is copied as it is.
      if ((found.mode & 0o222) === 0) await copyFile(from, tmp, constants.COPYFILE_FICLONE);
      else {
        const reader = new Database(from, { readonly: true, fileMustExist: true });
        try {
          reader.exec('BEGIN');
          reader.prepare('SELECT count(*) FROM sqlite_master').get();
          await copyFile(from, tmp, constants.COPYFILE_FICLONE);
        } finally {
          reader.close();
        }
      }
      await chmod(tmp, 0o600);
      const db = new Database(tmp);
      try {
        // Nobody else can see the temporary file: no journal, no syncs, one sync below.
        db.pragma('journal_mode = OFF');
        db.pragma('synchronous = OFF');
        // The source's marker row is replaced in place: a table dropped and created again
        // would be two schema changes, each rewriting sqlite_master.
        db.transaction(() => {
          if (marker) writeMarkerRow(db, marker);
          else db.exec(`DROP TABLE IF EXISTS ${qi(MARKER_TABLE)}`);
        })();
      } finally {
        db.close();
      }
      await syncFile(tmp);
      try {
        await link(tmp, to);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new DatabaseExistsError(target);
        throw error;
      }
      await syncFile(this.options.dir);
    } finally {
      await Promise.all([tmp, ...SIDE_FILES.map((s) => tmp + s)].map((p) => rm(p, { force: true })));
    }
  }

  async sealImage(name: string): Promise<void> {
    this.release(this.path(name));
    await chmod(this.path(name), 0o400);
  }

  /**
   * One at a time per file within this process: better-sqlite3 is synchronous, so a second
   * BEGIN IMMEDIATE on a file whose write lock an open transaction holds would wait in
   * SQLite's busy handler with the event loop blocked, and the holder (waiting on that same
   * loop) could never finish: 5 s of a frozen process, then "database is locked". Waiting here
   * instead is asynchronous. Other processes are still kept out by SQLite's own lock.
   */
  async transaction<T>(
    name: string,
    fn: (tx: SqlTransaction) => Promise<T>,
    options: TransactionOptions = {},
  ): Promise<T> {
    return inTurn(this.path(name), () => this.transactionNow(name, fn, options));
  }

  private async transactionNow<T>(
    name: string,
    fn: (tx: SqlTransaction) => Promise<T>,
    options: TransactionOptions,
  ): Promise<T> {
    const { db, query, done } = this.lend(name);
    let committed = false;
    try {
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn({ query, introspect: async () => introspectSqlite(db) });
        db.exec('COMMIT');
        committed = true;
        return result;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_BUSY')
        throw new TransientError('database is locked', { cause: error });
      throw error;
    } finally {
      done();
      // Deferred: the file's next synced write (an fsync covers every earlier write) makes it durable.
      if (committed && options.durability !== 'deferred') await syncFile(this.path(name));
    }
  }

  /**
   * SQLite has no roles or grants. Each app role gets a random token; the file keeps its
   * sha256 and an access mode, and {@link openSession} checks them: `analyst` sessions are
   * opened read-only, so SQLite itself refuses their writes. The file is 0600 under one
   * directory; whoever can read the file directly is outside this model (the control plane).
   */
  async configureTenantAccess(plan: TenantAccessPlan): Promise<void> {
    await chmod(this.path(plan.database), 0o600);
    await this.writing(plan.database, (db) => {
      db.transaction(() => {
        // Rebuilt whole: the roles are all in the plan, and an older file's table may lack a mode.
        db.exec(`DROP TABLE IF EXISTS ${qi(ACCESS_TABLE)}`);
        db.exec(
          `CREATE TABLE ${qi(ACCESS_TABLE)} (username TEXT PRIMARY KEY, token_sha256 TEXT NOT NULL, mode TEXT NOT NULL CHECK (mode IN ${SQL_MODES}))`,
        );
        const insert = db.prepare(
          `INSERT INTO ${qi(ACCESS_TABLE)} (username, token_sha256, mode) VALUES (?, ?, ?)`,
        );
        for (const role of plan.roles) insert.run(role.name, sha256(role.password), ROLE_MODE[role.appRole]);
      })();
    });
  }

  /** SQLite has no grants: sessions' access modes cover every table, new ones included. */
  async alignTableAccess(): Promise<void> {}

  async dropTenantAccess(plan: { readonly database: string }): Promise<void> {
    if (!(await this.databaseExists(plan.database))) return;
    await this.writing(plan.database, (db) => db.exec(`DROP TABLE IF EXISTS ${qi(ACCESS_TABLE)}`));
  }

  async existingRoles(_names: readonly string[]): Promise<string[]> {
    return [];
  }

  endpoint(database: string): Endpoint {
    return { database: assertDatabaseName(database), path: this.path(database) };
  }

  async openSession(database: string, login: Login): Promise<SqlSession> {
    // The login is checked on the control plane's kept connection to the file when it is idle
    // (its schema is loaded already: a clone's own probe, right after its steps), else on a
    // read-only connection, which an `analyst` session then keeps. A connection's first
    // statement loads the schema (about 0.2 ms for a template's), so each open counts.
    let db: Database.Database | undefined;
    let mode: SessionMode | null;
    const kept = this.kept.get(this.path(database));
    if (kept && !kept.busy) mode = this.withDb(database, (conn) => accessMode(conn, login));
    else {
      db = this.readOnly(database);
      try {
        mode = accessMode(db, login);
      } catch (error) {
        db.close();
        throw error;
      }
    }
    if (!mode) {
      db?.close();
      throw new LoginRefusedError(database, false);
    }
    if (!db || mode !== 'ro') {
      db?.close();
      db =
        mode === 'ro' ? this.readOnly(database) : new Database(this.path(database), { fileMustExist: true });
    }
    const session = db;
    try {
      session.pragma('foreign_keys = ON');
      if (mode === 'ro') session.pragma('query_only = ON');
    } catch (error) {
      session.close();
      throw error;
    }
    const inner = executor(session);
    // The guard triggers are compiled before the first statement that can write (SQLite's
    // own verdict: sqlite3_stmt_readonly), so sessions that only read never pay for them.
    let guarded = mode === 'ro';
    const guardedExecutor: SqlExecutor = {
      query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
        if (FILE_STATEMENT.test(sql))
          return Promise.reject(
            new AccessDeniedError(
              'a tenant session cannot ATTACH or VACUUM (they open or write other files)',
            ),
          );
        if (!guarded && !session.prepare(sql).readonly) {
          guardSession(session, mode);
          guarded = true;
        }
        return inner.query<T>(sql, params);
      },
    };
    return {
      ...tenantExecutor(guardedExecutor, classifyTenantError),
      close: async () => void session.close(),
    };
  }

  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    await this.ping();
    const release = await acquirePidLock(join(this.options.dir, `.${assertDatabaseName(name)}.lock`), {
      waitMs: 120_000,
    });
    try {
      return await fn();
    } finally {
      await release();
    }
  }

  async close(): Promise<void> {
    for (const path of [...this.kept.keys()]) this.release(path);
  }

  /**
   * The control-plane write connection to `name`: the kept one when it is idle and its file
   * is still the one it opened, else a new one, which is kept when keeping is on and none is.
   */
  private lend(name: string): Lent {
    const path = this.path(name);
    const kept = this.kept.get(path);
    if (kept && !kept.busy) {
      if (statSync(path, { throwIfNoEntry: false })?.ino === kept.ino) {
        kept.busy = true;
        clearTimeout(kept.timer);
        return { db: kept.db, query: kept.query, done: () => this.giveBack(path, kept) };
      }
      this.release(path);
    }
    const db = this.open(name);
    const query = executor(db).query;
    const ino = (this.options.keepConnectionsMs ?? 0) > 0 && !this.kept.has(path) && statSync(path).ino;
    if (!ino) return { db, query, done: () => db.close() };
    const entry: Kept = { db, query, ino, busy: true };
    this.kept.set(path, entry);
    return { db, query, done: () => this.giveBack(path, entry) };
  }

  private giveBack(path: string, entry: Kept): void {
    entry.busy = false;
    // Released while lent, or left inside a transaction by a failure: not kept.
    if (this.kept.get(path) !== entry || entry.db.inTransaction) {
      this.release(path, entry);
      return;
    }
    entry.timer = setTimeout(() => this.release(path), this.options.keepConnectionsMs);
    entry.timer.unref();
  }

  /** Closes the kept connection to `path` (once its borrower gives it back, if lent). */
  private release(path: string, entry = this.kept.get(path)): void {
    if (!entry) return;
    if (this.kept.get(path) === entry) this.kept.delete(path);
    clearTimeout(entry.timer);
    if (!entry.busy) entry.db.close();
  }

  /**
   * A control-plane connection for writing. Its commits do not sync (synchronous = OFF): the
   * caller syncs the file once when done ({@link writing}, {@link transaction}). A commit in
   * the default mode syncs the journal and the file several times, about 2 ms each on this
   * kind of disk, and a clone makes several. SQLite's guarantee for OFF: a crash of the
   * process cannot corrupt the file; a crash of the operating system in the middle of a
   * write can. The control plane writes only to files nobody uses yet (a clone before READY,
   * an image before it is sealed), which a failed workflow drops and rebuilds; tenant
   * sessions keep SQLite's default, fully synced commits.
   */
  private open(name: string): Database.Database {
    try {
      const db = new Database(this.path(name), { fileMustExist: true });
      db.pragma('foreign_keys = ON');
      db.pragma('synchronous = OFF');
      return db;
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CANTOPEN') throw new DatabaseNotFoundError(name);
      throw error;
    }
  }

  /** Runs `fn` on a control-plane write connection, then syncs the file: durable on return. */
  private async writing<T>(name: string, fn: (db: Database.Database) => T): Promise<T> {
    const { db, done } = this.lend(name);
    try {
      return fn(db);
    } finally {
      done();
      await syncFile(this.path(name));
    }
  }

  /** A read-only control-plane connection, or the kept write connection when it is idle. */
  private withDb<T>(name: string, fn: (db: Database.Database) => T): T {
    const kept = this.kept.get(this.path(name));
    if (kept && !kept.busy) {
      const lent = this.lend(name);
      try {
        return fn(lent.db);
      } finally {
        lent.done();
      }
    }
    const db = this.readOnly(name);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  }

  /** Opens `name` read-only (better-sqlite3's default busy timeout: 5 s). */
  private readOnly(name: string): Database.Database {
    try {
      return new Database(this.path(name), { readonly: true, fileMustExist: true });
    } catch (error) {
      if ((error as { code?: string }).code === 'SQLITE_CANTOPEN') throw new DatabaseNotFoundError(name);
      throw error;
    }
  }
}

/** The session mode `login` has on `db`, or null when it has none (no such role, wrong password). */
function accessMode(db: Database.Database, login: Login): SessionMode | null {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(ACCESS_TABLE);
  const row = table
    ? (db
        .prepare(`SELECT token_sha256, mode FROM ${qi(ACCESS_TABLE)} WHERE username = ?`)
        .get(login.username) as { token_sha256: string; mode: SessionMode } | undefined)
    : undefined;
  const given = Buffer.from(sha256(login.password), 'hex');
  const expected = Buffer.from(row?.token_sha256 ?? '00'.repeat(32), 'hex');
  return row && timingSafeEqual(given, expected) ? row.mode : null;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function executor(db: Database.Database): SqlExecutor {
  // Prepared statements are reused per connection: compiling dominated SQLite's share of a clone.
  const prepared = new Map<string, Database.Statement>();
  return {
    async query<T>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      let statement = prepared.get(sql);
      if (!statement) {
        statement = db.prepare(sql);
        if (prepared.size >= 200) prepared.clear();
        prepared.set(sql, statement);
      }
      const values = params.map((p) => (typeof p === 'boolean' ? Number(p) : p));
      if (statement.reader) return statement.all(...values) as T[];
      statement.run(...values);
      return [];
    },
  };
}

/**
 * How each app role's session is opened: `ro` read-only, `rwn` read-write without DELETE
 * (the `user` role), `rw` everything. SQLite has no grants; these are its closest equivalent.
 */
type SessionMode = 'rw' | 'rwn' | 'ro';
const ROLE_MODE: Readonly<Record<AppRole, SessionMode>> = { admin: 'rw', user: 'rwn', analyst: 'ro' };
const SQL_MODES = "('rw', 'rwn', 'ro')";

/**
 * A statement that reaches other files: ATTACH would open any file this process can read,
 * another tenant's database included; VACUUM INTO writes a copy anywhere it can write.
 * better-sqlite3 exposes neither sqlite3_limit nor an authorizer to turn them off, so tenant
 * sessions refuse them by their first keyword: before it SQLite skips only whitespace,
 * comments and empty statements (`;`), and prepare() takes one statement. (Found by the
 * reliability suite's isolation matrix: every login of a tenant could ATTACH a neighbour.)
 */
const FILE_STATEMENT = /^(?:[\s;]|--[^\n]*(?:\n|$)|\/\*[\s\S]*?(?:\*\/|$))*(?:ATTACH|VACUUM)\b/i;

/**
 * Session-local (TEMP) triggers: the control-plane tables refuse every write, and a `rwn`
 * session refuses DELETE on every table. A session running arbitrary SQL could drop its own
 * TEMP triggers; the tenant API runs only statements it builds (see docs/ARCHITECTURE.md).
 */
function guardSession(db: Database.Database, mode: SessionMode): void {
  const tables = db
    .prepare("SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all() as { name: string }[];
  let n = 0;
  const refuse = (table: string, action: 'INSERT' | 'UPDATE' | 'DELETE') =>
    db.exec(
      `CREATE TEMP TRIGGER ${qi(`cf_guard_${n++}`)} BEFORE ${action} ON main.${qi(table)} BEGIN SELECT RAISE(ABORT, 'permission denied: ${action.toLowerCase()} on this table'); END`,
    );
  for (const { name } of tables) {
    if (INTERNAL_TABLE_PATTERN.test(name))
      for (const a of ['INSERT', 'UPDATE', 'DELETE'] as const) refuse(name, a);
    else if (mode === 'rwn') refuse(name, 'DELETE');
  }
}

/** SQLite: read-only refusals and our guard triggers are denials; constraint failures are values. */
function classifyTenantError(error: unknown): TenantErrorKind {
  const code = String((error as { code?: string }).code ?? '');
  if (code.startsWith('SQLITE_READONLY') || /permission denied/.test(errorMessage(error))) return 'denied';
  return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' ? 'values' : null;
}

function writeMarkerRow(db: Database.Database, marker: Marker): void {
  db.exec(
    `CREATE TABLE IF NOT EXISTS ${qi(MARKER_TABLE)} (id INTEGER PRIMARY KEY CHECK (id = 1), marker TEXT NOT NULL)`,
  );
  db.prepare(`INSERT OR REPLACE INTO ${qi(MARKER_TABLE)} (id, marker) VALUES (1, ?)`).run(
    JSON.stringify(assertMarker(marker)),
  );
}

/** fsync of a file or a directory (a directory's entries: a new link). */
/** Markers of sealed files by path, with the file's identity when read (see readMarker). */
const sealedMarkers = new Map<string, { readonly stamp: string; readonly marker: Marker | null }>();

/** The tail of each file's queue of transactions in this process. */
const turns = new Map<string, Promise<void>>();

/** Runs `fn` after every earlier call for `key` has settled. */
function inTurn<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (turns.get(key) ?? Promise.resolve()).then(fn);
  const tail = run.then(
    () => {},
    () => {},
  );
  turns.set(key, tail);
  void tail.then(() => {
    if (turns.get(key) === tail) turns.delete(key);
  });
  return run;
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

interface TableInfoRow {
  name: string;
  type: string;
  notnull: number;
  pk: number;
}

/** `FROM` every table of the schema as `m` (SQLite's own `sqlite_*` left out), with `joins` added. */
const fromTables = (joins = '') =>
  `FROM sqlite_master m ${joins} WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`;

/**
 * Reads tables, columns, keys and indexes through SQLite's table-valued pragma functions,
 * joined to the table list: four statements for the whole schema rather than four per table
 * (every clone's fingerprint check runs this). Checks come from the stored DDL.
 */
export function introspectSqlite(db: Database.Database): RawTable[] {
  const tables = db.prepare(`SELECT m.name, m.sql ${fromTables()} ORDER BY m.name`).all() as {
    name: string;
    sql: string;
  }[];
  const columns = groupBy(
    db
      .prepare(
        `SELECT m.name AS tbl, p.name, p.type, p."notnull", p.pk ${fromTables('JOIN pragma_table_info(m.name) p')} ORDER BY m.name, p.cid`,
      )
      .all() as (TableInfoRow & { tbl: string })[],
  );
  const foreignKeys = groupBy(
    db
      .prepare(
        `SELECT m.name AS tbl, f.id, f.seq, f."table", f."from", f."to", f.on_delete ${fromTables('JOIN pragma_foreign_key_list(m.name) f')} ORDER BY m.name, f.id, f.seq`,
      )
      .all() as { tbl: string; id: number; table: string; from: string; to: string; on_delete: string }[],
  );
  const indexes = groupBy(
    db
      .prepare(
        `SELECT m.name AS tbl, i.name, i."unique", i.origin ${fromTables('JOIN pragma_index_list(m.name) i')} ORDER BY m.name, i.seq`,
      )
      .all() as { tbl: string; name: string; unique: number; origin: string }[],
  );
  const indexColumns = new Map<string, string[]>();
  for (const row of db
    .prepare(
      `SELECT i.name AS idx, c.name ${fromTables('JOIN pragma_index_list(m.name) i JOIN pragma_index_info(i.name) c')} ORDER BY i.name, c.seqno`,
    )
    .all() as { idx: string; name: string }[]) {
    const list = indexColumns.get(row.idx) ?? [];
    list.push(row.name);
    indexColumns.set(row.idx, list);
  }
  return tables.map((t) => {
    const cols = columns.get(t.name) ?? [];
    const pk = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
    // A lone INTEGER PRIMARY KEY is the table's 64-bit rowid: report it as bigint, never null.
    const rowid = pk.length === 1 && pk[0]?.type.toUpperCase() === 'INTEGER' ? pk[0].name : undefined;
    const fkRows = foreignKeys.get(t.name) ?? [];
    const fkIds = [...new Set(fkRows.map((f) => f.id))];
    const secondary = (indexes.get(t.name) ?? []).filter((i) => i.origin !== 'pk');
    return {
      name: t.name,
      columns: cols.map((c) => ({
        name: c.name,
        type: c.name === rowid ? 'bigint' : c.type,
        nullable: c.notnull === 0 && c.pk === 0,
      })),
      primaryKey: pk.map((c) => c.name),
      foreignKeys: fkIds.map((id) => {
        const parts = fkRows.filter((f) => f.id === id);
        return {
          columns: parts.map((p) => p.from),
          refTable: parts[0]?.table ?? '',
          refColumns: parts.map((p) => p.to),
          onDelete: parts[0]?.on_delete ?? '',
        };
      }),
      uniques: secondary.filter((i) => i.unique === 1).map((i) => indexColumns.get(i.name) ?? []),
      indexes: secondary
        .filter((i) => i.unique === 0)
        .map((i) => ({ name: i.name, columns: indexColumns.get(i.name) ?? [] })),
      checks: parseChecks(t.sql),
    };
  });
}

/** Rows by their `tbl`, in the order given. */
function groupBy<T extends { tbl: string }>(rows: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const list = out.get(row.tbl) ?? [];
    list.push(row);
    out.set(row.tbl, list);
  }
  return out;
}

/**
 * SQLite keeps CHECK constraints only in the CREATE TABLE text. Finds each `CHECK (...)`,
 * with its `CONSTRAINT name` when there is one, matching parentheses outside string literals.
 */
export function parseChecks(sql: string): { name: string; expression: string }[] {
  const out: { name: string; expression: string }[] = [];
  const re = /(?:\bCONSTRAINT\s+["`]?(\w+)["`]?\s+)?\bCHECK\s*\(/gi;
  for (let m = re.exec(sql); m; m = re.exec(sql)) {
    const start = re.lastIndex;
    let depth = 1;
    let i = start;
    let quote: string | null = null;
    for (; i < sql.length && depth > 0; i++) {
      const ch = sql[i];
      if (quote) {
        if (ch === quote) quote = null;
      } else if (ch === "'" || ch === '"') quote = ch;
      else if (ch === '(') depth++;
      else if (ch === ')') depth--;
    }
    const expression = sql
      .slice(start, i - 1)
      .replace(/\s+/g, ' ')
      .trim();
    out.push({ name: m[1] ?? `check_${out.length + 1}`, expression });
    re.lastIndex = i;
  }
  return out;
}
