import {
  CreateDBInstanceCommand,
  type DBInstance,
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { DatabaseEngine, EngineName } from '../../core/engine.js';
import { EngineUnavailableError, ForeignArtefactError } from '../../core/errors.js';
import { assertNamespace } from '../../core/identifiers.js';
import type { CloneTarget, DedicatedProvisioner, InstanceStatus } from '../../core/placement.js';
import { assertCloneId } from '../../core/tenants.js';
import { MysqlEngine } from '../engines/mysql.js';
import { PostgresEngine } from '../engines/postgres.js';
import { INSTANCE_TAGS, instanceTags, ownerOf } from './tags.js';

export interface RdsProvisionerOptions {
  readonly rds: RDSClient;
  /** Reads the master secret that RDS manages for each instance. */
  readonly secrets: SecretsManagerClient;
  readonly namespace: string;
  /** e.g. `db.t4g.micro` (a stack parameter). */
  readonly instanceClass: string;
  /** GiB (a stack parameter). */
  readonly allocatedStorageGb: number;
  readonly subnetGroupName: string;
  /** Admit only the control plane's and the API's functions. */
  readonly securityGroupIds: readonly string[];
  /** Customer-managed key for storage encryption; the AWS-managed RDS key otherwise. */
  readonly kmsKeyId?: string;
  readonly deletionProtection?: boolean;
  /** Take a final snapshot when the tenant is deleted. */
  readonly finalSnapshot?: boolean;
  readonly engineVersions?: Partial<Record<'postgresql' | 'mysql', string>>;
  /** At most this many other instances are tried by the isolation probe. */
  readonly probeOthers?: number;
}

/** RDS statuses after which the instance will not become available by waiting. */
const FAILED_STATUSES = new Set([
  'failed',
  'incompatible-network',
  'incompatible-option-group',
  'incompatible-parameters',
  'incompatible-restore',
  'inaccessible-encryption-credentials',
  'restore-error',
  'storage-full',
  'deleting',
  'deleted',
]);

const MASTER_USER = 'cfadmin';

/**
 * Dedicated placement on Amazon RDS: one DB instance per tenant, named `<ns>-<cloneId>` and
 * tagged with its clone id. Encrypted storage, no public access, a master password that RDS
 * keeps in Secrets Manager (never in workflow state). The state machine polls `status`.
 */
export class RdsProvisioner implements DedicatedProvisioner {
  readonly kind = 'rds';
  private readonly engines = new Map<string, Promise<DatabaseEngine>>();

  constructor(private readonly options: RdsProvisionerOptions) {
    assertNamespace(options.namespace);
  }

  unavailable(engine: EngineName): string | null {
    return engine === 'sqlite' ? 'SQLite has no server; RDS hosts PostgreSQL and MySQL' : null;
  }

  async prepareImage(): Promise<null> {
    // The image is built inside each instance once it is up (`Create database`).
    return null;
  }

  async provision(target: CloneTarget): Promise<InstanceStatus> {
    const id = this.identifier(target);
    const existing = await this.describe(id);
    if (existing) return this.statusOf(this.owned(existing, target));
    try {
      await this.options.rds.send(
        new CreateDBInstanceCommand({
          DBInstanceIdentifier: id,
          Engine: target.engine === 'postgresql' ? 'postgres' : 'mysql',
          EngineVersion: this.options.engineVersions?.[target.engine as 'postgresql' | 'mysql'],
          DBInstanceClass: this.options.instanceClass,
          AllocatedStorage: this.options.allocatedStorageGb,
          StorageType: 'gp3',
          StorageEncrypted: true,
          KmsKeyId: this.options.kmsKeyId,
          PubliclyAccessible: false,
          DBSubnetGroupName: this.options.subnetGroupName,
          VpcSecurityGroupIds: [...this.options.securityGroupIds],
          MasterUsername: MASTER_USER,
          ManageMasterUserPassword: true,
          DeletionProtection: this.options.deletionProtection ?? false,
          BackupRetentionPeriod: 7,
          CopyTagsToSnapshot: true,
          AutoMinorVersionUpgrade: true,
          Tags: instanceTags(target),
        }),
      );
    } catch (error) {
      // A retry after a lost response: adopt what this clone's first attempt created.
      if (!(error instanceof DBInstanceAlreadyExistsFault)) throw error;
      const raced = await this.describe(id);
      if (raced) return this.statusOf(this.owned(raced, target));
      throw error;
    }
    return { state: 'pending', detail: 'creating' };
  }

  async status(target: CloneTarget): Promise<InstanceStatus> {
    const instance = await this.describe(this.identifier(target));
    if (!instance) return { state: 'failed', detail: 'the instance does not exist' };
    return this.statusOf(this.owned(instance, target));
  }

  engine(target: CloneTarget): Promise<DatabaseEngine> {
    const id = this.identifier(target);
    let engine = this.engines.get(id);
    if (!engine) {
      engine = (async () => {
        const instance = await this.describe(id);
        if (instance?.DBInstanceStatus !== 'available' || !instance.Endpoint?.Address)
          throw new EngineUnavailableError(target.engine, `RDS instance ${id} is not available`);
        this.owned(instance, target);
        const secretArn = instance.MasterUserSecret?.SecretArn;
        if (!secretArn)
          throw new EngineUnavailableError(target.engine, `RDS instance ${id} has no master secret`);
        const secret = await this.options.secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
        const { username, password } = JSON.parse(secret.SecretString ?? '{}') as {
          username?: string;
          password?: string;
        };
        if (!username || !password)
          throw new EngineUnavailableError(
            target.engine,
            `the master secret of RDS instance ${id} is incomplete`,
          );
        return engineAt(target.engine, instance, username, password);
      })();
      this.engines.set(id, engine);
      engine.catch(() => this.engines.delete(id));
    }
    return engine;
  }

  /**
   * Every tenant instance of this namespace, by its tags (clone id, tenant id, managed-by),
   * with RDS's creation time: for the reconciler. Instances on their way out are left out.
   */
  async listInstances(): Promise<
    { cloneId: string; tenantId: string; engine: EngineName; createdAt: string }[]
  > {
    const out: { cloneId: string; tenantId: string; engine: EngineName; createdAt: string }[] = [];
    const prefix = `${this.options.namespace}-`;
    let marker: string | undefined;
    do {
      const page = await this.options.rds.send(
        new DescribeDBInstancesCommand({ MaxRecords: 100, Marker: marker }),
      );
      for (const i of page.DBInstances ?? []) {
        const tag = (key: string) => i.TagList?.find((t) => t.Key === key)?.Value;
        const cloneId = ownerOf(i.TagList);
        if (
          !cloneId ||
          !i.DBInstanceIdentifier?.startsWith(prefix) ||
          tag(INSTANCE_TAGS.managedBy) !== 'clonefactory' ||
          i.DBInstanceStatus === 'deleting' ||
          !i.InstanceCreateTime
        )
          continue;
        out.push({
          cloneId,
          tenantId: tag(INSTANCE_TAGS.tenantId) ?? '',
          engine: i.Engine === 'postgres' ? 'postgresql' : 'mysql',
          createdAt: i.InstanceCreateTime.toISOString(),
        });
      }
      marker = page.Marker;
    } while (marker);
    return out;
  }

  async others(target: CloneTarget): Promise<{ engine: DatabaseEngine; database: string }[]> {
    const own = this.identifier(target);
    const prefix = `${this.options.namespace}-`;
    const result = await this.options.rds.send(new DescribeDBInstancesCommand({ MaxRecords: 100 }));
    return (result.DBInstances ?? [])
      .filter(
        (i) =>
          i.DBInstanceIdentifier !== own &&
          i.DBInstanceIdentifier?.startsWith(prefix) &&
          i.DBInstanceStatus === 'available' &&
          i.Endpoint?.Address &&
          ownerOf(i.TagList) !== undefined &&
          (i.Engine === 'postgres') === (target.engine === 'postgresql'),
      )
      .slice(0, this.options.probeOthers ?? 3)
      .map((i) => ({
        // Only tenant logins are tried there: the engine needs the address, not a password.
        engine: engineAt(target.engine, i, 'probe', ''),
        database: target.engine === 'postgresql' ? 'postgres' : 'mysql',
      }));
  }

  async deprovision(target: CloneTarget): Promise<void> {
    const id = this.identifier(target);
    const cached = this.engines.get(id);
    this.engines.delete(id);
    await (await cached?.catch(() => null))?.close();
    const instance = await this.describe(id);
    if (!instance) return;
    this.owned(instance, target);
    if (instance.DBInstanceStatus === 'deleting') return;
    if (instance.DeletionProtection)
      await this.options.rds.send(
        new ModifyDBInstanceCommand({
          DBInstanceIdentifier: id,
          DeletionProtection: false,
          ApplyImmediately: true,
        }),
      );
    try {
      await this.options.rds.send(
        new DeleteDBInstanceCommand({
          DBInstanceIdentifier: id,
          SkipFinalSnapshot: !this.options.finalSnapshot,
          ...(this.options.finalSnapshot ? { FinalDBSnapshotIdentifier: `${id}-final` } : {}),
          DeleteAutomatedBackups: !this.options.finalSnapshot,
        }),
      );
    } catch (error) {
      if (!(error instanceof DBInstanceNotFoundFault)) throw error;
    }
  }

  private identifier(target: CloneTarget): string {
    return `${this.options.namespace}-${assertCloneId(target.cloneId)}`;
  }

  private async describe(id: string): Promise<DBInstance | null> {
    try {
      const result = await this.options.rds.send(
        new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }),
      );
      return result.DBInstances?.[0] ?? null;
    } catch (error) {
      if (error instanceof DBInstanceNotFoundFault) return null;
      throw error;
    }
  }

  /** The instance, when it carries this clone's tag; ForeignArtefactError otherwise. */
  private owned(instance: DBInstance, target: CloneTarget): DBInstance {
    const owner = ownerOf(instance.TagList);
    if (owner !== target.cloneId)
      throw new ForeignArtefactError(
        'RDS instance',
        String(instance.DBInstanceIdentifier),
        owner ?? '(untagged)',
      );
    return instance;
  }

  private statusOf(instance: DBInstance): InstanceStatus {
    const status = instance.DBInstanceStatus ?? 'unknown';
    if (status === 'available' && instance.Endpoint?.Address)
      return { state: 'available', endpoint: `${instance.Endpoint.Address}:${instance.Endpoint.Port}` };
    if (FAILED_STATUSES.has(status)) return { state: 'failed', detail: `RDS status ${status}` };
    return { state: 'pending', detail: status };
  }
}

function engineAt(engine: EngineName, instance: DBInstance, user: string, password: string): DatabaseEngine {
  const host = instance.Endpoint?.Address as string;
  const port = instance.Endpoint?.Port ?? (engine === 'postgresql' ? 5432 : 3306);
  const auth = `${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}`;
  return engine === 'postgresql'
    ? new PostgresEngine({ url: `postgres://${auth}@${host}:${port}/postgres` })
    : new MysqlEngine({ url: `mysql://${auth}@${host}:${port}` });
}

export { INSTANCE_TAGS };
