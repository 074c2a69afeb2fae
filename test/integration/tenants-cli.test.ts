import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { clonectl } from '../support/cli.js';
import { SHARED_CLONE_PATH } from '../support/control-plane.js';
import { tempDir } from '../support/engines.js';

describe('clonectl tenants, without a running control plane', () => {
  const home = tempDir('tenants-cli');
  const env = { CLONEFACTORY_HOME: home };
  afterAll(() => {
    clonectl(['tenants', 'delete', 'demo-a'], env);
  });

  it('creates demo-a on a fresh state directory and prints READY', () => {
    const r = clonectl(
      [
        'tenants',
        'create',
        'demo-a',
        '--engine',
        'sqlite',
        '--industry',
        'technology',
        '--version',
        'v1.1',
        '--wait',
      ],
      env,
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('demo-a READY');
  });

  it('shows, lists and explains the execution, as JSON too, without passwords', () => {
    const show = JSON.parse(clonectl(['tenants', 'show', 'demo-a', '--json'], env).stdout);
    expect(show).toMatchObject({ tenantId: 'demo-a', state: 'READY', engine: 'sqlite' });
    const list = JSON.parse(clonectl(['tenants', 'list', '--json'], env).stdout);
    expect(list.map((t: { tenantId: string }) => t.tenantId)).toEqual(['demo-a']);
    const history = clonectl(['executions', 'show', 'demo-a', '--json'], env);
    const execution = JSON.parse(history.stdout);
    expect(execution.status).toBe('SUCCEEDED');
    expect(
      execution.events
        .filter((e: { type: string }) => e.type === 'StateEntered')
        .map((e: { state: string }) => e.state),
    ).toEqual(SHARED_CLONE_PATH);
    expect(history.stdout).not.toMatch(/password/i);
  });

  it('exits 2 with a clear message on a bad tenant id, and creates nothing', () => {
    const r = clonectl(
      [
        'tenants',
        'create',
        'DROP;TABLE',
        '--engine',
        'sqlite',
        '--industry',
        'technology',
        '--version',
        'v1.1',
      ],
      env,
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid tenant id "DROP;TABLE"/);
    const missing = clonectl(
      ['tenants', 'create', 'okay-id', '--industry', 'technology', '--version', 'v1.1'],
      env,
    );
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--engine/);
    expect(JSON.parse(clonectl(['tenants', 'list', '--json'], env).stdout)).toHaveLength(1);
  });

  it('deletes the tenant and its SQLite file', () => {
    const show = JSON.parse(clonectl(['tenants', 'show', 'demo-a', '--json'], env).stdout);
    const r = clonectl(['tenants', 'delete', 'demo-a', '--wait'], env);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^demo-a DELETED/);
    expect(existsSync(join(home, 'sqlite', `${show.database}.db`))).toBe(false);
  });
});

describe('clonectl tenants, with `clonectl serve` running on the same state directory', () => {
  const home = tempDir('tenants-serve');
  const env = { CLONEFACTORY_HOME: home };
  let server: ChildProcess;

  afterAll(async () => {
    server?.kill('SIGTERM');
    await new Promise((r) => server?.once('exit', r));
  });

  it('goes through the server, which owns the registry', async () => {
    const bin = fileURLToPath(new URL('../../bin/clonectl.js', import.meta.url));
    server = spawn(process.execPath, [bin, 'serve', '--port', '0', '--no-build'], {
      env: { ...process.env, ...env },
      stdio: 'pipe',
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 60_000);
      server.stdout?.on('data', (d) => {
        out += d;
        if (out.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 200));
    const r = clonectl(
      [
        'tenants',
        'create',
        'via-server',
        '--engine',
        'sqlite',
        '--industry',
        'finance',
        '--version',
        'v1.0',
        '--wait',
        '--json',
      ],
      env,
    );
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).tenant.state).toBe('READY');
    const url = /listening on (http:\/\/[\d.:]+)/.exec(out)?.[1];
    // The server wants an operator token like any client; the CLI mints one for itself.
    const token = clonectl(['token', '--email', 'ops@example.com', '--operator'], env).stdout.trim();
    expect((await fetch(`${url}/tenants/via-server`)).status).toBe(401);
    const res = await fetch(`${url}/tenants/via-server`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await res.json()) as { state: string }).state).toBe('READY');
    const del = clonectl(['tenants', 'delete', 'via-server', '--wait'], env);
    expect(del.stdout).toMatch(/^via-server DELETED/);
  });
});
