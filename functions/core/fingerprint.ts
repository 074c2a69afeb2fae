import { createHash } from 'node:crypto';

/** A column as the engines report it, before normalisation. */
export interface RawColumn {
  readonly name: string;
  /** The engine's own spelling of the type, e.g. `character varying(255)`, `tinyint(1)`, `DECIMAL(12,2)`. */
  readonly type: string;
  readonly nullable: boolean;
}

/** A table as an engine adapter introspects it. Order of the arrays does not matter. */
export interface RawTable {
  readonly name: string;
  readonly columns: readonly RawColumn[];
  readonly primaryKey: readonly string[];
  readonly foreignKeys: readonly {
    readonly columns: readonly string[];
    readonly refTable: string;
    readonly refColumns: readonly string[];
    readonly onDelete: string;
  }[];
  /** Unique constraints and unique indexes alike (MySQL and SQLite cannot tell them apart). */
  readonly uniques: readonly (readonly string[])[];
  /** Non-unique, non-primary indexes. */
  readonly indexes: readonly { readonly name: string; readonly columns: readonly string[] }[];
  readonly checks: readonly { readonly name: string; readonly expression: string }[];
}

export interface CanonicalColumn {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
}

export interface CanonicalTable {
  readonly name: string;
  readonly columns: CanonicalColumn[];
  readonly primaryKey: string[];
  readonly foreignKeys: { columns: string[]; refTable: string; refColumns: string[]; onDelete: string }[];
  readonly uniques: string[][];
  readonly indexes: { name: string; columns: string[] }[];
  readonly checks: { name: string; expression: string }[];
}

/** The canonical schema: every list sorted, every type normalised. Equal schemas serialise equally. */
export interface CanonicalSchema {
  readonly tables: CanonicalTable[];
}

export interface Fingerprint {
  /** sha256 of the canonical JSON, hex. */
  readonly hash: string;
  readonly schema: CanonicalSchema;
}

/**
 * Tables the control plane keeps inside a database for itself (markers, version rows).
 * They are not part of the template and never part of a fingerprint.
 */
export const INTERNAL_TABLE_PREFIX = '_clonefactory';

/**
 * Maps each engine's spelling of a type onto one vocabulary:
 * `integer`, `bigint`, `boolean`, `decimal(p,s)`, `varchar(n)`, `text`, `timestamp`, `date`, `real`.
 * Unknown types pass through lowercased, so a new type shows up as a difference instead of hiding.
 */
export function normalizeType(raw: string): string {
  const t = raw.trim().toLowerCase().replace(/\s+/g, ' ');
  const base = t.replace(/\s*\(.*$/, '').replace(/ unsigned$/, '');
  const args = /\(([^)]*)\)/.exec(t)?.[1]?.replace(/\s+/g, '');
  if (base === 'tinyint' && args === '1') return 'boolean';
  if (base === 'bool' || base === 'boolean') return 'boolean';
  if (['int', 'integer', 'int4', 'mediumint', 'smallint', 'int2', 'tinyint'].includes(base)) return 'integer';
  if (['bigint', 'int8'].includes(base)) return 'bigint';
  if (base === 'numeric' || base === 'decimal') return args ? `decimal(${args})` : 'decimal';
  if (['character varying', 'varchar', 'nvarchar'].includes(base))
    return args ? `varchar(${args})` : 'varchar';
  if (['text', 'mediumtext', 'longtext', 'tinytext', 'clob'].includes(base)) return 'text';
  if (base.startsWith('timestamp') || base === 'datetime') return 'timestamp';
  if (base === 'date') return 'date';
  if (['real', 'double', 'double precision', 'float', 'float4', 'float8'].includes(base)) return 'real';
  return t;
}

/** Referential actions: NO ACTION and RESTRICT behave alike for non-deferred keys; engines report either. */
function normalizeAction(raw: string): string {
  const a = raw.trim().toLowerCase();
  return a === 'no action' || a === '' ? 'restrict' : a;
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byKey =
  <T>(key: (x: T) => string) =>
  (a: T, b: T) =>
    byString(key(a), key(b));

/** Sorts and normalises a raw schema. Tables starting with {@link INTERNAL_TABLE_PREFIX} are left out. */
export function canonicalize(tables: readonly RawTable[]): CanonicalSchema {
  return {
    tables: tables
      .filter((t) => !t.name.startsWith(INTERNAL_TABLE_PREFIX))
      .map((t) => ({
        name: t.name,
        columns: t.columns
          .map((c) => ({ name: c.name, type: normalizeType(c.type), nullable: c.nullable }))
          .sort(byKey((c) => c.name)),
        primaryKey: [...t.primaryKey],
        foreignKeys: t.foreignKeys
          .map((f) => ({
            columns: [...f.columns],
            refTable: f.refTable,
            refColumns: [...f.refColumns],
            onDelete: normalizeAction(f.onDelete),
          }))
          .sort(byKey((f) => f.columns.join(','))),
        uniques: t.uniques.map((u) => [...u]).sort(byKey((u) => u.join(','))),
        indexes: t.indexes.map((i) => ({ name: i.name, columns: [...i.columns] })).sort(byKey((i) => i.name)),
        checks: t.checks.map((c) => ({ name: c.name, expression: c.expression })).sort(byKey((c) => c.name)),
      }))
      .sort(byKey((t) => t.name)),
  };
}

/** Canonicalises and hashes a schema. */
export function fingerprint(tables: readonly RawTable[]): Fingerprint {
  const schema = canonicalize(tables);
  return { schema, hash: hashSchema(schema) };
}

export function hashSchema(schema: CanonicalSchema): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex');
}

/**
 * The engine-independent part of a schema: check expressions are dropped (each engine
 * rewrites them in its own dialect) but check names stay. Two engines running the same
 * template must have equal logical schemas.
 */
export function logicalSchema(schema: CanonicalSchema): CanonicalSchema {
  return {
    tables: schema.tables.map((t) => ({
      ...t,
      checks: t.checks.map((c) => ({ name: c.name, expression: '' })),
    })),
  };
}

/**
 * The differences between two canonical schemas, one readable line each, e.g.
 * `orders: column customer_id added (bigint, nullable)`. Empty when equal.
 */
export function diffSchemas(expected: CanonicalSchema, actual: CanonicalSchema): string[] {
  const out: string[] = [];
  const exp = new Map(expected.tables.map((t) => [t.name, t]));
  const act = new Map(actual.tables.map((t) => [t.name, t]));
  for (const name of [...exp.keys()].filter((n) => !act.has(n))) out.push(`table ${name} removed`);
  for (const name of [...act.keys()].filter((n) => !exp.has(n))) out.push(`table ${name} added`);
  for (const [name, e] of exp) {
    const a = act.get(name);
    if (!a) continue;
    diffNamed(out, name, 'column', e.columns, a.columns, (c) => c.name, describeColumn);
    if (e.primaryKey.join(',') !== a.primaryKey.join(','))
      out.push(`${name}: primary key changed (${e.primaryKey.join(', ')}) -> (${a.primaryKey.join(', ')})`);
    diffNamed(
      out,
      name,
      'foreign key',
      e.foreignKeys,
      a.foreignKeys,
      (f) => `(${f.columns.join(', ')})`,
      (f) => `-> ${f.refTable}(${f.refColumns.join(', ')}) on delete ${f.onDelete}`,
    );
    diffNamed(
      out,
      name,
      'unique key',
      e.uniques,
      a.uniques,
      (u) => `(${u.join(', ')})`,
      () => '',
    );
    diffNamed(
      out,
      name,
      'index',
      e.indexes,
      a.indexes,
      (i) => i.name,
      (i) => i.columns.join(', '),
    );
    diffNamed(
      out,
      name,
      'check',
      e.checks,
      a.checks,
      (c) => c.name,
      (c) => c.expression,
    );
  }
  return out;
}

function describeColumn(c: CanonicalColumn): string {
  return `${c.type}, ${c.nullable ? 'nullable' : 'not null'}`;
}

function diffNamed<T>(
  out: string[],
  table: string,
  kind: string,
  expected: readonly T[],
  actual: readonly T[],
  key: (x: T) => string,
  describe: (x: T) => string,
): void {
  const exp = new Map(expected.map((x) => [key(x), x]));
  const act = new Map(actual.map((x) => [key(x), x]));
  const detail = (x: T) => {
    const d = describe(x);
    return d ? ` (${d})` : '';
  };
  for (const [k, e] of exp) {
    const a = act.get(k);
    if (a === undefined) out.push(`${table}: ${kind} ${k} removed${detail(e)}`);
    else if (describe(a) !== describe(e))
      out.push(`${table}: ${kind} ${k} changed${detail(e)} -> (${describe(a)})`);
  }
  for (const [k, a] of act) if (!exp.has(k)) out.push(`${table}: ${kind} ${k} added${detail(a)}`);
}
