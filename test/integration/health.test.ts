import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEALTH_METRICS, HEALTH_METRICS_NAMESPACE } from '../../functions/adapters/health-metrics.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';

// The health monitor: every READY clone checked as its own tenant role, its figures in the
// registry, fleet counts as CloudWatch EMF; a dropped database and a killed dedicated server
// are UNREACHABLE on the next pass, drift and isolation failures DEGRADED.

type Emf = Record<string, unknown> & {
  _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string }[] }[] };
};

describe('the health monitor', () => {
  let t: TestPlane;
  const everyone = { sample: () => true };

  beforeAll(async () => {
    t = await startTestPlane();
    for (const [tenantId, engine, placement] of [
      ['hm-pg-a', 'postgresql', 'shared'],
      ['hm-pg-b', 'postgresql', 'shared'],
      ['hm-sq-a', 'sqlite', 'shared'],
      ['hm-ded', 'postgresql', 'dedicated'],
    ] as const) {
      const r = await t.create({ tenantId, engine, placement });
      expect(r.status, r.cause).toBe('SUCCEEDED');
    }
  }, 240_000);
  afterAll(() => t?.close());

  it('finds every clone HEALTHY with its figures, probes isolation, and emits the counts as EMF', async () => {
    const { report, emf } = await t.plane.checkHealth(everyone);
    expect(report.counts).toMatchObject({ HEALTHY: 4, DEGRADED: 0, UNREACHABLE: 0, isolationFailures: 0 });
    for (const c of report.clones) {
      expect(c.status, c.problems.join('; ')).toBe('HEALTHY');
      expect(c.latencyMs).toBeGreaterThan(0);
      expect(c.sizeBytes).toBeGreaterThan(0);
    }
    // The shared PostgreSQL tenants probe each other; a lone engine has nobody to probe.
    expect(report.clones.find((c) => c.tenantId === 'hm-pg-a')?.isolation).toBe('passed');
    expect((await t.plane.tenants.get('hm-pg-b')).health).toMatchObject({
      status: 'HEALTHY',
      isolation: 'passed',
    });
    const doc = emf as Emf;
    expect(doc._aws.CloudWatchMetrics[0]?.Namespace).toBe(HEALTH_METRICS_NAMESPACE);
    expect(doc[HEALTH_METRICS.healthy]).toBe(4);
    expect(doc[HEALTH_METRICS.unreachable]).toBe(0);
    const lines = (await readFile(join(t.home, 'metrics', 'health.emf.jsonl'), 'utf8')).trim().split('\n');
    expect(JSON.parse(lines.at(-1) as string)[HEALTH_METRICS.healthy]).toBe(4);
  });

  it('marks a dropped database and a killed dedicated server UNREACHABLE, and a drifted one DEGRADED, on the next pass', async () => {
    const dropped = await t.plane.tenants.get('hm-pg-b');
    const pg = await t.plane.deps.engineFor(dropped);
    await pg.dropDatabase(dropped.database as string);
    const dedicated = await t.plane.tenants.get('hm-ded');
    const instance = await t.plane.instances.describe(dedicated.cloneId);
    process.kill(instance?.pid as number, 'SIGKILL');
    const drifted = await t.plane.tenants.get('hm-sq-a');
    const sqlite = await t.plane.deps.engineFor(drifted);
    await sqlite.transaction(drifted.database as string, (tx) =>
      tx.query('ALTER TABLE products ADD COLUMN notes TEXT'),
    );

    const { report, emf } = await t.plane.checkHealth(everyone);
    const status = Object.fromEntries(report.clones.map((c) => [c.tenantId, c.status]));
    expect(status).toEqual({
      'hm-ded': 'UNREACHABLE',
      'hm-pg-a': 'HEALTHY',
      'hm-pg-b': 'UNREACHABLE',
      'hm-sq-a': 'DEGRADED',
    });
    expect((await t.plane.tenants.get('hm-pg-b')).health?.problems.join(' ')).toMatch(/cannot open/);
    expect((await t.plane.tenants.get('hm-sq-a')).health).toMatchObject({ status: 'DEGRADED', drift: true });
    const doc = emf as Emf;
    expect(doc[HEALTH_METRICS.unreachable]).toBe(2);
    expect(doc[HEALTH_METRICS.drifted]).toBe(1);
    expect(doc._aws.CloudWatchMetrics[0]?.Metrics.map((m) => m.Name)).toContain(HEALTH_METRICS.unreachable);
  });
});
