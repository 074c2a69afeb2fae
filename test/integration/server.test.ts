import { afterAll, describe, expect, it } from 'vitest';
import { TemplateCatalog } from '../../functions/core/templates.js';
import { createApp } from '../../local/server.js';
import { probeEngines } from '../support/engines.js';

const { env } = await probeEngines();
const app = createApp({ catalog: await TemplateCatalog.load(), env });
afterAll(() => env.close());

describe('local control plane HTTP API', () => {
  it('GET /health reports each engine', async () => {
    const res = await app.request('/health');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; engines: Record<string, { status: string }> };
    expect(body.status).toBe('ok');
    expect(body.engines.postgresql?.status).toBe('up');
    expect(body.engines.sqlite?.status).toBe('up');
  });

  it('GET /templates lists the catalogue', async () => {
    const res = await app.request('/templates');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { templates: unknown[] }).templates).toHaveLength(18);
  });

  it('GET /templates/:engine/:version/:industry shows one, and 400 names an unknown part', async () => {
    const ok = await app.request('/templates/sqlite/v1.1/finance');
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { tables: string[] }).tables).toContain('transactions');
    const bad = await app.request('/templates/sqlite/v1.1/..%2F..%2Fetc');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: 'UnknownTemplateError',
      message: 'unknown industry "../../etc"; known: finance, healthcare, technology',
    });
  });

  it('answers 404 in JSON for an unknown route', async () => {
    const res = await app.request('/nope');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'NotFound' });
  });
});
