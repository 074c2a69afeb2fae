import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import {
  InjectedFaultError,
  TenantNotFoundError,
  TenantStateConflictError,
  UserMappingConflictError,
  UserNotFoundError,
  ValidationError,
} from '../../functions/core/errors.js';
import { clonectl } from '../support/cli.js';
import { startTestPlane } from '../support/control-plane.js';
import { tempDir } from '../support/engines.js';

const t = await startTestPlane({
  faults: (step, when, state) => {
    if (state.tenantId === 'usr-broken' && step === 'Verify and register' && when === 'before')
      throw new InjectedFaultError(step, when);
  },
});
afterAll(() => t.close());
for (const id of ['usr-one', 'usr-two'])
  expect((await t.create({ tenantId: id, engine: 'sqlite' })).status).toBe('SUCCEEDED');
expect((await t.create({ tenantId: 'usr-broken', engine: 'sqlite' })).status).toBe('FAILED');
const users = t.plane.users;

describe('UserService', () => {
  it('maps a user with the permissions of the role and finds them by email, ignoring case', async () => {
    const { mapping, created } = await users.map({
      email: 'Eve@Example.COM',
      tenantId: 'usr-one',
      appRole: 'user',
    });
    expect(created).toBe(true);
    expect(mapping).toMatchObject({
      userId: 'eve@example.com',
      email: 'Eve@Example.COM',
      emailLower: 'eve@example.com',
      tenantId: 'usr-one',
      cloneId: (await t.plane.tenants.get('usr-one')).cloneId,
      appRole: 'user',
      permissions: ['read', 'write'],
    });
    expect((await users.find('EVE@example.com'))?.userId).toBe('eve@example.com');
    // Mapping again is an update, not a second user.
    const again = await users.map({ email: 'eve@example.com', tenantId: 'usr-one', appRole: 'analyst' });
    expect(again).toMatchObject({
      created: false,
      mapping: { appRole: 'analyst', createdAt: mapping.createdAt },
    });
    expect(
      (await users.list({ tenantId: 'usr-one' })).filter((m) => m.emailLower === 'eve@example.com'),
    ).toHaveLength(1);
  });

  it('keeps a user in one tenant unless a remap is asked for', async () => {
    await users.map({ email: 'fay@example.com', tenantId: 'usr-one', appRole: 'admin' });
    await expect(
      users.map({ email: 'fay@example.com', tenantId: 'usr-two', appRole: 'admin' }),
    ).rejects.toThrow(UserMappingConflictError);
    expect((await users.find('fay@example.com'))?.tenantId).toBe('usr-one');
    const moved = await users.map({
      email: 'fay@example.com',
      tenantId: 'usr-two',
      appRole: 'user',
      remap: true,
    });
    expect(moved.mapping).toMatchObject({
      tenantId: 'usr-two',
      cloneId: (await t.plane.tenants.get('usr-two')).cloneId,
    });
    // The same email under another user id is another person claiming it: refused.
    await expect(
      users.map({ email: 'FAY@example.com', userId: 'idp|123', tenantId: 'usr-two', appRole: 'user' }),
    ).rejects.toThrow(/already mapped as user fay@example.com/);
  });

  it('refuses a tenant that does not exist or is not READY, and bad input, writing nothing', async () => {
    const before = (await users.list()).length;
    await expect(
      users.map({ email: 'a@example.com', tenantId: 'usr-none', appRole: 'user' }),
    ).rejects.toThrow(TenantNotFoundError);
    await expect(
      users.map({ email: 'a@example.com', tenantId: 'usr-broken', appRole: 'user' }),
    ).rejects.toThrow(TenantStateConflictError);
    for (const bad of [
      { email: 'not-an-email', tenantId: 'usr-one', appRole: 'user' },
      { email: 'a@example.com', tenantId: 'usr-one', appRole: 'root' },
      { email: 'a@example.com', tenantId: "usr-one'; DROP TABLE users;--", appRole: 'user' },
      { email: 'a@example.com', tenantId: 'usr-one', appRole: 'user', isAdmin: true },
      { email: 'a@example.com', tenantId: 'usr-one', appRole: 'user', userId: '../etc/passwd' },
      { email: 'a@example.com', appRole: 'user' },
    ])
      await expect(users.map(bad), JSON.stringify(bad)).rejects.toThrow(ValidationError);
    expect(await users.list()).toHaveLength(before);
  });

  it('unmaps by email or user id', async () => {
    await users.map({ email: 'gus@example.com', tenantId: 'usr-one', appRole: 'user' });
    expect((await users.unmap('GUS@example.com')).userId).toBe('gus@example.com');
    await expect(users.unmap('gus@example.com')).rejects.toThrow(UserNotFoundError);
  });
});

describe('clonectl users and token', () => {
  const env = { CLONEFACTORY_HOME: tempDir('users-cli') };

  it('maps, lists and unmaps through the CLI with clear errors', () => {
    const created = clonectl(
      [
        'tenants',
        'create',
        'cli-users',
        '--engine',
        'sqlite',
        '--industry',
        'finance',
        '--version',
        'v1.1',
        '--wait',
      ],
      env,
    );
    expect(created.stdout).toMatch(/^cli-users READY/);
    const map = clonectl(
      ['users', 'map', '--email', 'Ops@Example.com', '--tenant', 'cli-users', '--role', 'analyst'],
      env,
    );
    expect(map.stderr).toBe('');
    expect(map.stdout).toMatch(/Ops@Example.com mapped: tenant cli-users as analyst/);
    const list = clonectl(['users', 'list', '--json'], env);
    expect(JSON.parse(list.stdout).users).toMatchObject([
      { userId: 'ops@example.com', permissions: ['read'] },
    ]);
    const refused = clonectl(
      ['users', 'map', '--email', 'x@example.com', '--tenant', 'nope-nope', '--role', 'user'],
      env,
    );
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/tenant nope-nope not found/);
    const badRole = clonectl(
      ['users', 'map', '--email', 'x@example.com', '--tenant', 'cli-users', '--role', 'root'],
      env,
    );
    expect(badRole.status).toBe(2);
    expect(clonectl(['users', 'unmap', 'ops@example.com'], env).stdout).toMatch(
      /unmapped from tenant cli-users/,
    );
    expect(clonectl(['users', 'list'], env).stdout).toMatch(/no users mapped/);
    // Deleting the tenant unmaps its users.
    clonectl(['users', 'map', '--email', 'gone@example.com', '--tenant', 'cli-users', '--role', 'user'], env);
    expect(clonectl(['tenants', 'delete', 'cli-users', '--wait'], env).stdout).toMatch(/DELETED/);
    expect(clonectl(['users', 'list'], env).stdout).toMatch(/no users mapped/);
  });

  it('mints dev tokens with the claims the authorizer checks', () => {
    const token = clonectl(
      ['token', '--email', 'Ann@Example.com', '--tenant', 'acme', '--ttl', '600'],
      env,
    ).stdout.trim();
    const claims = decodeJwt(token);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256' });
    expect(claims).toMatchObject({ sub: 'ann@example.com', email: 'Ann@Example.com', tenant_id: 'acme' });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(600);
    const noTenant = clonectl(['token', '--email', 'ann@example.com'], env);
    expect(noTenant.status).toBe(2);
    expect(noTenant.stderr).toMatch(/needs --tenant/);
  });
});
