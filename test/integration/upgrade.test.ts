import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import { UpgradeFailedError } from '../../functions/core/errors.js';
import { fingerprint } from '../../functions/core/fingerprint.js';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import {
  currentVersion,
  freshFingerprint,
  MIGRATION_PROGRESS_TABLE,
  upgradeTenant,
  versionHistory,
} from '../../functions/core/tenant-upgrade.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { engineTitle, probeEngines } from '../support/engines.js';

// `tenants upgrade`: one tenant from v1.0 to v1.1 on every engine, its data kept, its schema
// equal to a fresh v1.1; a failing migration leaves PostgreSQL and SQLite untouched and is
// reported statement by statement (and resumed) on MySQL.

const { env, probes } = await probeEngines();
afterAll(() => env.close());

/** Every row of `tables`, by id, with the columns they have now (or those given). */
async function snapshot(
  engine: DatabaseEngine,
  database: string,
  tables: readonly string[],
  columns?: ReadonlyMap<string, readonly string[]>,
): Promise<{ columns: ReadonlyMap<string, readonly string[]>; rows: Record<string, string[]> }> {
  const cols =
    columns ??
    new Map(
      fingerprint(await engine.introspect(database)).schema.tables.map((t) => [
        t.name,
        t.columns.map((c) => c.name),
      ]),
    );
  const rows = await engine.transaction(database, async (tx) => {
    const out: Record<string, string[]> = {};
    for (const t of tables) {
      const found = await tx.query<Record<string, unknown>>(`SELECT * FROM ${t} ORDER BY id`);
      out[t] = found.map((r) => JSON.stringify((cols.get(t) ?? []).map((c) => r[c])));
    }
    return out;
  });
  return { columns: cols, rows };
}

/** The rows again, with the columns of an earlier snapshot only. */
async function rowsAsBefore(
  engine: DatabaseEngine,
  database: string,
  tables: readonly string[],
  before: Awaited<ReturnType<typeof snapshot>>,
): Promise<Record<string, string[]>> {
  return (await snapshot(engine, database, tables, before.columns)).rows;
}

for (const name of ['postgresql', 'mysql', 'sqlite'] as const satisfies readonly EngineName[]) {
  describe.skipIf(!probes[name].engine)(`upgradeTenant on ${engineTitle(probes[name])}`, () => {
    let t: TestPlane;
    let engine: DatabaseEngine;
    let v10Tables: readonly string[];
    const create = async (tenantId: string) => {
      const r = await t.create({ tenantId, engine: name, version: 'v1.0', sampleSize: 15 });
      expect(r.status, r.cause).toBe('SUCCEEDED');
      return t.plane.tenants.get(tenantId);
    };

    beforeAll(async () => {
      t = await startTestPlane();
      engine = await t.shared(name);
      v10Tables = (await t.plane.deps.catalog.resolve(name, 'v1.0', 'technology')).tables;
    }, 120_000);
    afterAll(() => t?.close());

    it('moves a tenant from v1.0 to v1.1 with every row kept and the fresh v1.1 fingerprint', async () => {
      const before = await create('upg-one');
      const database = before.database as string;
      expect(before.version).toBe('v1.0');
      expect(await currentVersion(engine, database, t.plane.deps.catalog)).toBe('v1.0');
      const rows = await snapshot(engine, database, v10Tables);
      expect(Object.values(rows.rows).reduce((n, r) => n + r.length, 0)).toBeGreaterThan(15);

      const outcome = await upgradeTenant(t.plane.deps, 'upg-one', 'v1.1');
      expect(outcome).toMatchObject({ action: 'upgraded', from: 'v1.0', to: 'v1.1' });
      expect(outcome.statements).toBeGreaterThan(5);

      const v11 = await freshFingerprint(t.plane.deps, engine, 'v1.1', 'technology');
      expect(fingerprint(await engine.introspect(database)).hash).toBe(v11);
      expect(await rowsAsBefore(engine, database, v10Tables, rows)).toEqual(rows.rows);
      const after = await t.plane.tenants.get('upg-one');
      expect(after).toMatchObject({ version: 'v1.1', fingerprint: v11, state: 'READY' });
      expect(after.migrations).toEqual([`${name}/v1.1/migration_v1.0_to_v1.1.sql`]);
      expect((await versionHistory(engine, database)).map((h) => h.version)).toEqual(['v1.0', 'v1.1']);

      // The tables the migration added obey the tenant's grants too.
      const creds = JSON.parse(
        (await t.plane.deps.secrets.get(after.secretId as string)) as string,
      ) as CloneCredentials;
      const analyst = await engine.openSession(database, creds.roles.analyst as never);
      try {
        expect((await analyst.query('SELECT count(*) AS n FROM customers')).length).toBe(1);
        await expect(
          analyst.query("INSERT INTO customers (email, full_name) VALUES ('a@b.c', 'x')"),
        ).rejects.toThrow();
      } finally {
        await analyst.close();
      }
      const admin = await engine.openSession(database, creds.roles.admin as never);
      try {
        await admin.query("INSERT INTO customers (email, full_name) VALUES ('new@upg.example', 'New')");
      } finally {
        await admin.close();
      }

      // Again: nothing runs, nothing changes.
      const again = await upgradeTenant(t.plane.deps, 'upg-one', 'v1.1');
      expect(again).toMatchObject({ action: 'already', statements: 0, applied: [] });
      await expect(upgradeTenant(t.plane.deps, 'upg-one', 'v1.0')).rejects.toThrow(/newer than v1.0/);
    });

    it('refuses an unknown version and a tenant that does not exist, changing nothing', async () => {
      await expect(upgradeTenant(t.plane.deps, 'upg-one', 'v9.9')).rejects.toThrow(/version/);
      await expect(upgradeTenant(t.plane.deps, 'nobody-here', 'v1.1')).rejects.toThrow(/nobody-here/);
      await expect(upgradeTenant(t.plane.deps, "x'; DROP", 'v1.1')).rejects.toThrow(/tenant id/);
    });

    it(
      name === 'mysql'
        ? 'reports a failed migration statement precisely and resumes after the applied ones'
        : 'rolls a failed migration back whole: the tenant stays exactly at v1.0',
      async () => {
        const victim = await create('upg-victim');
        const database = victim.database as string;
        const rows = await snapshot(engine, database, v10Tables);
        // A hand-made column that the migration also adds: its ALTER TABLE fails midway.
        await engine.transaction(database, (tx) =>
          tx.query('ALTER TABLE orders ADD COLUMN customer_id BIGINT'),
        );
        const schemaBefore = fingerprint(await engine.introspect(database)).hash;

        const failed = await upgradeTenant(t.plane.deps, 'upg-victim', 'v1.1').catch((e) => e);
        expect(failed).toBeInstanceOf(UpgradeFailedError);
        expect(failed.message).toMatch(
          /migration_v1\.0_to_v1\.1\.sql: statement \d+ \(line \d+\) failed: .*customer_id/,
        );
        expect(await t.plane.tenants.get('upg-victim')).toMatchObject({ version: 'v1.0', state: 'READY' });
        expect(await currentVersion(engine, database, t.plane.deps.catalog)).toBe('v1.0');
        expect(await rowsAsBefore(engine, database, v10Tables, rows)).toEqual(rows.rows);

        if (name !== 'mysql') {
          expect(failed.state).toBe('unchanged');
          expect(fingerprint(await engine.introspect(database)).hash).toBe(schemaBefore);
          return;
        }
        expect(failed.state).toBe('partial');
        expect(failed.progress).toEqual({
          file: 'mysql/v1.1/migration_v1.0_to_v1.1.sql',
          applied: 4,
          total: 10,
        });
        expect(failed.message).toMatch(/4 of 10 statements .* are applied and recorded/);
        const recorded = await engine.transaction(database, (tx) =>
          tx.query<{ statement: number }>(
            `SELECT statement FROM ${MIGRATION_PROGRESS_TABLE} ORDER BY statement`,
          ),
        );
        expect(recorded.map((r) => Number(r.statement))).toEqual([0, 1, 2, 3]);
        // Fixed by hand, the upgrade resumes at statement 5: the first four are not run again.
        await engine.transaction(database, (tx) => tx.query('ALTER TABLE orders DROP COLUMN customer_id'));
        const resumed = await upgradeTenant(t.plane.deps, 'upg-victim', 'v1.1');
        expect(resumed).toMatchObject({ action: 'upgraded', statements: 6 });
        expect(fingerprint(await engine.introspect(database)).hash).toBe(
          await freshFingerprint(t.plane.deps, engine, 'v1.1', 'technology'),
        );
        expect(await rowsAsBefore(engine, database, v10Tables, rows)).toEqual(rows.rows);
      },
    );
  });
}
