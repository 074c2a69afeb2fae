import { describe, expect, it } from 'vitest';
import { SqliteEngine } from '../../functions/adapters/engines/sqlite.js';
import { tempDir } from '../support/engines.js';

// Found by the reliability suite's concurrent upgrades: a second transaction on a SQLite file
// while a first one (awaiting between its statements) held the write lock blocked the event
// loop in SQLite's busy handler for 5 s, then failed with "database is locked".
describe('SQLite transactions in one process', () => {
  it('take turns on a file: the second waits for the first, without blocking the event loop', async () => {
    const engine = new SqliteEngine({ dir: tempDir('sqlite-tx') });
    await engine.createDatabase('turns');
    await engine.transaction('turns', async (tx) => {
      await tx.query('CREATE TABLE t (n INTEGER NOT NULL)');
    });
    const order: string[] = [];
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const started = performance.now();
    const slow = engine.transaction('turns', async (tx) => {
      order.push('first begins');
      await tx.query('INSERT INTO t (n) VALUES (1)');
      await new Promise((resolve) => setTimeout(resolve, 300));
      order.push('first commits');
    });
    const second = engine.transaction('turns', async (tx) => {
      order.push('second begins');
      const rows = await tx.query<{ c: number }>('SELECT count(*) AS c FROM t');
      await tx.query('INSERT INTO t (n) VALUES (2)');
      return rows[0]?.c;
    });
    const [, seen] = await Promise.all([slow, second]);
    clearInterval(ticker);
    expect(order).toEqual(['first begins', 'first commits', 'second begins']);
    // the second saw the first's committed row
    expect(seen).toBe(1);
    // the loop kept turning while the second waited (a blocked loop would count none)
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(performance.now() - started).toBeLessThan(4_000);
  });

  it('a failed transaction does not hold up the next one', async () => {
    const engine = new SqliteEngine({ dir: tempDir('sqlite-tx') });
    await engine.createDatabase('failing');
    const failed = engine.transaction('failing', async (tx) => {
      await tx.query('CREATE TABLE u (n INTEGER)');
      throw new Error('boom');
    });
    const next = engine.transaction('failing', (tx) =>
      tx.query<{ name: string }>("SELECT name FROM sqlite_master WHERE name = 'u'"),
    );
    await expect(failed).rejects.toThrow('boom');
    // rolled back: the table is not there
    expect(await next).toEqual([]);
  });
});
