import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine, EngineName, SqlSession } from '../../functions/core/engine.js';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import type { CloneRecord } from '../../functions/core/tenants.js';
import { plainString, startTestPlane, type TestPlane } from '../support/control-plane.js';
import { engineTitle, probeEngines } from '../support/engines.js';

const { env, probes } = await probeEngines();
afterAll(() => env.close());

describe.each(Object.values(probes))('clone workflow', (probe) => {
  describe.skipIf(!probe.engine)(engineTitle(probe), () => {
    const engineName = probe.name as EngineName;
    let t: TestPlane;
    let engine: DatabaseEngine;
    let a: CloneRecord;
    let b: CloneRecord;
    let credsA: CloneCredentials;
    beforeAll(async () => {
      t = await startTestPlane();
      engine = await t.plane.env.engine(engineName);
      const [ea, eb] = await Promise.all([
        t.create({ tenantId: 'acme-corp', engine: engineName, industry: 'finance', sampleSize: 15 }),
        t.create({ tenantId: 'globex', engine: engineName, industry: 'healthcare', version: 'v1.0' }),
      ]);
      expect(ea.status).toBe('SUCCEEDED');
      expect(eb.status).toBe('SUCCEEDED');
      a = await t.plane.tenants.get('acme-corp');
      b = await t.plane.tenants.get('globex');
      credsA = JSON.parse((await t.plane.deps.secrets.get(a.secretId as string)) as string);
    });
    afterAll(() => t?.close());

    const as = (role: 'admin' | 'user' | 'analyst', database = a.database as string) =>
      engine.openSession(database, credsA.roles[role] as { username: string; password: string });

    async function withSession<T>(
      session: Promise<SqlSession>,
      fn: (s: SqlSession) => Promise<T>,
    ): Promise<T> {
      const s = await session;
      try {
        return await fn(s);
      } finally {
        await s.close();
      }
    }

    it('registers a READY clone with its coordinates, its fingerprint and no password', async () => {
      expect(a).toMatchObject({
        state: 'READY',
        engine: engineName,
        version: 'v1.1',
        industry: 'finance',
        placement: 'shared',
      });
      expect(a.database).toBe(`${t.namespace}_t_${a.cloneId}`);
      expect(a.secretId).toBe(`${t.namespace}/clones/${a.cloneId}`);
      expect(a.fingerprint).toMatch(/^[0-9a-f]{64}$/);
      const text = JSON.stringify(a);
      for (const role of Object.values(credsA.roles)) expect(text).not.toContain(role.password);
    });

    it('keeps every password out of the execution history', async () => {
      const history = JSON.stringify(await t.plane.runner.describe(a.executionName as string));
      expect(history).toContain('Verify and register');
      for (const role of Object.values(credsA.roles)) expect(history).not.toContain(role.password);
    });

    it('writes to the registry three times, each conditional: PENDING, CREATING, READY', async () => {
      // The clone bench times the floor plus these three writes (`bound`); that measures the
      // registry's share of a clone only while a clone makes no other registry write.
      const writes: { command?: string; state?: string; conditional: boolean }[] = [];
      const client = t.plane.registryServer.client;
      client.middlewareStack.add(
        (next, context) => async (args) => {
          // Every command but a read (PartiQL statements and batches included).
          if (!/^(Get|BatchGet|Query|Scan|Describe|List)/.test(context.commandName ?? '')) {
            const input = args.input as {
              ConditionExpression?: string;
              Item?: { state?: unknown };
              ExpressionAttributeValues?: Record<string, unknown>;
            };
            writes.push({
              command: context.commandName,
              state: plainString(input.Item?.state ?? input.ExpressionAttributeValues?.[':to']),
              conditional: Boolean(input.ConditionExpression),
            });
          }
          return next(args);
        },
        { step: 'initialize', name: 'countRegistryWrites' },
      );
      try {
        expect((await t.create({ tenantId: 'umbrella', engine: engineName })).status).toBe('SUCCEEDED');
      } finally {
        client.middlewareStack.remove('countRegistryWrites');
      }
      expect(writes).toEqual([
        { command: 'PutItemCommand', state: 'PENDING', conditional: true },
        { command: 'UpdateItemCommand', state: 'CREATING', conditional: true },
        { command: 'UpdateItemCommand', state: 'READY', conditional: true },
      ]);
    });

    it('loads the template rows and deterministic per-tenant sample data', async () => {
      const rows = await withSession(as('analyst'), async (s) => ({
        sample: await s.query<{ email: string }>(
          "SELECT email FROM users WHERE email LIKE '%@acme-corp.example' ORDER BY email",
        ),
        accounts: await s.query('SELECT id FROM accounts'),
        orders: await s.query<{ n: number }>('SELECT COUNT(*) AS n FROM orders'),
      }));
      expect(rows.sample).toHaveLength(15);
      expect(rows.sample[0]?.email).toBe('sample-00001@acme-corp.example');
      expect(rows.accounts.length).toBeGreaterThan(0);
      expect(Number(rows.orders[0]?.n)).toBe(16); // 1 initial order + 15 sample orders
    });

    it('lets the analyst read but not write, enforced by the database', async () => {
      await withSession(as('analyst'), async (s) => {
        expect((await s.query('SELECT id FROM products')).length).toBeGreaterThan(0);
        await expect(
          s.query("INSERT INTO products (sku, name, category, price, stock) VALUES ('X-1', 'x', 'c', 1, 1)"),
        ).rejects.toThrow(/permission denied|command denied|readonly|read-only/i);
        await expect(s.query("UPDATE users SET full_name = 'x'")).rejects.toThrow(
          /permission denied|command denied|readonly|read-only/i,
        );
      });
    });

    it('lets the user write but not delete, and the admin delete', async () => {
      await withSession(as('user'), async (s) => {
        await s.query(
          "INSERT INTO products (sku, name, category, price, stock) VALUES ('U-1', 'user row', 'c', 1, 1)",
        );
        await s.query("UPDATE products SET stock = 2 WHERE sku = 'U-1'");
        if (engineName !== 'sqlite')
          await expect(s.query("DELETE FROM products WHERE sku = 'U-1'")).rejects.toThrow(
            /permission denied|command denied/i,
          );
      });
      await withSession(as('admin'), (s) => s.query("DELETE FROM products WHERE sku = 'U-1'"));
    });

    // PostgreSQL and MySQL refuse the database after accepting the credentials, which the
    // isolation probe relies on to prove a role's password with the same login; SQLite keeps
    // its logins inside each file, so another file does not know them.
    const refusal = () => ({ name: 'LoginRefusedError', authenticated: engineName !== 'sqlite' });

    it("refuses a tenant's logins on another tenant's database", async () => {
      for (const role of ['admin', 'user', 'analyst'] as const)
        await expect(as(role, b.database as string)).rejects.toMatchObject(refusal());
    });

    it('refuses a wrong password as a rejected login', async () => {
      const login = { username: credsA.roles.admin?.username as string, password: 'not-the-password' };
      // The local PostgreSQL trusts every loopback login (no password is checked there).
      if (engineName !== 'postgresql')
        await expect(engine.openSession(a.database as string, login)).rejects.toMatchObject({
          name: 'LoginRefusedError',
          authenticated: false,
        });
      await expect(
        engine.openSession(a.database as string, { username: 'nobody_here', password: 'x' }),
      ).rejects.toMatchObject({ name: 'LoginRefusedError', authenticated: false });
    });

    it("refuses the tenant's logins on the server's own databases and on the root image", async () => {
      const serverDatabases = { postgresql: ['postgres', 'template1'], mysql: ['mysql'], sqlite: [] }[
        engineName
      ];
      const image = `${t.namespace}_img_v1_1_finance`;
      expect(await engine.databaseExists(image)).toBe(true);
      for (const db of [...serverDatabases, image])
        for (const role of ['admin', 'user', 'analyst'] as const)
          await expect(as(role, db), `${role} on ${db}`).rejects.toMatchObject(refusal());
    });

    it('deletes the tenant: no database, no role, no secret, entry DELETED; again is a no-op', async () => {
      const created = await t.create({ tenantId: 'initech', engine: engineName });
      expect(created.status).toBe('SUCCEEDED');
      const record = await t.plane.tenants.get('initech');
      const first = await t.plane.tenants.delete('initech');
      expect((await t.plane.runner.wait(first.executionName)).status).toBe('SUCCEEDED');
      expect(await t.plane.tenants.get('initech')).toMatchObject({ state: 'DELETED' });
      expect(await t.artefacts(engineName, record.cloneId)).toEqual({
        database: false,
        roles: [],
        secret: false,
      });
      const again = await t.plane.tenants.delete('initech');
      expect(again.created).toBe(false);
      // and the tenant id can be used again, by a new clone
      expect((await t.create({ tenantId: 'initech', engine: engineName })).status).toBe('SUCCEEDED');
      expect((await t.plane.tenants.get('initech')).cloneId).not.toBe(record.cloneId);
    });
  });
});

describe.skipIf(!probes.postgresql.engine)('PostgreSQL clone grants', () => {
  let t: TestPlane;
  let record: CloneRecord;
  let creds: CloneCredentials;
  beforeAll(async () => {
    t = await startTestPlane();
    expect((await t.create({ tenantId: 'acl-check', engine: 'postgresql' })).status).toBe('SUCCEEDED');
    record = await t.plane.tenants.get('acl-check');
    creds = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
  });
  afterAll(() => t?.close());

  it('leaves no PUBLIC grant, an owner that cannot log in, and plain login roles with a connection limit', async () => {
    const admin = new pg.Client({ connectionString: await t.plane.env.postgresUrl() });
    await admin.connect();
    try {
      const db = await admin.query<{ acl: string | null; canlogin: boolean }>(
        `SELECT d.datacl::text AS acl, r.rolcanlogin AS canlogin
         FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = $1`,
        [record.database],
      );
      expect(db.rows[0]?.acl).not.toMatch(/(^|[{,])=/);
      expect(db.rows[0]?.canlogin).toBe(false);
      const server = await admin.query<{ datname: string; acl: string | null }>(
        "SELECT datname, datacl::text AS acl FROM pg_database WHERE datname IN ('postgres', 'template1')",
      );
      for (const row of server.rows) expect(row.acl, row.datname).not.toMatch(/(^|[{,])=[^/]*c/);
      const roles = await admin.query(
        'SELECT rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolconnlimit FROM pg_roles WHERE rolname = ANY($1::text[])',
        [Object.values(creds.roles).map((r) => r.username)],
      );
      expect(roles.rows).toEqual(
        Array.from({ length: 3 }, () => ({
          rolsuper: false,
          rolcreatedb: false,
          rolcreaterole: false,
          rolinherit: false,
          rolconnlimit: 20,
        })),
      );
    } finally {
      await admin.end();
    }
  });
});

describe.skipIf(!probes.postgresql.engine)('isolation probe on PostgreSQL', () => {
  it("fails and rolls back a clone whose login can open another tenant's database", async () => {
    const t = await startTestPlane();
    const admin = new pg.Client({ connectionString: await t.plane.env.postgresUrl() });
    await admin.connect();
    try {
      expect((await t.create({ tenantId: 'first-in', engine: 'postgresql' })).status).toBe('SUCCEEDED');
      const first = await t.plane.tenants.get('first-in');
      // A misconfiguration the probe exists for: every login may connect to the first tenant.
      await admin.query(`GRANT CONNECT ON DATABASE "${first.database}" TO PUBLIC`);
      const leaky = await t.create({ tenantId: 'leaky', engine: 'postgresql' });
      expect(leaky.status).toBe('FAILED');
      expect(leaky.cause).toContain(`the tenant's admin login opened ${first.database}`);
      const record = await t.plane.tenants.get('leaky');
      expect(record.state).toBe('FAILED');
      expect(await t.artefacts('postgresql', record.cloneId)).toEqual({
        database: false,
        roles: [],
        secret: false,
      });
    } finally {
      await admin.end();
      await t.close();
    }
  });
});

describe('SQLite clone files', () => {
  it("are built without per-commit syncs, while tenant sessions keep SQLite's fully synced commits", async () => {
    const t = await startTestPlane();
    try {
      expect((await t.create({ tenantId: 'durable', engine: 'sqlite' })).status).toBe('SUCCEEDED');
      const record = await t.plane.tenants.get('durable');
      const creds = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
      const engine = await t.plane.env.engine('sqlite');
      const session = await engine.openSession(record.database as string, creds.roles.admin);
      try {
        // 2 = FULL, SQLite's default; the control plane's own connections use OFF plus one fsync.
        expect(await session.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
        await session.query(
          "INSERT INTO products (sku, name, category, price, stock) VALUES ('D-1', 'd', 'c', 1, 1)",
        );
      } finally {
        await session.close();
      }
      // no journal or temporary file is left next to the clone
      const { readdir } = await import('node:fs/promises');
      const dir = (engine.endpoint(record.database as string).path as string).replace(/\/[^/]+$/, '');
      expect((await readdir(dir)).filter((f) => f.startsWith(record.database as string))).toEqual([
        `${record.database}.db`,
      ]);
    } finally {
      await t.close();
    }
  });
});
