import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import { fingerprint } from '../../functions/core/fingerprint.js';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import type { CloneRecord } from '../../functions/core/tenants.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { engineTitle, probeEngines } from '../support/engines.js';

// `tenants branch`: a sandbox tenant copied from a live one, data included, with its own
// credentials and registry entry, and no access either way.

const { env, probes } = await probeEngines();
afterAll(() => env.close());

const rows = (engine: DatabaseEngine, database: string) =>
  engine.transaction(database, async (tx) => {
    const out: Record<string, unknown[]> = {};
    for (const t of ['users', 'products', 'orders', 'software_licenses'])
      out[t] = (await tx.query(`SELECT * FROM ${t} ORDER BY id`)).map((r) => JSON.stringify(r));
    return out;
  });

for (const name of ['postgresql', 'mysql', 'sqlite'] as const) {
  describe.skipIf(!probes[name].engine)(`branching a tenant on ${engineTitle(probes[name])}`, () => {
    let t: TestPlane;
    let source: CloneRecord;
    let engine: DatabaseEngine;
    const creds = async (r: CloneRecord) =>
      JSON.parse((await t.plane.deps.secrets.get(r.secretId as string)) as string) as CloneCredentials;

    beforeAll(async () => {
      t = await startTestPlane();
      const r = await t.create({ tenantId: 'live-one', engine: name, sampleSize: 12 });
      expect(r.status, r.cause).toBe('SUCCEEDED');
      source = await t.plane.tenants.get('live-one');
      engine = await t.plane.deps.engineFor(source);
      const admin = await engine.openSession(
        source.database as string,
        (await creds(source)).roles.admin as never,
      );
      await admin.query(
        "INSERT INTO products (sku, name, category, price, stock) VALUES ('LIVE-1', 'live', 'c', 1.5, 2)",
      );
      await admin.close();
      // A drifted source: the branch copies what is there.
      await engine.transaction(source.database as string, (tx) =>
        tx.query('ALTER TABLE products ADD COLUMN notes TEXT'),
      );
    }, 120_000);
    afterAll(() => t?.close());

    it('makes a READY copy with the same rows, its own credentials, and no access either way', async () => {
      const started = await t.plane.branch('live-one', 'sandbox-one');
      const execution = await t.plane.runner.wait(started.executionName);
      expect(execution.status, execution.cause).toBe('SUCCEEDED');
      expect(execution.events.filter((e) => e.type === 'StateEntered').map((e) => e.state)).toContain(
        'Populate data',
      );
      const branch = await t.plane.tenants.get('sandbox-one');
      expect(branch).toMatchObject({
        state: 'READY',
        branchOf: 'live-one',
        version: source.version,
        engine: name,
      });
      expect(branch.database).not.toBe(source.database);
      expect(branch.fingerprint).toBe(fingerprint(await engine.introspect(source.database as string)).hash);
      expect(await rows(engine, branch.database as string)).toEqual(
        await rows(engine, source.database as string),
      );

      const mine = await creds(branch);
      const theirs = await creds(source);
      expect(mine.roles.admin?.username).not.toBe(theirs.roles.admin?.username);
      await expect(
        engine.openSession(branch.database as string, theirs.roles.admin as never),
      ).rejects.toThrow();
      await expect(
        engine.openSession(source.database as string, mine.roles.admin as never),
      ).rejects.toThrow();
      const s = await engine.openSession(branch.database as string, mine.roles.analyst as never);
      expect(await s.query("SELECT name FROM products WHERE sku = 'LIVE-1'")).toEqual([{ name: 'live' }]);
      await s.close();

      // The source is independent of its branch: deleting it leaves the branch whole.
      const deleted = await t.plane.tenants.delete('live-one');
      expect((await t.plane.runner.wait(deleted.executionName)).status).toBe('SUCCEEDED');
      expect(await t.artefacts(name, source.cloneId)).toEqual({ database: false, roles: [], secret: false });
      const again = await engine.openSession(branch.database as string, mine.roles.admin as never);
      expect((await again.query("SELECT count(*) AS n FROM products WHERE sku = 'LIVE-1'")).length).toBe(1);
      await again.close();
    });

    it('refuses a missing source, itself, and a taken id, creating nothing', async () => {
      await expect(t.plane.branch('no-such-one', 'sandbox-two')).rejects.toThrow(/no-such-one/);
      await expect(t.plane.branch('sandbox-one', 'sandbox-one')).rejects.toThrow(/itself/);
      await expect(t.plane.branch('sandbox-one', 'Bad Id')).rejects.toThrow(/tenant id/);
      await expect(t.plane.tenants.get('sandbox-two')).rejects.toThrow(/sandbox-two/);
    });
  });
}
