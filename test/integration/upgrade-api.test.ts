import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpgradeRun } from '../../functions/core/fleet-upgrade.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';

// The upgrade routes of the API, as `clonectl` uses them when `npm start` runs: operator only,
// bad input answered 400 with nothing started.

describe('upgrade routes of the local API', () => {
  let t: TestPlane;
  let server: LocalServer;
  let operator: string;
  const call = (method: string, path: string, body?: unknown, token = operator) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(async () => {
    t = await startTestPlane();
    server = await LocalServer.start({ plane: t.plane, port: 0 });
    operator = await server.issuer.mint({ email: 'ops@example.com', operator: true });
    for (const tenantId of ['api-u1', 'api-u2']) {
      const r = await t.create({ tenantId, engine: 'sqlite', version: 'v1.0', sampleSize: 3 });
      expect(r.status, r.cause).toBe('SUCCEEDED');
    }
    await t.plane.users.map({ email: 'u@api-u1.example', tenantId: 'api-u1', appRole: 'admin' });
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('refuses tenant users and bad requests, starting nothing', async () => {
    const user = await server.issuer.mint({ email: 'u@api-u1.example', tenant: 'api-u1' });
    expect((await call('POST', '/upgrades', { to: 'v1.1' }, user)).status).toBe(403);
    expect((await call('GET', '/drift', undefined, user)).status).toBe(403);
    const bad = await call('POST', '/upgrades', { to: 'v1.1', policy: { maxConcurrency: 500 } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/maxConcurrency/);
    expect((await call('POST', '/upgrades', { to: 'v1.1', extra: 1 })).status).toBe(400);
    expect((await call('GET', '/upgrades/upg-nope')).status).toBe(400);
    expect(((await (await call('GET', '/upgrades')).json()) as { runs: unknown[] }).runs).toEqual([]);
  });

  it('starts a run, reports it, branches and upgrades one tenant, and reports drift', async () => {
    const started = await call('POST', '/upgrades', { to: 'v1.1', selection: { tenants: ['api-u1'] } });
    expect(started.status).toBe(202);
    const { runId } = (await started.json()) as UpgradeRun;
    let run: UpgradeRun;
    do {
      await new Promise((r) => setTimeout(r, 50));
      run = (await (await call('GET', `/upgrades/${runId}`)).json()) as UpgradeRun;
    } while (!run.finishedAt);
    expect(run).toMatchObject({ state: 'SUCCEEDED', upgraded: 1, tenants: ['api-u1'] });

    const branched = await call('POST', '/tenants/api-u2/branch', { tenantId: 'api-u3' });
    expect(branched.status).toBe(202);
    const { executionName } = (await branched.json()) as { executionName: string };
    expect((await t.plane.runner.wait(executionName)).status).toBe('SUCCEEDED');

    const one = await call('POST', '/tenants/api-u3/upgrade', { to: 'v1.1' });
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({
      tenantId: 'api-u3',
      from: 'v1.0',
      to: 'v1.1',
      action: 'upgraded',
    });
    expect((await call('POST', '/tenants/api-u3/upgrade', {})).status).toBe(400);

    const drift = await call('GET', '/drift');
    expect(drift.status).toBe(200);
    const { tenants } = (await drift.json()) as { tenants: { tenantId: string; drifted: boolean }[] };
    expect(tenants.map((d) => [d.tenantId, d.drifted])).toEqual([
      ['api-u1', false],
      ['api-u2', false],
      ['api-u3', false],
    ]);
  });
});
