import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ECSClient } from '@aws-sdk/client-ecs';
import { EFSClient } from '@aws-sdk/client-efs';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { requireEnv } from '../adapters/config.js';
import { adminUrlFromSecret } from '../adapters/engines/admin-secret.js';
import { MysqlEngine } from '../adapters/engines/mysql.js';
import { PostgresEngine } from '../adapters/engines/postgres.js';
import { FargateProvisioner } from '../adapters/provisioners/fargate-provisioner.js';
import { RdsProvisioner } from '../adapters/provisioners/rds-provisioner.js';
import { DynamoDbCloneRegistry } from '../adapters/registry/dynamodb-registry.js';
import { DynamoDbUpgradeRunStore } from '../adapters/registry/dynamodb-upgrade-runs.js';
import { SecretsManagerStore } from '../adapters/secrets/secrets-manager-store.js';
import type { DatabaseEngine, EngineName } from '../core/engine.js';
import { ValidationError } from '../core/errors.js';
import type { CloneTarget, DedicatedProvisioner } from '../core/placement.js';
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
  const dedicated = dedicatedFromEnvironment(secretsClient, requireEnv('NAMESPACE'));
  const dynamo = new DynamoDBClient({});
  return {
    registry: new DynamoDbCloneRegistry({ tableName: requireEnv('CLONES_TABLE'), client: dynamo }),
    upgradeRuns: process.env.UPGRADE_RUNS_TABLE
      ? new DynamoDbUpgradeRunStore({ tableName: process.env.UPGRADE_RUNS_TABLE, client: dynamo })
      : undefined,
    secrets,
    catalog: await TemplateCatalog.load(requireEnv('TEMPLATES_DIR')),
    namespace: requireEnv('NAMESPACE'),
    dedicated,
    async engineFor(target: CloneTarget): Promise<DatabaseEngine> {
      const { engine, placement } = target;
      if (placement === 'dedicated') {
        if (!dedicated) throw new ValidationError('dedicated placement is not deployed', 'placement');
        return dedicated.engine(target);
      }
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

/** The provisioner of `--placement dedicated` that the stack configured (DEDICATED_* variables). */
function dedicatedFromEnvironment(
  secrets: SecretsManagerClient,
  namespace: string,
): DedicatedProvisioner | undefined {
  const env = process.env;
  const kind = env.DEDICATED_PROVISIONER;
  if (!kind) return undefined;
  const list = (name: string) => requireEnv(name).split(',').filter(Boolean);
  if (kind === 'rds')
    return new RdsProvisioner({
      rds: new RDSClient({}),
      secrets,
      namespace,
      instanceClass: requireEnv('DEDICATED_INSTANCE_CLASS'),
      allocatedStorageGb: Number(requireEnv('DEDICATED_STORAGE_GB')),
      subnetGroupName: requireEnv('DEDICATED_SUBNET_GROUP'),
      securityGroupIds: list('DEDICATED_SECURITY_GROUP'),
      deletionProtection: env.DEDICATED_DELETION_PROTECTION === 'true',
      finalSnapshot: env.DEDICATED_FINAL_SNAPSHOT === 'true',
    });
  if (kind === 'fargate') {
    const prefix = requireEnv('DEDICATED_IMAGE_PREFIX');
    return new FargateProvisioner({
      ecs: new ECSClient({}),
      efs: new EFSClient({}),
      secrets,
      namespace,
      cluster: requireEnv('DEDICATED_CLUSTER'),
      fileSystemId: requireEnv('DEDICATED_FILE_SYSTEM'),
      subnets: list('DEDICATED_SUBNETS'),
      securityGroups: list('DEDICATED_SECURITY_GROUP'),
      executionRoleArn: requireEnv('DEDICATED_EXECUTION_ROLE'),
      taskRoleArn: requireEnv('DEDICATED_TASK_ROLE'),
      logGroup: requireEnv('DEDICATED_LOG_GROUP'),
      region: requireEnv('AWS_REGION'),
      images: {
        postgresql: `${prefix}/docker/library/postgres:15`,
        mysql: `${prefix}/docker/library/mysql:8.0`,
      },
    });
  }
  throw new ValidationError(`DEDICATED_PROVISIONER must be rds or fargate, not ${kind}`);
}
