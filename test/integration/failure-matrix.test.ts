import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineName } from '../../functions/core/engine.js';
import { InjectedFaultError } from '../../functions/core/errors.js';
import { CLONE_STEPS, type CloneWorkflowState } from '../../functions/core/workflow/clone-workflow.js';
import { SHARED_CLONE_PATH, startTestPlane, type TestPlane } from '../support/control-plane.js';
import { engineTitle, probeEngines } from '../support/engines.js';

/**
 * A failure injected into each of the six steps, before and after its side effect, must end
 * the execution FAILED and leave no database, no role, no secret, and no registry entry but
 * the FAILED one. Tenant ids encode where to fail: `f<step index>-<before|after>`.
 */
const { env, probes } = await probeEngines();
afterAll(() => env.close());

const cases = CLONE_STEPS.flatMap((step, index) =>
  (['before', 'after'] as const).map((when) => ({ step, index, when })),
);

function injectByTenantId(
  step: string,
  when: 'before' | 'after',
  state: Pick<CloneWorkflowState, 'tenantId'>,
): void {
  const m = /^f(\d)-(before|after)$/.exec(state.tenantId);
  if (m && CLONE_STEPS[Number(m[1])] === step && m[2] === when) throw new InjectedFaultError(step, when);
}

describe.each(Object.values(probes))('failure matrix', (probe) => {
  describe.skipIf(!probe.engine)(engineTitle(probe), () => {
    const engine = probe.name as EngineName;
    let t: TestPlane;
    beforeAll(async () => {
      t = await startTestPlane({ faults: injectByTenantId });
    });
    afterAll(() => t?.close());

    it.each(cases)(
      'a failure $when the side effect of "$step" rolls back everything',
      async ({ step, index, when }) => {
        const tenantId = `f${index}-${when}`;
        const execution = await t.create({ tenantId, engine });
        expect(execution.status).toBe('FAILED');
        expect(execution.error).toBe('InjectedFaultError');
        const states = execution.events.filter((e) => e.type === 'StateEntered').map((e) => e.state);
        // SHARED_CLONE_PATH has the placement Choice after the first step
        expect(states).toEqual([
          ...SHARED_CLONE_PATH.slice(0, index === 0 ? 1 : index + 2),
          'Roll back clone',
          'Clone failed',
        ]);
        const record = await t.plane.tenants.get(tenantId);
        expect(record.state).toBe('FAILED');
        expect(record.lastError).toBe(`InjectedFaultError: injected fault ${when} ${step}`);
        expect(await t.artefacts(engine, record.cloneId)).toEqual({
          database: false,
          roles: [],
          secret: false,
        });
        expect((await t.plane.tenants.list()).filter((r) => r.tenantId === tenantId)).toHaveLength(1);
      },
    );

    it('left nothing of any failed clone in the namespace', async () => {
      const server = await t.plane.env.engine(engine);
      expect(await server.listDatabases(`${t.namespace}_t_`)).toEqual([]);
      expect(await t.plane.deps.secrets.list(`${t.namespace}/`)).toEqual([]);
      expect((await t.plane.tenants.list()).map((r) => r.state)).toEqual(cases.map(() => 'FAILED'));
    });
  });
});
