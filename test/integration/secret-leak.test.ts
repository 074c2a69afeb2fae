import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InjectedFaultError } from '../../functions/core/errors.js';
import { runExecutionName } from '../../functions/core/fleet-upgrade.js';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';

// A whole run — create, map, API calls, a failed clone, an upgrade, a branch, a delete — with
// every log line, workflow history, registry entry, run record and error message kept, then
// searched for every password and secret value that was generated: zero hits.

describe('secrets never leave the secret store', () => {
  let t: TestPlane | undefined;
  let server: LocalServer | undefined;
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  it('appear in no log, history, registry entry, run record or error of a full run', async () => {
    const captured: string[] = [];
    const write = (stream: NodeJS.WriteStream) => {
      const original = stream.write.bind(stream);
      stream.write = ((chunk: unknown, ...rest: unknown[]) => {
        captured.push(String(chunk));
        return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
      }) as typeof stream.write;
      return () => {
        stream.write = original;
      };
    };
    const restore = [write(process.stdout), write(process.stderr)];
    const level = process.env.CLONEFACTORY_LOG_LEVEL;
    process.env.CLONEFACTORY_LOG_LEVEL = 'DEBUG';
    const secrets: string[] = [];
    try {
      t = await startTestPlane({
        faults: (step, when, state) => {
          if (state.tenantId === 'leak-fail' && step === 'Verify and register' && when === 'after')
            throw new InjectedFaultError(step, when);
        },
      });
      server = await LocalServer.start({ plane: t.plane, port: 0 });
      const operator = await server.issuer.mint({ email: 'ops@leak.example', operator: true });
      const call = async (method: string, path: string, token: string, body?: unknown) => {
        const res = await fetch(`${server?.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        captured.push(await res.text());
        return res.status;
      };
      for (const [tenantId, engine] of [
        ['leak-pg', 'postgresql'],
        ['leak-sq', 'sqlite'],
        ['leak-my', 'mysql'],
      ] as const) {
        const r = await t.create({ tenantId, engine, version: 'v1.0' });
        expect(r.status, r.cause).toBe('SUCCEEDED');
        const record = await t.plane.tenants.get(tenantId);
        const value = (await t.plane.deps.secrets.get(record.secretId as string)) as string;
        secrets.push(value);
        for (const login of Object.values((JSON.parse(value) as CloneCredentials).roles))
          if (login) secrets.push(login.password);
      }
      // A clone that fails after its credentials exist: rolled back, its error recorded.
      const failed = await t.create({ tenantId: 'leak-fail', engine: 'postgresql' });
      expect(failed.status).toBe('FAILED');
      captured.push(JSON.stringify(failed));

      await call('POST', '/tenants/leak-pg/users', operator, { email: 'u@leak.example', appRole: 'admin' });
      const user = await server.issuer.mint({ email: 'u@leak.example', tenant: 'leak-pg' });
      expect(await call('GET', '/data/products?limit=5', user)).toBe(200);
      expect(
        await call('POST', '/data/products', user, {
          sku: 'L-1',
          name: 'l',
          category: 'c',
          price: 1,
          stock: 1,
        }),
      ).toBe(201);
      expect(await call('GET', '/me', user)).toBe(200);
      expect(await call('GET', '/tenants/leak-pg', operator)).toBe(200);

      const run = await t.plane.upgrades.start({
        to: 'v1.1',
        selection: { tenants: ['leak-pg', 'leak-sq', 'leak-my'] },
      });
      expect((await t.plane.runner.wait(runExecutionName(run.runId, 1))).status).toBe('SUCCEEDED');
      captured.push(JSON.stringify(await t.plane.upgrades.get(run.runId)));
      const branch = await t.plane.branch('leak-pg', 'leak-branch');
      expect((await t.plane.runner.wait(branch.executionName)).status).toBe('SUCCEEDED');
      const b = await t.plane.tenants.get('leak-branch');
      const branchSecret = (await t.plane.deps.secrets.get(b.secretId as string)) as string;
      secrets.push(
        branchSecret,
        ...Object.values((JSON.parse(branchSecret) as CloneCredentials).roles).map((l) => l?.password ?? ''),
      );
      captured.push(JSON.stringify(await t.plane.drift()), JSON.stringify(await t.plane.reconcile()));
      captured.push(JSON.stringify((await t.plane.checkHealth()).report));
      for (const tenantId of ['leak-sq', 'leak-branch']) {
        const d = await t.plane.tenants.delete(tenantId);
        expect((await t.plane.runner.wait(d.executionName)).status).toBe('SUCCEEDED');
      }
      captured.push(JSON.stringify(await t.plane.tenants.list()));
      await t.plane.runner.drain(); // every final history on disk
      const histories = join(t.home, 'executions');
      for (const f of await readdir(histories)) captured.push(await readFile(join(histories, f), 'utf8'));
      captured.push(await readFile(join(t.home, 'metrics', 'health.emf.jsonl'), 'utf8'));
    } finally {
      for (const r of restore) r();
      if (level === undefined) delete process.env.CLONEFACTORY_LOG_LEVEL;
      else process.env.CLONEFACTORY_LOG_LEVEL = level;
    }
    const haystack = captured.join('\n');
    // The run did log: the search looked at something.
    expect(haystack.length).toBeGreaterThan(10_000);
    expect(haystack).toMatch(/leak-fail/);
    expect(secrets.filter((s) => s.length >= 16)).toHaveLength(secrets.length);
    expect(secrets.length).toBeGreaterThanOrEqual(16);
    const hits = secrets.filter((s) => haystack.includes(s));
    expect(hits).toEqual([]);
    // Every step's log line carries the tenant, clone and execution as keys.
    const stepLines = captured
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.startsWith('{') && line.includes('"step '))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(stepLines.length).toBeGreaterThan(20);
    for (const line of stepLines) {
      expect(line.executionId).toMatch(/^local:(clone|deprovision|upgrade):/);
      // An upgrade run's own states carry its run id; its items and every clone or deletion
      // step carry the tenant, and a clone or deletion step its clone.
      if (!String(line.executionId).startsWith('local:upgrade:'))
        expect(line).toMatchObject({ tenantId: expect.any(String), cloneId: expect.any(String) });
    }
    expect(stepLines).toContainEqual(
      expect.objectContaining({
        step: 'Verify and register',
        tenantId: 'leak-sq',
        cloneId: expect.any(String),
      }),
    );
  }, 240_000);
});
