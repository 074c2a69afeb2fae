import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_USERS, runDemo } from '../../local/cli/demo-command.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane } from '../support/control-plane.js';

const t = await startTestPlane();
const server = await LocalServer.start({ plane: t.plane, port: 0 });
afterAll(async () => {
  await server.close();
  await t.close();
});

describe('clonectl demo', () => {
  it('runs the seed scenario through the API: every user reads only their own tenant', async () => {
    const result = await runDemo(server.url, server.issuer, () => {});
    const engines = result.tenants.map((x) => x.engine);
    expect(engines).toContain('postgresql');
    expect(engines).toContain('sqlite');
    if (process.env.REQUIRE_MYSQL) expect(engines).toContain('mysql');
    for (const x of result.tenants) expect(x.state).toBe('READY');
    expect(result.crossTenantReads).toBe(0);
    for (const u of DEMO_USERS.filter((d) => result.tenants.some((x) => x.id === d.tenant))) {
      expect(result.products[u.email]).toBeGreaterThan(0);
      for (const x of result.tenants)
        expect(result.matrix[u.email]?.[x.id], `${u.email} -> ${x.id}`).toBe(
          x.id === u.tenant ? `read ${result.products[u.email]}` : '403',
        );
      expect(result.writes[u.email]).toBe(u.role === 'analyst' ? 'refused 403' : 'inserted');
    }
    // Run twice: creating the tenants and mapping the users again is idempotent.
    expect((await runDemo(server.url, server.issuer, () => {})).crossTenantReads).toBe(0);
  });
});
