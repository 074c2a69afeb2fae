import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { EngineName } from '../../functions/core/engine.js';
import { removeClone } from '../../functions/core/workflow/clone-workflow.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { DevIssuer } from '../../local/dev-issuer.js';
import { LocalEnvironment } from '../../local/environment.js';
import { probeEngines, tempDir, testNamespace } from '../support/engines.js';
import { checkInvariants } from './invariants.js';
import { PROFILE, recordFigures, seededRandom } from './profile.js';

/**
 * The control plane process killed with SIGKILL while it creates a tenant, then started
 * again on the same state directory: PROFILE.killRuns times, at seeded moments. The client
 * does what a client of an API does after a dropped connection: it sends the same create
 * again (creation is idempotent). Every tenant must end READY, with the invariants holding:
 * the restarted process resumes the interrupted execution, and each step adopts what its
 * killed attempt made.
 *
 * PostgreSQL and MariaDB only: a SQLite clone takes about 30 ms end to end, too short for a
 * kill to land inside it.
 */
const BIN = fileURLToPath(new URL('../../bin/clonectl.js', import.meta.url));
const { env: probeEnv, probes } = await probeEngines();
const engines = (['postgresql', 'mysql'] as const).filter((e) => probes[e].engine);
afterAll(() => probeEnv.close());

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: string[];
}

describe('chaos: the control plane killed mid-creation', () => {
  const home = tempDir('kill');
  const namespace = testNamespace();
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    CLONEFACTORY_HOME: home,
    CLONEFACTORY_NAMESPACE: namespace,
    HEALTH_INTERVAL_SECONDS: '0',
    RECONCILE_INTERVAL_SECONDS: '0',
    CLONEFACTORY_LOG_LEVEL: 'SILENT',
  };
  let server: Server | undefined;
  afterAll(async () => {
    if (server) await stop(server, 'SIGTERM');
    // Everything this test made, whatever happened.
    const env = new LocalEnvironment({ env: childEnv });
    const plane = await LocalControlPlane.start({ env, namespace });
    try {
      for (const record of await plane.tenants.list()) await removeClone(plane.deps, record).catch(() => {});
      for (const name of engines) {
        const r = await env.tryEngine(name);
        if ('engine' in r)
          for (const db of await r.engine.listDatabases(`${namespace}_`)) await r.engine.dropDatabase(db);
      }
    } finally {
      await plane.close();
      await env.close();
    }
  });

  async function start(): Promise<Server> {
    const output: string[] = [];
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--no-build'], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 200) output.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const ownerFile = join(home, 'control-plane.json');
    const deadline = Date.now() + 60_000;
    try {
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${output.join('')}`);
        if (existsSync(ownerFile)) {
          // written whole by a rename (writeOwnerFile): never half a file
          const owner = JSON.parse(readFileSync(ownerFile, 'utf8')) as { pid: number; url: string };
          if (owner.pid === child.pid) return { child, url: owner.url, output };
        }
        await sleep(50);
      }
      throw new Error(`serve did not start within 60 s: ${output.join('')}`);
    } catch (error) {
      // never leave a server holding the state directory behind
      await stop({ child, url: '', output }, 'SIGKILL');
      throw error;
    }
  }

  it(`${PROFILE.killRuns} SIGKILLs during creations: every tenant ends READY and nothing is left behind`, async () => {
    const rnd = seededRandom(PROFILE.seed + 7);
    server = await start();
    const issuer = await DevIssuer.load(home);
    const token = await issuer.mint({ email: 'chaos@clonefactory.test', operator: true, ttlSeconds: 3600 });
    const api = async (s: Server, method: string, path: string, body?: unknown) => {
      const response = await fetch(`${s.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const create = (s: Server, tenantId: string, engine: EngineName) =>
      api(s, 'POST', '/tenants', { tenantId, engine, industry: 'technology', version: 'v1.1' });
    const settle = async (s: Server, tenantId: string) => {
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const r = await api(s, 'GET', `/tenants/${tenantId}`);
        if (r.status === 200 && ['READY', 'FAILED'].includes(String(r.body.state)))
          return r.body.state === 'READY' ? 'READY' : `FAILED: ${String(r.body.lastError)}`;
        await sleep(100);
      }
      throw new Error(
        `${tenantId} did not settle: ${JSON.stringify((await api(s, 'GET', `/tenants/${tenantId}`)).body)}`,
      );
    };

    // Warm-up, not killed: each engine's root image is built by its first clone.
    const started = performance.now();
    for (const engine of engines) {
      const id = `warm-${engine.slice(0, 2)}`;
      expect((await create(server, id, engine)).status).toBe(202);
      expect(await settle(server, id)).toBe('READY');
    }

    const runs: {
      tenantId: string;
      engine: EngineName;
      killAfterMs: number;
      answered: boolean;
      lastStateAtKill: string | null;
      final: string;
    }[] = [];
    for (let i = 0; i < PROFILE.killRuns; i++) {
      const tenantId = `kill-${i}`;
      const engine = engines[Math.floor(rnd() * engines.length)] as EngineName;
      // One run in five dies inside the request (registration, start); the others while the
      // execution runs: a creation takes 150 to 300 ms here.
      const duringRequest = rnd() < 0.2;
      const killAfterMs = Math.floor(rnd() * (duringRequest ? 20 : 200));
      let answered = false;
      const request = create(server, tenantId, engine).then(
        () => {
          answered = true;
        },
        () => {},
      );
      if (!duringRequest) await request;
      await sleep(killAfterMs);
      await stop(server, 'SIGKILL');
      await request;
      const lastStateAtKill = lastEnteredState(home, tenantId);
      server = await start();
      // The client saw its connection drop, or got its answer: either way it asks again.
      const again = await create(server, tenantId, engine);
      expect([200, 202]).toContain(again.status);
      const final = await settle(server, tenantId);
      runs.push({ tenantId, engine, killAfterMs, answered, lastStateAtKill, final });
    }
    await stop(server, 'SIGTERM');
    server = undefined;
    const elapsedS = (performance.now() - started) / 1000;

    expect(runs.filter((r) => r.final !== 'READY')).toEqual([]);

    // The invariants, on the state directory the killed processes left.
    const env = new LocalEnvironment({ env: childEnv });
    const plane = await LocalControlPlane.start({ env, namespace });
    try {
      const report = await checkInvariants(plane);
      expect(report.running).toEqual([]);
      expect(report.unopenable).toEqual([]);
      expect(report.strays).toEqual([]);
      const later = new Date(Date.now() + 3 * 3600_000);
      const applied = await plane.reconcile({ apply: true, now: later });
      const check = await plane.reconcile({ now: later });
      expect(check.counts).toMatchObject({ orphans: 0, dangling: 0, stuck: 0 });
      expect((await checkInvariants(plane)).strays).toEqual([]);
      // The history on disk lags the execution by up to its flush interval (200 ms): a run
      // recorded as done may have been killed in its last step; one recorded running was.
      const midStep = runs.filter((r) => r.lastStateAtKill && r.lastStateAtKill !== 'done').length;
      expect(midStep).toBeGreaterThan(0);
      recordFigures({
        suite: 'chaos-kill',
        runs: runs.length,
        faultsInjected: runs.length,
        orphans: report.strays.length,
        details: {
          engines,
          killedBeforeAnswer: runs.filter((r) => !r.answered).length,
          killedWithExecutionRunning: midStep,
          lastStateOnDiskAtKill: tally(runs.map((r) => r.lastStateAtKill ?? 'no history yet')),
          reconcileApplied: applied.counts,
          elapsedSeconds: Math.round(elapsedS),
        },
      });
    } finally {
      await plane.close();
      await env.close();
    }
  });
});

/** The last state the execution's history on disk had entered when the process died ("done" when it had finished). */
function lastEnteredState(home: string, tenantId: string): string | null {
  const dir = join(home, 'executions');
  if (!existsSync(dir)) return null;
  const file = readdirSync(dir).find((f) => f.startsWith(`${tenantId}--`) && f.endsWith('.json'));
  if (!file) return null;
  const record = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    status: string;
    events: { type: string; state?: string }[];
  };
  if (record.status !== 'RUNNING') return 'done';
  return record.events.findLast((e) => e.type === 'StateEntered')?.state ?? 'started';
}

function tally(xs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

async function stop(server: Server, signal: NodeJS.Signals): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  server.child.kill(signal);
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
