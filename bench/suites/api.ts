import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { LocalEnvironment } from '../../local/environment.js';
import { LocalServer } from '../../local/server.js';
import type { SuiteContext, SuiteResult } from '../run.js';
import { round, summarize } from '../stats.js';

/**
 * One tenant row read through the local API (HTTP, the authorizer with API Gateway's cache,
 * the route, the tenant's pool) against the same query through the driver directly, on one
 * open connection as the same database role. PostgreSQL; alternating rounds.
 */
export async function apiSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const home = mkdtempSync(join(tmpdir(), 'clonefactory-bench-api-'));
  const env = new LocalEnvironment({
    env: { ...process.env, CLONEFACTORY_HOME: home, CLONEFACTORY_LOG_LEVEL: 'SILENT' },
  });
  const plane = await LocalControlPlane.start({ env, namespace: 'cfq' });
  const server = await LocalServer.start({ plane, port: 0 });
  let direct: pg.Client | undefined;
  const tenantId = `bench-api-${Date.now().toString(36)}`;
  try {
    const r = await plane.tenants.create({
      tenantId,
      engine: 'postgresql',
      industry: 'technology',
      version: 'v1.1',
    });
    const execution = await plane.runner.wait(r.executionName);
    if (execution.status !== 'SUCCEEDED') throw new Error(`tenant not created: ${execution.cause}`);
    await plane.users.map({ email: 'bench@example.com', tenantId, appRole: 'user' });
    const record = await plane.tenants.get(tenantId);
    const credentials = JSON.parse(
      (await plane.deps.secrets.get(record.secretId as string)) as string,
    ) as CloneCredentials;
    const login = credentials.roles.user as { username: string; password: string };
    direct = new pg.Client({
      host: credentials.host,
      port: credentials.port,
      database: credentials.database,
      user: login.username,
      password: login.password,
    });
    await direct.connect();
    const token = await server.issuer.mint({ email: 'bench@example.com', tenant: tenantId });
    const url = `${server.url}/data/products/1`;
    const viaApi = async () => {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new Error(`API answered ${res.status}`);
      await res.json();
    };
    const viaDriver = async () => {
      const q = await (direct as pg.Client).query('SELECT * FROM products WHERE id = $1', [1]);
      if (q.rowCount !== 1) throw new Error('no row');
    };
    const rounds = ctx.quick ? 5 : 15;
    const n = ctx.quick ? 100 : 300;
    const apiMs: number[] = [];
    const driverMs: number[] = [];
    const time = async (fn: () => Promise<void>, into: number[]) => {
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await fn();
        into.push(performance.now() - t0);
      }
    };
    await time(viaApi, []);
    await time(viaDriver, []);
    for (let i = 0; i < rounds; i++) {
      await time(viaApi, apiMs);
      await time(viaDriver, driverMs);
    }
    const a = summarize(apiMs);
    const d = summarize(driverMs);
    ctx.log(
      `row read: API p50 ${a.p50.toFixed(2)} ms vs driver ${d.p50.toFixed(2)} ms (x${(a.p50 / d.p50).toFixed(1)})`,
    );
    return {
      suite: 'api',
      table: {
        headers: ['PATH', 'N', 'P50_MS', 'P95_MS', 'ratio_p50'],
        rows: [
          [
            'GET /data/products/1 via local API',
            String(a.n),
            a.p50.toFixed(2),
            a.p95.toFixed(2),
            (a.p50 / d.p50).toFixed(1),
          ],
          ['same SELECT via pg, direct', String(d.n), d.p50.toFixed(2), d.p95.toFixed(2), '1.0'],
        ],
      },
      data: { api: a, driver: d, ratioP50: round(a.p50 / d.p50, 2), pools: plane.pools.metrics() },
    };
  } finally {
    await direct?.end();
    const record = await plane.tenants.get(tenantId).catch(() => null);
    if (record) await plane.runner.wait((await plane.tenants.delete(tenantId)).executionName).catch(() => {});
    await server.close();
    await plane.close();
    await env.close();
  }
}
