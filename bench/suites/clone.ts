import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { RootImageManager } from '../../functions/core/images.js';
import { cloneExecutionName } from '../../functions/core/tenant-service.js';
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
 * plus the same security setup, called directly. Latency is sequential, the operations taking
 * turns; throughput runs a batch of tenants at concurrency 1, 4 and 8 against the raw
 * operations at the same concurrency, the batches in slices that take turns likewise.
 *
 * A third operation, measured alongside both, is the floor followed by the three lifecycle
 * writes every clone makes to the registry (PENDING, CREATING, READY: conditional writes to
 * dynalite, on entries of their own), one after another: the floor with nothing of the
 * workflow but those writes. Its ratio to the floor (`bound`) shows how much of the gap
 * between the floor and the end to end the writes alone take, as this process makes them.
 */
export async function cloneSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const latencyRuns = ctx.quick ? 9 : 30; // multiples of three: each operation goes first alike
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
      // The registry writes of one clone's lifecycle, as the API and the workflow make them,
      // except that READY names no database (the real one also sets `database`).
      const writesOnce = async () => {
        const tenantId = `w${engineName.slice(0, 2)}-${(seq++).toString(36)}-${randomBytes(2).toString('hex')}`;
        const cloneId = newCloneId();
        const now = new Date().toISOString();
        const { registry } = plane.deps;
        await registry.register({
          tenantId,
          cloneId,
          state: 'PENDING',
          engine: engineName,
          placement: 'shared',
          version: VERSION,
          industry: INDUSTRY,
          executionName: cloneExecutionName({ tenantId, cloneId }),
          createdAt: now,
          updatedAt: now,
          rev: 0,
        });
        await registry.transition(tenantId, cloneId, ['PENDING', 'CREATING'], 'CREATING');
        // No database: the isolation probe's neighbour lookup skips these entries.
        await registry.transition(tenantId, cloneId, ['CREATING', 'READY'], 'READY', {
          endpoint: `${engineName}://bench/${cloneId}`,
          secretId: `clonefactory/${NS}/${cloneId}`,
          fingerprint: image.fingerprint,
        });
      };
      const boundOnce = async () => {
        await rawOnce();
        await writesOnce();
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

      // warm every path once
      await rawOnce();
      await boundOnce();
      await e2eOnce();
      // Alternate them, the order rotating, so that drift in the machine (disk, checkpoints)
      // and whatever one leaves behind for the next hit all alike.
      const latencyOps = { floor: rawOnce, bound: boundOnce, e2e: e2eOnce };
      const samples = { floor: [] as number[], bound: [] as number[], e2e: [] as number[] };
      for (let i = 0; i < latencyRuns; i++)
        for (const k of turn(latencyOps, i)) samples[k].push(...(await timeEach(1, latencyOps[k])));
      const floor = summarize(samples.floor);
      const withWrites = summarize(samples.bound);
      const e2e = summarize(samples.e2e);
      const ratio = e2e.p50 / floor.p50;
      const bound = withWrites.p50 / floor.p50;
      ctx.log(
        `${engineName}: e2e p50 ${e2e.p50.toFixed(1)} ms vs floor ${floor.p50.toFixed(1)} ms (x${ratio.toFixed(2)}); floor with the lifecycle writes ${withWrites.p50.toFixed(1)} ms (x${bound.toFixed(2)})`,
      );
      rows.push([
        engineName,
        'latency',
        String(latencyRuns),
        f(e2e.p50),
        f(e2e.p95),
        f(floor.p50),
        ratio.toFixed(2),
        `bound x${bound.toFixed(2)}`,
      ]);

      const throughput: Record<string, unknown> = {};
      for (const c of concurrencies) {
        const r = await rates(batch, c, { raw: rawOnce, bound: boundOnce, e2e: e2eOnce });
        throughput[c] = {
          rawPerSecond: round(r.raw, 2),
          e2ePerSecond: round(r.e2e, 2),
          ratio: round(r.e2e / r.raw, 3),
          withWritesPerSecond: round(r.bound, 2),
          bound: round(r.bound / r.raw, 3),
        };
        ctx.log(
          `${engineName}: ${batch} tenants at concurrency ${c}: ${r.e2e.toFixed(1)}/s vs raw ${r.raw.toFixed(1)}/s; raw with the lifecycle writes ${r.bound.toFixed(1)}/s`,
        );
        rows.push([
          engineName,
          `throughput c=${c} (per s)`,
          String(batch),
          r.e2e.toFixed(1),
          '',
          r.raw.toFixed(1),
          (r.e2e / r.raw).toFixed(2),
          `bound x${(r.bound / r.raw).toFixed(2)}`,
        ]);
      }
      data[engineName] = {
        latency: {
          e2e,
          floor,
          ratioP50: round(ratio, 3),
          floorWithWrites: withWrites,
          boundP50: round(bound, 3),
        },
        throughput,
      };

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

/**
 * Slices each batch is run in, the operations taking turns (see {@link rates}): a multiple of
 * three, so that each of the three goes first equally often.
 */
const SLICES = 6;

/**
 * Runs `n` of each operation with `concurrency` workers; returns each one's rate in
 * operations per second. The batches run in slices, the order rotating from slice to slice,
 * so that drift in the machine over the minutes a batch takes (disk throttling, a server
 * that slows as databases accumulate) hits all alike, as in the latency samples.
 */
async function rates<K extends string>(
  n: number,
  concurrency: number,
  ops: Record<K, () => Promise<void>>,
): Promise<Record<K, number>> {
  const names = Object.keys(ops) as K[];
  const ms = Object.fromEntries(names.map((k) => [k, 0])) as Record<K, number>;
  for (let i = 0; i < SLICES; i++) {
    const size = Math.floor(n / SLICES) + (i < n % SLICES ? 1 : 0);
    for (const which of turn(ops, i)) ms[which] += await run(size, concurrency, ops[which]);
  }
  return Object.fromEntries(names.map((k) => [k, n / (ms[k] / 1000)])) as Record<K, number>;
}

/** The keys of `ops` in round `i`'s order: rotated by `i`, so that each goes first in turn. */
function turn<K extends string>(ops: Record<K, unknown>, i: number): K[] {
  const keys = Object.keys(ops) as K[];
  return keys.map((_, j) => keys[(i + j) % keys.length] as K);
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
