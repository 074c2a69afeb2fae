import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEALTH_INTERVAL_SECONDS } from '../../functions/core/health.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import type { SuiteContext, SuiteResult } from '../run.js';
import { round, summarize } from '../stats.js';
import { removeAllTenants, seedTenants } from './fleet.js';

const NS = 'cfh';

/**
 * One health monitor pass over 1,000 shared PostgreSQL clones (100 with --quick), at
 * concurrency 4, 8 and 16, against the monitor's interval (30 s): the requirement is that a
 * pass covers the fleet within one interval. Isolation is probed for 10% of the clones.
 */
export async function healthSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const size = ctx.quick ? 100 : 1000;
  const home = await mkdtemp(join(tmpdir(), 'clonefactory-bench-health-'));
  const env = new LocalEnvironment({
    env: { ...process.env, CLONEFACTORY_HOME: home, CLONEFACTORY_LOG_LEVEL: 'SILENT' },
  });
  const plane = await LocalControlPlane.start({ env, namespace: NS });
  const engine = await env.engine('postgresql');
  try {
    const t0 = performance.now();
    await seedTenants(
      plane,
      Array.from({ length: size }, (_, i) => `health-${String(i).padStart(5, '0')}`),
    );
    ctx.log(`seeded ${size} tenants in ${round((performance.now() - t0) / 1000)} s`);
    const rows: string[][] = [];
    const data: unknown[] = [];
    for (const concurrency of [4, 8, 16]) {
      const { report } = await plane.checkHealth({ concurrency, isolationSample: 0.1 });
      const latency = summarize(report.clones.map((c) => c.latencyMs ?? Number.NaN));
      const seconds = round(report.durationMs / 1000, 2);
      ctx.log(`pass at concurrency ${concurrency}: ${seconds} s, ${JSON.stringify(report.counts)}`);
      if (report.counts.HEALTHY !== size)
        throw new Error(`expected ${size} HEALTHY: ${JSON.stringify(report.counts)}`);
      rows.push([
        String(size),
        String(concurrency),
        String(seconds),
        String(round(seconds / HEALTH_INTERVAL_SECONDS, 2)),
        String(report.counts.probed),
        String(round(latency.p50, 2)),
      ]);
      data.push({
        size,
        concurrency,
        seconds,
        intervalShare: seconds / HEALTH_INTERVAL_SECONDS,
        counts: report.counts,
        latencyMs: latency,
      });
    }
    return {
      suite: 'health',
      table: {
        headers: ['CLONES', 'CONCURRENCY', 'PASS S', 'SHARE OF 30 S', 'PROBED', 'SELECT 1 P50 MS'],
        rows,
      },
      data: { passes: data, intervalSeconds: HEALTH_INTERVAL_SECONDS },
    };
  } finally {
    ctx.log('removing the tenants');
    await removeAllTenants(plane, engine);
    await plane.close();
    for (const db of await engine.listDatabases(`${NS}_`)) await engine.dropDatabase(db);
    await env.close();
    await rm(home, { recursive: true, force: true });
  }
}
