import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { requireEnv } from '../adapters/config.js';
import { MysqlEngine } from '../adapters/engines/mysql.js';
import { PostgresEngine } from '../adapters/engines/postgres.js';
import { DynamoDbCloneRegistry } from '../adapters/registry/dynamodb-registry.js';
import { DynamoDbUpgradeRunStore } from '../adapters/registry/dynamodb-upgrade-runs.js';
import { DynamoDbUserRegistry } from '../adapters/registry/dynamodb-user-registry.js';
import { SecretsManagerStore } from '../adapters/secrets/secrets-manager-store.js';
import { StepFunctionsWorkflows } from '../adapters/workflows/step-functions-starter.js';
import type { ApiDeps } from '../api/app.js';
import { TenantData } from '../core/api/tenant-data.js';
import { TenantPools } from '../core/api/tenant-pools.js';
import { principalFromContext } from '../core/auth/authorizer.js';
import type { DatabaseEngine } from '../core/engine.js';
import { ValidationError } from '../core/errors.js';
import { UpgradeService } from '../core/fleet-upgrade.js';
import { TemplateCatalog } from '../core/templates.js';
import { TenantService } from '../core/tenant-service.js';
import { UserService } from '../core/users.js';

let api: Promise<ApiDeps> | undefined;
/**
 * The API Lambda's dependencies. It holds no admin credential: tenant sessions connect to the
 * host and port written in the clone's own secret, as the user's app role.
 */
export function awsApiDeps(): Promise<ApiDeps> {
  api ??= build();
  api.catch(() => {
    api = undefined;
  });
  return api;
}

async function build(): Promise<ApiDeps> {
  const dynamo = new DynamoDBClient({});
  const clones = new DynamoDbCloneRegistry({ tableName: requireEnv('CLONES_TABLE'), client: dynamo });
  const users = new UserService({
    users: new DynamoDbUserRegistry({ tableName: requireEnv('USERS_TABLE'), client: dynamo }),
    clones,
  });
  const catalog = await TemplateCatalog.load(requireEnv('TEMPLATES_DIR'));
  const workflows = new StepFunctionsWorkflows({
    clone: requireEnv('CLONE_STATE_MACHINE_ARN'),
    deprovision: requireEnv('DEPROVISION_STATE_MACHINE_ARN'),
    upgrade: process.env.UPGRADE_STATE_MACHINE_ARN,
  });
  const upgradeRunsTable = process.env.UPGRADE_RUNS_TABLE;
  const secrets = new SecretsManagerStore({ client: new SecretsManagerClient({}) });
  const sessionEngines = new Map<string, DatabaseEngine>();
  const pools = new TenantPools({
    secrets,
    openSession(principal, credentials, login, options) {
      if (principal.engine === 'sqlite') throw new ValidationError('sqlite runs only locally', 'engine');
      const key = `${principal.engine}://${credentials.host}:${credentials.port}`;
      let engine = sessionEngines.get(key);
      if (!engine) {
        // Only the endpoint is used: sessions log in with the tenant's own credentials.
        const url = `${principal.engine === 'postgresql' ? 'postgres' : 'mysql'}://${credentials.host}:${credentials.port}/${principal.engine === 'postgresql' ? 'postgres' : ''}`;
        engine = principal.engine === 'postgresql' ? new PostgresEngine({ url }) : new MysqlEngine({ url });
        sessionEngines.set(key, engine);
      }
      return engine.openSession(principal.database, login, options);
    },
    options: { max: 2, globalMax: 10 },
  });
  return {
    catalog,
    tenants: new TenantService({
      registry: clones,
      catalog,
      workflows,
      // Dedicated tenants when the stack deployed a provisioner for them (RDS or Fargate).
      placements: process.env.DEDICATED_PROVISIONER ? ['shared', 'dedicated'] : ['shared'],
      dedicatedUnavailable: (engine) => (engine === 'sqlite' ? 'SQLite runs only locally' : null),
    }),
    users,
    upgrades: upgradeRunsTable
      ? new UpgradeService({
          registry: clones,
          runs: new DynamoDbUpgradeRunStore({ tableName: upgradeRunsTable, client: dynamo }),
          catalog,
          workflows,
        })
      : undefined,
    data: new TenantData({ pools, catalog }),
    authenticate: async (c, next) => {
      // API Gateway ran the authorizer; its context is the principal.
      const event = (c.env as { event?: { requestContext?: { authorizer?: unknown } } } | undefined)?.event;
      c.set('principal', principalFromContext(event?.requestContext?.authorizer));
      await next();
    },
    health: async () => ({ ok: true, body: { status: 'ok' } }),
    templateDetail: async (engine, version, industry) => catalog.resolve(engine, version, industry),
    execution: (name) => workflows.describe(name),
  };
}
