import { copyFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SqliteEngine } from '../../functions/adapters/engines/sqlite.js';
import { DatabaseNotFoundError } from '../../functions/core/errors.js';
import { tempDir } from '../support/engines.js';

/** How many of this process's file descriptors are open on `path`. */
function openOn(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

async function withTable(engine: SqliteEngine, name: string, value: number): Promise<void> {
  await engine.createDatabase(name);
  await engine.transaction(name, async (tx) => {
    await tx.query('CREATE TABLE t (n INTEGER NOT NULL)');
    await tx.query('INSERT INTO t (n) VALUES (?)', [value]);
  });
}

const values = (engine: SqliteEngine, name: string) =>
  engine.transaction(name, (tx) => tx.query<{ n: number }>('SELECT n FROM t ORDER BY n'));

describe('SQLite control-plane connections', () => {
  it('are closed after each use by default', async () => {
    const engine = new SqliteEngine({ dir: tempDir('sqlite-conn') });
    await withTable(engine, 'plain', 1);
    expect(await values(engine, 'plain')).toEqual([{ n: 1 }]);
    expect(openOn(engine.path('plain'))).toBe(0);
  });

  it('with keepConnectionsMs: one per file, shared by transactions and reads, closed when idle or on close()', async () => {
    const engine = new SqliteEngine({ dir: tempDir('sqlite-conn'), keepConnectionsMs: 200 });
    await withTable(engine, 'kept', 1);
    const path = engine.path('kept');
    expect(openOn(path)).toBe(1);
    await values(engine, 'kept');
    await engine.introspect('kept');
    await engine.configureTenantAccess({
      cloneId: 'aaaaaaaaaaaa',
      database: 'kept',
      ownerRole: 'owner',
      roles: [{ appRole: 'analyst', name: 'r_analyst', password: 'pw' }],
      connectionLimit: 5,
    });
    expect(openOn(path)).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(openOn(path)).toBe(0);

    await values(engine, 'kept');
    expect(openOn(path)).toBe(1);
    await engine.close();
    expect(openOn(path)).toBe(0);
  });

  it('a second user while the kept one is lent gets a connection of its own, closed after', async () => {
    const engine = new SqliteEngine({ dir: tempDir('sqlite-conn'), keepConnectionsMs: 60_000 });
    await withTable(engine, 'busy', 1);
    const path = engine.path('busy');
    await engine.transaction('busy', async (tx) => {
      await tx.query('INSERT INTO t (n) VALUES (2)');
      // a read beside the open transaction: a connection of its own (SQLite itself holds its
      // file descriptor until the transaction ends, so that its locks stay)
      expect((await engine.introspect('busy')).map((t) => t.name)).toContain('t');
    });
    expect(openOn(path)).toBe(1);
    expect(await values(engine, 'busy')).toEqual([{ n: 1 }, { n: 2 }]);
    await engine.close();
  });

  it('never serve a file that was dropped, renamed over or replaced behind their back', async () => {
    const dir = tempDir('sqlite-conn');
    const engine = new SqliteEngine({ dir, keepConnectionsMs: 60_000 });
    await withTable(engine, 'a', 1);
    expect(await values(engine, 'a')).toEqual([{ n: 1 }]);

    // dropped and made again through the engine
    await engine.dropDatabase('a');
    expect(openOn(engine.path('a'))).toBe(0);
    await withTable(engine, 'a', 2);
    expect(await values(engine, 'a')).toEqual([{ n: 2 }]);

    // renamed away, and another file renamed to its name
    await withTable(engine, 'b', 3);
    await engine.renameDatabase('a', 'c');
    await engine.renameDatabase('b', 'a');
    expect(await values(engine, 'a')).toEqual([{ n: 3 }]);
    expect(await values(engine, 'c')).toEqual([{ n: 2 }]);

    // replaced by another process (here: by hand), which the engine cannot be told about
    const other = new SqliteEngine({ dir: tempDir('sqlite-conn') });
    await withTable(other, 'x', 4);
    rmSync(engine.path('a'));
    copyFileSync(other.path('x'), engine.path('a'));
    expect(await values(engine, 'a')).toEqual([{ n: 4 }]);

    // removed by hand: not found, not the deleted file's rows
    rmSync(engine.path('a'));
    await expect(values(engine, 'a')).rejects.toThrow(DatabaseNotFoundError);
    await engine.close();
  });
});
