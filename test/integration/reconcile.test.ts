import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import { physicalNames } from '../../functions/core/tenants.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';

// The reconciler: marked orphans older than the grace period found and (with apply) removed;
// unmarked and young artefacts, and live clones, never touched; dangling and stuck entries reported.

const HOURS_AGO = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();

describe('reconcile', () => {
  let t: TestPlane;
  let pgEngine: DatabaseEngine;
  let sqlite: DatabaseEngine;
  const ids = {
    oldDb: 'a0a0a0a0a0a0',
    oldRole: 'b0b0b0b0b0b0',
    oldSecret: 'c0c0c0c0c0c0',
    youngDb: 'd0d0d0d0d0d0',
    sqliteDb: 'e0e0e0e0e0e0',
  };
  const name = (id: string) => physicalNames(t.namespace, id);

  beforeAll(async () => {
    t = await startTestPlane();
    pgEngine = await t.shared('postgresql');
    sqlite = await t.shared('sqlite');
    // Live tenants: one stays READY, one loses its database behind the registry's back.
    for (const tenantId of ['rec-live', 'rec-dangling']) {
      const r = await t.create({ tenantId, engine: 'postgresql' });
      expect(r.status, r.cause).toBe('SUCCEEDED');
    }
    await pgEngine.dropDatabase((await t.plane.tenants.get('rec-dangling')).database as string);

    // Orphans made by hand, marked, three hours old (the grace period is two).
    await pgEngine.createDatabase(name(ids.oldDb).database);
    await pgEngine.writeMarker(name(ids.oldDb).database, {
      kind: 'clone',
      cloneId: ids.oldDb,
      createdAt: HOURS_AGO(3),
    });
    await sqlite.createDatabase(name(ids.sqliteDb).database);
    await sqlite.writeMarker(name(ids.sqliteDb).database, {
      kind: 'clone',
      cloneId: ids.sqliteDb,
      createdAt: HOURS_AGO(3),
    });
    const role = name(ids.oldRole).roles.admin;
    const marker = JSON.stringify({ kind: 'role', cloneId: ids.oldRole, createdAt: HOURS_AGO(3) });
    await pgEngine.transaction('postgres', async (tx) => {
      await tx.query(`CREATE ROLE "${role}" NOLOGIN`);
      await tx.query(`COMMENT ON ROLE "${role}" IS '${marker}'`);
    });
    await t.plane.deps.secrets.put(name(ids.oldSecret).secretId, '{"roles":{}}', {
      cloneId: ids.oldSecret,
      managedBy: 'clonefactory',
      createdAt: HOURS_AGO(3),
    });
    // Marked but young, and one with no marker at all.
    await pgEngine.createDatabase(name(ids.youngDb).database);
    await pgEngine.writeMarker(name(ids.youngDb).database, {
      kind: 'clone',
      cloneId: ids.youngDb,
      createdAt: HOURS_AGO(0.1),
    });
    await pgEngine.createDatabase(`${t.namespace}_t_ffffffffffff`);

    // In-flight entries: one written a minute ago, one stuck for three hours.
    const entry = (tenantId: string, cloneId: string, updatedAt: string) => ({
      tenantId,
      cloneId,
      state: 'CREATING' as const,
      engine: 'postgresql' as const,
      placement: 'shared' as const,
      version: 'v1.1',
      industry: 'technology',
      createdAt: updatedAt,
      updatedAt,
      rev: 0,
    });
    await t.plane.deps.registry.register(entry('rec-young', '111111111111', HOURS_AGO(1 / 60)));
    await t.plane.deps.registry.register(entry('rec-stuck', '222222222222', HOURS_AGO(3)));
  }, 120_000);
  afterAll(() => t?.close());

  it('reports without changing anything unless told to apply', async () => {
    const report = await t.plane.reconcile();
    expect(report.applied).toBe(false);
    const orphans = report.orphans.map((o) => [o.kind, o.cloneId, o.action]).sort();
    expect(orphans).toEqual(
      [
        ['database', ids.oldDb, 'would remove'],
        ['database', ids.sqliteDb, 'would remove'],
        ['database', ids.youngDb, 'kept: younger than the grace period'],
        ['role', ids.oldRole, 'would remove'],
        ['secret', ids.oldSecret, 'would remove'],
      ].sort(),
    );
    expect(report.dangling).toEqual([
      expect.objectContaining({ tenantId: 'rec-dangling', reason: 'database is gone' }),
    ]);
    expect(report.stuck).toEqual([
      expect.objectContaining({ tenantId: 'rec-stuck', action: 'would mark FAILED' }),
    ]);
    expect(report.unmarked).toBeGreaterThanOrEqual(1);
    expect(await pgEngine.databaseExists(name(ids.oldDb).database)).toBe(true);
    expect(await t.plane.deps.secrets.get(name(ids.oldSecret).secretId)).not.toBeNull();
    expect((await t.plane.tenants.get('rec-stuck')).state).toBe('CREATING');
  });

  it('with apply removes old marked orphans only, and fails the stuck entry', async () => {
    const report = await t.plane.reconcile({ apply: true });
    expect(report.counts).toMatchObject({ removed: 4, dangling: 1, stuck: 1 });
    expect(await pgEngine.databaseExists(name(ids.oldDb).database)).toBe(false);
    expect(await sqlite.databaseExists(name(ids.sqliteDb).database)).toBe(false);
    expect(await pgEngine.existingRoles([name(ids.oldRole).roles.admin])).toEqual([]);
    expect(await t.plane.deps.secrets.get(name(ids.oldSecret).secretId)).toBeNull();
    // Never touched: the unmarked database, the young orphan, the live clones and the young entry.
    expect(await pgEngine.databaseExists(`${t.namespace}_t_ffffffffffff`)).toBe(true);
    expect(await pgEngine.databaseExists(name(ids.youngDb).database)).toBe(true);
    const live = await t.plane.tenants.get('rec-live');
    expect(await pgEngine.databaseExists(live.database as string)).toBe(true);
    expect(await t.artefacts('postgresql', live.cloneId)).toMatchObject({ database: true, secret: true });
    expect((await t.plane.tenants.get('rec-young')).state).toBe('CREATING');
    expect(await t.plane.tenants.get('rec-stuck')).toMatchObject({
      state: 'FAILED',
      lastError: expect.stringMatching(/stuck in CREATING/),
    });
  });

  it('shows in the status overview: the failed entry needs attention, the last reconcile is there', async () => {
    const s = await t.plane.status();
    expect(s.byState).toMatchObject({ READY: 2, CREATING: 1, FAILED: 1 });
    expect(s.byEngine).toMatchObject({ postgresql: 4 });
    expect(s.attention).toEqual([
      expect.objectContaining({
        tenantId: 'rec-stuck',
        state: 'FAILED',
        detail: expect.stringMatching(/stuck/),
      }),
    ]);
    expect(s.executions.map((e) => e.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(s.executions[0]?.durationMs).toBeGreaterThan(0);
    expect(s.lastReconcile).toMatchObject({ applied: true, counts: { removed: 4 } });
  });
});

describe('reconcile with dedicated instances', () => {
  let t: TestPlane;
  afterAll(() => t?.close());

  it('removes an old orphan instance (its server stopped, its directory gone) and leaves a live tenant’s', async () => {
    t = await startTestPlane();
    const live = await t.create({ tenantId: 'rec-ded', engine: 'postgresql', placement: 'dedicated' });
    expect(live.status, live.cause).toBe('SUCCEEDED');
    const liveRecord = await t.plane.tenants.get('rec-ded');
    // An instance whose clone the registry does not know, three hours old.
    const ghost = {
      tenantId: 'ghost',
      cloneId: 'f1f1f1f1f1f1',
      engine: 'postgresql' as const,
      placement: 'dedicated' as const,
    };
    expect((await t.plane.instances.provision(ghost)).state).toBe('available');
    const file = join(t.home, 'instances', ghost.cloneId, 'instance.json');
    const instance = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(
      file,
      JSON.stringify({ ...instance, createdAt: new Date(Date.now() - 3 * 3_600_000).toISOString() }),
    );
    const pid = (await t.plane.instances.describe(ghost.cloneId))?.pid as number;
    expect(pid).toBeGreaterThan(0);

    const dry = await t.plane.reconcile();
    expect(dry.orphans.filter((o) => o.kind === 'instance')).toEqual([
      expect.objectContaining({ cloneId: ghost.cloneId, action: 'would remove' }),
    ]);
    const applied = await t.plane.reconcile({ apply: true });
    expect(applied.orphans.filter((o) => o.kind === 'instance')).toEqual([
      expect.objectContaining({ cloneId: ghost.cloneId, action: 'removed' }),
    ]);
    expect(existsSync(join(t.home, 'instances', ghost.cloneId))).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
    expect(existsSync(join(t.home, 'instances', liveRecord.cloneId))).toBe(true);
    const still = await t.plane.instances.describe(liveRecord.cloneId);
    expect(() => process.kill(still?.pid as number, 0)).not.toThrow();
  }, 180_000);
});
