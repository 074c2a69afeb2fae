import type { UserPrincipal } from '../auth/authorizer.js';
import type { EngineName, SqlExecutor } from '../engine.js';
import { AccessDeniedError, RowNotFoundError, ValidationError } from '../errors.js';
import type { TemplateCatalog } from '../templates.js';
import type { Permission } from '../users.js';
import type { TenantPools } from './tenant-pools.js';

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const INTERNAL = /^_clonefactory/;
export const MAX_PAGE = 200;

/** A name as an error message shows it: quoted, and cut short (it may be anything a client sent). */
const shown = (name: string) => JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);

interface TableShape {
  readonly columns: readonly string[];
  readonly primaryKey: string;
  /** Declared column types, where the engine does not enforce them itself (SQLite). */
  readonly declared?: Readonly<Record<string, string>>;
}

export type Row = Record<string, unknown>;
export type Scalar = string | number | boolean | null;

export interface ListQuery {
  readonly limit?: number;
  /** Keyset pagination: rows whose primary key is greater than this. */
  readonly after?: string;
  /** Equality filters on columns of the table. */
  readonly filters?: Readonly<Record<string, string>>;
}

/** How each engine quotes an identifier (after validation against the table's own columns). */
const quote: Record<EngineName, (name: string) => string> = {
  postgresql: (n) => `"${n}"`,
  sqlite: (n) => `"${n}"`,
  mysql: (n) => `\`${n}\``,
};

/**
 * Rows of the template's tables, read and written as the user's own database role through
 * the tenant's pool. Table and column names are checked against the clone's catalogue (read
 * through the same session) before they are quoted into SQL; every value is a bind parameter.
 * The permission check here only gives a clearer error: the database's grants decide.
 */
export class TenantData {
  private readonly shapes = new Map<string, TableShape>();

  constructor(
    private readonly deps: {
      readonly pools: TenantPools;
      readonly catalog: TemplateCatalog;
    },
  ) {}

  async tables(principal: UserPrincipal): Promise<string[]> {
    const template = await this.deps.catalog.resolve(principal.engine, principal.version, principal.industry);
    return template.tables.filter((t) => !INTERNAL.test(t));
  }

  async list(
    principal: UserPrincipal,
    table: string,
    query: ListQuery = {},
  ): Promise<{ rows: Row[]; next?: string }> {
    const limit = query.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_PAGE}`, 'limit');
    return this.run(principal, 'read', table, async (db, shape, q) => {
      const where: string[] = [];
      const params: unknown[] = [];
      for (const [column, value] of Object.entries(query.filters ?? {})) {
        where.push(`${q(this.column(shape, table, column))} = ?`);
        params.push(value);
      }
      if (query.after !== undefined) {
        where.push(`${q(shape.primaryKey)} > ?`);
        params.push(keyValue(query.after));
      }
      const rows = await db.query<Row>(
        `SELECT * FROM ${q(table)}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${q(shape.primaryKey)} LIMIT ${limit + 1}`,
        params,
      );
      const page = rows.slice(0, limit).map(plain);
      const last = page.at(-1);
      return rows.length > limit && last
        ? { rows: page, next: String(last[shape.primaryKey]) }
        : { rows: page };
    });
  }

  async get(principal: UserPrincipal, table: string, id: string): Promise<Row> {
    return this.run(principal, 'read', table, async (db, shape, q) => {
      const [row] = await db.query<Row>(`SELECT * FROM ${q(table)} WHERE ${q(shape.primaryKey)} = ?`, [
        keyValue(id),
      ]);
      if (!row) throw new RowNotFoundError(table, id);
      return plain(row);
    });
  }

  async create(principal: UserPrincipal, table: string, body: unknown): Promise<Row> {
    return this.run(principal, 'write', table, async (db, shape, q) => {
      const values = this.values(shape, table, body);
      const columns = Object.keys(values);
      if (columns.length === 0) throw new ValidationError('a new row needs at least one column', 'body');
      const sql = `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`;
      const args = Object.values(values);
      if (principal.engine === 'mysql') {
        await db.query(sql, args);
        const given = values[shape.primaryKey];
        const [id] =
          given === undefined
            ? await db.query<{ id: unknown }>('SELECT LAST_INSERT_ID() AS id')
            : [{ id: given }];
        const [row] = await db.query<Row>(`SELECT * FROM ${q(table)} WHERE ${q(shape.primaryKey)} = ?`, [
          id?.id,
        ]);
        if (!row) throw new RowNotFoundError(table, String(id?.id));
        return plain(row);
      }
      const [row] = await db.query<Row>(`${sql} RETURNING *`, args);
      if (!row) throw new ValidationError('the insert returned no row');
      return plain(row);
    });
  }

  async update(principal: UserPrincipal, table: string, id: string, body: unknown): Promise<Row> {
    return this.run(principal, 'write', table, async (db, shape, q) => {
      const values = this.values(shape, table, body);
      if (shape.primaryKey in values)
        throw new ValidationError(`${shape.primaryKey} cannot be changed`, shape.primaryKey);
      const columns = Object.keys(values);
      if (columns.length === 0) throw new ValidationError('nothing to update', 'body');
      const key = keyValue(id);
      const [exists] = await db.query(`SELECT 1 AS one FROM ${q(table)} WHERE ${q(shape.primaryKey)} = ?`, [
        key,
      ]);
      if (!exists) throw new RowNotFoundError(table, id);
      await db.query(
        `UPDATE ${q(table)} SET ${columns.map((c) => `${q(c)} = ?`).join(', ')} WHERE ${q(shape.primaryKey)} = ?`,
        [...Object.values(values), key],
      );
      const [row] = await db.query<Row>(`SELECT * FROM ${q(table)} WHERE ${q(shape.primaryKey)} = ?`, [key]);
      if (!row) throw new RowNotFoundError(table, id);
      return plain(row);
    });
  }

  async remove(principal: UserPrincipal, table: string, id: string): Promise<void> {
    await this.run(principal, 'delete', table, async (db, shape, q) => {
      const key = keyValue(id);
      const [exists] = await db.query(`SELECT 1 AS one FROM ${q(table)} WHERE ${q(shape.primaryKey)} = ?`, [
        key,
      ]);
      if (!exists) throw new RowNotFoundError(table, id);
      await db.query(`DELETE FROM ${q(table)} WHERE ${q(shape.primaryKey)} = ?`, [key]);
    });
  }

  private async run<T>(
    principal: UserPrincipal,
    needs: Permission,
    table: string,
    fn: (db: SqlExecutor, shape: TableShape, q: (name: string) => string) => Promise<T>,
  ): Promise<T> {
    if (!principal.permissions.includes(needs))
      throw new AccessDeniedError(`the ${principal.appRole} role has no ${needs} permission`);
    if (typeof table !== 'string' || !NAME.test(table) || !(await this.tables(principal)).includes(table))
      throw new ValidationError(`unknown table ${shown(table)}`, 'table');
    const q = quote[principal.engine];
    return this.deps.pools.withSession(principal, async (db) =>
      fn(db, await this.shape(principal, db, table), q),
    );
  }

  private async shape(principal: UserPrincipal, db: SqlExecutor, table: string): Promise<TableShape> {
    const key = `${principal.cloneId}:${principal.version}:${table}`;
    const cached = this.shapes.get(key);
    if (cached) return cached;
    const rows = await db.query<{ name: string; pk: number | string | boolean; type?: string }>(
      COLUMNS_SQL[principal.engine],
      [table],
    );
    const primary = rows.filter((r) => Number(r.pk) > 0 || r.pk === true);
    if (rows.length === 0 || primary.length !== 1)
      throw new ValidationError(`table ${table} has no single-column primary key`, 'table');
    const shape: TableShape = {
      columns: rows.map((r) => r.name),
      primaryKey: (primary[0] as { name: string }).name,
      declared:
        principal.engine === 'sqlite'
          ? Object.fromEntries(rows.map((r) => [r.name, r.type ?? '']))
          : undefined,
    };
    if (this.shapes.size > 5_000) this.shapes.clear();
    this.shapes.set(key, shape);
    return shape;
  }

  private column(shape: TableShape, table: string, column: string): string {
    if (!NAME.test(column) || !shape.columns.includes(column))
      throw new ValidationError(`unknown column ${shown(column)} of ${table}`, column);
    return column;
  }

  private values(shape: TableShape, table: string, body: unknown): Record<string, Scalar> {
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new ValidationError('the body must be a JSON object of column values', 'body');
    const out: Record<string, Scalar> = {};
    for (const [column, value] of Object.entries(body)) {
      this.column(shape, table, column);
      if (value !== null && !['string', 'number', 'boolean'].includes(typeof value))
        throw new ValidationError(`${column} must be a string, number, boolean or null`, column);
      if (typeof value === 'number' && !Number.isFinite(value))
        throw new ValidationError(`${column} must be finite`, column);
      const declared = shape.declared?.[column];
      if (declared !== undefined) checkDeclaredType(column, declared, value as Scalar);
      out[column] = value as Scalar;
    }
    return out;
  }
}

/**
 * Columns and primary key of a table, read through the tenant's own session from catalogues
 * every role can read (PostgreSQL's information_schema hides constraints from read-only roles).
 */
const COLUMNS_SQL: Record<EngineName, string> = {
  postgresql: `SELECT a.attname AS name,
                      CASE WHEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY(i.indkey)) THEN 1 ELSE 0 END AS pk
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               WHERE n.nspname = 'public' AND c.relname = ? ORDER BY a.attnum`,
  mysql: `SELECT COLUMN_NAME AS name, CASE WHEN COLUMN_KEY = 'PRI' THEN 1 ELSE 0 END AS pk
          FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
  sqlite: 'SELECT name, pk, type FROM pragma_table_info(?) ORDER BY cid',
};

/**
 * SQLite stores any value in any column (type affinity), where PostgreSQL and MySQL refuse a
 * value that does not fit the declared type or length: the same refusals, for the types the
 * templates declare, so that a tenant's API behaves alike on every engine.
 */
export function checkDeclaredType(column: string, declared: string, value: Scalar): void {
  if (value === null) return; // NOT NULL is SQLite's own to enforce
  const type = declared.toUpperCase();
  const refuse = (what: string) => {
    throw new ValidationError(`${column} must be ${what} (its column is ${declared})`, column);
  };
  if (type.includes('BOOL')) {
    if (typeof value !== 'boolean' && value !== 0 && value !== 1) refuse('true or false');
  } else if (type.includes('INT')) {
    if (
      typeof value === 'boolean' ||
      (typeof value === 'number' && !Number.isSafeInteger(value)) ||
      (typeof value === 'string' && !/^-?\d{1,15}$/.test(value))
    )
      refuse('an integer');
  } else if (/REAL|FLOA|DOUB|NUMERIC|DECIMAL/.test(type)) {
    if (typeof value === 'boolean' || (typeof value === 'string' && !/^-?\d{1,30}(\.\d{1,30})?$/.test(value)))
      refuse('a number');
  } else if (/DATE|TIME/.test(type)) {
    if (
      typeof value !== 'string' ||
      !/^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) ||
      Number.isNaN(Date.parse(value))
    )
      refuse('a date or timestamp (ISO 8601)');
  } else if (/CHAR|TEXT|CLOB/.test(type)) {
    const length = /\((\d+)\)/.exec(type)?.[1];
    if (length !== undefined && String(value).length > Number(length)) refuse(`at most ${length} characters`);
  }
}

/**
 * Row keys are integers in every template: anything else is refused rather than left to an
 * engine's casting (MySQL would read "1abc" as 1).
 */
function keyValue(id: string): number {
  if (typeof id !== 'string' || !/^-?\d{1,15}$/.test(id))
    throw new ValidationError('a row id is an integer', 'id');
  return Number(id);
}

/** Driver values as JSON: bigint and Date become strings, Buffers base64. */
function plain(row: Row): Row {
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === 'bigint') out[k] = v.toString();
    else if (v instanceof Date) out[k] = v.toISOString();
    else if (Buffer.isBuffer(v)) out[k] = v.toString('base64');
    else out[k] = v;
  }
  return out;
}
