import {
  CreateServiceCommand,
  DeleteServiceCommand,
  DeregisterTaskDefinitionCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ECSClient,
  ListServicesCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
} from '@aws-sdk/client-ecs';
import {
  CreateAccessPointCommand,
  DeleteAccessPointCommand,
  DescribeAccessPointsCommand,
  EFSClient,
} from '@aws-sdk/client-efs';
import {
  CreateDBInstanceCommand,
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { FargateProvisioner } from '../../functions/adapters/provisioners/fargate-provisioner.js';
import { RdsProvisioner } from '../../functions/adapters/provisioners/rds-provisioner.js';
import type { CloneTarget } from '../../functions/core/placement.js';

const target: CloneTarget = {
  tenantId: 'acme',
  cloneId: 'a1b2c3d4e5f6',
  engine: 'postgresql',
  placement: 'dedicated',
};
const TAGS = [
  { Key: 'clonefactory:clone-id', Value: 'a1b2c3d4e5f6' },
  { Key: 'clonefactory:tenant-id', Value: 'acme' },
  { Key: 'clonefactory:managed-by', Value: 'clonefactory' },
];
const notFound = () => new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });

describe('RdsProvisioner, at the request level', () => {
  const rds = mockClient(RDSClient);
  const sm = mockClient(SecretsManagerClient);
  const provisioner = (extra: Partial<ConstructorParameters<typeof RdsProvisioner>[0]> = {}) =>
    new RdsProvisioner({
      rds: new RDSClient({ region: 'eu-west-1' }),
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
      namespace: 'cf',
      instanceClass: 'db.t4g.micro',
      allocatedStorageGb: 20,
      subnetGroupName: 'cf-tenants',
      securityGroupIds: ['sg-tenant-db'],
      ...extra,
    });
  beforeEach(() => {
    rds.reset();
    sm.reset();
  });

  it('creates an encrypted, private instance tagged with the clone id, its master password in Secrets Manager', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(notFound());
    rds.on(CreateDBInstanceCommand).resolves({});
    expect(await provisioner({ deletionProtection: true }).provision(target)).toEqual({
      state: 'pending',
      detail: 'creating',
    });
    expect(rds.commandCalls(CreateDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      {
        DBInstanceIdentifier: 'cf-a1b2c3d4e5f6',
        Engine: 'postgres',
        EngineVersion: undefined,
        DBInstanceClass: 'db.t4g.micro',
        AllocatedStorage: 20,
        StorageType: 'gp3',
        StorageEncrypted: true,
        KmsKeyId: undefined,
        PubliclyAccessible: false,
        DBSubnetGroupName: 'cf-tenants',
        VpcSecurityGroupIds: ['sg-tenant-db'],
        MasterUsername: 'cfadmin',
        ManageMasterUserPassword: true,
        DeletionProtection: true,
        BackupRetentionPeriod: 7,
        CopyTagsToSnapshot: true,
        AutoMinorVersionUpgrade: true,
        Tags: TAGS,
      },
    ]);
  });

  it("adopts this clone's instance on a retry instead of creating another", async () => {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [{ DBInstanceIdentifier: 'cf-a1b2c3d4e5f6', DBInstanceStatus: 'creating', TagList: TAGS }],
    });
    expect(await provisioner().provision(target)).toEqual({ state: 'pending', detail: 'creating' });
    expect(rds.commandCalls(CreateDBInstanceCommand)).toHaveLength(0);
  });

  it('adopts its own instance when a create races with a lost response', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejectsOnce(notFound())
      .resolves({
        DBInstances: [
          {
            DBInstanceIdentifier: 'cf-a1b2c3d4e5f6',
            DBInstanceStatus: 'available',
            Endpoint: { Address: 'db.internal', Port: 5432 },
            TagList: TAGS,
          },
        ],
      });
    rds
      .on(CreateDBInstanceCommand)
      .rejects(new DBInstanceAlreadyExistsFault({ message: 'exists', $metadata: {} }));
    expect(await provisioner().provision(target)).toEqual({
      state: 'available',
      endpoint: 'db.internal:5432',
    });
  });

  it('refuses an instance of that name that carries another clone id', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'cf-a1b2c3d4e5f6',
          DBInstanceStatus: 'available',
          TagList: [{ Key: 'clonefactory:clone-id', Value: 'ffffffffffff' }],
        },
      ],
    });
    await expect(provisioner().provision(target)).rejects.toMatchObject({ name: 'ForeignArtefactError' });
    await expect(provisioner().deprovision(target)).rejects.toMatchObject({ name: 'ForeignArtefactError' });
    expect(rds.commandCalls(CreateDBInstanceCommand)).toHaveLength(0);
    expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(0);
  });

  it.each([
    ['creating', { state: 'pending', detail: 'creating' }],
    ['backing-up', { state: 'pending', detail: 'backing-up' }],
    ['available', { state: 'available', endpoint: 'db.internal:5432' }],
    ['failed', { state: 'failed', detail: 'RDS status failed' }],
    ['storage-full', { state: 'failed', detail: 'RDS status storage-full' }],
  ])('reports status %s as %j', async (status, expected) => {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'cf-a1b2c3d4e5f6',
          DBInstanceStatus: status,
          Endpoint: { Address: 'db.internal', Port: 5432 },
          TagList: TAGS,
        },
      ],
    });
    expect(await provisioner().status(target)).toEqual(expected);
  });

  it('reports a vanished instance as failed', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(notFound());
    expect(await provisioner().status(target)).toEqual({
      state: 'failed',
      detail: 'the instance does not exist',
    });
  });

  it('deprovisions: lifts deletion protection, then deletes with a final snapshot when asked', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'cf-a1b2c3d4e5f6',
          DBInstanceStatus: 'available',
          DeletionProtection: true,
          TagList: TAGS,
        },
      ],
    });
    rds.on(ModifyDBInstanceCommand).resolves({});
    rds.on(DeleteDBInstanceCommand).resolves({});
    await provisioner({ finalSnapshot: true }).deprovision(target);
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: 'cf-a1b2c3d4e5f6', DeletionProtection: false, ApplyImmediately: true },
    ]);
    expect(rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      {
        DBInstanceIdentifier: 'cf-a1b2c3d4e5f6',
        SkipFinalSnapshot: false,
        FinalDBSnapshotIdentifier: 'cf-a1b2c3d4e5f6-final',
        DeleteAutomatedBackups: false,
      },
    ]);
  });

  it('deprovisions without a snapshot by default, and is a no-op once the instance is gone', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolvesOnce({
        DBInstances: [
          { DBInstanceIdentifier: 'cf-a1b2c3d4e5f6', DBInstanceStatus: 'available', TagList: TAGS },
        ],
      })
      .rejects(notFound());
    rds.on(DeleteDBInstanceCommand).resolves({});
    await provisioner().deprovision(target);
    await provisioner().deprovision(target);
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
    expect(rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: 'cf-a1b2c3d4e5f6', SkipFinalSnapshot: true, DeleteAutomatedBackups: true },
    ]);
  });

  it('lists its tenant instances for the reconciler: tagged, in the namespace, not being deleted, across pages', async () => {
    const created = new Date('2026-11-27T10:00:00Z');
    const instance = (id: string, status: string, tags: typeof TAGS | undefined, engine = 'postgres') => ({
      DBInstanceIdentifier: id,
      DBInstanceStatus: status,
      Engine: engine,
      InstanceCreateTime: created,
      TagList: tags,
    });
    const other = [
      { Key: 'clonefactory:clone-id', Value: 'ffffffffffff' },
      { Key: 'clonefactory:tenant-id', Value: 'beta' },
      { Key: 'clonefactory:managed-by', Value: 'clonefactory' },
    ];
    rds
      .on(DescribeDBInstancesCommand, { MaxRecords: 100, Marker: undefined })
      .resolves({
        DBInstances: [
          instance('cf-a1b2c3d4e5f6', 'available', TAGS),
          instance('cf-untagged', 'available', undefined),
          instance('other-a1b2c3d4e5f6', 'available', TAGS),
        ],
        Marker: 'page-2',
      })
      .on(DescribeDBInstancesCommand, { MaxRecords: 100, Marker: 'page-2' })
      .resolves({
        DBInstances: [
          instance('cf-ffffffffffff', 'available', other, 'mysql'),
          instance('cf-gone', 'deleting', other),
        ],
      });
    expect(await provisioner().listInstances()).toEqual([
      { cloneId: 'a1b2c3d4e5f6', tenantId: 'acme', engine: 'postgresql', createdAt: created.toISOString() },
      { cloneId: 'ffffffffffff', tenantId: 'beta', engine: 'mysql', createdAt: created.toISOString() },
    ]);
    expect(rds.commandCalls(DescribeDBInstancesCommand).map((c) => c.args[0].input)).toEqual([
      { MaxRecords: 100, Marker: undefined },
      { MaxRecords: 100, Marker: 'page-2' },
    ]);
  });
});

describe('FargateProvisioner, at the request level', () => {
  const ecs = mockClient(ECSClient);
  const efs = mockClient(EFSClient);
  const sm = mockClient(SecretsManagerClient);
  const provisioner = () =>
    new FargateProvisioner({
      ecs: new ECSClient({ region: 'eu-west-1' }),
      efs: new EFSClient({ region: 'eu-west-1' }),
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
      namespace: 'cf',
      cluster: 'cf-tenants',
      fileSystemId: 'fs-123',
      subnets: ['subnet-a', 'subnet-b'],
      securityGroups: ['sg-tenant-db'],
      executionRoleArn: 'arn:aws:iam::1:role/exec',
      taskRoleArn: 'arn:aws:iam::1:role/task',
      logGroup: 'cf-tenant-dbs',
      region: 'eu-west-1',
    });
  const ECS_TAGS = [
    ...TAGS.map((t) => ({ key: t.Key, value: t.Value })),
    { key: 'clonefactory:engine', value: 'postgresql' },
  ];
  beforeEach(() => {
    ecs.reset();
    efs.reset();
    sm.reset();
  });

  it('creates a secret, an access point, a task definition and a private service, all tagged', async () => {
    ecs.on(DescribeServicesCommand).resolves({ services: [] });
    sm.on(CreateSecretCommand).resolves({ ARN: 'arn:secret:cf/instances/a1b2c3d4e5f6' });
    efs.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [] });
    efs.on(CreateAccessPointCommand).resolves({ AccessPointId: 'fsap-1' });
    ecs
      .on(RegisterTaskDefinitionCommand)
      .resolves({ taskDefinition: { taskDefinitionArn: 'arn:td:cf-a1b2c3d4e5f6:1' } });
    ecs.on(CreateServiceCommand).resolves({});
    expect(await provisioner().provision(target)).toEqual({ state: 'pending', detail: 'service created' });

    const secret = sm.commandCalls(CreateSecretCommand)[0]?.args[0].input;
    expect(secret?.Name).toBe('cf/instances/a1b2c3d4e5f6');
    expect(secret?.Tags).toEqual(TAGS);
    expect(JSON.parse(secret?.SecretString as string)).toEqual({
      username: 'postgres',
      password: expect.any(String),
    });

    expect(efs.commandCalls(CreateAccessPointCommand)[0]?.args[0].input).toEqual({
      FileSystemId: 'fs-123',
      ClientToken: 'a1b2c3d4e5f6',
      PosixUser: { Uid: 999, Gid: 999 },
      RootDirectory: {
        Path: '/tenants/a1b2c3d4e5f6',
        CreationInfo: { OwnerUid: 999, OwnerGid: 999, Permissions: '700' },
      },
      Tags: TAGS,
    });
    const definition = ecs.commandCalls(RegisterTaskDefinitionCommand)[0]?.args[0].input;
    expect(definition?.volumes).toEqual([
      {
        name: 'data',
        efsVolumeConfiguration: {
          fileSystemId: 'fs-123',
          transitEncryption: 'ENABLED',
          authorizationConfig: { accessPointId: 'fsap-1', iam: 'ENABLED' },
        },
      },
    ]);
    expect(definition?.containerDefinitions?.[0]).toMatchObject({
      image: 'public.ecr.aws/docker/library/postgres:15',
      mountPoints: [{ sourceVolume: 'data', containerPath: '/var/lib/postgresql/data' }],
      secrets: [{ name: 'POSTGRES_PASSWORD', valueFrom: 'arn:secret:cf/instances/a1b2c3d4e5f6:password::' }],
    });
    expect(definition?.tags).toEqual(ECS_TAGS);
    // no password in the task definition itself
    expect(JSON.stringify(definition)).not.toMatch(/"password"\s*:/);
    expect(ecs.commandCalls(CreateServiceCommand)[0]?.args[0].input).toEqual({
      cluster: 'cf-tenants',
      serviceName: 'cf-a1b2c3d4e5f6',
      taskDefinition: 'arn:td:cf-a1b2c3d4e5f6:1',
      desiredCount: 1,
      launchType: 'FARGATE',
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ['subnet-a', 'subnet-b'],
          securityGroups: ['sg-tenant-db'],
          assignPublicIp: 'DISABLED',
        },
      },
      clientToken: 'a1b2c3d4e5f6',
      propagateTags: 'SERVICE',
      enableECSManagedTags: true,
      tags: ECS_TAGS,
    });
  });

  it("adopts this clone's service on a retry, and reports its task's address once it runs", async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [
        {
          status: 'ACTIVE',
          tags: ECS_TAGS,
          runningCount: 1,
          deployments: [{ rolloutState: 'COMPLETED' }],
        },
      ],
    });
    ecs.on(ListTasksCommand).resolves({ taskArns: ['arn:task:1'] });
    ecs.on(DescribeTasksCommand).resolves({
      tasks: [
        {
          attachments: [
            { type: 'ElasticNetworkInterface', details: [{ name: 'privateIPv4Address', value: '10.0.3.7' }] },
          ],
        },
      ],
    });
    expect(await provisioner().provision(target)).toEqual({ state: 'available', endpoint: '10.0.3.7:5432' });
    expect(ecs.commandCalls(CreateServiceCommand)).toHaveLength(0);
    expect(sm.commandCalls(CreateSecretCommand)).toHaveLength(0);
  });

  it('refuses a service of that name that carries another clone id', async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [{ status: 'ACTIVE', tags: [{ key: 'clonefactory:clone-id', value: 'ffffffffffff' }] }],
    });
    await expect(provisioner().provision(target)).rejects.toMatchObject({ name: 'ForeignArtefactError' });
    expect(ecs.commandCalls(CreateServiceCommand)).toHaveLength(0);
  });

  it('reports a failed rollout as failed, and a rollout in progress as pending', async () => {
    ecs
      .on(DescribeServicesCommand)
      .resolvesOnce({
        services: [
          {
            status: 'ACTIVE',
            tags: ECS_TAGS,
            runningCount: 0,
            deployments: [{ rolloutState: 'IN_PROGRESS' }],
          },
        ],
      })
      .resolves({
        services: [
          {
            status: 'ACTIVE',
            tags: ECS_TAGS,
            runningCount: 0,
            deployments: [{ rolloutState: 'FAILED', rolloutStateReason: 'tasks failed to start' }],
          },
        ],
      });
    expect(await provisioner().status(target)).toEqual({ state: 'pending', detail: 'IN_PROGRESS' });
    expect(await provisioner().status(target)).toEqual({ state: 'failed', detail: 'tasks failed to start' });
  });

  it('lists its tenant services for the reconciler: tagged, in the namespace, active, across pages and describe batches', async () => {
    const created = new Date('2026-11-27T10:00:00Z');
    const arn = (name: string) => `arn:aws:ecs:eu-west-1:1:service/cf-tenants/${name}`;
    const first = Array.from({ length: 11 }, (_, i) => arn(i === 0 ? 'cf-a1b2c3d4e5f6' : `cf-x${i}`));
    const other = [
      { key: 'clonefactory:clone-id', value: 'ffffffffffff' },
      { key: 'clonefactory:tenant-id', value: 'beta' },
      { key: 'clonefactory:managed-by', value: 'clonefactory' },
      { key: 'clonefactory:engine', value: 'mysql' },
    ];
    ecs
      .on(ListServicesCommand, { cluster: 'cf-tenants', maxResults: 100, nextToken: undefined })
      .resolves({ serviceArns: first, nextToken: 'page-2' })
      .on(ListServicesCommand, { cluster: 'cf-tenants', maxResults: 100, nextToken: 'page-2' })
      .resolves({ serviceArns: [arn('cf-ffffffffffff'), arn('cf-gone')] });
    const service = (
      serviceName: string,
      tags: { key: string; value: string }[] | undefined,
      status = 'ACTIVE',
    ) => ({
      serviceName,
      status,
      createdAt: created,
      tags,
    });
    ecs.on(DescribeServicesCommand).callsFake((input: { services: string[] }) => ({
      services: input.services.map((a) => {
        const name = a.split('/').pop() as string;
        if (name === 'cf-a1b2c3d4e5f6') return service(name, ECS_TAGS);
        if (name === 'cf-ffffffffffff') return service(name, other);
        if (name === 'cf-gone') return service(name, other, 'DRAINING');
        return service(name, undefined); // unmarked: never reported
      }),
    }));
    expect(await provisioner().listInstances()).toEqual([
      { cloneId: 'a1b2c3d4e5f6', tenantId: 'acme', engine: 'postgresql', createdAt: created.toISOString() },
      { cloneId: 'ffffffffffff', tenantId: 'beta', engine: 'mysql', createdAt: created.toISOString() },
    ]);
    expect(ecs.commandCalls(ListServicesCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: 'cf-tenants', maxResults: 100, nextToken: undefined },
      { cluster: 'cf-tenants', maxResults: 100, nextToken: 'page-2' },
    ]);
    expect(ecs.commandCalls(DescribeServicesCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: 'cf-tenants', services: first.slice(0, 10), include: ['TAGS'] },
      {
        cluster: 'cf-tenants',
        services: [first[10], arn('cf-ffffffffffff'), arn('cf-gone')],
        include: ['TAGS'],
      },
    ]);
  });

  it('deprovisions the service, its task definition, its access point and its secret', async () => {
    ecs.on(DescribeServicesCommand).resolves({
      services: [{ status: 'ACTIVE', tags: ECS_TAGS, taskDefinition: 'arn:td:cf-a1b2c3d4e5f6:1' }],
    });
    ecs.on(DeleteServiceCommand).resolves({});
    ecs.on(DeregisterTaskDefinitionCommand).resolves({});
    efs.on(DescribeAccessPointsCommand).resolves({
      AccessPoints: [
        { AccessPointId: 'fsap-1', RootDirectory: { Path: '/tenants/a1b2c3d4e5f6' }, Tags: TAGS },
      ],
    });
    efs.on(DeleteAccessPointCommand).resolves({});
    sm.on(DescribeSecretCommand).resolves({ ARN: 'arn:secret', Tags: TAGS });
    sm.on(DeleteSecretCommand).resolves({});
    await provisioner().deprovision(target);
    expect(ecs.commandCalls(DeleteServiceCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: 'cf-tenants', service: 'cf-a1b2c3d4e5f6', force: true },
    ]);
    expect(ecs.commandCalls(DeregisterTaskDefinitionCommand).map((c) => c.args[0].input)).toEqual([
      { taskDefinition: 'arn:td:cf-a1b2c3d4e5f6:1' },
    ]);
    expect(efs.commandCalls(DeleteAccessPointCommand).map((c) => c.args[0].input)).toEqual([
      { AccessPointId: 'fsap-1' },
    ]);
    expect(sm.commandCalls(DeleteSecretCommand).map((c) => c.args[0].input)).toEqual([
      { SecretId: 'cf/instances/a1b2c3d4e5f6', ForceDeleteWithoutRecovery: true },
    ]);
  });
});
