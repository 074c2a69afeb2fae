import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pMap from 'p-map';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import { runExecutionName, type UpgradeRun } from '../../functions/core/fleet-upgrade.js';
import { cloneExecutionName } from '../../functions/core/tenant-service.js';
import { newCloneId } from '../../functions/core/tenants.js';
import { removeArtefacts, runCloneStep } from '../../functions/core/workflow/clone-workflow.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import type { SuiteContext, SuiteResult } from '../run.js';
import { round, summarize } from '../stats.js';

const NS = 'cff';

/**
 * Fleet upgrades of shared PostgreSQL tenants from v1.0 to v1.1 through the upgrade state
 * machine, as `clonectl upgrade` runs it:
 * - scaling: runs of 100 tenants at concurrency 1, 2, 4 and 8 (the baseline is concurrency 1,
 *   measured in the same run);
 * - size: runs of 500 and 1,000 tenants at concurrency 8 (the target: 1,000 in at most 30 s);
 * - a dry run (branches) of 100 tenants against the real run of 100 at the same concurrency.
 * Per-tenant p50/p95 come from each tenant's recorded upgrade time.
 *
 * Tenants are seeded with the clone workflow's own steps, called directly (no state machine,
 * no isolation probe) so that seeding 2,000 tenants takes minutes, not a quarter of an hour;
 * they are real clones with their roles, grants, secrets and registry entries.
 */
export async function fleetSuite(ctx: SuiteContext): Promise<SuiteResult> {
  // BENCH_FLEET_SCALING=1,8 and BENCH_FLEET_SIZES=1000 narrow a run to what is being looked at.
  const list = (value: string | undefined) =>
    value
      ?.split(',')
      .map(Number)
      .filter((n) => n > 0);
  const scaling = list(process.env.BENCH_FLEET_SCALING) ?? (ctx.quick ? [1, 4] : [1, 2, 4, 8]);
  const scaleSize = ctx.quick ? 20 : 100;
  const sizes = list(process.env.BENCH_FLEET_SIZES) ?? (ctx.quick ? [40] : [500, 1000]);
  const dryRunSize = ctx.quick ? 20 : 100;
  const bigConcurrency = 8;
  const home = await mkdtemp(join(tmpdir(), 'clonefactory-bench-fleet-'));
  const env = new LocalEnvironment({
    env: { ...process.env, CLONEFACTORY_HOME: home, CLONEFACTORY_LOG_LEVEL: 'SILENT' },
  });
  const plane = await LocalControlPlane.start({ env, namespace: NS });
  const engine = await env.engine('postgresql');
  let seq = 0;
  const seed = async (n: number): Promise<string[]> => {
    const ids = Array.from({ length: n }, () => `fleet-${String(seq++).padStart(5, '0')}`);
    const t0 = performance.now();
    await seedTenants(plane, ids);
    ctx.log(`seeded ${n} v1.0 tenants in ${round((performance.now() - t0) / 1000)} s`);
    return ids;
  };
  const upgrade = async (ids: string[], maxConcurrency: number, dryRun = false) => {
    // Every run starts from a clean checkpoint: seeding leaves minutes of dirty pages, and the
    // first DROP DATABASE of a dry run (which forces a checkpoint) would pay for them all.
    await engine.transaction('postgres', (tx) => tx.query('CHECKPOINT'));
    const t0 = performance.now();
    const started = await plane.upgrades.start({
      to: 'v1.1',
      dryRun,
      selection: { tenants: ids },
      policy: { canary: 1, maxConcurrency },
    });
    const execution = await plane.runner.wait(runExecutionName(started.runId, 1));
    const totalMs = performance.now() - t0;
    const run: UpgradeRun = await plane.upgrades.get(started.runId);
    if (execution.status !== 'SUCCEEDED' || run.state !== 'SUCCEEDED')
      throw new Error(`run ${run.runId} ended ${run.state}: ${run.reason ?? execution.cause}`);
    const perTenant = dryRun
      ? []
      : (await plane.tenants.list())
          .filter((r) => r.upgrade?.runId === run.runId)
          .map((r) => r.upgrade?.durationMs ?? Number.NaN);
    // Where the time went, from the execution's history: each top-level state, entered to left.
    const phases: Record<string, number> = {};
    const entered = new Map<string, number>();
    for (const e of execution.events) {
      if (!e.state) continue;
      if (e.type === 'StateEntered') entered.set(e.state, Date.parse(e.timestamp));
      if (e.type === 'StateExited')
        phases[e.state] = round((Date.parse(e.timestamp) - (entered.get(e.state) ?? Number.NaN)) / 1000, 2);
    }
    const result = {
      tenants: ids.length,
      phasesSeconds: phases,
      concurrency: maxConcurrency,
      dryRun,
      totalSeconds: round(totalMs / 1000, 2),
      perSecond: round(ids.length / (totalMs / 1000)),
      perTenantMs: perTenant.length ? summarize(perTenant) : undefined,
    };
    ctx.log(
      `${dryRun ? 'dry run' : 'upgrade'} of ${ids.length} at concurrency ${maxConcurrency}: ${result.totalSeconds} s (${Object.entries(
        phases,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')})`,
    );
    return result;
  };
  try {
    const scale = [];
    for (const c of scaling) scale.push(await upgrade(await seed(scaleSize), c));
    const big = [];
    for (const n of sizes) {
      const ids = await seed(n);
      if (n === sizes[0]) {
        // Dry run first (it changes nothing), on the first tenants of this fleet.
        const dry = await upgrade(ids.slice(0, dryRunSize), bigConcurrency, true);
        big.push(dry);
      }
      big.push(await upgrade(ids, bigConcurrency));
    }
    const base = scale[0];
    const rows = [...scale, ...big].map((r) => [
      r.dryRun ? 'dry run' : 'upgrade',
      String(r.tenants),
      String(r.concurrency),
      String(r.totalSeconds),
      String(r.perSecond),
      r.perTenantMs ? String(round(r.perTenantMs.p50)) : '',
      r.perTenantMs ? String(round(r.perTenantMs.p95)) : '',
      base ? String(round(r.perSecond / base.perSecond, 2)) : '',
    ]);
    const dry = big.find((r) => r.dryRun);
    const realAtSame = scale.find((r) => r.concurrency === bigConcurrency) ?? big.find((r) => !r.dryRun);
    const dryRunOverhead =
      dry && realAtSame
        ? round(dry.totalSeconds / dry.tenants / (realAtSame.totalSeconds / realAtSame.tenants), 2)
        : null;
    const thousand = big.find((r) => !r.dryRun && r.tenants === 1000);
    return {
      suite: 'fleet',
      table: {
        headers: ['RUN', 'TENANTS', 'CONCURRENCY', 'TOTAL S', 'PER S', 'P50 MS', 'P95 MS', 'RATE VS C=1'],
        rows: [
          ...rows,
          [
            'dry-run overhead (per tenant, vs real at the same concurrency)',
            '',
            '',
            '',
            '',
            '',
            '',
            String(dryRunOverhead),
          ],
          ...(thousand
            ? [['target: 1,000 tenants in <= 30 s', '', '', String(thousand.totalSeconds), '', '', '', '']]
            : []),
        ],
      },
      data: { scaling: scale, sizes: big, dryRunOverhead, target1000Seconds: 30 },
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

/** Seeds these tenants, four at a time (see seedOne). */
export async function seedTenants(plane: LocalControlPlane, ids: readonly string[]): Promise<void> {
  await pMap(ids, (id) => seedOne(plane, id), { concurrency: 4 });
}

/** Removes every tenant's database, roles and secret, four at a time; what fails is left to the namespace drop. */
export async function removeAllTenants(plane: LocalControlPlane, engine: DatabaseEngine): Promise<void> {
  await pMap(
    await plane.tenants.list(),
    (r) => removeArtefacts(engine, plane.deps, r.cloneId).catch(() => {}),
    { concurrency: 4 },
  );
}

/** A READY v1.0 tenant made with the clone workflow's steps, minus the state machine and probe. */
async function seedOne(plane: LocalControlPlane, tenantId: string): Promise<void> {
  const now = new Date().toISOString();
  const record = {
    tenantId,
    cloneId: newCloneId(),
    state: 'PENDING' as const,
    engine: 'postgresql' as const,
    placement: 'shared' as const,
    version: 'v1.0',
    industry: 'technology',
    createdAt: now,
    updatedAt: now,
    rev: 0,
  };
  await plane.deps.registry.register({ ...record, executionName: cloneExecutionName(record) });
  const { tenantId: _t, cloneId, engine, placement, version, industry } = record;
  let state: unknown = { tenantId, cloneId, engine, placement, version, industry, sampleSize: 5 };
  for (const step of [
    'Select template',
    'Create database',
    'Apply schema',
    'Populate data',
    'Configure security',
  ])
    state = await runCloneStep(step, state, plane.deps);
  const s = state as { database: string; secretId: string; imageFingerprint: string };
  await plane.deps.registry.transition(tenantId, record.cloneId, ['CREATING'], 'READY', {
    database: s.database,
    secretId: s.secretId,
    fingerprint: s.imageFingerprint,
  });
}
