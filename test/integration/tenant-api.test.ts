import { afterAll, describe, expect, it } from 'vitest';
import { TenantPools } from '../../functions/core/api/tenant-pools.js';
import type { UserPrincipal } from '../../functions/core/auth/authorizer.js';
import type { EngineName } from '../../functions/core/engine.js';
import { AccessDeniedError, PoolExhaustedError } from '../../functions/core/errors.js';
import { APP_ROLES, type AppRole } from '../../functions/core/tenants.js';
import { ROLE_PERMISSIONS } from '../../functions/core/users.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane } from '../support/control-plane.js';

const t = await startTestPlane();
const server = await LocalServer.start({ plane: t.plane, port: 0 });
afterAll(async () => {
  await server.close();
  await t.close();
});

// MySQL joins when a server answers; REQUIRE_MYSQL=1 (CI) makes its absence a failure.
const mysql = await t.plane.env.tryEngine('mysql');
if ('reason' in mysql && process.env.REQUIRE_MYSQL) throw new Error(`REQUIRE_MYSQL is set: ${mysql.reason}`);
const TENANTS: { id: string; engine: EngineName }[] = [
  { id: 'iso-pg-one', engine: 'postgresql' },
  { id: 'iso-pg-two', engine: 'postgresql' },
  ...('engine' in mysql ? [{ id: 'iso-my-one', engine: 'mysql' as const }] : []),
  { id: 'iso-sq-one', engine: 'sqlite' },
  { id: 'iso-sq-two', engine: 'sqlite' },
];
if (!('engine' in mysql)) console.warn(`tenant API isolation: MySQL left out (${mysql.reason})`);
const created = await Promise.all(TENANTS.map((x) => t.create({ tenantId: x.id, engine: x.engine })));
for (const e of created) expect(e.status).toBe('SUCCEEDED');
const email = (tenant: string, role: AppRole) => `${role}@${tenant}.example`;
for (const x of TENANTS)
  for (const role of APP_ROLES)
    await t.plane.users.map({ email: email(x.id, role), tenantId: x.id, appRole: role });

const call = async (token: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
};
const product = (sku: string) => ({ sku, name: `product ${sku}`, category: 'test', price: 9.5 });

async function principalOf(tenantId: string, appRole: AppRole): Promise<UserPrincipal> {
  const r = await t.plane.tenants.get(tenantId);
  return {
    kind: 'user',
    userId: email(tenantId, appRole),
    email: email(tenantId, appRole),
    tenantId,
    cloneId: r.cloneId,
    appRole,
    permissions: ROLE_PERMISSIONS[appRole],
    engine: r.engine,
    placement: r.placement,
    version: r.version,
    industry: r.industry,
    database: r.database as string,
    endpoint: r.endpoint ?? '',
    secretId: r.secretId as string,
  };
}

describe(`tenant API isolation over ${TENANTS.length} tenants (${[...new Set(TENANTS.map((x) => x.engine))].join(', ')})`, () => {
  it('every user reads and writes only their own tenant, as their role allows', async () => {
    let crossReads = 0;
    let crossWrites = 0;
    const outcomes: string[] = [];
    for (const own of TENANTS) {
      // A row only this tenant has, written by its admin.
      const admin = await server.issuer.mint({ email: email(own.id, 'admin'), tenant: own.id });
      expect((await call(admin, 'POST', '/data/products', product(`ONLY-${own.id}`))).status).toBe(201);
    }
    for (const own of TENANTS)
      for (const role of APP_ROLES)
        for (const target of TENANTS) {
          const token = await server.issuer.mint({ email: email(own.id, role), tenant: target.id });
          const read = await call(token, 'GET', '/data/products?limit=200');
          const write = await call(
            token,
            'POST',
            '/data/products',
            product(`W-${own.id}-${role}-${target.id}`),
          );
          if (target.id !== own.id) {
            if (read.status === 200) crossReads++;
            if (write.status === 201) crossWrites++;
            outcomes.push(`${read.status}/${write.status}`);
            continue;
          }
          expect(read.status).toBe(200);
          const skus = (read.body.rows as { sku: string }[]).map((r) => r.sku);
          expect(skus).toContain(`ONLY-${own.id}`);
          expect(skus.filter((s) => s.startsWith('ONLY-') && s !== `ONLY-${own.id}`)).toEqual([]);
          expect(write.status, `${role} insert at ${own.id}`).toBe(role === 'analyst' ? 403 : 201);
        }
    expect(crossReads).toBe(0);
    expect(crossWrites).toBe(0);
    expect(new Set(outcomes)).toEqual(new Set(['403/403']));
  });

  it('pages with a cursor and filters by column; refuses unknown tables and columns with 400', async () => {
    const id = TENANTS[0]?.id as string;
    const token = await server.issuer.mint({ email: email(id, 'analyst'), tenant: id });
    const first = await call(token, 'GET', '/data/products?limit=2');
    expect(first.body.rows).toHaveLength(2);
    const second = await call(token, 'GET', `/data/products?limit=2&after=${first.body.next}`);
    // PostgreSQL's BIGINT ids arrive as strings (pg keeps 64-bit precision).
    expect(Number(second.body.rows[0].id)).toBeGreaterThan(Number(first.body.rows[1].id));
    const filtered = await call(token, 'GET', `/data/products?sku=ONLY-${id}`);
    expect(filtered.body.rows.map((r: { sku: string }) => r.sku)).toEqual([`ONLY-${id}`]);
    expect((await call(token, 'GET', '/data/_clonefactory_seed')).status).toBe(400);
    expect((await call(token, 'GET', '/data/pg_authid')).status).toBe(400);
    expect((await call(token, 'GET', '/data/products?password=1')).status).toBe(400);
    expect((await call(token, 'GET', '/data/products?limit=100000')).status).toBe(400);
    expect((await call(token, 'GET', '/data/products/999999')).status).toBe(404);
    for (const id of ['1abc', '1e3', '1%20OR%201=1', '-'])
      expect((await call(token, 'GET', `/data/products/${id}`)).status, id).toBe(400);
  });

  it('GET /me shows the mapping and the clone', async () => {
    const x = TENANTS[0] as { id: string; engine: EngineName };
    const me = await call(
      await server.issuer.mint({ email: email(x.id, 'user'), tenant: x.id }),
      'GET',
      '/me',
    );
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      user: { email: email(x.id, 'user'), tenantId: x.id, appRole: 'user', permissions: ['read', 'write'] },
      clone: {
        tenantId: x.id,
        engine: x.engine,
        version: 'v1.1',
        industry: 'technology',
        placement: 'shared',
      },
    });
    expect(me.body.tables).toContain('products');
  });

  it.each(TENANTS)('the database itself refuses what the role may not do ($engine, $id)', async (x) => {
    // Permissions forged past the API's own check: only the grants stand in the way.
    const data = t.plane.data;
    const analyst = { ...(await principalOf(x.id, 'analyst')), permissions: ROLE_PERMISSIONS.admin };
    await expect(data.create(analyst, 'products', product(`FORGED-${x.id}`))).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    const [first] = (await data.list(analyst, 'products', { limit: 1 })).rows;
    await expect(data.update(analyst, 'products', String(first?.id), { stock: 1 })).rejects.toBeInstanceOf(
      AccessDeniedError,
    );
    const user = { ...(await principalOf(x.id, 'user')), permissions: ROLE_PERMISSIONS.admin };
    await expect(data.remove(user, 'products', String(first?.id))).rejects.toBeInstanceOf(AccessDeniedError);
    await expect(data.remove(user, 'products', String(first?.id))).rejects.toThrow(/the database refused/);
    const admin = await principalOf(x.id, 'admin');
    const row = await data.create(admin, 'products', product(`DEL-${x.id}`));
    await data.remove(admin, 'products', String(row.id));
    await expect(data.get(admin, 'products', String(row.id))).rejects.toThrow(/no row/);
  });
});

describe('TenantPools', () => {
  it('holds the global connection cap under 50 concurrent clients across 10 tenants', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `pool-${i}`);
    const runs = await Promise.all(ids.map((id) => t.create({ tenantId: id, engine: 'postgresql' })));
    for (const r of runs) expect(r.status).toBe('SUCCEEDED');
    const pools = new TenantPools({
      secrets: t.plane.deps.secrets,
      openSession: async (p, _c, login, options) =>
        (await t.plane.env.engine(p.engine)).openSession(p.database, login, options),
      options: { max: 3, globalMax: 6, acquireTimeoutMs: 20_000 },
    });
    const principals = await Promise.all(ids.map((id) => principalOf(id, 'analyst')));
    const roles = principals.map((p) => p.database);
    let serverPeak = 0;
    const pg = await t.plane.env.engine('postgresql');
    const sampler = setInterval(() => {
      void pg
        .transaction('postgres', (tx) =>
          // Tenant logins only: the control plane's own kept connections do not count.
          tx.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY(?) AND usename <> current_user',
            [roles],
          ),
        )
        .then(([r]) => {
          serverPeak = Math.max(serverPeak, Number(r?.n ?? 0));
        });
    }, 10);
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          pools.withSession(principals[i % 10] as UserPrincipal, async (db) => {
            const [row] = await db.query<{ db: string }>('SELECT current_database() AS db, pg_sleep(0.02)');
            return row?.db;
          }),
        ),
      );
      // Each client reached its own tenant's database, and only that one.
      expect(results).toEqual(Array.from({ length: 50 }, (_, i) => principals[i % 10]?.database));
    } finally {
      clearInterval(sampler);
    }
    const m = pools.metrics();
    expect(m).toMatchObject({ acquired: 50, failed: 0, waiting: 0 });
    expect(m.peakOpen).toBeLessThanOrEqual(6);
    expect(m.peakOpen).toBeGreaterThan(1);
    expect(m.evicted).toBeGreaterThan(0);
    expect(serverPeak).toBeLessThanOrEqual(6);
    await pools.close();
    expect(pools.metrics().open).toBe(0);
  });

  it('fails with 503 when no connection frees up in time, and never connects to another clone', async () => {
    const pools = new TenantPools({
      secrets: t.plane.deps.secrets,
      openSession: async (p, _c, login, options) =>
        (await t.plane.env.engine(p.engine)).openSession(p.database, login, options),
      options: { max: 1, globalMax: 1, acquireTimeoutMs: 200 },
    });
    const a = await principalOf('pool-0', 'admin');
    const b = await principalOf('pool-1', 'admin');
    let release: () => void = () => {};
    const held = pools.withSession(a, () => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 100));
    await expect(pools.withSession(b, async () => 1)).rejects.toThrow(PoolExhaustedError);
    release();
    await held;
    expect(await pools.withSession(b, async () => 2)).toBe(2);
    // A principal naming another clone's database with its own secret: refused before connecting.
    await expect(pools.withSession({ ...a, database: b.database }, async () => 3)).rejects.toThrow(
      AccessDeniedError,
    );
    expect(pools.metrics().failed).toBe(2);
    await pools.close();
  });
});

describe.skipIf(!('engine' in mysql))(
  'MySQL tenant sessions without an admin login (the AWS API path)',
  () => {
    it('opens a session with only host and port known, and applies the statement timeout', async () => {
      const { MysqlEngine } = await import('../../functions/adapters/engines/mysql.js');
      const record = await t.plane.tenants.get('iso-my-one');
      const credentials = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
      const bare = new MysqlEngine({ url: `mysql://${credentials.host}:${credentials.port}/` });
      const session = await bare.openSession(record.database as string, credentials.roles.analyst, {
        statementTimeoutMs: 1500,
      });
      try {
        const [row] = await session.query<{ t: number }>('SELECT @@SESSION.max_statement_time AS t');
        expect(Number(row?.t)).toBe(1.5);
      } finally {
        await session.close();
        await bare.close();
      }
    });
  },
);

describe('SQLite tenant sessions', () => {
  it('refuse writes to the control-plane tables, and DELETE for the user role, whatever the first statement', async () => {
    const engine = await t.plane.env.engine('sqlite');
    const record = await t.plane.tenants.get('iso-sq-one');
    const credentials = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
    const admin = await engine.openSession(record.database as string, credentials.roles.admin);
    const user = await engine.openSession(record.database as string, credentials.roles.user);
    try {
      // A writing statement that also returns rows is the first one: it must be guarded already.
      await expect(
        admin.query(
          "INSERT INTO _clonefactory_schema_history (version, industry, fingerprint, applied_by, applied_at) VALUES ('v9', 'x', 'f', 'me', 'now') RETURNING version",
        ),
      ).rejects.toBeInstanceOf(AccessDeniedError);
      await expect(admin.query('DELETE FROM _clonefactory_schema_history')).rejects.toBeInstanceOf(
        AccessDeniedError,
      );
      const [row] = await user.query<{ id: number }>(
        "INSERT INTO products (sku, name, category, price) VALUES ('SQ-GUARD', 'g', 'c', 1) RETURNING id",
      );
      await expect(user.query('DELETE FROM products WHERE id = ?', [row?.id])).rejects.toBeInstanceOf(
        AccessDeniedError,
      );
      await admin.query('DELETE FROM products WHERE id = ?', [row?.id]);
      expect(await admin.query('SELECT id FROM products WHERE id = ?', [row?.id])).toEqual([]);
    } finally {
      await admin.close();
      await user.close();
    }
  });
});
