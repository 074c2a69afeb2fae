import { z } from 'zod';
import { MAX_PAGE } from '../core/api/tenant-data.js';
import { ROUTES, type RouteSpec } from '../core/auth/policy.js';
import { createTenantRequest } from '../core/tenants.js';
import { mapUserRequest } from '../core/users.js';

const SUMMARIES: Record<string, string> = {
  'GET /health': 'Engines reachable from the control plane',
  'GET /openapi.json': 'This document',
  'GET /templates': 'The template catalogue',
  'GET /templates/{engine}/{version}/{industry}': 'One template with its root image status',
  'POST /tenants':
    'Create a tenant: registers it and starts the clone workflow (202; 200 when it already exists)',
  'GET /tenants': 'Every tenant with its clone state',
  'GET /tenants/{id}': "One tenant's registry entry",
  'DELETE /tenants/{id}': 'Delete a tenant: starts the deprovision workflow and unmaps its users',
  'POST /tenants/{id}/move': 'Move a READY PostgreSQL tenant to its other placement',
  'POST /tenants/{id}/upgrade':
    'Upgrade one tenant to {to}, verified against a fresh template (local control plane)',
  'POST /tenants/{id}/branch':
    'Branch this tenant into a new one, {tenantId}: a full copy with its own credentials',
  'GET /status':
    'Tenants by state, health, version, engine and placement, recent executions, the last reconcile (local control plane)',
  'POST /reconcile':
    'Find orphaned artefacts, dangling and stuck entries; {apply: true} removes and repairs (local control plane)',
  'GET /drift': "Each READY tenant's live schema against its recorded version (local control plane)",
  'POST /upgrades': 'Start a fleet upgrade run: {to, selection, policy, dryRun}',
  'GET /upgrades': 'Every fleet upgrade run, newest first',
  'GET /upgrades/{runId}': 'One fleet upgrade run with its counts and failures',
  'POST /upgrades/{runId}/stop': 'Stop a run: tenants in flight finish, the rest are skipped',
  'POST /upgrades/{runId}/resume': 'Resume a stopped, halted or failed run',
  'POST /tenants/{id}/users': 'Map a user to this tenant (remap: true moves a user from another tenant)',
  'GET /tenants/{id}/users': "The tenant's users",
  'GET /users': 'Every user mapping',
  'DELETE /users/{user}': 'Unmap a user, by user id or email',
  'GET /executions/{name}': "A workflow execution's history",
  'GET /me': "The caller's mapping and clone",
  'GET /data/{table}':
    "Rows of a template table, as the caller's database role; keyset pages and equality filters",
  'GET /data/{table}/{id}': 'One row by primary key',
  'POST /data/{table}': 'Insert a row (write permission)',
  'PATCH /data/{table}/{id}': 'Update columns of a row (write permission)',
  'DELETE /data/{table}/{id}': 'Delete a row (delete permission)',
};

const openApiPath = (route: RouteSpec) => route.path.replace(/:([A-Za-z]+)/g, '{$1}');

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});

function bodyFor(route: RouteSpec): object | undefined {
  const key = `${route.method} ${route.path}`;
  if (key === 'POST /tenants') return { $ref: '#/components/schemas/CreateTenantRequest' };
  if (key === 'POST /tenants/:id/users') return { $ref: '#/components/schemas/MapUserRequest' };
  if (key === 'POST /data/:table' || key === 'PATCH /data/:table/:id')
    return { $ref: '#/components/schemas/Row' };
  return undefined;
}

/** The OpenAPI 3.1 description of every route in {@link ROUTES}. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES) {
    const path = openApiPath(route);
    const key = `${route.method} ${path}`;
    const parameters = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    if (key === 'GET /data/{table}')
      parameters.push(
        {
          name: 'limit',
          in: 'query',
          required: false,
          schema: { type: 'integer', minimum: 1, maximum: MAX_PAGE } as never,
        },
        { name: 'after', in: 'query', required: false, schema: { type: 'string' } },
      );
    const body = bodyFor(route);
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[route.method.toLowerCase()] = {
      summary: SUMMARIES[key] ?? key,
      'x-access':
        typeof route.access === 'string'
          ? route.access
          : `tenant user with ${route.access.permission} permission`,
      parameters,
      ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
      responses: {
        '200': { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
        '400': errorResponse('Invalid input; nothing was created'),
        '401': errorResponse('Missing, malformed, expired or unverifiable token'),
        '403': errorResponse(
          'Not allowed: unmapped user, other tenant, clone not READY, role without the permission',
        ),
        '404': errorResponse('Not found'),
        '409': errorResponse('Conflicts with the current state'),
        '503': errorResponse('An engine or the pool is unavailable'),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Clone Factory API', version: '1' },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: { error: { type: 'string' }, message: { type: 'string' } },
        },
        Row: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
        CreateTenantRequest: z.toJSONSchema(createTenantRequest, { io: 'input' }),
        MapUserRequest: z.toJSONSchema(mapUserRequest.omit({ tenantId: true }), { io: 'input' }),
      },
    },
  };
}
