import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import { fingerprint } from '../../functions/core/fingerprint.js';
import { runExecutionName, type UpgradeRun } from '../../functions/core/fleet-upgrade.js';
import { currentVersion, freshFingerprint } from '../../functions/core/tenant-upgrade.js';
import type { CloneRecord } from '../../functions/core/tenants.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { engineTitle, probeEngines } from '../support/engines.js';

// Fleet upgrades through the synthesized upgrade state machine (a Distributed Map per wave),
// run by the local runner: the failure policy, continue-on-error, resume and dry runs.

const { env, probes } = await probeEngines();
afterAll(() => env.close());

const VICTIM_COLUMN = 'ALTER TABLE orders ADD COLUMN customer_id BIGINT';

interface Fleet {
  readonly ids: string[];
  readonly records: Map<string, CloneRecord>;
}

async function makeFleet(t: TestPlane, engine: EngineName, prefix: string, size: number): Promise<Fleet> {
  const ids = Array.from({ length: size }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
  const records = new Map<string, CloneRecord>();
  for (const tenantId of ids) {
    const r = await t.create({ tenantId, engine, version: 'v1.0', sampleSize: 5 });
    expect(r.status, r.cause).toBe('SUCCEEDED');
    records.set(tenantId, await t.plane.tenants.get(tenantId));
  }
  return { ids, records };
}

async function finish(t: TestPlane, run: UpgradeRun): Promise<UpgradeRun> {
  const execution = await t.plane.runner.wait(runExecutionName(run.runId, run.executions));
  expect(execution.status, execution.cause).toBe('SUCCEEDED');
  return t.plane.upgrades.get(run.runId);
}

for (const name of ['postgresql', 'mysql', 'sqlite'] as const) {
  describe.skipIf(!probes[name].engine)(`a fleet upgrade on ${engineTitle(probes[name])}`, () => {
    let t: TestPlane;
    let engine: DatabaseEngine;
    let v10: string;
    let v11: string;
    const liveHash = async (record: CloneRecord) =>
      fingerprint(await engine.introspect(record.database as string)).hash;

    beforeAll(async () => {
      t = await startTestPlane();
      engine = await t.shared(name);
      v10 = await freshFingerprint(t.plane.deps, engine, 'v1.0', 'technology');
      v11 = await freshFingerprint(t.plane.deps, engine, 'v1.1', 'technology');
    }, 120_000);
    afterAll(() => t?.close());

    it('halts at the first failure by default: the failed tenant is intact or precisely reported, the rest untouched', async () => {
      const fleet = await makeFleet(t, name, 'fa', 10);
      const victim = fleet.records.get('fa-04') as CloneRecord;
      await engine.transaction(victim.database as string, (tx) => tx.query(VICTIM_COLUMN));
      const victimBefore = await liveHash(victim);

      const started = await t.plane.upgrades.start({
        to: 'v1.1',
        selection: { engine: name, tenants: fleet.ids },
        policy: { canary: 2, maxConcurrency: 1 },
      });
      expect(started.tenants).toEqual(fleet.ids);
      const run = await finish(t, started);
      expect(run).toMatchObject({ state: 'HALTED', upgraded: 4, failed: 1, skipped: 5, already: 0 });
      expect(run.reason).toMatch(/1 tenant failed, the limit is 1/);
      expect(run.failures).toEqual([
        {
          tenantId: 'fa-04',
          error: expect.stringMatching(/statement \d+ \(line \d+\) failed: .*customer_id/),
        },
      ]);

      for (const id of fleet.ids) {
        const now = await t.plane.tenants.get(id);
        const n = Number(id.slice(-2));
        if (n < 4) {
          expect(now.upgrade).toMatchObject({ runId: run.runId, status: 'upgraded', to: 'v1.1' });
          expect(now.version).toBe('v1.1');
          expect(await liveHash(now)).toBe(v11);
        } else if (n === 4) {
          expect(now.upgrade).toMatchObject({
            status: 'failed',
            detail: expect.stringMatching(/customer_id/),
          });
          expect(now.version).toBe('v1.0');
          expect(await currentVersion(engine, now.database as string, t.plane.deps.catalog)).toBe('v1.0');
          if (name === 'mysql')
            expect(now.upgrade?.detail).toMatch(/4 of 10 statements .* are applied and recorded/);
          else expect(await liveHash(now)).toBe(victimBefore);
        } else {
          expect(now.upgrade).toMatchObject({ status: 'skipped', detail: expect.stringMatching(/halted/) });
          expect(now.version).toBe('v1.0');
          expect(await liveHash(now)).toBe(v10);
        }
      }
    });
  });
}

describe('resuming, dry runs and drift on PostgreSQL and SQLite', () => {
  let t: TestPlane;
  let pgEngine: DatabaseEngine;
  /** Migrations that started, per tenant; and a stop asked for at the fourth. */
  const migrations = new Map<string, number>();
  let stopAt: { runId: string; after: number } | null = null;

  beforeAll(async () => {
    t = await startTestPlane({
      faults: async (step, when, state) => {
        if (step !== 'Upgrade tenant' || when !== 'before') return;
        migrations.set(state.tenantId, (migrations.get(state.tenantId) ?? 0) + 1);
        const started = [...migrations.values()].reduce((a, b) => a + b, 0);
        if (stopAt && started === stopAt.after) await t.plane.upgrades.stop(stopAt.runId);
      },
    });
    pgEngine = await t.shared('postgresql');
  }, 120_000);
  afterAll(() => t?.close());

  it('with continue-on-error upgrades the other nine', async () => {
    const fleet = await makeFleet(t, 'postgresql', 'fb', 10);
    const victim = fleet.records.get('fb-07') as CloneRecord;
    await pgEngine.transaction(victim.database as string, (tx) => tx.query(VICTIM_COLUMN));
    const victimBefore = fingerprint(await pgEngine.introspect(victim.database as string)).hash;
    const run = await finish(
      t,
      await t.plane.upgrades.start({
        to: 'v1.1',
        selection: { tenants: fleet.ids },
        policy: { canary: 1, maxConcurrency: 4, continueOnError: true },
      }),
    );
    expect(run).toMatchObject({ state: 'FAILED', upgraded: 9, failed: 1, skipped: 0 });
    const v11 = await freshFingerprint(t.plane.deps, pgEngine, 'v1.1', 'technology');
    for (const id of fleet.ids) {
      const now = await t.plane.tenants.get(id);
      expect(now.version).toBe(id === 'fb-07' ? 'v1.0' : 'v1.1');
      expect(fingerprint(await pgEngine.introspect(now.database as string)).hash).toBe(
        id === 'fb-07' ? victimBefore : v11,
      );
    }
  });

  it('a stopped run resumes and touches no tenant twice', async () => {
    const fleet = await makeFleet(t, 'postgresql', 'fr', 10);
    migrations.clear();
    const started = await t.plane.upgrades.start({
      to: 'v1.1',
      selection: { tenants: fleet.ids },
      policy: { canary: 1, maxConcurrency: 1 },
    });
    stopAt = { runId: started.runId, after: 4 };
    const stopped = await finish(t, started);
    stopAt = null;
    expect(stopped).toMatchObject({ state: 'STOPPED', upgraded: 4, skipped: 6, failed: 0 });
    expect((await t.plane.tenants.get('fr-05')).upgrade).toMatchObject({ status: 'skipped' });
    await expect(t.plane.upgrades.resume('upg-20260101t000000-000000')).rejects.toThrow(/no upgrade run/);

    const resumed = await t.plane.upgrades.resume(started.runId);
    expect(resumed).toMatchObject({ state: 'RUNNING', executions: 2 });
    const done = await finish(t, resumed);
    expect(done).toMatchObject({ state: 'SUCCEEDED', upgraded: 10, skipped: 0, failed: 0 });
    expect([...migrations.entries()].sort()).toEqual(fleet.ids.map((id) => [id, 1]));
    for (const id of fleet.ids)
      expect(await t.plane.tenants.get(id)).toMatchObject({
        version: 'v1.1',
        upgrade: { runId: started.runId, status: 'upgraded' },
      });
    await expect(t.plane.upgrades.resume(started.runId)).rejects.toThrow(/SUCCEEDED/);
  });

  it('a dry run finds the failing tenant on branches without changing any real tenant', async () => {
    const fleet = await makeFleet(t, 'postgresql', 'fd', 5);
    const victim = fleet.records.get('fd-02') as CloneRecord;
    await pgEngine.transaction(victim.database as string, (tx) => tx.query(VICTIM_COLUMN));
    const before = new Map<string, { rev: number; hash: string }>();
    for (const id of fleet.ids) {
      const r = await t.plane.tenants.get(id);
      before.set(id, { rev: r.rev, hash: fingerprint(await pgEngine.introspect(r.database as string)).hash });
    }
    migrations.clear();
    const run = await finish(
      t,
      await t.plane.upgrades.start({ to: 'v1.1', selection: { tenants: fleet.ids }, dryRun: true }),
    );
    expect(run).toMatchObject({ dryRun: true, state: 'FAILED', upgraded: 4, failed: 1, skipped: 0 });
    expect(run.failures).toEqual([
      { tenantId: 'fd-02', error: expect.stringMatching(/statement \d+ \(line \d+\) failed: .*customer_id/) },
    ]);
    expect(migrations.size).toBe(0);
    for (const id of fleet.ids) {
      const r = await t.plane.tenants.get(id);
      expect(r.version).toBe('v1.0');
      expect(r.upgrade).toBeUndefined();
      expect(r.rev).toBe(before.get(id)?.rev);
      expect(fingerprint(await pgEngine.introspect(r.database as string)).hash).toBe(before.get(id)?.hash);
    }
    expect(await pgEngine.listDatabases(`${t.namespace}_branch_`)).toEqual([]);
  });

  it('bad requests start nothing', async () => {
    const before = (await t.plane.upgrades.list()).length;
    await expect(t.plane.upgrades.start({ to: 'v9.9' })).rejects.toThrow(/version/);
    await expect(
      t.plane.upgrades.start({ to: 'v1.1', selection: { tenants: ['no-such-tenant'] } }),
    ).rejects.toThrow(/no-such-tenant does not exist/);
    await expect(t.plane.upgrades.start({ to: 'v1.1', policy: { maxConcurrency: 0 } })).rejects.toThrow(
      /maxConcurrency/,
    );
    await expect(
      t.plane.upgrades.start({ to: 'v1.1', policy: { continueOnError: true, maxFailures: 2 } }),
    ).rejects.toThrow(/exclude each other/);
    await expect(t.plane.upgrades.start({ to: 'v1.1', selection: { engine: 'oracle' } })).rejects.toThrow(
      /engine/,
    );
    expect((await t.plane.upgrades.list()).length).toBe(before);
  });

  it('drift names the column a manual ALTER TABLE added', async () => {
    for (const engine of ['postgresql', 'sqlite'] as const) {
      const r = await t.create({ tenantId: `drift-${engine.slice(0, 2)}`, engine, version: 'v1.1' });
      expect(r.status, r.cause).toBe('SUCCEEDED');
    }
    const clean = await t.plane.drift(['drift-po', 'drift-sq']);
    expect(clean.map((d) => [d.tenantId, d.drifted])).toEqual([
      ['drift-po', false],
      ['drift-sq', false],
    ]);
    for (const id of ['drift-po', 'drift-sq']) {
      const record = await t.plane.tenants.get(id);
      const engine = await t.plane.deps.engineFor(record);
      await engine.transaction(record.database as string, async (tx) => {
        await tx.query('ALTER TABLE products ADD COLUMN notes TEXT');
        await tx.query('CREATE INDEX idx_products_notes ON products (notes)');
      });
    }
    const drifted = await t.plane.drift(['drift-po', 'drift-sq']);
    for (const d of drifted) {
      expect(d.drifted).toBe(true);
      expect(d.live).not.toBe(d.expected);
      expect(d.differences).toEqual([
        'products: column notes added (text, nullable)',
        'products: index idx_products_notes added (notes)',
      ]);
    }
    expect(await pgEngine.listDatabases(`${t.namespace}_scratch_`)).toEqual([]);
  });
});
