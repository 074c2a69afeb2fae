import type { AddressInfo } from 'node:net';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import { tempDir, testNamespace } from '../support/engines.js';

/**
 * AWS_ENDPOINT_URL_DYNAMODB (or AWS_ENDPOINT_URL) sends the registry to an AWS-compatible
 * endpoint such as LocalStack. No LocalStack runs here, so a separate dynalite server plays
 * the remote endpoint: the control plane must create its tables there and register there.
 */
const server = dynalite({ createTableMs: 0 });
let endpoint = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('AWS_ENDPOINT_URL_DYNAMODB', () => {
  it('puts the registry on that endpoint instead of the embedded dynalite', async () => {
    const vars = {
      ...process.env,
      CLONEFACTORY_HOME: tempDir('endpoint'),
      AWS_ENDPOINT_URL_DYNAMODB: endpoint,
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    };
    const env = new LocalEnvironment({ env: vars });
    const plane = await LocalControlPlane.start({ env, namespace: testNamespace() });
    try {
      const r = await plane.tenants.create({
        tenantId: 'remote-one',
        engine: 'sqlite',
        industry: 'finance',
        version: 'v1.0',
      });
      expect((await plane.runner.wait(r.executionName)).status).toBe('SUCCEEDED');
      const remote = new DynamoDBClient({
        endpoint,
        region: 'eu-west-1',
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
      expect((await remote.send(new ListTablesCommand({}))).TableNames).toEqual([
        'clonefactory-clones',
        'clonefactory-upgrade-runs',
        'clonefactory-user-mappings',
      ]);
      expect(plane.registryServer.endpoint).toBe('remote');
      expect((await plane.tenants.get('remote-one')).state).toBe('READY');
      remote.destroy();
    } finally {
      await plane.close();
      await env.close();
    }
  });
});
