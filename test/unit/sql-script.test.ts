import { describe, expect, it } from 'vitest';
import { splitStatements } from '../../functions/core/sql-script.js';

describe('splitStatements', () => {
  it('splits on semicolons outside strings and comments, with 1-based lines', () => {
    const sql = [
      '-- header comment',
      'CREATE TABLE a (x TEXT);',
      '',
      "INSERT INTO a VALUES ('semi;colon');",
      '/* block; comment */',
      'SELECT 1;',
      '-- trailing comment only',
    ].join('\n');
    const statements = splitStatements('postgresql', sql);
    expect(statements.map((s) => [s.index, s.line, s.text.replace(/\s+/g, ' ').trim()])).toEqual([
      [0, 2, 'CREATE TABLE a (x TEXT)'],
      [1, 4, "INSERT INTO a VALUES ('semi;colon')"],
      [2, 5, '/* block; comment */ SELECT 1'],
    ]);
  });

  it('keeps PostgreSQL dollar-quoted bodies whole', () => {
    const sql = 'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT f();';
    expect(splitStatements('postgresql', sql)).toHaveLength(2);
  });

  it('keeps MySQL backtick identifiers with semicolons whole', () => {
    expect(splitStatements('mysql', 'SELECT `a;b` FROM t;\nSELECT 2;')).toHaveLength(2);
  });
});
