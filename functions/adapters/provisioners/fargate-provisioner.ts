import { randomBytes } from 'node:crypto';
import {
  CreateServiceCommand,
  DeleteServiceCommand,
  DeregisterTaskDefinitionCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  type ECSClient,
  ListServicesCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  type Service,
} from '@aws-sdk/client-ecs';
import {
  AccessPointNotFound,
  CreateAccessPointCommand,
  DeleteAccessPointCommand,
  DescribeAccessPointsCommand,
  type EFSClient,
} from '@aws-sdk/client-efs';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { DatabaseEngine, EngineName } from '../../core/engine.js';
import { EngineUnavailableError, ForeignArtefactError } from '../../core/errors.js';
import { assertNamespace } from '../../core/identifiers.js';
import type { CloneTarget, DedicatedProvisioner, InstanceStatus } from '../../core/placement.js';
import { assertCloneId } from '../../core/tenants.js';
import { MysqlEngine } from '../engines/mysql.js';
import { PostgresEngine } from '../engines/postgres.js';
import { INSTANCE_TAGS, instanceTags, ownerOf } from './tags.js';

export interface FargateProvisionerOptions {
  readonly ecs: ECSClient;
  readonly efs: EFSClient;
  readonly secrets: SecretsManagerClient;
  readonly namespace: string;
  readonly cluster: string;
  readonly fileSystemId: string;
  /** Private subnets, no public IP. */
  readonly subnets: readonly string[];
  /** Admits only the control plane's and the API's functions on the engine's port. */
  readonly securityGroups: readonly string[];
  readonly executionRoleArn: string;
  readonly taskRoleArn: string;
  readonly logGroup: string;
  readonly region: string;
  /** Official images, e.g. `public.ecr.aws/docker/library/postgres:15`. */
  readonly images?: Partial<Record<'postgresql' | 'mysql', string>>;
  readonly cpu?: string;
  readonly memory?: string;
}

const ENGINE = {
  postgresql: {
    image: 'public.ecr.aws/docker/library/postgres:15',
    port: 5432,
    dataPath: '/var/lib/postgresql/data',
    user: 'postgres',
    passwordVariable: 'POSTGRES_PASSWORD',
    uid: 999,
    adminDatabase: 'postgres',
  },
  mysql: {
    image: 'public.ecr.aws/docker/library/mysql:8.0',
    port: 3306,
    dataPath: '/var/lib/mysql',
    user: 'root',
    passwordVariable: 'MYSQL_ROOT_PASSWORD',
    uid: 999,
    adminDatabase: 'mysql',
  },
} as const;

/**
 * Dedicated placement on ECS Fargate: per tenant, a master secret, an EFS access point of its
 * own (its data directory), a task definition that mounts it, and a service of one task in
 * private subnets. Every resource is named after and tagged with the clone id. The endpoint
 * is the task's private address, which `Verify and register` writes to the registry.
 */
export class FargateProvisioner implements DedicatedProvisioner {
  readonly kind = 'fargate';
  private readonly engines = new Map<string, Promise<DatabaseEngine>>();

  constructor(private readonly options: FargateProvisionerOptions) {
    assertNamespace(options.namespace);
  }

  unavailable(engine: EngineName): string | null {
    return engine === 'sqlite' ? 'SQLite has no server to run in a container' : null;
  }

  async prepareImage(): Promise<null> {
    return null;
  }

  async provision(target: CloneTarget): Promise<InstanceStatus> {
    const engine = serverEngine(target.engine);
    const name = this.name(target);
    const service = await this.service(name);
    if (service && service.status !== 'INACTIVE') {
      this.owned('ECS service', name, service.tags, target);
      return this.status(target);
    }
    const secretArn = await this.ensureSecret(target);
    const accessPointId = await this.ensureAccessPoint(target);
    const spec = ENGINE[engine];
    const definition = await this.options.ecs.send(
      new RegisterTaskDefinitionCommand({
        family: name,
        requiresCompatibilities: ['FARGATE'],
        networkMode: 'awsvpc',
        cpu: this.options.cpu ?? '512',
        memory: this.options.memory ?? '1024',
        executionRoleArn: this.options.executionRoleArn,
        taskRoleArn: this.options.taskRoleArn,
        volumes: [
          {
            name: 'data',
            efsVolumeConfiguration: {
              fileSystemId: this.options.fileSystemId,
              transitEncryption: 'ENABLED',
              authorizationConfig: { accessPointId, iam: 'ENABLED' },
            },
          },
        ],
        containerDefinitions: [
          {
            name: 'database',
            image: this.options.images?.[engine] ?? spec.image,
            essential: true,
            portMappings: [{ containerPort: spec.port, protocol: 'tcp' }],
            mountPoints: [{ sourceVolume: 'data', containerPath: spec.dataPath }],
            // The password reaches the container from Secrets Manager, never through the task definition.
            secrets: [{ name: spec.passwordVariable, valueFrom: `${secretArn}:password::` }],
            logConfiguration: {
              logDriver: 'awslogs',
              options: {
                'awslogs-group': this.options.logGroup,
                'awslogs-region': this.options.region,
                'awslogs-stream-prefix': name,
              },
            },
          },
        ],
        tags: ecsTags(target),
      }),
    );
    await this.options.ecs.send(
      new CreateServiceCommand({
        cluster: this.options.cluster,
        serviceName: name,
        taskDefinition: definition.taskDefinition?.taskDefinitionArn,
        desiredCount: 1,
        launchType: 'FARGATE',
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: [...this.options.subnets],
            securityGroups: [...this.options.securityGroups],
            assignPublicIp: 'DISABLED',
          },
        },
        // Idempotent by the clone id: a retried create returns the same service.
        clientToken: target.cloneId,
        propagateTags: 'SERVICE',
        enableECSManagedTags: true,
        tags: ecsTags(target),
      }),
    );
    return { state: 'pending', detail: 'service created' };
  }

  async status(target: CloneTarget): Promise<InstanceStatus> {
    const name = this.name(target);
    const service = await this.service(name);
    if (!service || service.status === 'INACTIVE')
      return { state: 'failed', detail: 'the service does not exist' };
    this.owned('ECS service', name, service.tags, target);
    const rollout = service.deployments?.[0]?.rolloutState;
    if (rollout === 'FAILED')
      return { state: 'failed', detail: service.deployments?.[0]?.rolloutStateReason ?? 'deployment failed' };
    if ((service.runningCount ?? 0) < 1 || rollout !== 'COMPLETED')
      return { state: 'pending', detail: rollout };
    const address = await this.taskAddress(name);
    if (!address) return { state: 'pending', detail: 'no task address yet' };
    return { state: 'available', endpoint: `${address}:${ENGINE[serverEngine(target.engine)].port}` };
  }

  engine(target: CloneTarget): Promise<DatabaseEngine> {
    const name = this.name(target);
    let engine = this.engines.get(name);
    if (!engine) {
      engine = (async () => {
        const status = await this.status(target);
        if (status.state !== 'available' || !status.endpoint)
          throw new EngineUnavailableError(target.engine, `service ${name} is not available`);
        const secret = await this.options.secrets.send(
          new GetSecretValueCommand({ SecretId: this.secretName(target) }),
        );
        const { username, password } = JSON.parse(secret.SecretString ?? '{}') as {
          username?: string;
          password?: string;
        };
        if (!username || !password)
          throw new EngineUnavailableError(target.engine, `the master secret of ${name} is incomplete`);
        return engineAt(target.engine, status.endpoint, username, password);
      })();
      this.engines.set(name, engine);
      engine.catch(() => this.engines.delete(name));
    }
    return engine;
  }

  async others(): Promise<{ engine: DatabaseEngine; database: string }[]> {
    // Other tenants' tasks are reachable only through their own security group rules; the
    // probe of a Fargate clone covers its own service (the image and the admin database).
    return [];
  }

  async deprovision(target: CloneTarget): Promise<void> {
    const name = this.name(target);
    const cached = this.engines.get(name);
    this.engines.delete(name);
    await (await cached?.catch(() => null))?.close();
    const service = await this.service(name);
    if (service && service.status !== 'INACTIVE') {
      this.owned('ECS service', name, service.tags, target);
      await this.options.ecs.send(
        new DeleteServiceCommand({ cluster: this.options.cluster, service: name, force: true }),
      );
      if (service.taskDefinition)
        await this.options.ecs.send(
          new DeregisterTaskDefinitionCommand({ taskDefinition: service.taskDefinition }),
        );
    }
    const accessPoint = await this.accessPoint(target);
    if (accessPoint)
      try {
        await this.options.efs.send(new DeleteAccessPointCommand({ AccessPointId: accessPoint }));
      } catch (error) {
        if (!(error instanceof AccessPointNotFound)) throw error;
      }
    try {
      const secret = await this.options.secrets.send(
        new DescribeSecretCommand({ SecretId: this.secretName(target) }),
      );
      this.owned('secret', this.secretName(target), secret.Tags, target);
      await this.options.secrets.send(
        new DeleteSecretCommand({ SecretId: this.secretName(target), ForceDeleteWithoutRecovery: true }),
      );
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }

  /**
   * Every tenant service of this namespace on the cluster, by its tags (clone id, tenant id,
   * engine, managed-by), with ECS's creation time: for the reconciler. ListServices pages by
   * 100; DescribeServices takes 10 at a time. Services on their way out are left out.
   */
  async listInstances(): Promise<
    { cloneId: string; tenantId: string; engine: EngineName; createdAt: string }[]
  > {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.options.ecs.send(
        new ListServicesCommand({ cluster: this.options.cluster, maxResults: 100, nextToken }),
      );
      arns.push(...(page.serviceArns ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    const prefix = `${this.options.namespace}-`;
    const out: { cloneId: string; tenantId: string; engine: EngineName; createdAt: string }[] = [];
    for (let i = 0; i < arns.length; i += 10) {
      const described = await this.options.ecs.send(
        new DescribeServicesCommand({
          cluster: this.options.cluster,
          services: arns.slice(i, i + 10),
          include: ['TAGS'],
        }),
      );
      for (const service of described.services ?? []) {
        const tag = (key: string) => service.tags?.find((t) => t.key === key)?.value;
        const cloneId = ownerOf(service.tags);
        const engine = tag(ENGINE_TAG);
        if (
          !cloneId ||
          !service.serviceName?.startsWith(prefix) ||
          tag(INSTANCE_TAGS.managedBy) !== 'clonefactory' ||
          (engine !== 'postgresql' && engine !== 'mysql') ||
          service.status !== 'ACTIVE' ||
          !service.createdAt
        )
          continue;
        out.push({
          cloneId,
          tenantId: tag(INSTANCE_TAGS.tenantId) ?? '',
          engine,
          createdAt: service.createdAt.toISOString(),
        });
      }
    }
    return out;
  }

  private name(target: CloneTarget): string {
    return `${this.options.namespace}-${assertCloneId(target.cloneId)}`;
  }

  private secretName(target: CloneTarget): string {
    return `${this.options.namespace}/instances/${assertCloneId(target.cloneId)}`;
  }

  private async service(name: string): Promise<Service | null> {
    const result = await this.options.ecs.send(
      new DescribeServicesCommand({ cluster: this.options.cluster, services: [name], include: ['TAGS'] }),
    );
    return result.services?.[0] ?? null;
  }

  private async taskAddress(name: string): Promise<string | undefined> {
    const tasks = await this.options.ecs.send(
      new ListTasksCommand({ cluster: this.options.cluster, serviceName: name, desiredStatus: 'RUNNING' }),
    );
    if (!tasks.taskArns?.length) return undefined;
    const described = await this.options.ecs.send(
      new DescribeTasksCommand({ cluster: this.options.cluster, tasks: tasks.taskArns.slice(0, 1) }),
    );
    const details = described.tasks?.[0]?.attachments?.find(
      (a) => a.type === 'ElasticNetworkInterface',
    )?.details;
    return details?.find((d) => d.name === 'privateIPv4Address')?.value;
  }

  /** The master secret: created once with a random password, adopted on a retry when it is ours. */
  private async ensureSecret(target: CloneTarget): Promise<string> {
    const name = this.secretName(target);
    const spec = ENGINE[serverEngine(target.engine)];
    try {
      const created = await this.options.secrets.send(
        new CreateSecretCommand({
          Name: name,
          SecretString: JSON.stringify({
            username: spec.user,
            password: randomBytes(24).toString('base64url'),
          }),
          Tags: instanceTags(target),
          // Idempotent by the clone id as well.
          ClientRequestToken: `${target.cloneId}-${target.cloneId}-${target.cloneId}`,
        }),
      );
      return created.ARN as string;
    } catch (error) {
      if (!(error instanceof ResourceExistsException)) throw error;
      const existing = await this.options.secrets.send(new DescribeSecretCommand({ SecretId: name }));
      this.owned('secret', name, existing.Tags, target);
      return existing.ARN as string;
    }
  }

  private async accessPoint(target: CloneTarget): Promise<string | undefined> {
    const result = await this.options.efs.send(
      new DescribeAccessPointsCommand({ FileSystemId: this.options.fileSystemId, MaxResults: 1000 }),
    );
    const points = result.AccessPoints ?? [];
    const mine = points.find((p) => p.RootDirectory?.Path === this.dataPath(target));
    if (!mine) return undefined;
    this.owned('EFS access point', String(mine.AccessPointId), mine.Tags, target);
    return mine.AccessPointId;
  }

  private async ensureAccessPoint(target: CloneTarget): Promise<string> {
    const existing = await this.accessPoint(target);
    if (existing) return existing;
    const uid = ENGINE[serverEngine(target.engine)].uid;
    const created = await this.options.efs.send(
      new CreateAccessPointCommand({
        FileSystemId: this.options.fileSystemId,
        ClientToken: target.cloneId,
        PosixUser: { Uid: uid, Gid: uid },
        RootDirectory: {
          Path: this.dataPath(target),
          CreationInfo: { OwnerUid: uid, OwnerGid: uid, Permissions: '700' },
        },
        Tags: instanceTags(target),
      }),
    );
    return created.AccessPointId as string;
  }

  private dataPath(target: CloneTarget): string {
    return `/tenants/${assertCloneId(target.cloneId)}`;
  }

  private owned(
    kind: string,
    name: string,
    tags: readonly { Key?: string; Value?: string; key?: string; value?: string }[] | undefined,
    target: CloneTarget,
  ): void {
    const owner = ownerOf(tags);
    if (owner !== target.cloneId) throw new ForeignArtefactError(kind, name, owner ?? '(untagged)');
  }
}

function serverEngine(engine: EngineName): 'postgresql' | 'mysql' {
  if (engine === 'sqlite') throw new EngineUnavailableError('sqlite', 'SQLite has no server');
  return engine;
}

/** The instance tags, in ECS's spelling, and the engine, which the reconciler's listing reports. */
function ecsTags(target: CloneTarget): { key: string; value: string }[] {
  return [
    ...instanceTags(target).map((t) => ({ key: t.Key, value: t.Value })),
    { key: ENGINE_TAG, value: target.engine },
  ];
}

const ENGINE_TAG = 'clonefactory:engine';

function engineAt(engine: EngineName, endpoint: string, user: string, password: string): DatabaseEngine {
  const auth = `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
  return engine === 'postgresql'
    ? new PostgresEngine({ url: `postgres://${auth}@${endpoint}/postgres` })
    : new MysqlEngine({ url: `mysql://${auth}@${endpoint}` });
}
