import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';
import { acquirePidLock } from '../functions/adapters/pid-lock.js';
import {
  CLONES_TABLE,
  type TableSchema,
  UPGRADE_RUNS_TABLE,
  USER_MAPPINGS_TABLE,
} from '../functions/adapters/registry/table-schemas.js';
import { EngineUnavailableError, errorMessage } from '../functions/core/errors.js';
import { WorkerPortHandler } from './registry-transport.js';

export const LOCAL_TABLES = {
  clones: 'clonefactory-clones',
  userMappings: 'clonefactory-user-mappings',
  upgradeRuns: 'clonefactory-upgrade-runs',
} as const;

/**
 * dynalite (DynamoDB's wire protocol on LevelDB) persisted under the state directory, on a
 * loopback port, with the same tables and key schemas as the CDK stack. One process owns a
 * state directory at a time (a pid lock file).
 */
export class LocalRegistryServer {
  private constructor(
    private readonly server: Worker | null,
    readonly endpoint: string,
    readonly client: DynamoDBClient,
    private readonly release: () => Promise<void>,
  ) {}

  /**
   * Starts dynalite under `dir`; or, given a `remote` client (an AWS-compatible endpoint such
   * as LocalStack), only makes sure the tables exist there. The state directory is locked
   * either way: the executions and secrets under it have one owner too.
   */
  static async start(dir: string, remote?: DynamoDBClient): Promise<LocalRegistryServer> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // One process owns a state directory: dynalite's LevelDB would otherwise fail later, from a
    // callback, with "Database is closed".
    const release = await acquirePidLock(join(dir, 'clonefactory.lock'), {
      describe: (pid) =>
        `${dir} is in use by another Clone Factory process (pid ${pid}); stop it or use its API`,
    }).catch((error: Error) => {
      throw new EngineUnavailableError('registry', error.message, { cause: error });
    });
    if (remote) {
      const registry = new LocalRegistryServer(null, 'remote', remote, release);
      try {
        await registry.ensureTable(LOCAL_TABLES.clones, CLONES_TABLE);
        await registry.ensureTable(LOCAL_TABLES.userMappings, USER_MAPPINGS_TABLE);
        await registry.ensureTable(LOCAL_TABLES.upgradeRuns, UPGRADE_RUNS_TABLE);
      } catch (error) {
        await registry.close();
        throw new EngineUnavailableError('registry', errorMessage(error), { cause: error });
      }
      return registry;
    }
    let server: Worker;
    let endpoint: string;
    try {
      ({ server, endpoint } = await startDynalite(dir));
    } catch (error) {
      await release();
      throw error;
    }
    // This process's own requests go to the thread on a MessagePort (registry-transport.ts);
    // the endpoint is still what they are signed for, and what any other client can use.
    const { port1, port2 } = new MessageChannel();
    server.postMessage({ type: 'port', port: port2 }, [port2]);
    const requestHandler = new WorkerPortHandler(port1);
    server.once('exit', (code) =>
      requestHandler.fail(
        new EngineUnavailableError('registry', `the registry thread stopped (exit code ${code})`),
      ),
    );
    const client = new DynamoDBClient({
      endpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 3,
      requestHandler,
    });
    const registry = new LocalRegistryServer(server, endpoint, client, release);
    try {
      await registry.ensureTable(LOCAL_TABLES.clones, CLONES_TABLE);
      await registry.ensureTable(LOCAL_TABLES.userMappings, USER_MAPPINGS_TABLE);
      await registry.ensureTable(LOCAL_TABLES.upgradeRuns, UPGRADE_RUNS_TABLE);
    } catch (error) {
      await registry.close();
      const message = errorMessage(error);
      throw new EngineUnavailableError('registry', message, { cause: error });
    }
    return registry;
  }

  async close(): Promise<void> {
    this.client.destroy();
    const server = this.server;
    if (server) {
      // dynalite closes its LevelDB when its server closes; then the thread ends.
      const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
      server.postMessage('close');
      await exited;
    }
    await this.release();
  }

  private async ensureTable(name: string, schema: TableSchema): Promise<void> {
    try {
      await this.client.send(new DescribeTableCommand({ TableName: name }));
      return;
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
    const attributes = new Set([schema.partitionKey, ...(schema.sortKey ? [schema.sortKey] : [])]);
    for (const i of schema.indexes) {
      attributes.add(i.partitionKey);
      if (i.sortKey) attributes.add(i.sortKey);
    }
    const key = (pk: string, sk?: string) => [
      { AttributeName: pk, KeyType: 'HASH' as const },
      ...(sk ? [{ AttributeName: sk, KeyType: 'RANGE' as const }] : []),
    ];
    await this.client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [...attributes].map((a) => ({ AttributeName: a, AttributeType: 'S' })),
        KeySchema: key(schema.partitionKey, schema.sortKey),
        GlobalSecondaryIndexes: schema.indexes.length
          ? schema.indexes.map((i) => ({
              IndexName: i.name,
              KeySchema: key(i.partitionKey, i.sortKey),
              Projection: { ProjectionType: 'ALL' },
            }))
          : undefined,
      }),
    );
  }
}

/** Starts dynalite on a worker thread (registry-worker.mjs); resolves once it listens. */
function startDynalite(dir: string): Promise<{ server: Worker; endpoint: string }> {
  const server = new Worker(new URL('./registry-worker.mjs', import.meta.url), { workerData: { path: dir } });
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      void server.terminate();
      reject(error);
    };
    server.once('error', fail);
    server.once('exit', (code) => fail(new Error(`the registry thread stopped (exit code ${code})`)));
    server.on('message', (message: { type: string; port?: number; message?: string }) => {
      if (message.type === 'listening') {
        server.removeListener('error', fail);
        server.removeAllListeners('exit');
        resolve({ server, endpoint: `http://127.0.0.1:${message.port}` });
      } else if (message.type === 'error') fail(new Error(message.message));
    });
  });
}
