import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { HEALTH_METRICS_NAMESPACE, recordHealthMetrics } from '../functions/adapters/health-metrics.js';
import { DynamoDbCloneRegistry } from '../functions/adapters/registry/dynamodb-registry.js';
import { DynamoDbUpgradeRunStore } from '../functions/adapters/registry/dynamodb-upgrade-runs.js';
import { DynamoDbUserRegistry } from '../functions/adapters/registry/dynamodb-user-registry.js';
import { FileSecretStore } from '../functions/adapters/secrets/file-secret-store.js';
import { SecretsManagerStore } from '../functions/adapters/secrets/secrets-manager-store.js';
import { TenantData } from '../functions/core/api/tenant-data.js';
import { type TenantPoolOptions, TenantPools } from '../functions/core/api/tenant-pools.js';
import type { DatabaseEngine } from '../functions/core/engine.js';
import { ValidationError } from '../functions/core/errors.js';
import { UpgradeService } from '../functions/core/fleet-upgrade.js';
import { checkFleetHealth, type HealthOptions, type HealthReport } from '../functions/core/health.js';
import { assertNamespace } from '../functions/core/identifiers.js';
import type { CloneTarget, DedicatedProvisioner } from '../functions/core/placement.js';
import { type ReconcileOptions, type ReconcileReport, reconcile } from '../functions/core/reconciler.js';
import { TemplateCatalog } from '../functions/core/templates.js';
import { type MoveResult, moveTenant } from '../functions/core/tenant-move.js';
import { type TenantRequestResult, TenantService } from '../functions/core/tenant-service.js';
import {
  type DriftEntry,
  detectDrift,
  type UpgradeOutcome,
  upgradeTenant,
} from '../functions/core/tenant-upgrade.js';
import { type CloneRecord, PLACEMENTS } from '../functions/core/tenants.js';
import { UserService } from '../functions/core/users.js';
import {
  CLONE_TASKS,
  type CloneWorkflowDeps,
  dedicatedProvisioner,
} from '../functions/core/workflow/clone-workflow.js';
import { DEPROVISION_STEPS } from '../functions/core/workflow/deprovision-workflow.js';
import { UPGRADE_STEPS } from '../functions/core/workflow/upgrade-workflow.js';
import { stepHandler } from '../functions/handlers/workflow-steps.js';
import { LocalDedicatedInstances } from './dedicated-instances.js';
import type { LocalEnvironment } from './environment.js';
import { LOCAL_TABLES, LocalRegistryServer } from './registry-server.js';
import { loadWorkflowDefinitions } from './workflow-definitions.js';
import { LocalWorkflowRunner, type TaskHandler } from './workflow-runner.js';

/** What `clonectl status` shows. */
export interface PlaneStatus {
  readonly tenants: number;
  readonly byState: Record<string, number>;
  /** READY tenants by their last health (UNCHECKED before the first pass). */
  readonly byHealth: Record<string, number>;
  readonly byVersion: Record<string, number>;
  readonly byEngine: Record<string, number>;
  readonly byPlacement: Record<string, number>;
  /** FAILED tenants and READY ones that are not HEALTHY, with why. */
  readonly attention: readonly { tenantId: string; state: string; health?: string; detail: string }[];
  readonly executions: readonly {
    name: string;
    stateMachine: string;
    status: string;
    startedAt: string;
    durationMs?: number;
    error?: string;
  }[];
  readonly lastReconcile: { at: string; applied: boolean; counts: ReconcileReport['counts'] } | null;
}

export interface LocalControlPlaneOptions {
  readonly env: LocalEnvironment;
  /** Prefix of physical names (default `cf`). */
  readonly namespace?: string;
  /** Injected failures, for tests and the chaos harness. */
  readonly faults?: CloneWorkflowDeps['faults'];
  readonly retryIntervalMs?: number;
  /** Length of the instance poll's Wait state (default 1 s locally). */
  readonly waitMs?: number;
  /**
   * Runs dedicated instances instead of the local PostgreSQL servers: tests put an AWS
   * provisioner over mocked clients here, to run its poll loop through this state machine.
   */
  readonly dedicated?: DedicatedProvisioner;
  /** Polls of `Check instance` before a dedicated clone is rolled back. */
  readonly instancePolls?: number;
  /**
   * Spare dedicated PostgreSQL instances kept started once a dedicated clone has been made
   * (default: `CLONEFACTORY_DEDICATED_SPARES`, else 1; 0 turns them off).
   */
  readonly dedicatedSpares?: number;
  readonly log?: (message: string) => void;
  /** Tenant connection pools (the data-plane API). */
  readonly pools?: Partial<TenantPoolOptions>;
}

/**
 * The whole control plane on one machine: dynalite for the registry, 0600 files for secrets,
 * the engines of {@link LocalEnvironment}, and the synthesized state machines run by
 * aws-local-stepfunctions with the Lambda handlers. One process owns a state directory.
 */
export class LocalControlPlane {
  private constructor(
    readonly env: LocalEnvironment,
    readonly registryServer: LocalRegistryServer,
    readonly deps: CloneWorkflowDeps,
    readonly runner: LocalWorkflowRunner,
    readonly tenants: TenantService,
    readonly users: UserService,
    readonly userRegistry: DynamoDbUserRegistry,
    readonly pools: TenantPools,
    readonly data: TenantData,
    readonly instances: LocalDedicatedInstances,
    readonly upgrades: UpgradeService,
  ) {}

  static async start(options: LocalControlPlaneOptions): Promise<LocalControlPlane> {
    const { env } = options;
    const catalog = await TemplateCatalog.load();
    const vars = env.env;
    // AWS_ENDPOINT_URL (or the per-service AWS_ENDPOINT_URL_DYNAMODB / _SECRETS_MANAGER) points
    // the local control plane at an AWS-compatible endpoint, e.g. LocalStack, instead of its
    // embedded dynalite and secret files. The SDK reads these variables itself.
    const remoteRegistry = Boolean(vars.AWS_ENDPOINT_URL || vars.AWS_ENDPOINT_URL_DYNAMODB);
    const remoteSecrets = Boolean(vars.AWS_ENDPOINT_URL || vars.AWS_ENDPOINT_URL_SECRETS_MANAGER);
    const aws = {
      region: vars.AWS_REGION ?? vars.AWS_DEFAULT_REGION ?? 'us-east-1',
      ...(vars.AWS_ACCESS_KEY_ID && vars.AWS_SECRET_ACCESS_KEY
        ? {
            credentials: { accessKeyId: vars.AWS_ACCESS_KEY_ID, secretAccessKey: vars.AWS_SECRET_ACCESS_KEY },
          }
        : {}),
    };
    const registryServer = await LocalRegistryServer.start(
      join(env.home, 'registry'),
      remoteRegistry
        ? new DynamoDBClient({ ...aws, endpoint: vars.AWS_ENDPOINT_URL_DYNAMODB ?? vars.AWS_ENDPOINT_URL })
        : undefined,
    );
    try {
      const registry = new DynamoDbCloneRegistry({
        tableName: LOCAL_TABLES.clones,
        client: registryServer.client,
      });
      // Several control planes may share one server: each has its own namespace (the prefix of
      // every database, role and secret it makes), and its reconciler looks at nothing else.
      const namespace = assertNamespace(options.namespace ?? vars.CLONEFACTORY_NAMESPACE ?? 'cf');
      const instances = new LocalDedicatedInstances({
        dir: join(env.home, 'instances'),
        namespace,
        catalog,
        spares: options.dedicatedSpares ?? spareCount(vars.CLONEFACTORY_DEDICATED_SPARES),
        shared: async (engine) => {
          const r = await env.tryEngine(engine);
          return 'engine' in r ? r.engine : null;
        },
        log: options.log,
      });
      const dedicated = options.dedicated ?? instances;
      const deps: CloneWorkflowDeps = {
        registry,
        secrets: remoteSecrets
          ? new SecretsManagerStore({
              client: new SecretsManagerClient({
                ...aws,
                endpoint: vars.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? vars.AWS_ENDPOINT_URL,
              }),
            })
          : new FileSecretStore(join(env.home, 'secrets')),
        catalog,
        namespace,
        upgradeRuns: new DynamoDbUpgradeRunStore({
          tableName: LOCAL_TABLES.upgradeRuns,
          client: registryServer.client,
        }),
        faults: options.faults,
        dedicated,
        instancePolls: options.instancePolls,
        async engineFor(target: CloneTarget) {
          if (target.placement === 'dedicated')
            return dedicatedProvisioner(deps, target.engine).engine(target);
          return env.engine(target.engine);
        },
      };
      // The handlers log as they do in Lambda; locally only warnings and errors, unless asked.
      const logger = new Logger({
        serviceName: 'clonefactory-workflow',
        logLevel: (process.env.CLONEFACTORY_LOG_LEVEL ?? 'WARN') as 'WARN',
      });
      const handlers = (names: readonly string[], workflow: 'clone' | 'deprovision' | 'upgrade') =>
        Object.fromEntries(
          names.map((n) => [n, stepHandler(n, async () => deps, workflow, logger) as TaskHandler]),
        );
      const runner = new LocalWorkflowRunner({
        definitions: await loadWorkflowDefinitions(join(env.home, 'workflows'), deps.namespace),
        handlers: {
          clone: handlers(CLONE_TASKS, 'clone'),
          deprovision: handlers(DEPROVISION_STEPS, 'deprovision'),
          upgrade: handlers(UPGRADE_STEPS, 'upgrade'),
        },
        historyDir: join(env.home, 'executions'),
        retryIntervalMs: options.retryIntervalMs,
        waitMs: options.waitMs,
      });
      const tenants = new TenantService({
        registry,
        catalog,
        workflows: runner,
        placements: PLACEMENTS,
        dedicatedUnavailable: (engine) => dedicated.unavailable(engine),
      });
      const userRegistry = new DynamoDbUserRegistry({
        tableName: LOCAL_TABLES.userMappings,
        client: registryServer.client,
      });
      const users = new UserService({ users: userRegistry, clones: registry });
      const pools = new TenantPools({
        secrets: deps.secrets,
        async openSession(principal, _credentials, login, sessionOptions) {
          const engine = await deps.engineFor(principal);
          return engine.openSession(principal.database, login, sessionOptions);
        },
        options: options.pools,
      });
      const data = new TenantData({ pools, catalog });
      const plane = new LocalControlPlane(
        env,
        registryServer,
        deps,
        runner,
        tenants,
        users,
        userRegistry,
        pools,
        data,
        instances,
        new UpgradeService({
          registry,
          runs: deps.upgradeRuns as DynamoDbUpgradeRunStore,
          catalog,
          workflows: runner,
        }),
      );
      // Spares an earlier process left running (it crashed, or was killed) are not this one's.
      await instances.discardSpares();
      for (const interrupted of await runner.interrupted()) {
        options.log?.(`resuming interrupted execution ${interrupted.name}`);
        await runner.start(interrupted.stateMachine, interrupted.name, interrupted.input as never);
      }
      return plane;
    } catch (error) {
      await registryServer.close();
      throw error;
    }
  }

  /**
   * Starts the server of every READY dedicated tenant that is not running (after a reboot or
   * a kill). `clonectl serve` calls it; a CLI command run in its own process starts only the
   * servers it uses, when it uses them.
   */
  async startDedicatedServers(log?: (message: string) => void): Promise<void> {
    const ready = (await this.deps.registry.list({ state: 'READY' })).filter(
      (r) => r.placement === 'dedicated',
    );
    for (const r of await this.instances.restart(ready))
      if (r.error) log?.(`dedicated instance of clone ${r.cloneId} did not start: ${r.error}`);
  }

  /** Moves a READY tenant to its other placement (see moveTenant); its pools let go. */
  async move(tenantId: string, placement: unknown, log?: (message: string) => void): Promise<MoveResult> {
    const result = await moveTenant(this.deps, tenantId, placement, { log });
    await this.pools.closeClone(result.cloneId);
    return result;
  }

  /** Upgrades one READY tenant to `to` (see upgradeTenant); its pools let go of the old schema. */
  async upgradeTenant(tenantId: string, to: unknown): Promise<UpgradeOutcome> {
    if (typeof to !== 'string') throw new ValidationError('to: a version such as v1.1 is required', 'to');
    const outcome = await upgradeTenant(this.deps, tenantId, to);
    await this.pools.closeClone(outcome.cloneId);
    return outcome;
  }

  /**
   * Branches a READY tenant into a new one (see TenantService.branch). PostgreSQL copies a
   * database only while nobody is connected to it: this process's pools of the source let go first.
   */
  async branch(sourceId: string, tenantId: unknown): Promise<TenantRequestResult> {
    const source = await this.tenants.get(sourceId);
    await this.pools.closeClone(source.cloneId);
    return this.tenants.branch(sourceId, { tenantId });
  }

  /**
   * One pass of the health monitor (see checkFleetHealth). Its metrics are serialized as
   * CloudWatch EMF, as the Lambda prints them, and appended to `metrics/health.emf.jsonl`
   * under the state directory; the EMF document is returned too.
   */
  async checkHealth(options: HealthOptions = {}): Promise<{ report: HealthReport; emf: unknown }> {
    const report = await checkFleetHealth(this.deps, options);
    const metrics = new Metrics({ namespace: HEALTH_METRICS_NAMESPACE, serviceName: 'clonefactory-health' });
    recordHealthMetrics(metrics, report);
    const emf = metrics.serializeMetrics();
    metrics.clearMetrics();
    const dir = join(this.env.home, 'metrics');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await appendFile(join(dir, 'health.emf.jsonl'), `${JSON.stringify(emf)}\n`, { mode: 0o600 });
    return { report, emf };
  }

  /**
   * Orphans, dangling and stuck entries on every shared engine and in the secret store (see
   * reconcile); a dry run unless `apply`.
   */
  async reconcile(options: ReconcileOptions = {}): Promise<ReconcileReport> {
    const engines: DatabaseEngine[] = [];
    for (const name of this.deps.catalog.engines) {
      const r = await this.env.tryEngine(name);
      if ('engine' in r) engines.push(r.engine);
    }
    const report = await reconcile(
      {
        registry: this.deps.registry,
        secrets: this.deps.secrets,
        namespace: this.deps.namespace,
        engines,
        dedicated: this.deps.dedicated,
        restartDeletion: async (tenantId) => {
          await this.tenants.delete(tenantId);
        },
      },
      options,
    );
    // The last result, for `clonectl status`.
    const dir = join(this.env.home, 'reconcile');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'last.json'), JSON.stringify(report), { mode: 0o600 });
    return report;
  }

  /** The operator's overview: tenants by state, health, version, engine and placement; recent executions; the last reconcile. */
  async status(recent = 10): Promise<PlaneStatus> {
    const tenants = (await this.tenants.list()).filter((t) => t.state !== 'DELETED');
    const by = (key: (t: CloneRecord) => string) => {
      const out: Record<string, number> = {};
      for (const t of tenants) out[key(t)] = (out[key(t)] ?? 0) + 1;
      return out;
    };
    const executions = (await this.runner.list())
      .slice(-recent)
      .reverse()
      .map((e) => ({
        name: e.name,
        stateMachine: e.stateMachine,
        status: e.status,
        startedAt: e.startedAt,
        durationMs: e.stoppedAt ? Date.parse(e.stoppedAt) - Date.parse(e.startedAt) : undefined,
        ...(e.error ? { error: e.error } : {}),
      }));
    let lastReconcile: ReconcileReport | null = null;
    try {
      lastReconcile = JSON.parse(await readFile(join(this.env.home, 'reconcile', 'last.json'), 'utf8'));
    } catch {
      // never run here
    }
    return {
      tenants: tenants.length,
      byState: by((t) => t.state),
      byHealth: by((t) => (t.state === 'READY' ? (t.health?.status ?? 'UNCHECKED') : '-')),
      byVersion: by((t) => t.version),
      byEngine: by((t) => t.engine),
      byPlacement: by((t) => t.placement),
      attention: tenants
        .filter((t) => t.state === 'FAILED' || (t.health && t.health.status !== 'HEALTHY'))
        .map((t) => ({
          tenantId: t.tenantId,
          state: t.state,
          health: t.health?.status,
          detail: t.state === 'FAILED' ? (t.lastError ?? '') : (t.health?.problems.join('; ') ?? ''),
        })),
      executions,
      lastReconcile: lastReconcile && {
        at: lastReconcile.at,
        applied: lastReconcile.applied,
        counts: lastReconcile.counts,
      },
    };
  }

  /** Every READY tenant's live schema against its recorded version's (see detectDrift). */
  drift(tenantIds?: readonly string[]): Promise<DriftEntry[]> {
    return detectDrift(this.deps, tenantIds ? { tenantIds } : {});
  }

  /**
   * Waits for running executions, then stops the registry and the dedicated servers this
   * process runs (the next start runs them again). Shared engines belong to the environment.
   */
  async close(): Promise<void> {
    await this.runner.drain();
    await this.pools.close();
    await this.instances.close();
    await this.registryServer.close();
  }
}

/** `CLONEFACTORY_DEDICATED_SPARES`: an integer from 0 to 4, 1 when unset. */
function spareCount(value: string | undefined): number {
  if (value === undefined || value === '') return 1;
  if (!/^[0-4]$/.test(value.trim()))
    throw new Error(`CLONEFACTORY_DEDICATED_SPARES must be an integer from 0 to 4, not "${value}"`);
  return Number(value);
}
