import type { CanonicalSchema, CanonicalTable } from './fingerprint.js';

/**
 * The differences between an expected schema (a fresh template) and an actual one (a live
 * clone), one readable line each: which table, column, key, index or check was added,
 * removed or changed. Empty when the schemas are equal. Both schemas are canonical
 * (normalised types, sorted lists), so the comparison is exact.
 */
export function diffSchemas(expected: CanonicalSchema, actual: CanonicalSchema): string[] {
  const out: string[] = [];
  const want = new Map(expected.tables.map((t) => [t.name, t]));
  const have = new Map(actual.tables.map((t) => [t.name, t]));
  for (const name of [...new Set([...want.keys(), ...have.keys()])].sort()) {
    const e = want.get(name);
    const a = have.get(name);
    if (!a) out.push(`table ${name}: removed`);
    else if (!e) out.push(`table ${name}: added (${a.columns.map(describeColumn).join(', ')})`);
    else out.push(...diffTable(e, a));
  }
  return out;
}

function diffTable(e: CanonicalTable, a: CanonicalTable): string[] {
  const out: string[] = [];
  const t = e.name;
  const want = new Map(e.columns.map((c) => [c.name, c]));
  const have = new Map(a.columns.map((c) => [c.name, c]));
  for (const [name, c] of want) {
    const h = have.get(name);
    if (!h) out.push(`column ${t}.${name}: removed (was ${describeColumn(c)})`);
    else if (h.type !== c.type || h.nullable !== c.nullable)
      out.push(`column ${t}.${name}: changed from ${describeColumn(c)} to ${describeColumn(h)}`);
  }
  for (const [name, c] of have)
    if (!want.has(name)) out.push(`column ${t}.${name}: added (${describeColumn(c)})`);
  if (key(e.primaryKey) !== key(a.primaryKey))
    out.push(
      `primary key of ${t}: changed from (${e.primaryKey.join(', ')}) to (${a.primaryKey.join(', ')})`,
    );
  out.push(
    ...diffSets(
      `unique key on ${t}`,
      e.uniques.map((u) => `(${u.join(', ')})`),
      a.uniques.map((u) => `(${u.join(', ')})`),
    ),
    ...diffSets(
      `index on ${t}`,
      e.indexes.map((i) => `${i.name} (${i.columns.join(', ')})`),
      a.indexes.map((i) => `${i.name} (${i.columns.join(', ')})`),
    ),
    ...diffSets(
      `foreign key on ${t}`,
      e.foreignKeys.map(describeForeignKey),
      a.foreignKeys.map(describeForeignKey),
    ),
    ...diffSets(
      `check on ${t}`,
      e.checks.map((c) => `${c.name}: ${c.expression}`),
      a.checks.map((c) => `${c.name}: ${c.expression}`),
    ),
  );
  return out;
}

function diffSets(what: string, expected: readonly string[], actual: readonly string[]): string[] {
  const e = new Set(expected);
  const a = new Set(actual);
  return [
    ...[...e].filter((x) => !a.has(x)).map((x) => `${what} ${x}: removed`),
    ...[...a].filter((x) => !e.has(x)).map((x) => `${what} ${x}: added`),
  ];
}

function describeColumn(c: { name: string; type: string; nullable: boolean }): string {
  return `${c.name} ${c.type}${c.nullable ? '' : ' not null'}`;
}

function describeForeignKey(fk: CanonicalTable['foreignKeys'][number]): string {
  return `(${fk.columns.join(', ')}) -> ${fk.refTable} (${fk.refColumns.join(', ')}) on delete ${fk.onDelete}`;
}

const key = (cols: readonly string[]) => cols.join('\u0000');
