import pMap from 'p-map';
import { z } from 'zod';
import { errorMessage, TenantStateConflictError, TransientError, ValidationError } from '../errors.js';
import {
  assertRunId,
  policyBreach,
  type RunOutcome,
  type UpgradeRun,
  type UpgradeRunStore,
} from '../fleet-upgrade.js';
import { rehearseUpgrade, upgradeTenant } from '../tenant-upgrade.js';
import { assertTenantId, type CloneRecord, type TenantUpgradeStatus } from '../tenants.js';
import type { CloneWorkflowDeps } from './clone-workflow.js';

/** The upgrade workflow's Task states. Both waves' item states run the same handler. */
export const UPGRADE_STEPS = [
  'Plan upgrade',
  'Upgrade canary tenant',
  'Check canary',
  'Upgrade tenant',
  'Finish upgrade',
] as const;
export type UpgradeStepName = (typeof UPGRADE_STEPS)[number];

/** The run's state between its steps: ids, the waves and the concurrency (Map's MaxConcurrencyPath). */
export const upgradeWorkflowState = z.strictObject({
  runId: z.string(),
  to: z.string().optional(),
  dryRun: z.boolean().optional(),
  maxConcurrency: z.number().int().min(1).optional(),
  canary: z.array(z.string()).optional(),
  rest: z.array(z.string()).optional(),
  /** Set by `Check canary`: whether the main wave starts. */
  proceed: z.boolean().optional(),
  error: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
});
export type UpgradeWorkflowState = z.infer<typeof upgradeWorkflowState>;

/** One Map item: a tenant of the run. */
export const upgradeItem = z.strictObject({ runId: z.string(), tenantId: z.string() });
export type UpgradeItem = z.infer<typeof upgradeItem>;

export interface UpgradeItemResult {
  readonly tenantId: string;
  readonly outcome: RunOutcome;
}

/** Tenants written at once while a run is planned. */
const PLAN_PARALLELISM = 16;

function runs(deps: CloneWorkflowDeps): UpgradeRunStore {
  if (!deps.upgradeRuns) throw new ValidationError('fleet upgrades are not deployed here (no run store)');
  return deps.upgradeRuns;
}

async function loadRun(deps: CloneWorkflowDeps, runId: string): Promise<UpgradeRun> {
  const run = await runs(deps).get(assertRunId(runId));
  if (!run) throw new ValidationError(`no upgrade run ${runId}`, 'runId');
  return run;
}

/**
 * The steps of the upgrade workflow. A run's record is made when it is started (see
 * UpgradeService); the workflow carries out its plan. Every step may run again: a resumed
 * or retried execution skips what is done.
 */
export const upgradeSteps = {
  /**
   * Splits the run's tenants into the canary wave and the rest. A real run marks its tenants
   * `queued` (those it upgraded already keep their status) and recounts what is done, so a
   * resumed run reports the whole run's figures and tries failed tenants again.
   */
  'Plan upgrade': async (state: UpgradeWorkflowState, deps: CloneWorkflowDeps) => {
    const run = await loadRun(deps, state.runId);
    if (run.state !== 'RUNNING')
      throw new TenantStateConflictError(`upgrade run ${run.runId}`, run.state, 'plan (it must be RUNNING)');
    let upgraded = 0;
    if (!run.dryRun) {
      const at = new Date().toISOString();
      await pMap(
        run.tenants,
        async (id) => {
          const record = await deps.registry.get(id);
          if (record && doneBy(record, run)) upgraded++;
          else if (record?.state === 'READY')
            await setStatus(deps, record, { runId: run.runId, to: run.to, status: 'queued', at }).catch(
              ignoreConflict,
            );
        },
        { concurrency: PLAN_PARALLELISM },
      );
    }
    await runs(deps).transition(run.runId, ['RUNNING'], 'RUNNING', {
      upgraded,
      already: 0,
      failed: 0,
      skipped: 0,
      failures: [],
    });
    const canary = run.tenants.slice(0, run.policy.canary);
    return {
      runId: run.runId,
      to: run.to,
      dryRun: run.dryRun,
      maxConcurrency: run.policy.maxConcurrency,
      canary,
      rest: run.tenants.slice(canary.length),
    };
  },

  /** One tenant: skipped when the run is no longer RUNNING, else upgraded (or rehearsed). */
  'Upgrade tenant': async (item: UpgradeItem, deps: CloneWorkflowDeps): Promise<UpgradeItemResult> => {
    const run = await runs(deps).summary(assertRunId(item.runId));
    if (!run) throw new ValidationError(`no upgrade run ${item.runId}`, 'runId');
    const tenantId = assertTenantId(item.tenantId);
    const record = await deps.registry.get(tenantId);
    const status = (s: TenantUpgradeStatus['status'], detail?: string): Promise<CloneRecord | undefined> =>
      record && !run.dryRun
        ? setStatus(deps, record, {
            runId: run.runId,
            to: run.to,
            status: s,
            at: new Date().toISOString(),
            ...(detail ? { detail: detail.slice(0, 1000) } : {}),
          }).catch((error): undefined => {
            ignoreConflict(error);
            return undefined;
          })
        : Promise.resolve(undefined);
    const done = async (outcome: RunOutcome, failure?: string) => {
      const now = await runs(deps).count(
        run.runId,
        outcome,
        failure ? { tenantId, error: failure } : undefined,
      );
      if (outcome === 'failed') {
        const breach = policyBreach(run.policy, now, run.total);
        if (breach)
          await runs(deps)
            .transition(run.runId, ['RUNNING'], 'HALTED', { reason: `halted: ${breach}` })
            .catch(ignoreConflict);
      }
      return { tenantId, outcome };
    };
    // Counted by `Plan upgrade` already (a resumed run): never touched twice.
    if (record && !run.dryRun && doneBy(record, run)) return { tenantId, outcome: 'upgraded' };
    if (run.state !== 'RUNNING') {
      await status('skipped', `run ${run.state.toLowerCase()}${run.reason ? `: ${run.reason}` : ''}`);
      return done('skipped');
    }
    if (record?.state !== 'READY') {
      await status('skipped', `tenant is ${record?.state ?? 'gone'}`);
      return done('skipped');
    }
    if (run.dryRun) {
      const rehearsal = await rehearseUpgrade(deps, tenantId, run.to);
      if (rehearsal.statements === 0 && rehearsal.ok) return done('already');
      return rehearsal.ok ? done('upgraded') : done('failed', rehearsal.error);
    }
    const upgrading = await status('upgrading');
    try {
      const outcome = await upgradeTenant(deps, tenantId, run.to, {
        runId: run.runId,
        record: upgrading ?? record,
      });
      return done(outcome.action === 'already' ? 'already' : 'upgraded');
    } catch (error) {
      // Infrastructure trouble is retried by the state machine; a tenant's own failure is
      // recorded and weighed against the policy.
      if (error instanceof TransientError) throw error;
      const message = errorMessage(error);
      await status('failed', message);
      return done('failed', message);
    }
  },

  /** Whether the main wave starts: the run is still RUNNING and no canary failed (unless continueOnError). */
  'Check canary': async (state: UpgradeWorkflowState, deps: CloneWorkflowDeps) => {
    const run = await loadRun(deps, state.runId);
    let proceed = run.state === 'RUNNING';
    if (proceed && run.failed > 0 && !run.policy.continueOnError) {
      proceed = false;
      await runs(deps)
        .transition(run.runId, ['RUNNING'], 'HALTED', {
          reason: `halted: ${run.failed} of the ${state.canary?.length ?? 0} canary tenants failed`,
        })
        .catch(ignoreConflict);
    }
    // Tenants of the main wave that will not be touched say so.
    if (!proceed) await skipAll(deps, run, state.rest ?? []);
    return { ...state, proceed };
  },

  /** Ends the run: SUCCEEDED, FAILED (tenants failed, or the workflow did), or STOPPED. */
  'Finish upgrade': async (state: UpgradeWorkflowState, deps: CloneWorkflowDeps) => {
    const run = await loadRun(deps, state.runId);
    const finishedAt = new Date().toISOString();
    if (run.state === 'STOPPING')
      await runs(deps).transition(run.runId, ['STOPPING'], 'STOPPED', { finishedAt });
    else if (run.state === 'RUNNING') {
      const reason = state.error
        ? `the workflow failed: ${state.error.Error}: ${state.error.Cause ?? ''}`.slice(0, 1000)
        : run.failed > 0
          ? `${run.failed} tenant${run.failed === 1 ? '' : 's'} failed`
          : undefined;
      await runs(deps).transition(run.runId, ['RUNNING'], reason ? 'FAILED' : 'SUCCEEDED', {
        finishedAt,
        ...(reason ? { reason } : {}),
      });
    } else await runs(deps).transition(run.runId, [run.state], run.state, { finishedAt });
    return { runId: state.runId };
  },
} as const;

/** The tenant was upgraded by this run (an earlier execution of it). */
function doneBy(record: CloneRecord, run: Pick<UpgradeRun, 'runId' | 'to'>): boolean {
  return (
    record.version === run.to && record.upgrade?.runId === run.runId && record.upgrade.status === 'upgraded'
  );
}

/** Writes a tenant's upgrade status (it must still be READY); returns the entry as stored. */
function setStatus(
  deps: CloneWorkflowDeps,
  record: CloneRecord,
  upgrade: TenantUpgradeStatus,
): Promise<CloneRecord> {
  return deps.registry.transition(record.tenantId, record.cloneId, ['READY'], 'READY', { upgrade });
}

async function skipAll(
  deps: CloneWorkflowDeps,
  run: UpgradeRun,
  tenantIds: readonly string[],
): Promise<void> {
  for (const id of tenantIds) {
    const record = await deps.registry.get(id);
    if (!record || doneBy(record, run)) continue;
    if (!run.dryRun)
      await setStatus(deps, record, {
        runId: run.runId,
        to: run.to,
        status: 'skipped',
        detail: 'the canary wave failed',
        at: new Date().toISOString(),
      }).catch(ignoreConflict);
    await runs(deps).count(run.runId, 'skipped');
  }
}

/** A tenant or run that moved on meanwhile (deleted, or stopped) is not this step's failure. */
function ignoreConflict(error: unknown): void {
  if (!(error instanceof TenantStateConflictError)) throw error;
}

/** Runs one step by state name, validating what comes in. */
export async function runUpgradeStep(
  name: string,
  input: unknown,
  deps: CloneWorkflowDeps,
): Promise<unknown> {
  if (name === 'Upgrade tenant' || name === 'Upgrade canary tenant') {
    return upgradeSteps['Upgrade tenant'](upgradeItem.parse(input), deps);
  }
  const step = upgradeSteps[name as Exclude<UpgradeStepName, 'Upgrade tenant' | 'Upgrade canary tenant'>];
  if (!step) throw new ValidationError(`unknown step ${JSON.stringify(name)}`, 'step');
  const parsed = upgradeWorkflowState.safeParse(input);
  if (!parsed.success)
    throw new ValidationError(
      `invalid workflow state for ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return step(parsed.data, deps);
}
