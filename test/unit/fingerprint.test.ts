import { describe, expect, it } from 'vitest';
import {
  canonicalize,
  diffSchemas,
  fingerprint,
  logicalSchema,
  normalizeType,
  type RawTable,
} from '../../functions/core/fingerprint.js';

const orders: RawTable = {
  name: 'orders',
  columns: [
    { name: 'id', type: 'bigint', nullable: false },
    { name: 'total', type: 'numeric(12,2)', nullable: false },
    { name: 'status', type: 'character varying(20)', nullable: false },
  ],
  primaryKey: ['id'],
  foreignKeys: [{ columns: ['user_id'], refTable: 'users', refColumns: ['id'], onDelete: 'NO ACTION' }],
  uniques: [['status', 'id']],
  indexes: [
    { name: 'idx_b', columns: ['status'] },
    { name: 'idx_a', columns: ['total', 'id'] },
  ],
  checks: [{ name: 'ck_total', expression: 'total >= 0' }],
};
const users: RawTable = {
  name: 'users',
  columns: [{ name: 'id', type: 'INTEGER', nullable: false }],
  primaryKey: ['id'],
  foreignKeys: [],
  uniques: [],
  indexes: [],
  checks: [],
};

describe('normalizeType', () => {
  it.each([
    ['character varying(255)', 'varchar(255)'],
    ['VARCHAR(255)', 'varchar(255)'],
    ['numeric(12,2)', 'decimal(12,2)'],
    ['DECIMAL(12, 2)', 'decimal(12,2)'],
    ['tinyint(1)', 'boolean'],
    ['boolean', 'boolean'],
    ['tinyint(4)', 'integer'],
    ['int', 'integer'],
    ['int8', 'bigint'],
    ['bigint unsigned', 'bigint'],
    ['timestamp with time zone', 'timestamp'],
    ['datetime', 'timestamp'],
    ['TIMESTAMP', 'timestamp'],
    ['longtext', 'text'],
    ['date', 'date'],
    ['jsonb', 'jsonb'],
  ])('maps %s to %s', (raw, expected) => {
    expect(normalizeType(raw)).toBe(expected);
  });
});

describe('fingerprint', () => {
  it('is the same whatever order the engine reports things in', () => {
    const shuffled: RawTable = {
      ...orders,
      columns: [...orders.columns].reverse(),
      indexes: [...orders.indexes].reverse(),
    };
    expect(fingerprint([orders, users]).hash).toBe(fingerprint([users, shuffled]).hash);
  });

  it('changes when a column type, nullability, index or check changes', () => {
    const base = fingerprint([orders]).hash;
    const variants: RawTable[] = [
      { ...orders, columns: [{ name: 'id', type: 'integer', nullable: false }, ...orders.columns.slice(1)] },
      { ...orders, columns: [{ name: 'id', type: 'bigint', nullable: true }, ...orders.columns.slice(1)] },
      { ...orders, indexes: orders.indexes.slice(1) },
      { ...orders, checks: [{ name: 'ck_total', expression: 'total > 0' }] },
      {
        ...orders,
        foreignKeys: [{ ...(orders.foreignKeys[0] as RawTable['foreignKeys'][0]), onDelete: 'CASCADE' }],
      },
    ];
    for (const v of variants) expect(fingerprint([v]).hash).not.toBe(base);
  });

  it('keeps the column order of a multi-column index', () => {
    const swapped = {
      ...orders,
      indexes: [{ name: 'idx_a', columns: ['id', 'total'] }, orders.indexes[0]],
    } as RawTable;
    expect(fingerprint([swapped]).hash).not.toBe(fingerprint([orders]).hash);
  });

  it('leaves out the control plane internal tables', () => {
    const marker: RawTable = { ...users, name: '_clonefactory_marker' };
    expect(fingerprint([users, marker]).hash).toBe(fingerprint([users]).hash);
  });

  it('treats NO ACTION and RESTRICT alike', () => {
    const restrict = {
      ...orders,
      foreignKeys: [{ ...(orders.foreignKeys[0] as RawTable['foreignKeys'][0]), onDelete: 'RESTRICT' }],
    };
    expect(fingerprint([restrict]).hash).toBe(fingerprint([orders]).hash);
  });
});

describe('logicalSchema', () => {
  it('keeps check names but drops their dialect-specific expressions', () => {
    const pg = canonicalize([
      { ...orders, checks: [{ name: 'ck_total', expression: 'CHECK ((total >= (0)::numeric))' }] },
    ]);
    const my = canonicalize([{ ...orders, checks: [{ name: 'ck_total', expression: '`total` >= 0' }] }]);
    expect(diffSchemas(logicalSchema(pg), logicalSchema(my))).toEqual([]);
    const renamed = canonicalize([{ ...orders, checks: [{ name: 'ck_other', expression: 'x' }] }]);
    expect(diffSchemas(logicalSchema(pg), logicalSchema(renamed))).toEqual([
      'orders: check ck_total removed',
      'orders: check ck_other added',
    ]);
  });
});

describe('diffSchemas', () => {
  it('names each added, removed and changed element in words', () => {
    const before = canonicalize([orders, users]);
    const after = canonicalize([
      {
        ...orders,
        columns: [...orders.columns.slice(0, 2), { name: 'status', type: 'text', nullable: true }],
        indexes: [
          { name: 'idx_a', columns: ['total', 'id'] },
          { name: 'idx_new', columns: ['id'] },
        ],
      },
      { ...users, name: 'customers' },
    ]);
    expect(diffSchemas(before, after)).toEqual([
      'table users removed',
      'table customers added',
      'orders: column status changed (varchar(20), not null) -> (text, nullable)',
      'orders: index idx_b removed (status)',
      'orders: index idx_new added (id)',
    ]);
  });

  it('is empty for equal schemas', () => {
    expect(diffSchemas(canonicalize([orders]), canonicalize([orders]))).toEqual([]);
  });
});
