import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineName } from '../../functions/core/engine.js';
import { errorMessage } from '../../functions/core/errors.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { probeEngines } from '../support/engines.js';
import { checkInvariants, listArtefacts } from './invariants.js';
import { PROFILE, recordFigures, seededRandom } from './profile.js';

/**
 * Concurrency: many creates of few ids, creates racing deletes, and one tenant upgraded by
 * several callers at once. The registry's conditional writes and the runner's execution names
 * must make each of them happen once.
 */
const { env, probes } = await probeEngines();
const engines = Object.values(probes)
  .filter((p) => p.engine)
  .map((p) => p.name as EngineName);
afterAll(() => env.close());

const figures: Record<string, unknown> = {};
let runs = 0;

describe('concurrency', () => {
  let t: TestPlane;
  beforeAll(async () => {
    t = await startTestPlane();
  });
  afterAll(async () => {
    recordFigures({ suite: 'concurrency', runs, details: figures });
    await t?.close();
  });

  it('50 concurrent creates over 10 ids make exactly 10 clones', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => ({
      id: `many-${i}`,
      engine: engines[i % engines.length] as EngineName,
    }));
    const rnd = seededRandom(PROFILE.seed + 3);
    const calls = ids.flatMap((x) => Array.from({ length: 5 }, () => x)).sort(() => rnd() - 0.5);
    const results = await Promise.all(
      calls.map(async ({ id, engine }) => {
        const r = await t.plane.tenants.create({
          tenantId: id,
          engine,
          industry: 'technology',
          version: 'v1.1',
        });
        return { id, cloneId: r.record.cloneId, created: r.created, executionName: r.executionName };
      }),
    );
    runs += results.length;
    await Promise.all(results.map((r) => t.plane.runner.wait(r.executionName)));
    // One creation per id; every caller got that clone.
    for (const { id } of ids) {
      const mine = results.filter((r) => r.id === id);
      expect(new Set(mine.map((r) => r.cloneId)).size).toBe(1);
      expect(mine.filter((r) => r.created)).toHaveLength(1);
    }
    const records = (await t.plane.tenants.list()).filter((r) => r.tenantId.startsWith('many-'));
    expect(records.map((r) => r.state)).toEqual(Array(10).fill('READY'));
    expect(new Set(records.map((r) => r.cloneId)).size).toBe(10);
    const executions = (await t.plane.runner.list()).filter((e) => e.name.startsWith('many-'));
    expect(executions).toHaveLength(10);
    const artefacts = await listArtefacts(t.plane);
    const databases = artefacts.filter((a) => a.kind === 'database');
    expect(new Set(databases.map((a) => a.cloneId))).toEqual(new Set(records.map((r) => r.cloneId)));
    expect(databases).toHaveLength(10);
    expect(artefacts.filter((a) => a.kind === 'secret')).toHaveLength(10);
    figures.manyCreates = {
      calls: results.length,
      ids: ids.length,
      clones: records.length,
      executions: executions.length,
    };
  });

  it('a create racing deletes of the same id ends consistent: conflicts while it is created, then DELETED with nothing left', async () => {
    const rnd = seededRandom(PROFILE.seed + 4);
    const outcomes: { id: string; offsetMs: number; conflicts: number; final: string }[] = [];
    const cases = engines.flatMap((engine) =>
      [0, 1, 2].map((k) => ({ id: `race-${engine.slice(0, 2)}-${k}`, engine })),
    );
    await Promise.all(
      cases.map(async ({ id, engine }) => {
        const offsetMs = Math.floor(rnd() * 250);
        const created = t.plane.tenants.create({
          tenantId: id,
          engine,
          industry: 'technology',
          version: 'v1.1',
        });
        await sleep(offsetMs);
        let conflicts = 0;
        // The deleter insists until its delete is accepted: while the tenant is being created,
        // the answer is a conflict (or not found, before the create registered it).
        const deletion = await (async () => {
          for (;;) {
            try {
              return await t.plane.tenants.delete(id);
            } catch (error) {
              const name = (error as Error).name;
              if (name !== 'TenantStateConflictError' && name !== 'TenantNotFoundError')
                throw new Error(`${id}: unexpected ${name}: ${errorMessage(error)}`);
              conflicts++;
              await sleep(10);
            }
          }
        })();
        // a second, concurrent delete of the same tenant
        const [again] = await Promise.all([
          t.plane.tenants.delete(id),
          t.plane.runner.wait(deletion.executionName),
        ]);
        await t.plane.runner.wait(again.executionName);
        await t.plane.runner.wait((await created).executionName);
        outcomes.push({ id, offsetMs, conflicts, final: (await t.plane.tenants.get(id)).state });
      }),
    );
    runs += outcomes.length;
    expect(outcomes.filter((o) => o.final !== 'DELETED')).toEqual([]);
    const records = (await t.plane.tenants.list()).filter((r) => r.tenantId.startsWith('race-'));
    const gone = new Set(records.map((r) => r.cloneId));
    expect((await listArtefacts(t.plane)).filter((a) => gone.has(a.cloneId))).toEqual([]);
    figures.createRacingDelete = {
      cases: outcomes.length,
      conflictsAnswered: outcomes.reduce((a, o) => a + o.conflicts, 0),
      final: Object.fromEntries(
        [...new Set(outcomes.map((o) => o.final))].map((s) => [
          s,
          outcomes.filter((o) => o.final === s).length,
        ]),
      ),
    };
  });

  it('concurrent upgrades of one tenant run once', async () => {
    const summary: Record<string, unknown> = {};
    for (const engine of engines) {
      const id = `upg-${engine.slice(0, 2)}`;
      const created = await t.create({ tenantId: id, engine, version: 'v1.0' });
      expect(created.status).toBe('SUCCEEDED');
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, () => t.plane.upgradeTenant(id, 'v1.1')),
      );
      runs += results.length;
      const fulfilled = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const rejected = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
      // Exactly one call ran the migration; the others found it done, or were told the tenant
      // is being upgraded (a conflict), never a half-applied error.
      expect(fulfilled.filter((o) => o.action === 'upgraded')).toHaveLength(1);
      expect(
        rejected
          .map((e) => `${engine}: ${e.name}: ${e.message}`)
          .filter((m) => !m.includes('TenantStateConflictError')),
      ).toEqual([]);
      const record = await t.plane.tenants.get(id);
      expect(record.version).toBe('v1.1');
      const database = record.database as string;
      const shared = await t.shared(engine);
      const history = await shared.transaction(database, (tx) =>
        tx.query<{ version: string }>('SELECT version FROM _clonefactory_schema_history ORDER BY version'),
      );
      expect(history.map((h) => h.version)).toEqual(['v1.0', 'v1.1']);
      summary[engine] = {
        calls: results.length,
        upgraded: 1,
        already: fulfilled.filter((o) => o.action === 'already').length,
        conflicts: rejected.length,
      };
    }
    figures.concurrentUpgrades = summary;
    const report = await checkInvariants(t.plane);
    expect(report.strays).toEqual([]);
    expect(report.unopenable).toEqual([]);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
