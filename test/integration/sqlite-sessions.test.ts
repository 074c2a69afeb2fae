import { describe, expect, it, vi } from 'vitest';
import { SqliteEngine } from '../../functions/adapters/engines/sqlite.js';
import { LoginRefusedError } from '../../functions/core/errors.js';
import { tempDir } from '../support/engines.js';

/** Every file better-sqlite3 opens, with its mode: a connection's first statement loads the schema. */
const opened = vi.hoisted(() => [] as { path: string; readonly: boolean }[]);
vi.mock('better-sqlite3', async (importOriginal) => {
  const original = (await importOriginal<{ default: typeof import('better-sqlite3') }>()).default;
  class Counted extends original {
    constructor(path: string, options?: { readonly?: boolean }) {
      super(path, options);
      opened.push({ path, readonly: options?.readonly === true });
    }
  }
  return { default: Counted };
});

const roles = [
  { appRole: 'admin', name: 'r_admin', password: 'pw-admin' },
  { appRole: 'user', name: 'r_user', password: 'pw-user' },
  { appRole: 'analyst', name: 'r_analyst', password: 'pw-analyst' },
] as const;

async function tenant(engine: SqliteEngine, name: string): Promise<void> {
  await engine.createDatabase(name);
  await engine.transaction(name, async (tx) => {
    await tx.query('CREATE TABLE t (n INTEGER NOT NULL)');
  });
  await engine.configureTenantAccess({
    cloneId: 'aaaaaaaaaaaa',
    database: name,
    ownerRole: 'owner',
    roles: [...roles],
    connectionLimit: 5,
  });
}

/** Opens a session as `role`, runs a query, closes it; returns the files it opened. */
async function login(engine: SqliteEngine, database: string, role: string, password: string) {
  opened.length = 0;
  try {
    const session = await engine.openSession(database, { username: role, password });
    await session.query('SELECT count(*) AS n FROM t');
    await session.close();
    return { opened: [...opened] };
  } catch (error) {
    return { opened: [...opened], error };
  }
}

describe('SQLite tenant sessions', () => {
  it("check the login on the control plane's idle kept connection: one file open per session, none for a refusal", async () => {
    const engine = new SqliteEngine({ dir: tempDir('sqlite-sessions'), keepConnectionsMs: 60_000 });
    await tenant(engine, 'a');
    const path = engine.path('a');
    expect(await login(engine, 'a', 'r_admin', 'pw-admin')).toEqual({ opened: [{ path, readonly: false }] });
    expect(await login(engine, 'a', 'r_user', 'pw-user')).toEqual({ opened: [{ path, readonly: false }] });
    expect(await login(engine, 'a', 'r_analyst', 'pw-analyst')).toEqual({
      opened: [{ path, readonly: true }],
    });
    const refused = await login(engine, 'a', 'r_admin', 'pw-user');
    expect(refused.opened).toEqual([]);
    expect(refused.error).toBeInstanceOf(LoginRefusedError);
    await engine.close();
  });

  it('without a kept connection, check on a read-only one that an analyst session keeps', async () => {
    const engine = new SqliteEngine({ dir: tempDir('sqlite-sessions') });
    await tenant(engine, 'b');
    const path = engine.path('b');
    const ro = { path, readonly: true };
    expect(await login(engine, 'b', 'r_analyst', 'pw-analyst')).toEqual({ opened: [ro] });
    expect(await login(engine, 'b', 'r_admin', 'pw-admin')).toEqual({
      opened: [ro, { path, readonly: false }],
    });
    const refused = await login(engine, 'b', 'r_user', 'nope');
    expect(refused.opened).toEqual([ro]);
    expect(refused.error).toBeInstanceOf(LoginRefusedError);
  });

  it('a login checked on the kept connection sees the access table as another process last wrote it', async () => {
    const dir = tempDir('sqlite-sessions');
    const engine = new SqliteEngine({ dir, keepConnectionsMs: 60_000 });
    await tenant(engine, 'c');
    expect((await login(engine, 'c', 'r_analyst', 'pw-analyst')).error).toBeUndefined();
    // another process's engine rewrites the access table with other passwords
    const other = new SqliteEngine({ dir });
    await other.configureTenantAccess({
      cloneId: 'aaaaaaaaaaaa',
      database: 'c',
      ownerRole: 'owner',
      roles: [{ appRole: 'analyst', name: 'r_analyst', password: 'changed' }],
      connectionLimit: 5,
    });
    expect((await login(engine, 'c', 'r_analyst', 'pw-analyst')).error).toBeInstanceOf(LoginRefusedError);
    expect((await login(engine, 'c', 'r_analyst', 'changed')).error).toBeUndefined();
    await engine.close();
  });
});
