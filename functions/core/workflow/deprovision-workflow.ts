import { z } from 'zod';
import { ENGINE_NAMES } from '../engine.js';
import { ValidationError } from '../errors.js';
import { assertCloneId, assertTenantId, PLACEMENTS } from '../tenants.js';
import { type CloneWorkflowDeps, removeClone } from './clone-workflow.js';

/** The deprovision workflow's Task states. */
export const DEPROVISION_STEPS = ['Begin deletion', 'Remove clone', 'Mark deleted'] as const;
export type DeprovisionStepName = (typeof DEPROVISION_STEPS)[number];

export const deprovisionState = z.strictObject({
  tenantId: z.string(),
  cloneId: z.string(),
  engine: z.enum(ENGINE_NAMES),
  placement: z.enum(PLACEMENTS),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
});
export type DeprovisionState = z.infer<typeof deprovisionState>;

type Step = (state: DeprovisionState, deps: CloneWorkflowDeps) => Promise<DeprovisionState>;

/**
 * Deleting a tenant: the entry goes DELETING (from READY, FAILED, or a DELETING left by an
 * earlier attempt), its database, roles and secret are removed, then it is DELETED.
 * Every step may run again.
 */
export const deprovisionSteps: Record<DeprovisionStepName, Step> = {
  'Begin deletion': async (state, deps) => {
    await deps.registry.transition(
      state.tenantId,
      state.cloneId,
      ['READY', 'FAILED', 'DELETING'],
      'DELETING',
    );
    return state;
  },
  'Remove clone': async (state, deps) => {
    // Another clone's artefact under this clone's names is left alone.
    await removeClone(deps, state);
    return state;
  },
  'Mark deleted': async (state, deps) => {
    await deps.registry.transition(state.tenantId, state.cloneId, ['DELETING', 'DELETED'], 'DELETED');
    return state;
  },
};

export async function runDeprovisionStep(
  name: string,
  input: unknown,
  deps: CloneWorkflowDeps,
): Promise<DeprovisionState> {
  const step = deprovisionSteps[name as DeprovisionStepName];
  if (!step) throw new ValidationError(`unknown step ${JSON.stringify(name)}`, 'step');
  const state = deprovisionState.parse(input);
  assertTenantId(state.tenantId);
  assertCloneId(state.cloneId);
  await deps.faults?.(name, 'before', state);
  const result = deprovisionState.parse(await step(state, deps));
  await deps.faults?.(name, 'after', state);
  return result;
}
