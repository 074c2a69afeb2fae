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
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { RdsProvisioner } from '../../functions/adapters/provisioners/rds-provisioner.js';
import { removeArtefacts } from '../../functions/core/workflow/clone-workflow.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { probeEngines } from '../support/engines.js';

// The dedicated branch of the clone state machine, run by the local runner from the
// synthesized definition, with the RDS provisioner over mocked AWS clients. The "instance"
// the mocked RDS reports is the local PostgreSQL server, so the five steps after it run for
// real once it is available.

const { env, probes } = await probeEngines();
afterAll(() => env.close());

const rds = mockClient(RDSClient);
const sm = mockClient(SecretsManagerClient);

/** Answers DescribeDBInstances for the tenant's instance from a script of statuses. */
function script(statuses: string[]) {
  let created = false;
  let polls = 0;
  rds.on(CreateDBInstanceCommand).callsFake(() => {
    created = true;
    return {};
  });
  rds.on(DeleteDBInstanceCommand).resolves({});
  rds.on(DescribeDBInstancesCommand).callsFake((input: DescribeDBInstancesCommandInput) => {
    if (!input.DBInstanceIdentifier) return { DBInstances: [] };
    if (!created) throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
    const status = statuses[Math.min(polls++, statuses.length - 1)] as string;
    const cloneId = input.DBInstanceIdentifier.replace(/^[a-z0-9]+-/, '');
    return {
      DBInstances: [
        {
          DBInstanceIdentifier: input.DBInstanceIdentifier,
          DBInstanceStatus: status,
          Endpoint: { Address: '127.0.0.1', Port: 5432 },
          MasterUserSecret: { SecretArn: 'arn:aws:secretsmanager:eu-west-1:1:secret:rds-master' },
          TagList: [{ Key: 'clonefactory:clone-id', Value: cloneId }],
        },
      ],
    };
  });
  sm.on(GetSecretValueCommand).resolves({
    SecretString: JSON.stringify({ username: 'postgres', password: 'unused' }),
  });
}

describe.skipIf(!probes.postgresql.engine)('the instance poll loop, with RDS answers faked', () => {
  let t: TestPlane;
  const start = async (instancePolls: number) => {
    t = await startTestPlane({
      instancePolls,
      dedicated: new RdsProvisioner({
        rds: new RDSClient({ region: 'eu-west-1' }),
        secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
        namespace: 'cf',
        instanceClass: 'db.t4g.micro',
        allocatedStorageGb: 20,
        subnetGroupName: 'cf-tenants',
        securityGroupIds: ['sg-1'],
      }),
    });
  };
  const states = (events: readonly { type: string; state?: string }[]) =>
    events.filter((e) => e.type === 'StateEntered').map((e) => e.state);
  beforeEach(() => {
    rds.reset();
    sm.reset();
  });
  afterAll(async () => {
    if (!t) return;
    const shared = await t.plane.env.engine('postgresql');
    for (const record of await t.plane.tenants.list())
      await removeArtefacts(shared, t.plane.deps, record.cloneId).catch(() => {});
    await t.close();
  });

  it('goes on to the five steps once the instance is available, after 3 polls (of at most 3)', async () => {
    await start(3);
    script(['creating', 'creating', 'available']);
    const execution = await t.create({ tenantId: 'polled', engine: 'postgresql', placement: 'dedicated' });
    expect(execution.status, execution.cause).toBe('SUCCEEDED');
    expect(states(execution.events)).toEqual([
      'Select template',
      'Placement?',
      'Provision instance',
      'Instance available?',
      'Wait for instance',
      'Check instance',
      'Instance available?',
      'Wait for instance',
      'Check instance',
      'Instance available?',
      'Wait for instance',
      'Check instance',
      'Instance available?',
      'Create database',
      'Apply schema',
      'Populate data',
      'Configure security',
      'Verify and register',
    ]);
    const record = await t.plane.tenants.get('polled');
    expect(record).toMatchObject({ state: 'READY', placement: 'dedicated' });
    expect(record.endpoint).toBe(`127.0.0.1:5432/${record.database}`);
    expect(rds.commandCalls(CreateDBInstanceCommand)).toHaveLength(1);
    // no password in the workflow's history
    expect(JSON.stringify(execution)).not.toContain('unused');
  });

  it('rolls back, deleting the instance, when it never becomes available', async () => {
    script(['creating']);
    const execution = await t.create({ tenantId: 'never-up', engine: 'postgresql', placement: 'dedicated' });
    expect(execution.status).toBe('FAILED');
    expect(states(execution.events).filter((s) => s === 'Check instance')).toHaveLength(3);
    expect(states(execution.events).slice(-2)).toEqual(['Roll back clone', 'Clone failed']);
    const record = await t.plane.tenants.get('never-up');
    expect(record.state).toBe('FAILED');
    expect(record.lastError).toMatch(/InstanceFailedError: .*not available after 3 polls/);
    expect(
      rds.commandCalls(DeleteDBInstanceCommand).map((c) => c.args[0].input.DBInstanceIdentifier),
    ).toEqual([`cf-${record.cloneId}`]);
  });

  it('rolls back, deleting the instance, when it fails', async () => {
    script(['creating', 'failed']);
    const execution = await t.create({ tenantId: 'broken-up', engine: 'postgresql', placement: 'dedicated' });
    expect(execution.status).toBe('FAILED');
    expect(states(execution.events).filter((s) => s === 'Check instance')).toHaveLength(2);
    const record = await t.plane.tenants.get('broken-up');
    expect(record.state).toBe('FAILED');
    expect(record.lastError).toMatch(/InstanceFailedError: .*RDS status failed/);
    expect(rds.commandCalls(DeleteDBInstanceCommand)).toHaveLength(1);
  });
});
