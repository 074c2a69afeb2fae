import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { HEALTH_METRICS_NAMESPACE, recordHealthMetrics } from '../adapters/health-metrics.js';
import type { DatabaseEngine } from '../core/engine.js';
import { ValidationError } from '../core/errors.js';
import { checkFleetHealth, type HealthReport } from '../core/health.js';
import { type ReconcileReport, reconcile } from '../core/reconciler.js';
import { type CloneWorkflowDeps, runCloneStep } from '../core/workflow/clone-workflow.js';
import { runDeprovisionStep } from '../core/workflow/deprovision-workflow.js';
import { runUpgradeStep } from '../core/workflow/upgrade-workflow.js';
import { awsDeps } from './aws-deps.js';

const logger = new Logger({ serviceName: 'clonefactory-workflow' });

type DepsProvider = () => Promise<CloneWorkflowDeps>;

/**
 * One Lambda handler per state: parse, call the core step, return the next state. The local
 * runner calls this same function with local dependencies. Only ids are logged.
 */
export function stepHandler(
  name: string,
  deps: DepsProvider = awsDeps,
  workflow: 'clone' | 'deprovision' | 'upgrade' = 'clone',
  parentLogger: Logger = logger,
) {
  return async (event: unknown): Promise<unknown> => {
    const { state, executionId } = taskPayload(event, name);
    const ids =
      state && typeof state === 'object' ? (state as { tenantId?: unknown; cloneId?: unknown }) : {};
    // Keys per call, not a child logger per call: creating one cost about 2 ms of every clone.
    const keys = { step: name, executionId, tenantId: ids.tenantId, cloneId: ids.cloneId };
    try {
      const run = { clone: runCloneStep, deprovision: runDeprovisionStep, upgrade: runUpgradeStep }[workflow];
      const result = await run(name, state, await deps());
      parentLogger.info('step succeeded', keys);
      return result;
    } catch (error) {
      parentLogger.warn('step failed', {
        ...keys,
        errorName: (error as Error).name,
        errorMessage: (error as Error).message,
      });
      throw error;
    }
  };
}

/**
 * Every Task state sends `{ state, executionId }` (its Parameters in CDK): the workflow state,
 * and the execution's id, which the step's log lines carry as a key.
 */
export function taskPayload(event: unknown, step: string): { state: unknown; executionId: string } {
  const payload = event as { state?: unknown; executionId?: unknown } | null;
  if (
    !payload ||
    typeof payload !== 'object' ||
    typeof payload.executionId !== 'string' ||
    !('state' in payload) ||
    Object.keys(payload).length !== 2
  )
    throw new ValidationError(
      `${step}: expected a task payload { state, executionId }; is the state machine's definition older than this function?`,
    );
  return { state: payload.state, executionId: payload.executionId };
}

export const selectTemplate = stepHandler('Select template');
export const provisionInstance = stepHandler('Provision instance');
export const checkInstance = stepHandler('Check instance');
export const createDatabase = stepHandler('Create database');
export const applySchema = stepHandler('Apply schema');
export const populateData = stepHandler('Populate data');
export const configureSecurity = stepHandler('Configure security');
export const verifyAndRegister = stepHandler('Verify and register');
export const rollBackClone = stepHandler('Roll back clone');
export const beginDeletion = stepHandler('Begin deletion', awsDeps, 'deprovision');
export const removeClone = stepHandler('Remove clone', awsDeps, 'deprovision');
export const markDeleted = stepHandler('Mark deleted', awsDeps, 'deprovision');
export const planUpgrade = stepHandler('Plan upgrade', awsDeps, 'upgrade');
/** Both waves' item states (`Upgrade canary tenant`, `Upgrade tenant`) invoke this one function. */
export const upgradeTenant = stepHandler('Upgrade tenant', awsDeps, 'upgrade');
export const checkCanary = stepHandler('Check canary', awsDeps, 'upgrade');
export const finishUpgrade = stepHandler('Finish upgrade', awsDeps, 'upgrade');

const metrics = new Metrics({ namespace: HEALTH_METRICS_NAMESPACE, serviceName: 'clonefactory-health' });

/** The health monitor, on an EventBridge schedule: one pass, its counts printed as EMF. */
export const checkHealth = async (): Promise<HealthReport['counts']> => {
  const report = await checkFleetHealth(await awsDeps());
  recordHealthMetrics(metrics, report);
  metrics.publishStoredMetrics();
  logger.info('health pass', { counts: report.counts, durationMs: report.durationMs });
  return report.counts;
};

/**
 * The reconciler, on an hourly schedule: removes marked orphans older than the grace period
 * on the shared servers this deployment has, and in Secrets Manager; fails stuck entries.
 */
export const reconcileFleet = async (): Promise<ReconcileReport['counts']> => {
  const deps = await awsDeps();
  const engines: DatabaseEngine[] = [];
  for (const engine of ['postgresql', 'mysql'] as const) {
    try {
      engines.push(
        await deps.engineFor({
          tenantId: 'reconciler',
          cloneId: '000000000000',
          engine,
          placement: 'shared',
        }),
      );
    } catch (error) {
      // No shared server of this engine is configured here.
      if (!(error instanceof ValidationError)) throw error;
    }
  }
  const report = await reconcile(
    {
      registry: deps.registry,
      secrets: deps.secrets,
      namespace: deps.namespace,
      engines,
      dedicated: deps.dedicated,
    },
    { apply: true },
  );
  logger.info('reconcile pass', { counts: report.counts });
  return report.counts;
};
