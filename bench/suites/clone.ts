import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { RootImageManager } from '../../functions/core/images.js';
import { APP_ROLES, newCloneId, physicalNames } from '../../functions/core/tenants.js';
import { removeArtefacts } from '../../functions/core/workflow/clone-workflow.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import type { SuiteContext, SuiteResult } from '../run.js';
import { round, summarize, timeEach } from '../stats.js';

const NS = 'cfb';
const VERSION = 'v1.1';
const INDUSTRY = 'finance';

/**
 * End-to-end tenant creation through the local control plane (registry, six steps, history)
 * against the raw floor measured in the same run: the engine's own clone of the root image
 * plus the same security setup, called directly. Latency is sequential, floor and end-to-end
 * alternating; throughput runs a batch of tenants at concurrency 1, 4 and 8 against the raw
 * operations at the same concurrency, the two batches in alternating slices.
 */
export async function cloneSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const latencyRuns = ctx.quick ? 8 : 30;
  const batch = ctx.quick ? 16 : 200;
  const concurrencies = [1, 4, 8];
  const home = mkdtempSync(join(tmpdir(), 'clonefactory-bench-'));
  const env = new LocalEnvironment({
    env: { ...process.env, CLONEFACTORY_HOME: home, CLONEFACTORY_LOG_LEVEL: 'SILENT' },
  });
  const plane = await LocalControlPlane.start({ env, namespace: NS });
  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  try {
    for (const engineName of plane.deps.catalog.engines) {
      if (ctx.engines && !ctx.engines.includes(engineName)) continue;
      const available = await env.tryEngine(engineName);
      if ('reason' in available) {
        ctx.log(`${engineName}: skipped (${available.reason})`);
        rows.push([engineName, 'skipped', '', '', '', '', '', available.reason]);
        continue;
      }
      const engine = available.engine;
      const image = await new RootImageManager(engine, plane.deps.catalog, { namespace: NS }).ensure(
        VERSION,
        INDUSTRY,
      );
      let seq = 0;
      const tenantId = () =>
        `b${engineName.slice(0, 2)}-${(seq++).toString(36)}-${randomBytes(2).toString('hex')}`;
      const created: string[] = [];
      const raw: string[] = [];

      const rawOnce = async () => {
        const cloneId = newCloneId();
        raw.push(cloneId);
        const names = physicalNames(NS, cloneId);
        await engine.cloneDatabase(image.name, names.database, { kind: 'clone', cloneId });
        await engine.configureTenantAccess({
          cloneId,
          database: names.database,
          ownerRole: names.ownerRole,
          roles: APP_ROLES.map((appRole) => ({
            appRole,
            name: names.roles[appRole],
            password: randomBytes(24).toString('base64url'),
          })),
          connectionLimit: 20,
        });
      };
      const e2eOnce = async () => {
        const id = tenantId();
        created.push(id);
        const r = await plane.tenants.create({
          tenantId: id,
          engine: engineName,
          industry: INDUSTRY,
          version: VERSION,
        });
        const execution = await plane.runner.wait(r.executionName);
        if (execution.status !== 'SUCCEEDED')
          throw new Error(`${id}: ${execution.error}: ${execution.cause}`);
      };

      // warm both paths once
      await rawOnce();
      await e2eOnce();
      // Alternate the two, so that drift in the machine (disk, checkpoints) hits both alike.
      const floorSamples: number[] = [];
      const e2eSamples: number[] = [];
      for (let i = 0; i < latencyRuns; i++) {
        floorSamples.push(...(await timeEach(1, rawOnce)));
        e2eSamples.push(...(await timeEach(1, e2eOnce)));
      }
      const floor = summarize(floorSamples);
      const e2e = summarize(e2eSamples);
      const ratio = e2e.p50 / floor.p50;
      ctx.log(
        `${engineName}: e2e p50 ${e2e.p50.toFixed(1)} ms vs floor ${floor.p50.toFixed(1)} ms (x${ratio.toFixed(2)})`,
      );
      rows.push([
        engineName,
        'latency',
        String(latencyRuns),
        f(e2e.p50),
        f(e2e.p95),
        f(floor.p50),
        ratio.toFixed(2),
        '',
      ]);

      const throughput: Record<string, unknown> = {};
      for (const c of concurrencies) {
        const { rawRate, e2eRate } = await rates(batch, c, rawOnce, e2eOnce);
        throughput[c] = {
          rawPerSecond: round(rawRate, 2),
          e2ePerSecond: round(e2eRate, 2),
          ratio: round(e2eRate / rawRate, 3),
        };
        ctx.log(
          `${engineName}: ${batch} tenants at concurrency ${c}: ${e2eRate.toFixed(1)}/s vs raw ${rawRate.toFixed(1)}/s`,
        );
        rows.push([
          engineName,
          `throughput c=${c} (per s)`,
          String(batch),
          e2eRate.toFixed(1),
          '',
          rawRate.toFixed(1),
          (e2eRate / rawRate).toFixed(2),
          '',
        ]);
      }
      data[engineName] = { latency: { e2e, floor, ratioP50: round(ratio, 3) }, throughput };

      // clean up: every tenant and raw clone of this run
      for (const id of created) {
        const record = await plane.tenants.get(id);
        await removeArtefacts(engine, plane.deps, record.cloneId);
      }
      for (const cloneId of raw) await removeArtefacts(engine, plane.deps, cloneId).catch(() => {});
      ctx.log(`${engineName}: cleaned up ${created.length} tenants and ${raw.length} raw clones`);
    }
  } finally {
    await plane.close();
    await env.close();
  }
  return {
    suite: 'clone',
    table: {
      headers: ['ENGINE', 'MEASURE', 'N', 'P50_MS|RATE', 'P95_MS', 'FLOOR', 'ratio_p50', 'NOTE'],
      rows,
    },
    data: { version: VERSION, industry: INDUSTRY, ...data },
  };
}

/** Slices each batch is run in, raw and end-to-end alternating (see {@link rates}). */
const SLICES = 5;

/**
 * Runs `n` raw operations and `n` end-to-end ones with `concurrency` workers each; returns
 * both rates in operations per second. The batches run in slices, alternating which goes
 * first, so that drift in the machine over the minutes a batch takes (disk throttling, a
 * server that slows as databases accumulate) hits both alike, as in the latency samples.
 */
async function rates(
  n: number,
  concurrency: number,
  raw: () => Promise<void>,
  e2e: () => Promise<void>,
): Promise<{ rawRate: number; e2eRate: number }> {
  let rawMs = 0;
  let e2eMs = 0;
  for (let i = 0; i < SLICES; i++) {
    const size = Math.floor(n / SLICES) + (i < n % SLICES ? 1 : 0);
    const order = i % 2 === 0 ? (['raw', 'e2e'] as const) : (['e2e', 'raw'] as const);
    for (const which of order) {
      const ms = await run(size, concurrency, which === 'raw' ? raw : e2e);
      if (which === 'raw') rawMs += ms;
      else e2eMs += ms;
    }
  }
  return { rawRate: n / (rawMs / 1000), e2eRate: n / (e2eMs / 1000) };
}

/** Runs `n` operations with `concurrency` workers; returns the wall time in ms. */
async function run(n: number, concurrency: number, op: () => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        await op();
      }
    }),
  );
  return performance.now() - started;
}

const f = (x: number) => x.toFixed(1);
