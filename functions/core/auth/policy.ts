import type { Permission } from '../users.js';
import type { Principal } from './authorizer.js';

/** Who may call a route: operators, or tenant users holding a permission. `any` is any principal. */
export type RouteAccess = 'operator' | 'any' | { readonly permission: Permission };

/** One API route: its Hono path, the API Gateway resource it sits on, and who may call it. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly access: RouteAccess;
}

/**
 * Every route of the API, once. The Hono app registers exactly these (a test checks it), the
 * OpenAPI document describes them, and the authorizer's policy allows a principal exactly the
 * ones it may call, so that a policy cached for one route covers every route of that role.
 */
export const ROUTES: readonly RouteSpec[] = [
  { method: 'GET', path: '/health', access: 'any' },
  { method: 'GET', path: '/openapi.json', access: 'any' },
  { method: 'GET', path: '/templates', access: 'operator' },
  { method: 'GET', path: '/templates/:engine/:version/:industry', access: 'operator' },
  { method: 'POST', path: '/tenants', access: 'operator' },
  { method: 'GET', path: '/tenants', access: 'operator' },
  { method: 'GET', path: '/tenants/:id', access: 'operator' },
  { method: 'DELETE', path: '/tenants/:id', access: 'operator' },
  { method: 'POST', path: '/tenants/:id/move', access: 'operator' },
  { method: 'POST', path: '/tenants/:id/upgrade', access: 'operator' },
  { method: 'POST', path: '/tenants/:id/branch', access: 'operator' },
  { method: 'GET', path: '/drift', access: 'operator' },
  { method: 'POST', path: '/reconcile', access: 'operator' },
  { method: 'GET', path: '/status', access: 'operator' },
  { method: 'POST', path: '/upgrades', access: 'operator' },
  { method: 'GET', path: '/upgrades', access: 'operator' },
  { method: 'GET', path: '/upgrades/:runId', access: 'operator' },
  { method: 'POST', path: '/upgrades/:runId/stop', access: 'operator' },
  { method: 'POST', path: '/upgrades/:runId/resume', access: 'operator' },
  { method: 'POST', path: '/tenants/:id/users', access: 'operator' },
  { method: 'GET', path: '/tenants/:id/users', access: 'operator' },
  { method: 'GET', path: '/users', access: 'operator' },
  { method: 'DELETE', path: '/users/:user', access: 'operator' },
  { method: 'GET', path: '/executions/:name', access: 'operator' },
  { method: 'GET', path: '/me', access: { permission: 'read' } },
  { method: 'GET', path: '/data/:table', access: { permission: 'read' } },
  { method: 'GET', path: '/data/:table/:id', access: { permission: 'read' } },
  { method: 'POST', path: '/data/:table', access: { permission: 'write' } },
  { method: 'PATCH', path: '/data/:table/:id', access: { permission: 'write' } },
  { method: 'DELETE', path: '/data/:table/:id', access: { permission: 'delete' } },
];

export function mayCall(principal: Principal, access: RouteAccess): boolean {
  if (access === 'any') return true;
  if (access === 'operator') return principal.kind === 'operator';
  return principal.kind === 'user' && principal.permissions.includes(access.permission);
}

/** A route path as an execute-api resource: every `:param` becomes `*`. */
export const routeResource = (route: RouteSpec) => `${route.method}${route.path.replace(/:[A-Za-z]+/g, '*')}`;

export interface IamPolicy {
  readonly Version: '2012-10-17';
  readonly Statement: readonly {
    readonly Action: 'execute-api:Invoke';
    readonly Effect: 'Allow' | 'Deny';
    readonly Resource: readonly string[];
  }[];
}

/**
 * The policy for a principal: Allow on every route it may call, under the API and stage of
 * `methodArn` (arn:aws:execute-api:region:account:api/stage/METHOD/path).
 */
export function policyFor(principal: Principal, methodArn: string): IamPolicy {
  const base = apiBase(methodArn);
  const resources = ROUTES.filter((r) => mayCall(principal, r.access)).map(
    (r) => `${base}/${routeResource(r)}`,
  );
  return {
    Version: '2012-10-17',
    Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: resources }],
  };
}

/** An explicit Deny of the whole API, for a refused token. */
export function denyAll(methodArn: string): IamPolicy {
  return {
    Version: '2012-10-17',
    Statement: [{ Action: 'execute-api:Invoke', Effect: 'Deny', Resource: [`${apiBase(methodArn)}/*`] }],
  };
}

/** `arn:aws:execute-api:region:account:api/stage` of a method ARN. */
function apiBase(methodArn: string): string {
  const [api = '*', stage = '*'] = String(methodArn ?? '*').split('/');
  return `${api}/${stage}`;
}

/**
 * Evaluates a policy for a method ARN as API Gateway does: an explicit Deny wins, else an
 * Allow must match; `*` matches any run of characters, `?` one.
 */
export function policyAllows(policy: IamPolicy, methodArn: string): boolean {
  const matches = (pattern: string) =>
    new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    ).test(methodArn);
  let allowed = false;
  for (const s of policy.Statement) {
    if (!s.Resource.some(matches)) continue;
    if (s.Effect === 'Deny') return false;
    allowed = true;
  }
  return allowed;
}
