import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import { type CloneRecord, physicalNames } from '../../functions/core/tenants.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { probeEngines } from '../support/engines.js';

// `tenants move` on one machine: a PostgreSQL tenant from the shared server to a server of
// its own and back, every row and every mapping kept.

const { env, probes } = await probeEngines();
afterAll(() => env.close());

/** Every row of every table, as JSON text, in a stable order. */
async function snapshot(engine: DatabaseEngine, database: string): Promise<Record<string, string>> {
  return engine.transaction(database, async (tx) => {
    const tables = await tx.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    );
    const out: Record<string, string> = {};
    for (const { name } of tables) {
      const [r] = await tx.query<{ rows: string }>(
        `SELECT COALESCE(json_agg(t ORDER BY t::text), '[]')::text AS rows FROM "${name}" t`,
      );
      out[name] = r?.rows ?? '[]';
    }
    return out;
  });
}

describe.skipIf(!probes.postgresql.engine)('moving a PostgreSQL tenant between placements', () => {
  let t: TestPlane;
  let server: LocalServer;
  let record: CloneRecord;
  let creds: CloneCredentials;
  let before: Record<string, string>;
  /** As `clonectl tenants move` does when `npm start` runs: through the API, as an operator. */
  const move = async (placement: string) => {
    const token = await server.issuer.mint({ email: 'ops@clonefactory.local', operator: true });
    const res = await fetch(`${server.url}/tenants/mover/move`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ placement }),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    return body as Awaited<ReturnType<TestPlane['plane']['move']>>;
  };
  const read = async () => {
    const token = await server.issuer.mint({ email: 'mo@mover.example', tenant: 'mover' });
    const res = await fetch(`${server.url}/data/products?sku=MOVE-1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: res.status, body: (await res.json()) as { rows?: { sku: string; name: string }[] } };
  };

  beforeAll(async () => {
    t = await startTestPlane();
    server = await LocalServer.start({ plane: t.plane, port: 0 });
    expect((await t.create({ tenantId: 'mover', engine: 'postgresql', sampleSize: 15 })).status).toBe(
      'SUCCEEDED',
    );
    record = await t.plane.tenants.get('mover');
    creds = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
    const shared = await t.plane.deps.engineFor(record);
    const s = await shared.openSession(record.database as string, creds.roles.admin as never);
    await s.query(
      "INSERT INTO products (sku, name, category, price, stock) VALUES ('MOVE-1', 'moves along', 'c', 3.25, 7)",
    );
    await s.close();
    await t.plane.users.map({ email: 'mo@mover.example', tenantId: 'mover', appRole: 'user' });
    before = await snapshot(shared, record.database as string);
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('moves to a server of its own with every row, the same mapping, and nothing left behind', async () => {
    expect((await read()).body.rows?.map((r) => r.sku)).toEqual(['MOVE-1']);
    const result = await move('dedicated');
    const instance = await t.plane.instances.describe(record.cloneId);
    expect(result).toMatchObject({
      tenantId: 'mover',
      cloneId: record.cloneId,
      from: 'shared',
      to: 'dedicated',
    });
    expect(result.rows.products).toBeGreaterThan(1);
    const moved = await t.plane.tenants.get('mover');
    expect(moved).toMatchObject({ state: 'READY', placement: 'dedicated', cloneId: record.cloneId });
    expect(moved.endpoint).toBe(`127.0.0.1:${instance?.port}/${record.database}`);
    expect(moved.fingerprint).toBe(record.fingerprint);
    // every row, sequences included: the next insert gets the next id
    const dedicated = await t.plane.deps.engineFor(moved);
    expect(await snapshot(dedicated, record.database as string)).toEqual(before);
    // the secret follows (same passwords, new port); the mapping is untouched
    const secret = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
    expect(secret.port).toBe(instance?.port);
    expect(secret.roles).toEqual(creds.roles);
    expect((await t.plane.users.list({ tenantId: 'mover' })).map((m) => m.cloneId)).toEqual([record.cloneId]);
    expect((await read()).body.rows?.map((r) => r.sku)).toEqual(['MOVE-1']);
    // nothing of it is left on the shared server
    const shared = await t.plane.env.engine('postgresql');
    expect(await shared.databaseExists(record.database as string)).toBe(false);
    expect(await shared.existingRoles(Object.values(creds.roles).map((r) => r.username))).toEqual([]);
  }, 120_000);

  it('moves back to the shared server, and the instance is gone', async () => {
    const result = await move('shared');
    expect(result).toMatchObject({ from: 'dedicated', to: 'shared' });
    expect(await t.plane.instances.describe(record.cloneId)).toBeNull();
    const back = await t.plane.tenants.get('mover');
    expect(back).toMatchObject({ state: 'READY', placement: 'shared' });
    expect(await snapshot(await t.plane.deps.engineFor(back), record.database as string)).toEqual(before);
    expect((await read()).status).toBe(200);
    expect((await read()).body.rows?.map((r) => r.sku)).toEqual(['MOVE-1']);
  }, 120_000);

  it('takes up a move cut short by a crash, and refuses a second move while one runs', async () => {
    // a crash after READY -> MOVING: the entry is left MOVING, the tenant on the shared server
    await t.plane.deps.registry.transition('mover', record.cloneId, ['READY'], 'MOVING');
    const results = await Promise.allSettled([
      t.plane.move('mover', 'dedicated'),
      t.plane.move('mover', 'dedicated'),
    ]);
    // Whichever reads the entry first takes the move up (the registry answers the two reads in
    // either order); the other is refused while it runs.
    const taken = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(taken).toHaveLength(1);
    expect(taken[0]).toMatchObject({ value: { from: 'shared', to: 'dedicated', oldRemoved: true } });
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ reason: { name: 'TenantStateConflictError' } });
    expect(await t.plane.tenants.get('mover')).toMatchObject({ state: 'READY', placement: 'dedicated' });
    expect(
      await snapshot(
        await t.plane.deps.engineFor(await t.plane.tenants.get('mover')),
        record.database as string,
      ),
    ).toEqual(before);
    expect((await t.plane.move('mover', 'shared')).to).toBe('shared');
  }, 120_000);

  it('undoes a move that fails before the switch: the tenant stays where it was, whole', async () => {
    await move('dedicated');
    // Another clone's role squats one of this clone's role names on the shared server.
    const squatted = physicalNames(t.namespace, record.cloneId).roles.analyst;
    const admin = new pg.Client({ connectionString: await t.plane.env.postgresUrl() });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE "${squatted}" NOLOGIN`);
      await admin.query(`COMMENT ON ROLE "${squatted}" IS '{"cloneId":"999999999999"}'`);
      await expect(t.plane.move('mover', 'shared')).rejects.toMatchObject({ name: 'ForeignArtefactError' });
      const still = await t.plane.tenants.get('mover');
      expect(still).toMatchObject({ state: 'READY', placement: 'dedicated' });
      expect(await snapshot(await t.plane.deps.engineFor(still), record.database as string)).toEqual(before);
      const shared = await t.plane.env.engine('postgresql');
      expect(await shared.databaseExists(record.database as string)).toBe(false);
      // the squatter's role is not touched
      expect((await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [squatted])).rowCount).toBe(1);
      expect((await read()).body.rows?.map((r) => r.sku)).toEqual(['MOVE-1']);
    } finally {
      await admin.query(`DROP ROLE IF EXISTS "${squatted}"`);
      await admin.end();
    }
    expect((await move('shared')).to).toBe('shared');
  }, 120_000);

  it('refuses bad moves with a clear error, and changes nothing', async () => {
    await expect(t.plane.move('nobody-here', 'dedicated')).rejects.toMatchObject({
      name: 'TenantNotFoundError',
    });
    await expect(t.plane.move('mover', 'shared')).rejects.toMatchObject({
      name: 'ValidationError',
      message: 'mover is already shared',
    });
    await expect(t.plane.move('mover', 'elsewhere')).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(t.plane.move("mover'; DROP", 'dedicated')).rejects.toMatchObject({
      name: 'InvalidIdentifierError',
    });
    expect((await t.create({ tenantId: 'lite-mover', engine: 'sqlite' })).status).toBe('SUCCEEDED');
    await expect(t.plane.move('lite-mover', 'dedicated')).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(/built for PostgreSQL/),
    });
    expect((await t.plane.tenants.get('mover')).state).toBe('READY');
  });
});
