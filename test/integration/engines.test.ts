import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import {
  DatabaseExistsError,
  DatabaseNotFoundError,
  InvalidIdentifierError,
  ScriptExecutionError,
} from '../../functions/core/errors.js';
import { dropNamespace, engineTitle, probeEngines, testNamespace } from '../support/engines.js';

const { env, probes } = await probeEngines();
const ns = testNamespace();
afterAll(async () => {
  for (const p of Object.values(probes)) if (p.engine) await dropNamespace(p.engine, ns);
  await env.close();
});

const TABLE = {
  postgresql: 'CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(10) NOT NULL)',
  mysql: 'CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(10) NOT NULL) ENGINE=InnoDB',
  sqlite: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10) NOT NULL)',
} as const;

describe.each(Object.values(probes))('DatabaseEngine', (probe) => {
  describe.skipIf(!probe.engine)(engineTitle(probe), () => {
    const engine = probe.engine as DatabaseEngine;
    const db = (label: string) => `${ns}_${label}`;

    it('creates, lists and drops a database, and drop is idempotent', async () => {
      await engine.createDatabase(db('life'));
      expect(await engine.databaseExists(db('life'))).toBe(true);
      expect(await engine.listDatabases(`${ns}_li`)).toEqual([db('life')]);
      await expect(engine.createDatabase(db('life'))).rejects.toThrow(DatabaseExistsError);
      await engine.dropDatabase(db('life'));
      await engine.dropDatabase(db('life'));
      expect(await engine.databaseExists(db('life'))).toBe(false);
    });

    it('refuses an identifier that fails validation and creates nothing', async () => {
      const before = await engine.listDatabases(ns);
      for (const bad of [`${ns}"; DROP DATABASE postgres; --`, `${ns}\`x`, `${ns}_../../x`, `${ns}_%`]) {
        await expect(engine.createDatabase(bad)).rejects.toThrow(InvalidIdentifierError);
        await expect(engine.dropDatabase(bad)).rejects.toThrow(InvalidIdentifierError);
      }
      expect(await engine.listDatabases(ns)).toEqual(before);
    });

    it('applies a multi-statement script with strings that hold semicolons', async () => {
      await engine.createDatabase(db('script'));
      await engine.applyScript(db('script'), {
        file: 'test/ok.sql',
        sql: `${TABLE[probe.name]};\n-- comment; with semicolon\nINSERT INTO t (id, v) VALUES (1, 'a;b');\nINSERT INTO t (id, v) VALUES (2, 'c');`,
      });
      const tables = await engine.introspect(db('script'));
      expect(tables.map((t) => t.name)).toEqual(['t']);
      expect(tables[0]?.primaryKey).toEqual(['id']);
    });

    it('reports the failing file, statement and line of a script', async () => {
      await engine.createDatabase(db('fail'));
      const sql = `${TABLE[probe.name]};\n\nINSERT INTO t (id, v) VALUES (1, 'x');\nINSERT INTO missing_table VALUES (1);\nINSERT INTO t (id, v) VALUES (2, 'y');`;
      const error = (await engine
        .applyScript(db('fail'), { file: 'test/broken.sql', sql })
        .catch((e: unknown) => e)) as ScriptExecutionError;
      expect(error).toBeInstanceOf(ScriptExecutionError);
      expect(error.file).toBe('test/broken.sql');
      expect(error.statementIndex).toBe(2);
      expect(error.line).toBe(4);
      expect(error.message).toMatch(/^test\/broken\.sql: statement 3 \(line 4\) failed: .*missing_table/s);
      expect(error.message).toContain('INSERT INTO missing_table VALUES (1)');
      const tables = await engine.introspect(db('fail'));
      // PostgreSQL and SQLite run the script in one transaction; MySQL commits DDL as it goes.
      expect(tables.map((t) => t.name)).toEqual(probe.name === 'mysql' ? ['t'] : []);
    });

    it('renames a database with its content, and never over an existing one', async () => {
      await engine.createDatabase(db('ren_a'));
      await engine.applyScript(db('ren_a'), { file: 'x.sql', sql: TABLE[probe.name] });
      await engine.renameDatabase(db('ren_a'), db('ren_b'));
      expect(await engine.databaseExists(db('ren_a'))).toBe(false);
      expect((await engine.introspect(db('ren_b'))).map((t) => t.name)).toEqual(['t']);
      await engine.createDatabase(db('ren_c'));
      await expect(engine.renameDatabase(db('ren_b'), db('ren_c'))).rejects.toThrow(DatabaseExistsError);
      await expect(engine.renameDatabase(db('nope'), db('ren_d'))).rejects.toThrow(DatabaseNotFoundError);
    });

    it('keeps a marker and clones without copying the source marker', async () => {
      await engine.createDatabase(db('src'));
      await engine.applyScript(db('src'), {
        file: 'x.sql',
        sql: `${TABLE[probe.name]};\nINSERT INTO t (id, v) VALUES (7, 'seven')`,
      });
      expect(await engine.readMarker(db('src'))).toBeNull();
      await engine.writeMarker(db('src'), { kind: 'image', checksum: 'abc123' });
      expect(await engine.readMarker(db('src'))).toEqual({ kind: 'image', checksum: 'abc123' });
      await engine.cloneDatabase(db('src'), db('dst'), { kind: 'clone', cloneId: 'c-1' });
      expect(await engine.readMarker(db('dst'))).toEqual({ kind: 'clone', cloneId: 'c-1' });
      await engine.cloneDatabase(db('src'), db('dst2'));
      expect(await engine.readMarker(db('dst2'))).toBeNull();
      expect(await engine.introspect(db('dst'))).toEqual(await engine.introspect(db('src')));
      await expect(engine.cloneDatabase(db('src'), db('dst'))).rejects.toThrow(DatabaseExistsError);
      await expect(engine.cloneDatabase(db('nope'), db('dst3'))).rejects.toThrow(DatabaseNotFoundError);
      expect(await engine.databaseExists(db('dst3'))).toBe(false);
    });

    it('refuses a marker value outside its alphabet', async () => {
      await engine.createDatabase(db('mark'));
      await expect(engine.writeMarker(db('mark'), { kind: "x'); DROP TABLE t; --" })).rejects.toThrow(
        /invalid marker value/,
      );
      expect(await engine.readMarker(db('mark'))).toBeNull();
    });
  });
});
