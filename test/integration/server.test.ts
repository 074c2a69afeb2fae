import { afterAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../functions/core/auth/policy.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane } from '../support/control-plane.js';

const t = await startTestPlane();
const server = await LocalServer.start({ plane: t.plane, port: 0 });
const operator = await server.issuer.mint({ email: 'ops@example.com', operator: true });
afterAll(async () => {
  await server.close();
  await t.close();
});

const get = (path: string, token: string | null = operator) =>
  fetch(`${server.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe('local control plane HTTP API', () => {
  it('refuses every route without a bearer token, health included (401)', async () => {
    for (const path of ['/health', '/tenants', '/openapi.json', '/me', '/data/products']) {
      const res = await get(path, null);
      expect(res.status, path).toBe(401);
    }
  });

  it('GET /health reports each engine and the pools', async () => {
    const res = await get('/health');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      status: string;
      engines: Record<string, { status: string }>;
      pools: object;
    };
    expect(body.status).toBe('ok');
    expect(body.engines.postgresql?.status).toBe('up');
    expect(body.engines.sqlite?.status).toBe('up');
    expect(body.pools).toMatchObject({ acquired: 0, open: 0 });
  });

  it('GET /templates lists the catalogue', async () => {
    const res = await get('/templates');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { templates: unknown[] }).templates).toHaveLength(18);
  });

  it('GET /templates/:engine/:version/:industry shows one, and 400 names an unknown part', async () => {
    const ok = await get('/templates/sqlite/v1.1/finance');
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { tables: string[] }).tables).toContain('transactions');
    const bad = await get('/templates/sqlite/v1.1/..%2F..%2Fetc');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: 'UnknownTemplateError',
      message: 'unknown industry "../../etc"; known: finance, healthcare, technology',
    });
  });

  it('answers 404 in JSON for an unknown route', async () => {
    const res = await get('/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'NotFound' });
  });

  it('describes exactly its routes in OpenAPI', async () => {
    const doc = (await (await get('/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const described = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(described.sort()).toEqual(
      ROUTES.map((r) => `${r.method} ${r.path.replace(/:([A-Za-z]+)/g, '{$1}')}`).sort(),
    );
  });

  it('serves the dev issuer JWKS without a token, public keys only', async () => {
    const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as {
      keys: Record<string, unknown>[];
    };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('keeps control-plane routes from tenant users (403)', async () => {
    const token = await server.issuer.mint({ email: 'someone@example.com', tenant: 'nobody' });
    expect((await get('/tenants', token)).status).toBe(403);
  });
});
