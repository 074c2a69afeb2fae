import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ValidationError } from '../functions/core/errors.js';
import { errorBody, httpStatusOf } from '../functions/core/http-errors.js';
import { templateDetail } from '../functions/core/images.js';
import type { TemplateCatalog } from '../functions/core/templates.js';
import type { LocalControlPlane } from './control-plane.js';
import type { LocalEnvironment } from './environment.js';

/**
 * The local control plane's HTTP routes: health, the template catalogue with its root
 * images, tenants (which start and inspect the workflows) and executions. It listens on
 * loopback only; operator authentication arrives with the JWT authorizer.
 */
export function createApp(deps: {
  catalog: TemplateCatalog;
  env: LocalEnvironment;
  plane?: LocalControlPlane;
}): Hono {
  const app = new Hono();

  app.onError((error, c) => c.json(errorBody(error), httpStatusOf(error)));
  app.use(
    '*',
    bodyLimit({
      maxSize: 64 * 1024,
      onError: (c) => c.json({ error: 'PayloadTooLarge', message: 'request body over 64 KiB' }, 413),
    }),
  );

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

  const plane = () => {
    if (!deps.plane) throw new ValidationError('tenants are not served by this process');
    return deps.plane;
  };

  app.post('/tenants', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new ValidationError('request body must be JSON', 'body');
    }
    const result = await plane().tenants.create(body);
    return c.json(result, result.created ? 202 : 200);
  });
  app.get('/tenants', async (c) => c.json({ tenants: await plane().tenants.list() }));
  app.get('/tenants/:id', async (c) => c.json(await plane().tenants.get(c.req.param('id'))));
  app.delete('/tenants/:id', async (c) => c.json(await plane().tenants.delete(c.req.param('id')), 202));
  app.get('/executions/:name', async (c) => {
    const execution = await plane().runner.describe(c.req.param('name'));
    if (!execution)
      return c.json({ error: 'NotFound', message: `no execution named ${c.req.param('name')}` }, 404);
    return c.json(execution);
  });

  app.notFound((c) =>
    c.json({ error: 'NotFound', message: `no route for ${c.req.method} ${c.req.path}` }, 404),
  );
  return app;
}
