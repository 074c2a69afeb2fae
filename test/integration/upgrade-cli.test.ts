import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import { runExecutionName, type UpgradeRun } from '../../functions/core/fleet-upgrade.js';
import { versionHistory } from '../../functions/core/tenant-upgrade.js';
import { removeClone } from '../../functions/core/workflow/clone-workflow.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import { clonectl } from '../support/cli.js';
import { tempDir } from '../support/engines.js';

// `clonectl upgrade`, `upgrades` and `drift` as a user runs them, and a run whose process is
// killed mid-way: the next control plane resumes it, and no tenant is migrated twice.

const BIN = fileURLToPath(new URL('../../bin/clonectl.js', import.meta.url));

async function withPlane<T>(home: string, fn: (plane: LocalControlPlane) => Promise<T>): Promise<T> {
  const env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: home } });
  const plane = await LocalControlPlane.start({ env, retryIntervalMs: 5 });
  try {
    return await fn(plane);
  } finally {
    await plane.close();
    await env.close();
  }
}

async function createTenants(
  plane: LocalControlPlane,
  ids: readonly string[],
  engine: string,
  sampleSize: number,
): Promise<void> {
  for (const tenantId of ids) {
    const r = await plane.tenants.create({
      tenantId,
      engine,
      industry: 'technology',
      version: 'v1.0',
      sampleSize,
    });
    expect((await plane.runner.wait(r.executionName)).status).toBe('SUCCEEDED');
  }
}

describe('clonectl upgrade, upgrades and drift', () => {
  const home = tempDir('upgrade-cli');
  const env = { CLONEFACTORY_HOME: home };
  const ids = ['cli-u1', 'cli-u2', 'cli-u3'];

  beforeAll(() => withPlane(home, (plane) => createTenants(plane, ids, 'sqlite', 5)), 120_000);

  it('documents its selection, policy and dry-run options', () => {
    const help = clonectl(['upgrade', '--help'], env);
    expect(help.status).toBe(0);
    for (const option of [
      '--to',
      '--engine',
      '--from',
      '--tenants',
      '--canary',
      '--max-concurrency',
      '--max-failures',
      '--max-failure-percent',
      '--continue-on-error',
      '--dry-run',
      '--json',
    ])
      expect(help.stdout).toContain(option);
  });

  it('refuses a bad request with exit code 2 and starts no run', () => {
    const bad = clonectl(['upgrade', '--to', 'v9.9'], env);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/version.*v9\.9/);
    const unknown = clonectl(['upgrade', '--to', 'v1.1', '--tenants', 'cli-u1,cli-nope'], env);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/cli-nope does not exist/);
    const runs = clonectl(['upgrades', 'list', '--json'], env);
    expect(JSON.parse(runs.stdout)).toEqual([]);
  });

  it('upgrades the selection and prints the run; drift then finds a hand-made column', async () => {
    const dry = clonectl(['upgrade', '--to', 'v1.1', '--engine', 'sqlite', '--dry-run'], env);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/tenants 3: would upgrade 3/);

    const run = clonectl(['upgrade', '--to', 'v1.1', '--engine', 'sqlite', '--json'], env);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ state: 'SUCCEEDED', upgraded: 3, tenants: ids });
    const shown = clonectl(['upgrades', 'show', JSON.parse(run.stdout).runId], env);
    for (const id of ids) expect(shown.stdout).toMatch(new RegExp(`${id}\\s+sqlite\\s+v1\\.1\\s+upgraded`));

    expect(clonectl(['drift'], env).status).toBe(0);
    await withPlane(home, async (plane) => {
      const record = await plane.tenants.get('cli-u2');
      const engine = await plane.deps.engineFor(record);
      await engine.transaction(record.database as string, (tx) =>
        tx.query('ALTER TABLE customers ADD COLUMN vip INTEGER'),
      );
    });
    const drift = clonectl(['drift', '--json'], env);
    expect(drift.status).toBe(1);
    expect(JSON.parse(drift.stdout)).toEqual([
      expect.objectContaining({
        tenantId: 'cli-u2',
        drifted: true,
        differences: ['customers: column vip added (integer, nullable)'],
      }),
    ]);
  });
});

describe('a fleet upgrade whose process is killed', () => {
  const home = tempDir('upgrade-crash');
  const ids = Array.from({ length: 16 }, (_, i) => `crash-${String(i).padStart(2, '0')}`);
  let engine: DatabaseEngine;
  let env: LocalEnvironment;

  beforeAll(async () => {
    env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: home } });
    engine = await env.engine('postgresql');
    const plane = await LocalControlPlane.start({ env, retryIntervalMs: 5 });
    try {
      // Enough rows that each tenant's backfill takes a moment: the kill lands mid-run.
      await createTenants(plane, ids, 'postgresql', 3000);
    } finally {
      await plane.close();
    }
  }, 300_000);
  afterAll(async () => {
    // The CLI's namespace is the default one, shared with other state directories: only this
    // test's clones are removed.
    const plane = await LocalControlPlane.start({ env });
    for (const r of await plane.tenants.list()) await removeClone(plane.deps, r).catch(() => {});
    await plane.close();
    await env.close();
  });

  const upgradedNow = async (databases: readonly string[]) => {
    const done: string[] = [];
    for (const db of databases)
      if ((await versionHistory(engine, db)).some((h) => h.version === 'v1.1')) done.push(db);
    return done;
  };

  it('resumes at the next start and migrates no tenant twice', async () => {
    const databases = await withPlane(home, async (plane) =>
      Promise.all(ids.map(async (id) => (await plane.tenants.get(id)).database as string)),
    );
    const child = spawn(
      process.execPath,
      [BIN, 'upgrade', '--to', 'v1.1', '--tenants', ids.join(','), '--max-concurrency', '1', '--canary', '0'],
      { env: { ...process.env, CLONEFACTORY_HOME: home }, stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => child.once('exit', resolve));
    let before: string[] = [];
    for (let i = 0; i < 2400 && before.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 25));
      before = await upgradedNow(databases);
    }
    child.kill('SIGKILL');
    await exited;
    before = await upgradedNow(databases);
    expect(before.length).toBeGreaterThanOrEqual(3);
    expect(before.length).toBeLessThan(ids.length);
    const stamps = new Map<string, string | undefined>();
    for (const db of before)
      stamps.set(db, (await versionHistory(engine, db)).find((h) => h.version === 'v1.1')?.applied_at);

    // The next control plane on this state directory finds the execution RUNNING and resumes it.
    const run = await withPlane(home, async (plane) => {
      const [found] = await plane.upgrades.list();
      const execution = await plane.runner.wait(runExecutionName((found as UpgradeRun).runId, 1));
      expect(execution.status, execution.cause).toBe('SUCCEEDED');
      expect(execution.events.map((e) => e.type)).toContain('ExecutionResumed');
      for (const id of ids) expect((await plane.tenants.get(id)).version).toBe('v1.1');
      return plane.upgrades.get((found as UpgradeRun).runId);
    });
    expect(run).toMatchObject({ state: 'SUCCEEDED', failed: 0, skipped: 0 });
    expect(run.upgraded + run.already).toBe(ids.length);
    expect(await upgradedNow(databases)).toHaveLength(ids.length);
    // Those upgraded before the kill kept their version row: not one ran again.
    for (const [db, stamp] of stamps)
      expect((await versionHistory(engine, db)).find((h) => h.version === 'v1.1')?.applied_at).toBe(stamp);
  }, 300_000);
});
