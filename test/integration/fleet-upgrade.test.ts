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
      engine = await t.plane.deps.engineFor({
        tenantId: 'none',
        engine: name,
        placement: 'shared',
        cloneId: '000000000000',
      });
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

    it.runIf(name === 'postgresql')('with continue-on-error upgrades the other nine', async () => {
      const fleet = await makeFleet(t, name, 'fb', 10);
      const victim = fleet.records.get('fb-07') as CloneRecord;
      await engine.transaction(victim.database as string, (tx) => tx.query(VICTIM_COLUMN));
      const run = await finish(
        t,
        await t.plane.upgrades.start({
          to: 'v1.1',
          selection: { tenants: fleet.ids },
          policy: { canary: 1, maxConcurrency: 4, continueOnError: true },
        }),
      );
      expect(run).toMatchObject({ state: 'FAILED', upgraded: 9, failed: 1, skipped: 0 });
      for (const id of fleet.ids) {
        const now = await t.plane.tenants.get(id);
        expect(now.version).toBe(id === 'fb-07' ? 'v1.0' : 'v1.1');
        expect(await liveHash(now)).toBe(
          id === 'fb-07' ? fingerprint(await engine.introspect(victim.database as string)).hash : v11,
        );
      }
    });
  });
}
