import type { APIGatewayAuthorizerResult } from 'aws-lambda';
import { createLocalJWKSet, createRemoteJWKSet } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { Authorizer, DEFAULT_AUTHORIZER_CONFIG } from '../../functions/core/auth/authorizer.js';
import { policyAllows } from '../../functions/core/auth/policy.js';
import { AccessDeniedError, UnauthenticatedError } from '../../functions/core/errors.js';
import { createAuthorizerHandler } from '../../functions/handlers/authorizer.js';
import { LOCAL_API_ARN } from '../../local/api-gateway.js';
import { DEV_AUDIENCE, DEV_ISSUER } from '../../local/dev-issuer.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane } from '../support/control-plane.js';

const t = await startTestPlane();
const server = await LocalServer.start({
  plane: t.plane,
  port: 0,
  cacheTtlSeconds: 1,
  authorizer: { resolutionTtlMs: 300 },
});
const issuer = server.issuer;
const config = {
  ...DEFAULT_AUTHORIZER_CONFIG,
  issuer: DEV_ISSUER,
  audience: DEV_AUDIENCE,
  algorithms: ['ES256'],
};
afterAll(async () => {
  await server.close();
  await t.close();
});

for (const id of ['auth-a', 'auth-b'])
  expect((await t.create({ tenantId: id, engine: 'sqlite' })).status).toBe('SUCCEEDED');
await t.plane.users.map({ email: 'Ann@Auth-A.example', tenantId: 'auth-a', appRole: 'analyst' });
await t.plane.users.map({ email: 'bob@auth-b.example', tenantId: 'auth-b', appRole: 'admin' });

let clock: Date | undefined;
const authorizer = new Authorizer({
  keys: createLocalJWKSet(issuer.jwks()),
  users: t.plane.userRegistry,
  clones: t.plane.deps.registry,
  config: { ...config, resolutionTtlMs: 0 },
  now: () => clock ?? new Date(),
});
const mint = (email: string, tenant: string) => issuer.mint({ email, tenant });

describe('Authorizer', () => {
  it('resolves a mapped user to their clone, by email ignoring case, with no password anywhere', async () => {
    const p = await authorizer.authenticate(await mint('ann@auth-a.example', 'auth-a'));
    expect(p).toMatchObject({
      kind: 'user',
      tenantId: 'auth-a',
      appRole: 'analyst',
      permissions: ['read'],
      engine: 'sqlite',
    });
    const record = await t.plane.tenants.get('auth-a');
    expect(p).toMatchObject({
      cloneId: record.cloneId,
      secretId: record.secretId,
      database: record.database,
    });
    const secret = JSON.parse((await t.plane.deps.secrets.get(record.secretId as string)) as string);
    const text = JSON.stringify(p);
    for (const role of Object.values(secret.roles) as { password: string }[])
      expect(text).not.toContain(role.password);
  });

  it('denies a valid token of an unmapped user, a mismatched tenant claim and a clone that is not READY', async () => {
    await expect(authorizer.authenticate(await mint('nobody@auth-a.example', 'auth-a'))).rejects.toThrow(
      AccessDeniedError,
    );
    await expect(authorizer.authenticate(await mint('ann@auth-a.example', 'auth-b'))).rejects.toThrow(
      /another tenant/,
    );
    expect((await t.create({ tenantId: 'auth-gone', engine: 'sqlite' })).status).toBe('SUCCEEDED');
    await t.plane.users.map({ email: 'gone@auth-gone.example', tenantId: 'auth-gone', appRole: 'admin' });
    const token = await mint('gone@auth-gone.example', 'auth-gone');
    await authorizer.authenticate(token);
    const deletion = await t.plane.tenants.delete('auth-gone');
    await t.plane.runner.wait(deletion.executionName);
    await expect(authorizer.authenticate(token)).rejects.toThrow(/not available \(DELETED\)/);
  });

  it('never lets a subject borrow the mapping of another user with the same email', async () => {
    await t.plane.users.map({
      email: 'hal@auth-a.example',
      userId: 'idp|123',
      tenantId: 'auth-a',
      appRole: 'admin',
    });
    const own = await issuer.mint({ email: 'hal@auth-a.example', tenant: 'auth-a', subject: 'idp|123' });
    expect(await authorizer.authenticate(own)).toMatchObject({ userId: 'idp|123' });
    const other = await issuer.mint({ email: 'hal@auth-a.example', tenant: 'auth-a', subject: 'idp|999' });
    await expect(authorizer.authenticate(other)).rejects.toThrow(/not mapped/);
  });

  it('writes last_accessed at most once a minute per user', async () => {
    const token = await mint('bob@auth-b.example', 'auth-b');
    clock = new Date(Date.now() + 120_000);
    await authorizer.authenticate(token);
    await new Promise((r) => setTimeout(r, 100));
    const first = (await t.plane.userRegistry.get('bob@auth-b.example'))?.lastAccessed;
    expect(first).toBe(clock.toISOString());
    clock = new Date(clock.getTime() + 30_000);
    await authorizer.authenticate(token);
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.plane.userRegistry.get('bob@auth-b.example'))?.lastAccessed).toBe(first);
    clock = new Date(clock.getTime() + 31_000);
    await authorizer.authenticate(token);
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.plane.userRegistry.get('bob@auth-b.example'))?.lastAccessed).toBe(clock.toISOString());
    clock = undefined;
  });

  it('trusts a verified token again only until its exp', async () => {
    const remembering = new Authorizer({
      keys: createLocalJWKSet(issuer.jwks()),
      users: t.plane.userRegistry,
      clones: t.plane.deps.registry,
      config: { ...config, verifiedTokenTtlMs: 3_600_000 },
      now: () => clock ?? new Date(),
    });
    const token = await issuer.mint({ email: 'bob@auth-b.example', tenant: 'auth-b', ttlSeconds: 60 });
    clock = new Date();
    await remembering.authenticate(token);
    clock = new Date(Date.now() + 59_000);
    await remembering.authenticate(token);
    clock = new Date(Date.now() + 61_000);
    await expect(remembering.authenticate(token)).rejects.toThrow(/expired/);
    clock = undefined;
  });

  it('shares one verification and one set of registry reads among concurrent requests of one user', async () => {
    const calls = { keys: 0, users: 0, clones: 0 };
    const jwks = createLocalJWKSet(issuer.jwks());
    const users = t.plane.userRegistry;
    const clones = t.plane.deps.registry;
    const counting = new Authorizer({
      keys: (...args: Parameters<typeof jwks>) => {
        calls.keys++;
        return jwks(...args);
      },
      users: new Proxy(users, {
        get: (target, prop, receiver) => {
          const value = Reflect.get(target, prop, receiver);
          if (prop !== 'get' && prop !== 'findByEmail') return value;
          return (...args: unknown[]) => {
            calls.users++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      }),
      clones: new Proxy(clones, {
        get: (target, prop, receiver) => {
          const value = Reflect.get(target, prop, receiver);
          if (prop !== 'get') return value;
          return (...args: unknown[]) => {
            calls.clones++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      }),
      config,
    });
    const token = await mint('bob@auth-b.example', 'auth-b');
    const principals = await Promise.all(Array.from({ length: 50 }, () => counting.authenticate(token)));
    expect(new Set(principals.map((p) => (p.kind === 'user' ? p.tenantId : p.kind)))).toEqual(
      new Set(['auth-b']),
    );
    // One signature check, one mapping lookup and one clone read for all 50.
    expect(calls).toEqual({ keys: 1, users: 1, clones: 1 });
    // A refusal is shared the same way, and a later request asks again.
    const stranger = await mint('nobody@auth-b.example', 'auth-b');
    const refusals = await Promise.all(
      Array.from({ length: 20 }, () => counting.authenticate(stranger).catch((e: unknown) => e)),
    );
    expect(refusals.every((e) => e instanceof AccessDeniedError)).toBe(true);
    // One resolution for all 20: by subject, then by email; no mapping, so no clone read.
    expect(calls).toEqual({ keys: 2, users: 3, clones: 1 });
    await expect(counting.authenticate(stranger)).rejects.toThrow(AccessDeniedError);
    expect(calls.users).toBe(5);
  });

  it('fails closed when the JWKS cannot be fetched', async () => {
    const down = new Authorizer({
      keys: createRemoteJWKSet(new URL('http://127.0.0.1:9/jwks.json'), { timeoutDuration: 500 }),
      users: t.plane.userRegistry,
      clones: t.plane.deps.registry,
      config,
    });
    const error = await down
      .authenticate(await mint('bob@auth-b.example', 'auth-b'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnauthenticatedError);
    expect((error as Error).name).toBe('SigningKeysUnavailableError');
  });
});

describe('the authorizer Lambda handler', () => {
  const handler = createAuthorizerHandler(async () => authorizer, { info: () => {} });
  const event = (token: string, path = 'GET/me') => ({
    type: 'TOKEN' as const,
    authorizationToken: `Bearer ${token}`,
    methodArn: `${LOCAL_API_ARN}/${path}`,
  });
  const allows = (r: APIGatewayAuthorizerResult, path: string) =>
    policyAllows(r.policyDocument as never, `${LOCAL_API_ARN}/${path}`);

  it('allows every route of the role in one policy, and only those', async () => {
    const analyst = await handler(event(await mint('ann@auth-a.example', 'auth-a')));
    expect(allows(analyst, 'GET/me')).toBe(true);
    expect(allows(analyst, 'GET/data/products')).toBe(true);
    expect(allows(analyst, 'GET/data/products/3')).toBe(true);
    expect(allows(analyst, 'POST/data/products')).toBe(false);
    expect(allows(analyst, 'DELETE/data/products/3')).toBe(false);
    expect(allows(analyst, 'GET/tenants')).toBe(false);
    expect(analyst.context).toMatchObject({ tenantId: 'auth-a', appRole: 'analyst' });
    const admin = await handler(event(await mint('bob@auth-b.example', 'auth-b')));
    expect(allows(admin, 'DELETE/data/products/3')).toBe(true);
    expect(allows(admin, 'POST/tenants')).toBe(false);
    const operator = await handler(event(await issuer.mint({ email: 'ops@example.com', operator: true })));
    expect(allows(operator, 'POST/tenants')).toBe(true);
    expect(allows(operator, 'GET/data/products')).toBe(false);
  });

  it('answers 401 (Unauthorized) for a bad token and a Deny policy for an unmapped user, never an error', async () => {
    await expect(handler(event('not.a.token'))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler({ ...event('x'), authorizationToken: 'Basic abc' })).rejects.toThrow(
      /^Unauthorized$/,
    );
    const denied = await handler(event(await mint('nobody@auth-a.example', 'auth-a')));
    expect(denied.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    // A malformed mapping in the registry (no permissions): a Deny, not an error.
    await t.plane.userRegistry.put(
      {
        ...((await t.plane.userRegistry.get('bob@auth-b.example')) as object),
        userId: 'broken@auth-b.example',
        email: 'broken@auth-b.example',
        emailLower: 'broken@auth-b.example',
        permissions: undefined,
      } as never,
      null,
    );
    const malformed = await handler(event(await mint('broken@auth-b.example', 'auth-b')));
    expect(malformed.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    const broken = createAuthorizerHandler(
      async () => {
        throw new Error('registry down');
      },
      { info: () => {} },
    );
    const r = await broken(event(await mint('bob@auth-b.example', 'auth-b')));
    expect(r.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
  });
});

describe('API Gateway caching, emulated by the local server', () => {
  const call = (token: string, method: string, path: string, body?: unknown) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  it('reuses one cached policy for every route of the role', async () => {
    server.gateway.flush();
    const before = server.gateway.metrics();
    const token = await mint('ann@auth-a.example', 'auth-a');
    expect((await call(token, 'GET', '/me')).status).toBe(200);
    expect((await call(token, 'GET', '/data/products')).status).toBe(200);
    expect((await call(token, 'GET', '/data/products/1')).status).toBe(200);
    // Not in the analyst's policy: refused by the cached policy, without calling the authorizer.
    expect((await call(token, 'POST', '/data/products', { name: 'x' })).status).toBe(403);
    const after = server.gateway.metrics();
    expect(after.calls - before.calls).toBe(1);
    expect(after.hits - before.hits).toBe(3);
  });

  it('lets an unmapped or remapped user keep access only until the TTLs run out', async () => {
    await t.plane.users.map({ email: 'carl@auth-a.example', tenantId: 'auth-a', appRole: 'user' });
    const token = await mint('carl@auth-a.example', 'auth-a');
    expect((await call(token, 'GET', '/data/products')).status).toBe(200);
    // Changed straight in the registry, as another process (the AWS API) would: no flush here.
    await t.plane.users.unmap('carl@auth-a.example');
    expect((await call(token, 'GET', '/data/products')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_400)); // cache TTL 1 s + resolution TTL 0.3 s
    expect((await call(token, 'GET', '/data/products')).status).toBe(403);
    // Remapped to another tenant: the old tenant's token stops working the same way.
    await t.plane.users.map({ email: 'carl@auth-a.example', tenantId: 'auth-a', appRole: 'user' });
    await new Promise((r) => setTimeout(r, 1_400));
    expect((await call(token, 'GET', '/data/products')).status).toBe(200);
    await t.plane.users.map({
      email: 'carl@auth-a.example',
      tenantId: 'auth-b',
      appRole: 'user',
      remap: true,
    });
    await new Promise((r) => setTimeout(r, 1_400));
    expect((await call(token, 'GET', '/data/products')).status).toBe(403);
    expect((await call(await mint('carl@auth-a.example', 'auth-b'), 'GET', '/data/products')).status).toBe(
      200,
    );
  });

  it('drops its caches at once when the change goes through this server', async () => {
    const operator = await issuer.mint({ email: 'ops@example.com', operator: true });
    await t.plane.users.map({ email: 'dora@auth-a.example', tenantId: 'auth-a', appRole: 'user' });
    const token = await mint('dora@auth-a.example', 'auth-a');
    expect((await call(token, 'GET', '/me')).status).toBe(200);
    expect((await call(operator, 'DELETE', '/users/dora@auth-a.example')).status).toBe(200);
    expect((await call(token, 'GET', '/me')).status).toBe(403);
  });
});
