import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { requireEnv } from '../adapters/config.js';
import { adminUrlFromSecret } from '../adapters/engines/admin-secret.js';
import { MysqlEngine } from '../adapters/engines/mysql.js';
import { PostgresEngine } from '../adapters/engines/postgres.js';
import { DynamoDbCloneRegistry } from '../adapters/registry/dynamodb-registry.js';
import { SecretsManagerStore } from '../adapters/secrets/secrets-manager-store.js';
import type { DatabaseEngine, EngineName } from '../core/engine.js';
import { ValidationError } from '../core/errors.js';
import type { CloneTarget } from '../core/placement.js';
import { TemplateCatalog } from '../core/templates.js';
import type { CloneWorkflowDeps } from '../core/workflow/clone-workflow.js';

/**
 * The dependencies of the workflow steps inside Lambda, built once per container from the
 * environment that the CDK construct sets from construct attributes.
 */
let deps: Promise<CloneWorkflowDeps> | undefined;

export function awsDeps(): Promise<CloneWorkflowDeps> {
  deps ??= build();
  // A failed start (a throttled call, say) is not remembered by the warm container.
  deps.catch(() => {
    deps = undefined;
  });
  return deps;
}

async function build(): Promise<CloneWorkflowDeps> {
  const secretsClient = new SecretsManagerClient({});
  const secrets = new SecretsManagerStore({ client: secretsClient });
  const engines = new Map<EngineName, Promise<DatabaseEngine>>();
  const adminSecrets: Partial<Record<EngineName, string | undefined>> = {
    postgresql: process.env.PG_ADMIN_SECRET_ARN,
    mysql: process.env.MYSQL_ADMIN_SECRET_ARN,
  };
  return {
    registry: new DynamoDbCloneRegistry({
      tableName: requireEnv('CLONES_TABLE'),
      client: new DynamoDBClient({}),
    }),
    secrets,
    catalog: await TemplateCatalog.load(requireEnv('TEMPLATES_DIR')),
    namespace: requireEnv('NAMESPACE'),
    engineFor({ engine, placement }: CloneTarget): Promise<DatabaseEngine> {
      if (placement !== 'shared')
        throw new ValidationError(`placement ${placement} is not deployed`, 'placement');
      if (engine === 'sqlite')
        throw new ValidationError('sqlite runs only in the local control plane', 'engine');
      const arn = adminSecrets[engine];
      if (!arn) throw new ValidationError(`no shared ${engine} server is configured`, 'engine');
      let e = engines.get(engine);
      if (!e) {
        e = secrets.get(arn).then((value) => {
          if (!value) throw new ValidationError(`admin secret of the shared ${engine} server is empty`);
          const url = adminUrlFromSecret(value, engine);
          return engine === 'postgresql' ? new PostgresEngine({ url }) : new MysqlEngine({ url });
        });
        engines.set(engine, e);
        e.catch(() => engines.delete(engine));
      }
      return e;
    },
  };
}
