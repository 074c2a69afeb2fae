import { describe, expect, it } from 'vitest';
import { parseChecks } from '../../functions/adapters/engines/sqlite.js';
import { InvalidIdentifierError } from '../../functions/core/errors.js';
import {
  assertDatabaseName,
  assertNamespace,
  quoteSqliteIdentifier,
} from '../../functions/core/identifiers.js';

describe('assertDatabaseName', () => {
  it.each(['cf_img_v1_0_finance', 'a', `a${'b'.repeat(62)}`])('accepts %s', (name) => {
    expect(assertDatabaseName(name)).toBe(name);
  });

  it.each([
    ['quote and statement', 'x"; DROP DATABASE postgres; --'],
    ['backtick', 'a`b'],
    ['uppercase', 'Tenant'],
    ['leading digit', '1abc'],
    ['dash', 'a-b'],
    ['percent wildcard', 'a%'],
    ['dot', 'a.b'],
    ['path traversal', '../etc/passwd'],
    ['NUL', 'a\u0000b'],
    ['unicode look-alike', 'аdmin'],
    ['overlong', `a${'b'.repeat(63)}`],
    ['empty', ''],
  ])('refuses %s', (_label, name) => {
    expect(() => assertDatabaseName(name)).toThrow(InvalidIdentifierError);
    expect(() => assertDatabaseName(name)).toThrow(/invalid database name/);
  });
});

describe('assertNamespace', () => {
  it('accepts short lowercase words and refuses underscores', () => {
    expect(assertNamespace('cf')).toBe('cf');
    expect(() => assertNamespace('c_f')).toThrow(InvalidIdentifierError);
    expect(() => assertNamespace('averyveryverylongname')).toThrow(InvalidIdentifierError);
  });
});

describe('quoteSqliteIdentifier', () => {
  it('doubles embedded quotes', () => {
    expect(quoteSqliteIdentifier('a"b')).toBe('"a""b"');
  });
});

describe('parseChecks', () => {
  it('reads named and unnamed checks with nested parentheses and quoted parentheses', () => {
    const sql = `CREATE TABLE t (
      a INTEGER CHECK (a > 0),
      b TEXT,
      CONSTRAINT ck_b CHECK (b IN ('x)', 'y') AND length(b) < (10)),
      CONSTRAINT "ck_c" CHECK(a <> 3)
    )`;
    expect(parseChecks(sql)).toEqual([
      { name: 'check_1', expression: 'a > 0' },
      { name: 'ck_b', expression: "b IN ('x)', 'y') AND length(b) < (10)" },
      { name: 'ck_c', expression: 'a <> 3' },
    ]);
  });
});
