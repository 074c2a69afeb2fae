import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import { ForeignArtefactError } from '../../functions/core/errors.js';
import { physicalNames } from '../../functions/core/tenants.js';
import type { CloneWorkflowState } from '../../functions/core/workflow/clone-workflow.js';
import { populateSampleData } from '../../functions/core/workflow/sample-data.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { engineTitle, probeEngines } from '../support/engines.js';

/**
 * What a control plane killed in the middle of `Create database` or `Populate data` leaves,
 * and the next attempt of the same clone picking it up (found by the reliability suite's
 * SIGKILL runs: these ended FAILED with "belongs to clone (unmarked)" or a duplicate key).
 * Each case makes the leftover by hand just before the step runs, as the killed attempt would
 * have, then checks the creation ends READY with nothing extra left.
 */
const { env, probes } = await probeEngines();
afterAll(() => env.close());

type Leftover = (engine: DatabaseEngine, state: CloneWorkflowState, ns: string) => Promise<void>;
const leftovers = new Map<string, Leftover>();

describe('leftovers of a killed attempt', () => {
  let t: TestPlane;
  beforeAll(async () => {
    t = await startTestPlane({
      faults: async (step, when, state) => {
        const make = leftovers.get(state.tenantId);
        if (make && step === 'Create database' && when === 'before') {
          leftovers.delete(state.tenantId);
          // the steps hand the hook their whole state
          const full = state as CloneWorkflowState;
          await make(await t.shared(full.engine), full, t.namespace);
        }
      },
    });
  });
  afterAll(() => t?.close());

  describe.skipIf(!probes.postgresql.engine)(engineTitle(probes.postgresql), () => {
    it('PostgreSQL: an unmarked copy under the staging name (killed before the marker) is dropped and the clone made again', async () => {
      leftovers.set('kill-pg-staging', async (engine, state, ns) => {
        const { database } = physicalNames(ns, state.cloneId);
        // the killed attempt's CREATE DATABASE, without its marker or rename
        await engine.cloneDatabase(String(state.image), `${database}__new`);
      });
      const execution = await t.create({ tenantId: 'kill-pg-staging', engine: 'postgresql' });
      expect(execution.status).toBe('SUCCEEDED');
      const record = await t.plane.tenants.get('kill-pg-staging');
      const engine = await t.shared('postgresql');
      expect(await engine.listDatabases(`${record.database}_`)).toEqual([]);
      expect(await engine.readMarker(record.database as string)).toMatchObject({ cloneId: record.cloneId });
    });

    it('PostgreSQL: an unmarked database under the clone name itself is still refused (it is not ours)', async () => {
      leftovers.set('kill-pg-foreign', async (engine, state, ns) => {
        await engine.cloneDatabase(String(state.image), physicalNames(ns, state.cloneId).database);
      });
      const execution = await t.create({ tenantId: 'kill-pg-foreign', engine: 'postgresql' });
      expect(execution.status).toBe('FAILED');
      expect(execution.error).toBe(ForeignArtefactError.name);
    });
  });

  describe.skipIf(!probes.mysql.engine)(engineTitle(probes.mysql), () => {
    it('MySQL: an empty unmarked database under the clone name (killed after CREATE DATABASE) is made again', async () => {
      leftovers.set('kill-my-empty', async (engine, state, ns) => {
        await engine.createDatabase(physicalNames(ns, state.cloneId).database);
      });
      const execution = await t.create({ tenantId: 'kill-my-empty', engine: 'mysql' });
      expect(execution.status).toBe('SUCCEEDED');
    });

    it('MySQL: a database with an empty marker table (killed between the table and its row) is made again', async () => {
      leftovers.set('kill-my-marker', async (engine, state, ns) => {
        const { database } = physicalNames(ns, state.cloneId);
        await engine.createDatabase(database);
        await engine.transaction(database, (tx) =>
          tx.query('CREATE TABLE _clonefactory_marker (id TINYINT PRIMARY KEY, marker TEXT NOT NULL)'),
        );
      });
      const execution = await t.create({ tenantId: 'kill-my-marker', engine: 'mysql' });
      expect(execution.status).toBe('SUCCEEDED');
    });

    it('MySQL: its own half-copied database (marker flagged incomplete) is made again', async () => {
      leftovers.set('kill-my-half', async (engine, state, ns) => {
        const { database } = physicalNames(ns, state.cloneId);
        await engine.cloneDatabase(String(state.image), database, {
          kind: 'clone',
          cloneId: state.cloneId,
          incomplete: 'true',
        });
      });
      const execution = await t.create({ tenantId: 'kill-my-half', engine: 'mysql' });
      expect(execution.status).toBe('SUCCEEDED');
      const record = await t.plane.tenants.get('kill-my-half');
      const marker = await (await t.shared('mysql')).readMarker(record.database as string);
      expect(marker).toMatchObject({ cloneId: record.cloneId });
      expect(marker?.incomplete).toBeUndefined();
    });

    it('MySQL: a non-empty unmarked database under the clone name is still refused', async () => {
      leftovers.set('kill-my-foreign', async (engine, state, ns) => {
        const { database } = physicalNames(ns, state.cloneId);
        await engine.createDatabase(database);
        await engine.transaction(database, (tx) =>
          tx.query('CREATE TABLE someone_elses (id INT PRIMARY KEY)'),
        );
      });
      const execution = await t.create({ tenantId: 'kill-my-foreign', engine: 'mysql' });
      expect(execution.status).toBe('FAILED');
      expect(execution.error).toBe(ForeignArtefactError.name);
    });
  });

  it.each(Object.values(probes).filter((p) => p.engine))(
    '$name: sample data commit together with their seed record, or not at all',
    async (probe) => {
      const created = await t.create({ tenantId: `seed-${probe.name.slice(0, 2)}`, engine: probe.name });
      expect(created.status).toBe('SUCCEEDED');
      const record = await t.plane.tenants.get(`seed-${probe.name.slice(0, 2)}`);
      const engine = await t.shared(probe.name);
      const database = record.database as string;
      const count = async () =>
        Number(
          (
            await engine.transaction(database, (tx) =>
              tx.query<{ n: number | string }>(
                "SELECT count(*) AS n FROM users WHERE email LIKE '%@other.example'",
              ),
            )
          )[0]?.n,
        );
      // A populate for another tenant id that dies after its inserts: nothing of it stays.
      await expect(
        engine.transaction(database, async (tx) => {
          await populateSampleData(tx, 'other', 5, ['users', 'orders']);
          throw new Error('killed');
        }),
      ).rejects.toThrow('killed');
      expect(await count()).toBe(0);
      // And it runs whole the next time, once.
      await engine.transaction(database, (tx) => populateSampleData(tx, 'other', 5, ['users', 'orders']));
      await engine.transaction(database, (tx) => populateSampleData(tx, 'other', 5, ['users', 'orders']));
      expect(await count()).toBe(5);
    },
  );
});
