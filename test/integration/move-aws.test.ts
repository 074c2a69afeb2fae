import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  CreateDBInstanceCommand,
  DBInstanceNotFoundFault,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  type DescribeDBInstancesCommandInput,
  RDSClient,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RdsProvisioner } from '../../functions/adapters/provisioners/rds-provisioner.js';
import { LocalPostgresInstances } from '../../local/dedicated-instances.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { probeEngines, tempDir } from '../support/engines.js';

// `tenants move` with the RDS provisioner, at the request level: RDS and Secrets Manager are
// mocked, and the "RDS instance" they describe is a real PostgreSQL server of its own started
// for the test, so the data really moves there and back.

const { env, probes } = await probeEngines();
afterAll(() => env.close());

const rds = mockClient(RDSClient);
const sm = mockClient(SecretsManagerClient);

describe.skipIf(!probes.postgresql.engine)('moving a tenant to an RDS instance and back', () => {
  let t: TestPlane;
  let server: LocalPostgresInstances;
  let port = 0;
  let password = '';
  const fakeInstance = {
    tenantId: 'fake-rds',
    cloneId: '0000000000aa',
    engine: 'postgresql',
    placement: 'dedicated',
  } as const;
  const dir = tempDir('fake-rds');
  const parentMode = statSync(dirname(dir)).mode & 0o7777;

  beforeAll(async () => {
    t = await startTestPlane({
      dedicated: new RdsProvisioner({
        rds: new RDSClient({ region: 'eu-west-1' }),
        secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
        namespace: 'cf',
        instanceClass: 'db.t4g.micro',
        allocatedStorageGb: 20,
        subnetGroupName: 'cf-tenants',
        securityGroupIds: ['sg-tenant-db'],
      }),
    });
    server = new LocalPostgresInstances({ dir, namespace: t.namespace, catalog: t.plane.deps.catalog });
    await server.prepareImage('v1.1', 'technology');
    await server.provision(fakeInstance);
    port = (await server.describe(fakeInstance.cloneId))?.port as number;
    password = readFileSync(join(dir, fakeInstance.cloneId, 'password'), 'utf8').trim();
    let created = false;
    rds.on(CreateDBInstanceCommand).callsFake(() => {
      created = true;
      return {};
    });
    rds.on(DeleteDBInstanceCommand).resolves({});
    rds.on(DescribeDBInstancesCommand).callsFake((input: DescribeDBInstancesCommandInput) => {
      if (!input.DBInstanceIdentifier) return { DBInstances: [] };
      if (!created) throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
      return {
        DBInstances: [
          {
            DBInstanceIdentifier: input.DBInstanceIdentifier,
            DBInstanceStatus: 'available',
            Endpoint: { Address: '127.0.0.1', Port: port },
            MasterUserSecret: { SecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:rds!db-1' },
            TagList: [
              { Key: 'clonefactory:clone-id', Value: input.DBInstanceIdentifier.replace(/^cf-/, '') },
            ],
          },
        ],
      };
    });
    sm.on(GetSecretValueCommand).callsFake(() => ({
      SecretString: JSON.stringify({ username: 'postgres', password }),
    }));
  }, 180_000);
  afterAll(async () => {
    await t?.close();
    await server?.deprovision(fakeInstance);
    await server?.close();
  });

  it('leaves the mode of the directory its instances live in as it was (here the shared temporary directory)', () => {
    expect(statSync(dirname(dir)).mode & 0o7777).toBe(parentMode);
  });

  it('creates the instance with the exact request, copies every row there, and deletes it on the way back', async () => {
    expect((await t.create({ tenantId: 'to-rds', engine: 'postgresql' })).status).toBe('SUCCEEDED');
    const record = await t.plane.tenants.get('to-rds');
    const there = await t.plane.move('to-rds', 'dedicated');
    expect(there).toMatchObject({
      from: 'shared',
      to: 'dedicated',
      endpoint: `127.0.0.1:${port}/${record.database}`,
    });
    const create = rds.commandCalls(CreateDBInstanceCommand).map((c) => c.args[0].input);
    expect(create).toHaveLength(1);
    expect(create[0]).toMatchObject({
      DBInstanceIdentifier: `cf-${record.cloneId}`,
      Engine: 'postgres',
      StorageEncrypted: true,
      PubliclyAccessible: false,
      ManageMasterUserPassword: true,
      VpcSecurityGroupIds: ['sg-tenant-db'],
      Tags: expect.arrayContaining([{ Key: 'clonefactory:clone-id', Value: record.cloneId }]),
    });
    const moved = await t.plane.tenants.get('to-rds');
    expect(moved).toMatchObject({ state: 'READY', placement: 'dedicated' });
    // the rows are on the "instance": count them there with the tenant's own analyst login
    const creds = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
    expect(creds.port).toBe(port);
    const instance = await t.plane.deps.engineFor(moved);
    const session = await instance.openSession(record.database as string, creds.roles.analyst);
    const [{ n }] = (await session.query<{ n: string }>('SELECT count(*) AS n FROM products')) as [
      { n: string },
    ];
    await session.close();
    expect(Number(n)).toBe(there.rows.products);

    const back = await t.plane.move('to-rds', 'shared');
    expect(back).toMatchObject({ from: 'dedicated', to: 'shared', rows: there.rows });
    expect(rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: `cf-${record.cloneId}`, SkipFinalSnapshot: true, DeleteAutomatedBackups: true },
    ]);
    expect((await t.plane.tenants.get('to-rds')).placement).toBe('shared');
  }, 180_000);
});
