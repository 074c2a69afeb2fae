import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { adminUrlFromSecret } from '../../functions/adapters/engines/admin-secret.js';
import { SecretsManagerStore } from '../../functions/adapters/secrets/secrets-manager-store.js';
import { ForeignArtefactError } from '../../functions/core/errors.js';

const sm = mockClient(SecretsManagerClient);
const store = new SecretsManagerStore({ client: new SecretsManagerClient({ region: 'eu-west-1' }) });
const exists = new ResourceExistsException({ message: 'exists', $metadata: {} });
const missing = new ResourceNotFoundException({ message: 'missing', $metadata: {} });

beforeEach(() => sm.reset());

describe('SecretsManagerStore', () => {
  it('creates a secret with the clone id in its tags', async () => {
    sm.on(CreateSecretCommand).resolves({});
    await store.put('cf/clones/abc123abc123', '{"k":"v"}', { cloneId: 'abc123abc123', tenantId: 'acme' });
    expect(sm.commandCalls(CreateSecretCommand).map((c) => c.args[0].input)).toEqual([
      {
        Name: 'cf/clones/abc123abc123',
        SecretString: '{"k":"v"}',
        Tags: [
          { Key: 'cloneId', Value: 'abc123abc123' },
          { Key: 'tenantId', Value: 'acme' },
        ],
      },
    ]);
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it('updates its own existing secret on a retry', async () => {
    sm.on(CreateSecretCommand).rejects(exists);
    sm.on(DescribeSecretCommand).resolves({ Tags: [{ Key: 'cloneId', Value: 'abc123abc123' }] });
    sm.on(PutSecretValueCommand).resolves({});
    await store.put('cf/clones/abc123abc123', 'v2', { cloneId: 'abc123abc123' });
    expect(sm.commandCalls(DescribeSecretCommand)[0]?.args[0].input).toEqual({
      SecretId: 'cf/clones/abc123abc123',
    });
    expect(sm.commandCalls(PutSecretValueCommand)[0]?.args[0].input).toEqual({
      SecretId: 'cf/clones/abc123abc123',
      SecretString: 'v2',
    });
  });

  it("refuses to overwrite another clone's secret", async () => {
    sm.on(CreateSecretCommand).rejects(exists);
    sm.on(DescribeSecretCommand).resolves({ Tags: [{ Key: 'cloneId', Value: 'ffffffffffff' }] });
    await expect(store.put('cf/clones/abc123abc123', 'v', { cloneId: 'abc123abc123' })).rejects.toThrow(
      ForeignArtefactError,
    );
    expect(sm.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it('reads null for a missing secret and deletes without a recovery window, idempotently', async () => {
    sm.on(GetSecretValueCommand).rejects(missing);
    expect(await store.get('cf/clones/abc123abc123')).toBeNull();
    sm.on(DeleteSecretCommand).rejectsOnce(missing).resolves({});
    await store.delete('cf/clones/abc123abc123');
    await store.delete('cf/clones/abc123abc123');
    expect(sm.commandCalls(DeleteSecretCommand).map((c) => c.args[0].input)).toEqual([
      { SecretId: 'cf/clones/abc123abc123', ForceDeleteWithoutRecovery: true },
      { SecretId: 'cf/clones/abc123abc123', ForceDeleteWithoutRecovery: true },
    ]);
  });

  it('treats a secret scheduled for deletion as absent', async () => {
    sm.on(DescribeSecretCommand).resolves({
      DeletedDate: new Date(),
      Tags: [{ Key: 'cloneId', Value: 'x' }],
    });
    expect(await store.tags('cf/clones/abc123abc123')).toBeNull();
  });
});

describe('adminUrlFromSecret', () => {
  it('takes a url, or builds one from the RDS master-secret shape with the password escaped', () => {
    expect(adminUrlFromSecret('{"url":"postgres://a:b@h:5432/postgres"}', 'postgresql')).toBe(
      'postgres://a:b@h:5432/postgres',
    );
    expect(
      adminUrlFromSecret(
        '{"engine":"postgres","host":"db.example","port":5432,"username":"master","password":"p@ss/w:rd"}',
        'postgresql',
      ),
    ).toBe('postgres://master:p%40ss%2Fw%3Ard@db.example:5432/postgres');
    expect(adminUrlFromSecret('{"host":"m","username":"root","password":"x"}', 'mysql')).toBe(
      'mysql://root:x@m:3306/',
    );
  });

  it('refuses a secret without the fields, without echoing it', () => {
    expect(() => adminUrlFromSecret('{"password":"hunter2"}', 'mysql')).toThrow(
      /lacks host, username or password$/,
    );
    expect(() => adminUrlFromSecret('not json hunter2', 'mysql')).toThrow('the admin secret is not JSON');
  });
});
