import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import type { DedicatedProvisioner } from '../../functions/core/placement.js';
import { APP_ROLES, physicalNames } from '../../functions/core/tenants.js';
import { type CloneWorkflowDeps, removeClone } from '../../functions/core/workflow/clone-workflow.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import type { ExecutionRecord } from '../../local/workflow-runner.js';
import { tempDir, testNamespace } from './engines.js';

/** The states a shared clone enters, in order: the six steps and the placement Choice. */
export const SHARED_CLONE_PATH = [
  'Select template',
  'Placement?',
  'Create database',
  'Apply schema',
  'Populate data',
  'Configure security',
  'Verify and register',
];

export interface TestPlane {
  readonly plane: LocalControlPlane;
  readonly namespace: string;
  readonly home: string;
  create(request: Record<string, unknown>): Promise<ExecutionRecord>;
  /** The shared server (or SQLite directory) of an engine, as this plane uses it. */
  shared(engine: EngineName): Promise<DatabaseEngine>;
  /** What is left of a clone on its engine and in the secret store. */
  artefacts(
    engine: EngineName,
    cloneId: string,
  ): Promise<{ database: boolean; roles: string[]; secret: boolean }>;
  close(): Promise<void>;
}

/** A local control plane in a temporary state directory and a namespace of its own. */
export async function startTestPlane(
  options: {
    faults?: CloneWorkflowDeps['faults'];
    dedicated?: DedicatedProvisioner;
    instancePolls?: number;
    dedicatedSpares?: number;
  } = {},
): Promise<TestPlane> {
  const home = tempDir('plane');
  const namespace = testNamespace();
  const env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: home } });
  const plane = await LocalControlPlane.start({
    env,
    namespace,
    faults: options.faults,
    dedicated: options.dedicated,
    instancePolls: options.instancePolls,
    dedicatedSpares: options.dedicatedSpares,
    retryIntervalMs: 5,
    waitMs: 5,
  });
  return {
    plane,
    namespace,
    home,
    async create(request) {
      const r = await plane.tenants.create({ industry: 'technology', version: 'v1.1', ...request });
      return plane.runner.wait(r.executionName);
    },
    shared(engine) {
      return plane.deps.engineFor({ tenantId: 'none', cloneId: '000000000000', engine, placement: 'shared' });
    },
    async artefacts(engineName, cloneId) {
      const engine: DatabaseEngine = await env.engine(engineName);
      const names = physicalNames(namespace, cloneId);
      return {
        database: await engine.databaseExists(names.database),
        roles: await engine.existingRoles([names.ownerRole, ...APP_ROLES.map((r) => names.roles[r])]),
        secret: (await plane.deps.secrets.get(names.secretId)) !== null,
      };
    },
    async close() {
      await plane.runner.drain();
      for (const record of await plane.tenants.list()) await removeClone(plane.deps, record).catch(() => {});
      await plane.close();
      for (const name of ['postgresql', 'mysql'] as const) {
        const r = await env.tryEngine(name);
        if (!('engine' in r)) continue;
        for (const db of await r.engine.listDatabases(`${namespace}_`)) await r.engine.dropDatabase(db);
      }
      await env.close();
    },
  };
}

/** A DynamoDB attribute as the document client or the low-level client hands it over. */
export function plainString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { S?: unknown }).S === 'string')
    return (value as { S: string }).S;
  return undefined;
}
