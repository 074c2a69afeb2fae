import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { MAX_PAGE, type TenantData } from '../core/api/tenant-data.js';
import type { Principal, UserPrincipal } from '../core/auth/authorizer.js';
import { mayCall, ROUTES, type RouteSpec } from '../core/auth/policy.js';
import { AccessDeniedError, UserNotFoundError, ValidationError } from '../core/errors.js';
import type { UpgradeService } from '../core/fleet-upgrade.js';
import { errorBody, httpStatusOf } from '../core/http-errors.js';
import type { ReconcileReport } from '../core/reconciler.js';
import type { TemplateCatalog } from '../core/templates.js';
import type { MoveResult } from '../core/tenant-move.js';
import type { TenantRequestResult, TenantService } from '../core/tenant-service.js';
import type { DriftEntry, UpgradeOutcome } from '../core/tenant-upgrade.js';
import type { UserService } from '../core/users.js';
import { openApiDocument } from './openapi.js';

export type ApiEnv = { Variables: { principal: Principal } };

/** What the routes need; the Lambda handler and the local server each supply their own. */
export interface ApiDeps {
  readonly catalog: TemplateCatalog;
  readonly tenants: TenantService;
  readonly users: UserService;
  readonly data: TenantData;
  /** Sets `principal`, or answers 401/403 itself. Runs before every route: none is public. */
  readonly authenticate: MiddlewareHandler<ApiEnv>;
  readonly health: () => Promise<{ ok: boolean; body: unknown }>;
  readonly templateDetail: (engine: string, version: string, industry: string) => Promise<unknown>;
  readonly execution: (name: string) => Promise<unknown | null>;
  /** Called after a mapping changed or went, so that caches and pools let go at once. */
  readonly onUserChange?: (userId: string) => void;
  /** Called when a tenant's deletion starts: its pools close. */
  readonly onCloneGone?: (cloneId: string) => Promise<void>;
  /** Moves a tenant to another placement; absent where this API has no admin access to the servers. */
  readonly moveTenant?: (tenantId: string, placement: unknown) => Promise<MoveResult>;
  /** Branches a tenant; default `tenants.branch` (the local control plane lets its pools go first). */
  readonly branchTenant?: (sourceId: string, tenantId: unknown) => Promise<TenantRequestResult>;
  /** Fleet upgrade runs; absent where the upgrade workflow is not deployed. */
  readonly upgrades?: UpgradeService;
  /** One tenant's upgrade and the drift report need admin access to the servers: local only. */
  readonly upgradeTenant?: (tenantId: string, to: unknown) => Promise<UpgradeOutcome>;
  readonly drift?: () => Promise<DriftEntry[]>;
  /** The reconciler needs admin access to the servers: local only. */
  readonly reconcile?: (options: { apply?: boolean; graceMs?: number }) => Promise<ReconcileReport>;
  /** The operator overview of `clonectl status`: local only. */
  readonly status?: () => Promise<unknown>;
}

type Handler = (c: Context<ApiEnv>) => Promise<Response> | Response;

const param = (c: Context<ApiEnv>, name: string): string => {
  const value = c.req.param(name);
  if (value === undefined) throw new ValidationError(`missing path parameter ${name}`, name);
  return value;
};

/**
 * The whole HTTP API, routes written once: the Lambda adapter serves it on AWS behind API
 * Gateway and its authorizer, the local server runs it with the same authorizer as middleware.
 * Every route in {@link ROUTES} is registered here and nothing else; each checks its access
 * rule again, whatever the authorizer's policy said.
 */
export function createApiApp(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.onError((error, c) => c.json(errorBody(error), httpStatusOf(error)));
  app.use(
    '*',
    bodyLimit({
      maxSize: 64 * 1024,
      onError: (c) => c.json({ error: 'PayloadTooLarge', message: 'request body over 64 KiB' }, 413),
    }),
  );

  const user = (c: Context<ApiEnv>): UserPrincipal => {
    const p = c.get('principal');
    if (p?.kind !== 'user') throw new AccessDeniedError('a tenant user token is needed');
    return p;
  };
  const json = async (c: Context<ApiEnv>): Promise<unknown> => {
    try {
      return await c.req.json();
    } catch {
      throw new ValidationError('request body must be JSON', 'body');
    }
  };
  /** A JSON object holding only `known` fields: a misspelt field is an error, never a silent default. */
  const fields = async (c: Context<ApiEnv>, known: readonly string[]): Promise<Record<string, unknown>> => {
    const body = await json(c);
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new ValidationError('the body must be a JSON object', 'body');
    const unknown = Object.keys(body).find((k) => !known.includes(k));
    if (unknown !== undefined)
      throw new ValidationError(
        `unknown field ${JSON.stringify(unknown.slice(0, 64))}; known: ${known.join(', ')}`,
        'body',
      );
    return body as Record<string, unknown>;
  };
  const changed = (userId: string) => deps.onUserChange?.(userId);
  const upgrades = (): UpgradeService => {
    if (!deps.upgrades) throw new ValidationError('fleet upgrades are not deployed here');
    return deps.upgrades;
  };

  const handlers: Record<string, Handler> = {
    'GET /health': async (c) => {
      const h = await deps.health();
      return c.json(h.body as object, h.ok ? 200 : 503);
    },
    'GET /openapi.json': (c) => c.json(openApiDocument()),
    'GET /templates': (c) => c.json({ templates: deps.catalog.list() }),
    'GET /templates/:engine/:version/:industry': async (c) => {
      const detail = await deps.templateDetail(param(c, 'engine'), param(c, 'version'), param(c, 'industry'));
      return c.json(detail as object);
    },
    'POST /tenants': async (c) => {
      const result = await deps.tenants.create(await json(c));
      return c.json(result, result.created ? 202 : 200);
    },
    'GET /tenants': async (c) => c.json({ tenants: await deps.tenants.list() }),
    'GET /tenants/:id': async (c) => c.json(await deps.tenants.get(param(c, 'id'))),
    'DELETE /tenants/:id': async (c) => {
      const tenantId = param(c, 'id');
      const result = await deps.tenants.delete(tenantId);
      await deps.onCloneGone?.(result.record.cloneId);
      // A deleted tenant's users lose access: their mappings go with it.
      for (const m of await deps.users.list({ tenantId })) {
        await deps.users.unmap(m.userId).catch(() => {});
        changed(m.userId);
      }
      return c.json(result, 202);
    },
    'POST /tenants/:id/move': async (c) => {
      if (!deps.moveTenant)
        throw new ValidationError(
          'moving a tenant needs admin access to both placements; run `clonectl tenants move` where the control plane has it',
        );
      const body = await fields(c, ['placement']);
      const result = await deps.moveTenant(param(c, 'id'), body.placement);
      // Its sessions point at the old placement: they close, and open again at the new one.
      await deps.onCloneGone?.(result.cloneId);
      return c.json(result);
    },
    'POST /tenants/:id/upgrade': async (c) => {
      if (!deps.upgradeTenant)
        throw new ValidationError(
          'upgrading one tenant needs admin access to its server; start a fleet run (POST /upgrades with selection.tenants) or run `clonectl tenants upgrade` where the control plane has it',
        );
      const body = await fields(c, ['to']);
      const result = await deps.upgradeTenant(param(c, 'id'), body.to);
      await deps.onCloneGone?.(result.cloneId);
      return c.json(result);
    },
    'POST /tenants/:id/branch': async (c) => {
      const body = await fields(c, ['tenantId']);
      const branch = deps.branchTenant ?? ((source, id) => deps.tenants.branch(source, { tenantId: id }));
      const result = await branch(param(c, 'id'), body.tenantId);
      return c.json(result, result.created ? 202 : 200);
    },
    'GET /drift': async (c) => {
      if (!deps.drift)
        throw new ValidationError(
          'the drift report needs admin access to the servers; run `clonectl drift` there',
        );
      return c.json({ tenants: await deps.drift() });
    },
    'GET /status': async (c) => {
      if (!deps.status) throw new ValidationError('the status overview is served by the local control plane');
      return c.json((await deps.status()) as object);
    },
    'POST /reconcile': async (c) => {
      if (!deps.reconcile)
        throw new ValidationError(
          'the reconciler needs admin access to the servers; run `clonectl reconcile` there',
        );
      const body = await fields(c, ['apply', 'graceMs']);
      if (body.apply !== undefined && typeof body.apply !== 'boolean')
        throw new ValidationError('apply must be true or false', 'apply');
      if (
        body.graceMs !== undefined &&
        !(typeof body.graceMs === 'number' && Number.isFinite(body.graceMs) && body.graceMs >= 0)
      )
        throw new ValidationError('graceMs must be a number of milliseconds', 'graceMs');
      return c.json(await deps.reconcile({ apply: body.apply as boolean, graceMs: body.graceMs as number }));
    },
    'POST /upgrades': async (c) => c.json(await upgrades().start(await json(c)), 202),
    'GET /upgrades': async (c) => c.json({ runs: await upgrades().list() }),
    'GET /upgrades/:runId': async (c) => c.json(await upgrades().get(param(c, 'runId'))),
    'POST /upgrades/:runId/stop': async (c) => c.json(await upgrades().stop(param(c, 'runId'))),
    'POST /upgrades/:runId/resume': async (c) => c.json(await upgrades().resume(param(c, 'runId')), 202),
    'POST /tenants/:id/users': async (c) => {
      const body = await json(c);
      if (!body || typeof body !== 'object' || Array.isArray(body))
        throw new ValidationError('the body must be a JSON object', 'body');
      const result = await deps.users.map({ ...(body as object), tenantId: param(c, 'id') });
      changed(result.mapping.userId);
      return c.json(result, result.created ? 201 : 200);
    },
    'GET /tenants/:id/users': async (c) =>
      c.json({ users: await deps.users.list({ tenantId: param(c, 'id') }) }),
    'GET /users': async (c) => c.json({ users: await deps.users.list() }),
    'DELETE /users/:user': async (c) => {
      const mapping = await deps.users.unmap(param(c, 'user'));
      changed(mapping.userId);
      return c.json({ unmapped: mapping });
    },
    'GET /executions/:name': async (c) => {
      const execution = await deps.execution(param(c, 'name'));
      if (!execution)
        return c.json({ error: 'NotFound', message: `no execution named ${param(c, 'name')}` }, 404);
      return c.json(execution as object);
    },
    'GET /me': async (c) => {
      const p = user(c);
      const mapping = await deps.users.find(p.userId);
      if (!mapping) throw new UserNotFoundError(p.userId);
      // Remapped since the cached authorization: answer nothing rather than mix two tenants.
      if (mapping.tenantId !== p.tenantId || mapping.cloneId !== p.cloneId)
        throw new AccessDeniedError('the mapping changed; authorize again');
      return c.json({
        user: {
          userId: mapping.userId,
          email: mapping.email,
          tenantId: mapping.tenantId,
          appRole: mapping.appRole,
          permissions: mapping.permissions,
          createdAt: mapping.createdAt,
          lastAccessed: mapping.lastAccessed ?? null,
        },
        clone: {
          tenantId: p.tenantId,
          cloneId: p.cloneId,
          engine: p.engine,
          version: p.version,
          industry: p.industry,
          placement: p.placement,
        },
        tables: await deps.data.tables(p),
      });
    },
    'GET /data/:table': async (c) => {
      const { limit, after, ...filters } = c.req.query();
      const n = limit === undefined ? undefined : Number(limit);
      if (n !== undefined && (!Number.isInteger(n) || n < 1 || n > MAX_PAGE))
        throw new ValidationError(`limit must be an integer from 1 to ${MAX_PAGE}`, 'limit');
      return c.json(await deps.data.list(user(c), param(c, 'table'), { limit: n, after, filters }));
    },
    'GET /data/:table/:id': async (c) =>
      c.json(await deps.data.get(user(c), param(c, 'table'), param(c, 'id'))),
    'POST /data/:table': async (c) =>
      c.json(await deps.data.create(user(c), param(c, 'table'), await json(c)), 201),
    'PATCH /data/:table/:id': async (c) =>
      c.json(await deps.data.update(user(c), param(c, 'table'), param(c, 'id'), await json(c))),
    'DELETE /data/:table/:id': async (c) => {
      await deps.data.remove(user(c), param(c, 'table'), param(c, 'id'));
      return c.body(null, 204);
    },
  };

  for (const route of ROUTES) {
    const handler = handlers[`${route.method} ${route.path}`];
    if (!handler) throw new Error(`no handler for ${route.method} ${route.path}`);
    app.on(route.method, route.path, deps.authenticate, guard(route), handler);
  }
  app.notFound((c) =>
    c.json({ error: 'NotFound', message: `no route for ${c.req.method} ${c.req.path}` }, 404),
  );
  return app;
}

/** The route's own access rule, checked after authentication whatever the policy allowed. */
function guard(route: RouteSpec): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const principal = c.get('principal');
    if (!principal || !mayCall(principal, route.access))
      return c.json(
        { error: 'AccessDeniedError', message: `access denied: ${route.method} ${route.path}` },
        403,
      );
    await next();
  };
}
