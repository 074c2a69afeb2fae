import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import { fingerprint } from '../../functions/core/fingerprint.js';
import { RootImageManager } from '../../functions/core/images.js';
import { parseCredentials } from '../../functions/core/secrets.js';
import { cloneExecutionName } from '../../functions/core/tenant-service.js';
import { APP_ROLES, newCloneId, physicalNames } from '../../functions/core/tenants.js';
import {
  cloneWorkflowState,
  isolationProbe,
  removeArtefacts,
} from '../../functions/core/workflow/clone-workflow.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import { LocalWorkflowRunner } from '../../local/workflow-runner.js';
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
 *
 * Throughput also counts the process CPU (all threads) each operation takes. For SQLite,
 * whose clone runs wholly in this process, that caps the rate on this machine however the
 * work is spread over threads: `cpuCeiling` is that cap as a ratio to the raw rate.
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
        const m = await rates(batch, c, { raw: rawOnce, bound: boundOnce, e2e: e2eOnce });
        const r = { raw: m.raw.perSecond, bound: m.bound.perSecond, e2e: m.e2e.perSecond };
        // SQLite's whole clone runs in this process (the registry thread included), so its CPU
        // per operation caps the rate on this machine's cores however the work is spread over
        // threads: the most an operation's rate could be, as a ratio to the raw rate measured.
        // A server engine's work is mostly in the server's processes, which this does not see.
        const caps = IN_PROCESS.has(engineName)
          ? {
              bound: cpuCap(m.bound.cpuMs, r.raw),
              e2e: cpuCap(m.e2e.cpuMs, r.raw),
            }
          : undefined;
        throughput[c] = {
          rawPerSecond: round(r.raw, 2),
          e2ePerSecond: round(r.e2e, 2),
          ratio: round(r.e2e / r.raw, 3),
          withWritesPerSecond: round(r.bound, 2),
          bound: round(r.bound / r.raw, 3),
          cpuMsPerOperation: {
            raw: round(m.raw.cpuMs, 2),
            bound: round(m.bound.cpuMs, 2),
            e2e: round(m.e2e.cpuMs, 2),
          },
          ...(caps ? { cpuCeiling: caps } : {}),
        };
        ctx.log(
          `${engineName}: ${batch} tenants at concurrency ${c}: ${r.e2e.toFixed(1)}/s vs raw ${r.raw.toFixed(1)}/s; raw with the lifecycle writes ${r.bound.toFixed(1)}/s; process CPU per operation raw ${m.raw.cpuMs.toFixed(1)} ms, bound ${m.bound.cpuMs.toFixed(1)}, e2e ${m.e2e.cpuMs.toFixed(1)}`,
        );
        rows.push([
          engineName,
          `throughput c=${c} (per s)`,
          String(batch),
          r.e2e.toFixed(1),
          '',
          r.raw.toFixed(1),
          (r.e2e / r.raw).toFixed(2),
          `bound x${(r.bound / r.raw).toFixed(2)}${caps ? `; CPU caps bound x${caps.bound.toFixed(2)}, e2e x${caps.e2e.toFixed(2)}` : ''}`,
        ]);
      }
      // For an engine whose clone runs wholly in this process: the CPU of the parts every
      // clone must have, each measured alone (see requiredParts), and the rate they would
      // cap the end to end at on this machine's cores.
      let parts: Awaited<ReturnType<typeof requiredParts>> | undefined;
      if (IN_PROCESS.has(engineName)) {
        const clone = await clonePartsOf(plane, engine, created.at(-1) as string);
        try {
          parts = await requiredParts(batch, { raw: rawOnce, writes: writesOnce, ...clone.ops });
        } finally {
          await clone.cleanUp();
        }
        ctx.log(
          `${engineName}: process CPU per clone of its required parts, each alone at concurrency ${PARTS_CONCURRENCY}: ${Object.entries(
            parts.cpuMs,
          )
            .map(([k, v]) => `${k} ${v} ms`)
            .join(', ')}; sum ${parts.sumCpuMs} ms, a cap of x${parts.ceiling.toFixed(2)} the raw rate`,
        );
        rows.push([
          engineName,
          `required parts' CPU (ms)`,
          String(batch),
          parts.sumCpuMs.toFixed(1),
          '',
          String(parts.cpuMs.raw),
          parts.ceiling.toFixed(2),
          `CPU cap at c=${PARTS_CONCURRENCY}: ${Object.keys(parts.cpuMs).join(' + ')}`,
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
        ...(parts ? { requiredParts: parts } : {}),
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
 * operations per second and the process CPU (every thread, user and system) it took per
 * operation. The batches run in slices, the order rotating from slice to slice, so that
 * drift in the machine over the minutes a batch takes (disk throttling, a server that slows
 * as databases accumulate) hits all alike, as in the latency samples.
 */
async function rates<K extends string>(
  n: number,
  concurrency: number,
  ops: Record<K, () => Promise<void>>,
): Promise<Record<K, { perSecond: number; cpuMs: number }>> {
  const names = Object.keys(ops) as K[];
  const spent = Object.fromEntries(names.map((k) => [k, { ms: 0, cpuMs: 0 }])) as Record<
    K,
    { ms: number; cpuMs: number }
  >;
  for (let i = 0; i < SLICES; i++) {
    const size = Math.floor(n / SLICES) + (i < n % SLICES ? 1 : 0);
    for (const which of turn(ops, i)) {
      const r = await run(size, concurrency, ops[which]);
      spent[which].ms += r.ms;
      spent[which].cpuMs += r.cpuMs;
    }
  }
  return Object.fromEntries(
    names.map((k) => [k, { perSecond: n / (spent[k].ms / 1000), cpuMs: spent[k].cpuMs / n }]),
  ) as Record<K, { perSecond: number; cpuMs: number }>;
}

/** The keys of `ops` in round `i`'s order: rotated by `i`, so that each goes first in turn. */
function turn<K extends string>(ops: Record<K, unknown>, i: number): K[] {
  const keys = Object.keys(ops) as K[];
  return keys.map((_, j) => keys[(i + j) % keys.length] as K);
}

/**
 * Runs `n` operations with `concurrency` workers; returns the wall time and the process CPU
 * (all threads: `process.cpuUsage`), both in ms.
 */
async function run(
  n: number,
  concurrency: number,
  op: () => Promise<void>,
): Promise<{ ms: number; cpuMs: number }> {
  let next = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        await op();
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  return { ms: performance.now() - started, cpuMs: (used.user + used.system) / 1000 };
}

/** Concurrency of the required parts' CPU account. */
const PARTS_CONCURRENCY = 8;

/**
 * The parts of a SQLite clone's workflow that the issue requires and that cost CPU on their
 * own, each run alone on a READY tenant made by this run: the six states and their history
 * through the same runner library and definitions (every Task a pass-through), the isolation
 * probe (the very function `Verify and register` runs), the fingerprint, and the secret's
 * writes and reads as `Configure security` and `Verify and register` make them. Sample data
 * and the schema step are left out, so their sum is less than a clone needs.
 */
async function clonePartsOf(
  plane: LocalControlPlane,
  engine: DatabaseEngine,
  tenantId: string,
): Promise<{
  ops: Record<'states' | 'probe' | 'fingerprint' | 'secret', () => Promise<void>>;
  cleanUp: () => Promise<void>;
}> {
  const { deps } = plane;
  const record = await plane.tenants.get(tenantId);
  const { database, secretId, executionName } = record;
  if (!database || !secretId || !executionName)
    throw new Error(`${tenantId} has no database, secret or execution`);
  const stored = await deps.secrets.get(secretId);
  if (!stored) throw new Error(`${tenantId}: secret ${secretId} is missing`);
  const credentials = parseCredentials(stored, secretId);
  // The state `Verify and register` ended with: the execution's output.
  const execution = await plane.runner.describe(executionName);
  if (execution?.status !== 'SUCCEEDED') throw new Error(`${tenantId}: no succeeded execution`);
  const state = cloneWorkflowState.parse(execution.output);
  const definitions = plane.runner.definitions;
  const passThrough = (kind: keyof typeof definitions) =>
    Object.fromEntries(
      Object.entries(definitions[kind].States)
        .filter(([, s]) => s.Type === 'Task')
        .map(([name]) => [name, async (input: unknown) => (input as { state: unknown }).state]),
    );
  const historyDir = mkdtempSync(join(tmpdir(), 'clonefactory-bench-history-'));
  const runner = new LocalWorkflowRunner({
    definitions,
    handlers: {
      clone: passThrough('clone'),
      deprovision: passThrough('deprovision'),
      upgrade: passThrough('upgrade'),
    },
    historyDir,
  });
  let seq = 0;
  const copies: string[] = [];
  const cleanUp = async () => {
    for (const id of copies.splice(0)) await deps.secrets.delete(id);
    await runner.drain(); // the last histories are written behind the waiters
    await rm(historyDir, { recursive: true, force: true });
  };
  const ops = {
    states: async () => {
      const name = `parts-${(seq++).toString(36)}`;
      await runner.start('clone', name, state);
      const execution = await runner.wait(name);
      if (execution.status !== 'SUCCEEDED') throw new Error(`${name}: ${execution.cause}`);
    },
    probe: async () => {
      const problems = await isolationProbe(engine, deps, state, credentials);
      if (problems.length) throw new Error(`isolation probe of ${tenantId}: ${problems.join('; ')}`);
    },
    fingerprint: async () => {
      if (fingerprint(await engine.introspect(database)).hash !== record.fingerprint)
        throw new Error(`${tenantId}: fingerprint changed`);
    },
    // What `Configure security` (a read that finds none, a write) and `Verify and register`
    // (a read) do with a clone's secret; the copy is deleted again, untimed.
    secret: async () => {
      const id = `${secretId}-bench-${(seq++).toString(36)}`;
      copies.push(id);
      await deps.secrets.get(id);
      await deps.secrets.put(id, stored, { cloneId: record.cloneId, tenantId, managedBy: 'clonefactory' });
      await deps.secrets.get(id);
    },
  };
  return { ops, cleanUp };
}

/**
 * Process CPU per operation of each part, run alone at {@link PARTS_CONCURRENCY}, the parts
 * taking turns; `ceiling` is the most the end to end could reach, as a ratio to the raw rate
 * measured here, if a clone cost only these parts' CPU and the work kept every core busy.
 */
async function requiredParts(
  n: number,
  ops: Record<string, () => Promise<void>>,
): Promise<{ cpuMs: Record<string, number>; sumCpuMs: number; ceiling: number }> {
  for (const op of Object.values(ops)) await run(PARTS_CONCURRENCY * 2, PARTS_CONCURRENCY, op); // warm
  const measured = await rates(n, PARTS_CONCURRENCY, ops);
  const cpuMs = Object.fromEntries(Object.entries(measured).map(([k, v]) => [k, round(v.cpuMs, 2)]));
  const sum = Object.values(measured).reduce((a, v) => a + v.cpuMs, 0);
  const raw = measured.raw;
  if (!raw) throw new Error('the raw operation is required');
  return { cpuMs, sumCpuMs: round(sum, 2), ceiling: cpuCap(sum, raw.perSecond) };
}

/**
 * The most an operation costing `cpuMs` of process CPU could run at on this machine's cores,
 * as a ratio to `rawPerSecond`.
 */
function cpuCap(cpuMs: number, rawPerSecond: number): number {
  return round(cpuMsPerSecond / cpuMs / rawPerSecond, 3);
}

/** Engines whose clones run entirely in this process, so that its CPU accounts for them. */
const IN_PROCESS = new Set(['sqlite']);

/** CPU ms this machine has per second of wall time: its cores (vCPUs) times 1000. */
const cpuMsPerSecond = availableParallelism() * 1000;

const f = (x: number) => x.toFixed(1);
