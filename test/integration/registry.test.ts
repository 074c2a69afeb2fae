import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbCloneRegistry } from '../../functions/adapters/registry/dynamodb-registry.js';
import { FileSecretStore } from '../../functions/adapters/secrets/file-secret-store.js';
import {
  ForeignArtefactError,
  InvalidIdentifierError,
  TenantStateConflictError,
} from '../../functions/core/errors.js';
import type { CloneRecord } from '../../functions/core/tenants.js';
import { LOCAL_TABLES, LocalRegistryServer } from '../../local/registry-server.js';
import { WorkerPortHandler } from '../../local/registry-transport.js';
import { tempDir } from '../support/engines.js';

const dir = tempDir('registry');
let server: LocalRegistryServer;
let registry: DynamoDbCloneRegistry;
beforeAll(async () => {
  server = await LocalRegistryServer.start(join(dir, 'registry'));
  registry = new DynamoDbCloneRegistry({ tableName: LOCAL_TABLES.clones, client: server.client });
});
afterAll(() => server?.close());

const record = (tenantId: string, cloneId: string): CloneRecord => ({
  tenantId,
  cloneId,
  state: 'PENDING',
  engine: 'sqlite',
  placement: 'shared',
  version: 'v1.1',
  industry: 'finance',
  createdAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  rev: 0,
});

describe('DynamoDbCloneRegistry on dynalite', () => {
  it('registers once: a second register returns the first clone', async () => {
    expect(await registry.register(record('alpha', 'aaaaaaaaaaaa'))).toMatchObject({
      created: true,
      record: { rev: 1 },
    });
    expect(await registry.register(record('alpha', 'bbbbbbbbbbbb'))).toMatchObject({
      created: false,
      record: { cloneId: 'aaaaaaaaaaaa' },
    });
  });

  it('lets exactly one of many concurrent registrations win', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        registry.register(record('race', `${i.toString(16).padStart(2, '0')}0000000000`)),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.record.cloneId)).size).toBe(1);
  });

  it('moves state only from the expected states, and only for its own clone', async () => {
    const moved = await registry.transition('alpha', 'aaaaaaaaaaaa', ['PENDING'], 'CREATING');
    expect(moved).toMatchObject({ state: 'CREATING', rev: 2 });
    await expect(registry.transition('alpha', 'aaaaaaaaaaaa', ['PENDING'], 'READY')).rejects.toThrow(
      new TenantStateConflictError('alpha', 'CREATING', 'move to READY'),
    );
    await expect(registry.transition('alpha', 'bbbbbbbbbbbb', ['CREATING'], 'READY')).rejects.toThrow(
      /owned by clone aaaaaaaaaaaa/,
    );
    const ready = await registry.transition('alpha', 'aaaaaaaaaaaa', ['CREATING'], 'READY', {
      database: 'cf_t_aaaaaaaaaaaa',
      secretId: 'cf/clones/aaaaaaaaaaaa',
    });
    expect(ready).toMatchObject({ state: 'READY', database: 'cf_t_aaaaaaaaaaaa', rev: 3 });
  });

  it('replaces a FAILED entry with a new clone, conditionally', async () => {
    await registry.register(record('beta', 'cccccccccccc'));
    await registry.transition('beta', 'cccccccccccc', ['PENDING'], 'FAILED', { lastError: 'boom' });
    const again = await registry.register(record('beta', 'dddddddddddd'));
    expect(again).toMatchObject({ created: true, record: { cloneId: 'dddddddddddd', state: 'PENDING' } });
    expect(again.record.lastError).toBeUndefined();
  });

  it('lists by state through the by-state index', async () => {
    expect((await registry.list({ state: 'READY' })).map((r) => r.tenantId)).toEqual(['alpha']);
    expect((await registry.list()).map((r) => r.tenantId)).toEqual(['alpha', 'beta', 'race']);
  });

  it("takes this process's requests on the registry thread's port, and any client's over HTTP, to the same tables", async () => {
    expect(server.client.config.requestHandler).toBeInstanceOf(WorkerPortHandler);
    // What the port wrote, a plain HTTP client reads (as `aws dynamodb --endpoint-url` would).
    const http = new DynamoDBClient({
      endpoint: server.endpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      const item = await http.send(
        new GetItemCommand({ TableName: LOCAL_TABLES.clones, Key: { tenantId: { S: 'alpha' } } }),
      );
      expect(item.Item?.cloneId).toEqual({ S: 'aaaaaaaaaaaa' });
      expect(item.Item?.state).toEqual({ S: 'READY' });
    } finally {
      http.destroy();
    }
  });

  it('fails requests after close with a clear error, instead of leaving them waiting', async () => {
    const other = await LocalRegistryServer.start(join(tempDir('registry-closed'), 'registry'));
    const closed = new DynamoDbCloneRegistry({ tableName: LOCAL_TABLES.clones, client: other.client });
    expect(await closed.get('nobody')).toBeNull();
    await other.close();
    await expect(closed.get('nobody')).rejects.toThrow(/registry client is closed/);
  });

  it('keeps its data across a restart of the registry server', async () => {
    await server.close();
    server = await LocalRegistryServer.start(join(dir, 'registry'));
    registry = new DynamoDbCloneRegistry({ tableName: LOCAL_TABLES.clones, client: server.client });
    expect((await registry.get('alpha'))?.state).toBe('READY');
  });

  it('refuses a second process on the same state directory', async () => {
    await expect(LocalRegistryServer.start(join(dir, 'registry'))).rejects.toThrow(
      /in use by another Clone Factory process/,
    );
  });
});

describe('FileSecretStore', () => {
  const store = new FileSecretStore(join(dir, 'secrets'));

  it('keeps each secret in a 0600 file in a 0700 directory', async () => {
    await store.put('cf/clones/aaaaaaaaaaaa', 's3cret', { cloneId: 'aaaaaaaaaaaa' });
    expect(await store.get('cf/clones/aaaaaaaaaaaa')).toBe('s3cret');
    expect(statSync(join(dir, 'secrets')).mode & 0o777).toBe(0o700);
    expect(
      statSync(join(dir, 'secrets', `${encodeURIComponent('cf/clones/aaaaaaaaaaaa')}.json`)).mode & 0o777,
    ).toBe(0o600);
    expect(await store.list('cf/')).toEqual(['cf/clones/aaaaaaaaaaaa']);
  });

  it("refuses another clone's secret and ids that could escape the directory", async () => {
    await expect(store.put('cf/clones/aaaaaaaaaaaa', 'x', { cloneId: 'bbbbbbbbbbbb' })).rejects.toThrow(
      ForeignArtefactError,
    );
    await expect(store.put('../escape', 'x', { cloneId: 'a' })).rejects.toThrow(InvalidIdentifierError);
    await expect(store.get('cf/../../etc/passwd')).rejects.toThrow(InvalidIdentifierError);
  });

  it('deletes idempotently', async () => {
    await store.delete('cf/clones/aaaaaaaaaaaa');
    await store.delete('cf/clones/aaaaaaaaaaaa');
    expect(await store.get('cf/clones/aaaaaaaaaaaa')).toBeNull();
  });
});
