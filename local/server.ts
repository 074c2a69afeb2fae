import { Hono } from 'hono';
import { CloneFactoryError, ValidationError } from '../functions/core/errors.js';
import { templateDetail } from '../functions/core/images.js';
import type { TemplateCatalog } from '../functions/core/templates.js';
import type { LocalEnvironment } from './environment.js';

/**
 * The local control plane's HTTP routes. Today: health and the template catalogue with its
 * root images. Tenant, user and data routes join here (issues 3 and 4).
 */
export function createApp(deps: { catalog: TemplateCatalog; env: LocalEnvironment }): Hono {
  const app = new Hono();

  app.onError((error, c) => {
    if (error instanceof ValidationError) return c.json({ error: error.name, message: error.message }, 400);
    if (error instanceof CloneFactoryError) return c.json({ error: error.name, message: error.message }, 503);
    return c.json({ error: 'InternalError', message: 'internal error' }, 500);
  });

  app.get('/health', async (c) => {
    const engines: Record<string, { status: 'up' | 'down'; location?: string; reason?: string }> = {};
    for (const name of deps.catalog.engines) {
      const r = await deps.env.tryEngine(name);
      engines[name] =
        'engine' in r ? { status: 'up', location: r.engine.location } : { status: 'down', reason: r.reason };
    }
    const up = Object.values(engines).some((e) => e.status === 'up');
    return c.json({ status: up ? 'ok' : 'degraded', engines }, up ? 200 : 503);
  });

  app.get('/templates', (c) => c.json({ templates: deps.catalog.list() }));

  app.get('/templates/:engine/:version/:industry', async (c) => {
    const { engine, version, industry } = c.req.param();
    const template = await deps.catalog.resolve(engine, version, industry);
    const r = await deps.env.tryEngine(template.engine);
    return c.json(await templateDetail(template, deps.catalog, 'engine' in r ? r.engine : r));
  });

  app.notFound((c) =>
    c.json({ error: 'NotFound', message: `no route for ${c.req.method} ${c.req.path}` }, 404),
  );
  return app;
}
