import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InjectedFaultError,
  InvalidIdentifierError,
  TenantAlreadyExistsError,
  TenantStateConflictError,
  TransientError,
  ValidationError,
} from '../../functions/core/errors.js';
import { CLONE_STEPS, type CloneWorkflowState } from '../../functions/core/workflow/clone-workflow.js';
import { synthesizeWorkflowDefinitions } from '../../local/synthesize-workflows.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';

/** Fails the first attempt of "Populate data" for tenants named `flaky-*` with a retryable error. */
const attempts = new Map<string, number>();
function flaky(step: string, when: 'before' | 'after', state: Pick<CloneWorkflowState, 'tenantId'>): void {
  // A deletion that fails once for good (not retryable), to prove it can be asked for again.
  if (state.tenantId === 'undeletable' && step === 'Remove clone' && !attempts.has('undeletable')) {
    attempts.set('undeletable', 1);
    throw new InjectedFaultError(step, when);
  }
  // A lost response after the READY write: the retry must find the clone READY and keep it.
  if (
    state.tenantId === 'flaky-verify' &&
    step === 'Verify and register' &&
    when === 'after' &&
    !attempts.has('flaky-verify')
  ) {
    attempts.set('flaky-verify', 1);
    throw new TransientError('response lost after READY');
  }
  if (!state.tenantId.startsWith('flaky-one') || step !== 'Populate data' || when !== 'before') return;
  const n = (attempts.get(state.tenantId) ?? 0) + 1;
  attempts.set(state.tenantId, n);
  if (n === 1) throw new TransientError('simulated throttling');
}

let t: TestPlane;
beforeAll(async () => {
  t = await startTestPlane({ faults: flaky });
});
afterAll(() => t?.close());

/**
 * Registers a PENDING entry (unless `register` is false) and starts its clone workflow
 * directly, bypassing TenantService's checks, as a retry or a crafted input would.
 */
async function startRaw(
  tenantId: string,
  cloneId: string,
  fields: { engine?: 'sqlite'; placement?: 'shared' | 'dedicated'; version?: string; industry?: string } = {},
  options: { register?: boolean; executionName?: string } = {},
) {
  const input = {
    tenantId,
    cloneId,
    engine: 'sqlite' as const,
    placement: 'shared' as const,
    version: 'v1.1',
    industry: 'technology',
    ...fields,
  };
  if (options.register !== false) {
    const now = new Date().toISOString();
    await t.plane.deps.registry.register({
      ...input,
      state: 'PENDING',
      createdAt: now,
      updatedAt: now,
      rev: 0,
    });
  }
  const name = options.executionName ?? `${tenantId}--${cloneId}`;
  await t.plane.runner.start('clone', name, { ...input, sampleSize: 1 });
  return t.plane.runner.wait(name);
}

describe('TenantService with the local workflow runner', () => {
  it('returns the same clone when the same tenant is created twice', async () => {
    const first = await t.plane.tenants.create({
      tenantId: 'twice',
      engine: 'sqlite',
      industry: 'finance',
      version: 'v1.0',
    });
    const second = await t.plane.tenants.create({
      tenantId: 'twice',
      engine: 'sqlite',
      industry: 'finance',
      version: 'v1.0',
    });
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.record.cloneId).toBe(first.record.cloneId);
    expect((await t.plane.runner.wait(first.executionName)).status).toBe('SUCCEEDED');
    const third = await t.plane.tenants.create({
      tenantId: 'twice',
      engine: 'sqlite',
      industry: 'finance',
      version: 'v1.0',
    });
    expect(third).toMatchObject({
      created: false,
      record: { cloneId: first.record.cloneId, state: 'READY' },
    });
  });

  it('refuses the same tenant with another template, naming the difference', async () => {
    await expect(
      t.plane.tenants.create({
        tenantId: 'twice',
        engine: 'postgresql',
        industry: 'finance',
        version: 'v1.0',
      }),
    ).rejects.toThrow(new TenantAlreadyExistsError('twice', 'it has engine sqlite (asked for postgresql)'));
  });

  it('makes exactly 5 clones from 20 concurrent creates over 5 ids', async () => {
    const ids = ['con-a', 'con-b', 'con-c', 'con-d', 'con-e'];
    const requests = Array.from({ length: 20 }, (_, i) => ({
      tenantId: ids[i % 5] as string,
      engine: i % 2 ? 'postgresql' : 'sqlite',
      industry: 'technology',
      version: 'v1.1',
    }));
    // the engine must be the same for one id: pick it by id, not by request
    for (const r of requests) r.engine = ids.indexOf(r.tenantId) % 2 ? 'postgresql' : 'sqlite';
    const results = await Promise.all(requests.map((r) => t.plane.tenants.create(r)));
    expect(results.filter((r) => r.created)).toHaveLength(5);
    const executions = await Promise.all(results.map((r) => t.plane.runner.wait(r.executionName)));
    expect(
      executions.filter((e) => e.status !== 'SUCCEEDED').map((e) => `${e.name}: ${e.error}: ${e.cause}`),
    ).toEqual([]);
    const records = (await t.plane.tenants.list()).filter((r) => r.tenantId.startsWith('con-'));
    expect(records.map((r) => `${r.tenantId}:${r.state}`)).toEqual(ids.map((id) => `${id}:READY`));
    for (const id of ids)
      expect(new Set(results.filter((r) => r.record.tenantId === id).map((r) => r.record.cloneId)).size).toBe(
        1,
      );
    const pg = await t.plane.env.engine('postgresql');
    const sqlite = await t.plane.env.engine('sqlite');
    const databases = [
      ...(await pg.listDatabases(`${t.namespace}_t_`)),
      ...(await sqlite.listDatabases(`${t.namespace}_t_`)),
    ];
    expect(databases.filter((d) => records.some((r) => r.database === d))).toHaveLength(5);
  });

  it('gives a clear conflict when creating a tenant that is being deleted', async () => {
    await t.create({ tenantId: 'going', engine: 'sqlite' });
    const record = await t.plane.tenants.get('going');
    await t.plane.deps.registry.transition('going', record.cloneId, ['READY'], 'DELETING');
    await expect(
      t.plane.tenants.create({
        tenantId: 'going',
        engine: 'sqlite',
        industry: 'technology',
        version: 'v1.1',
      }),
    ).rejects.toThrow(
      new TenantStateConflictError('going', 'DELETING', 'create it again until deletion ends'),
    );
  });

  it('retries a transient failure and still ends READY', async () => {
    const execution = await t.create({ tenantId: 'flaky-one', engine: 'sqlite' });
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.events.filter((e) => e.type === 'StateRetried').map((e) => e.state)).toEqual([
      'Populate data',
    ]);
    expect(attempts.get('flaky-one')).toBe(2);
  });

  it("refuses and leaves untouched a database that carries another clone's marker", async () => {
    const cloneId = 'abcdef012345';
    const sqlite = await t.plane.env.engine('sqlite');
    const squatter = `${t.namespace}_t_${cloneId}`;
    await sqlite.createDatabase(squatter);
    await sqlite.writeMarker(squatter, { kind: 'clone', cloneId: '999999999999' });
    const execution = await startRaw('squatted', cloneId);
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe('ForeignArtefactError');
    const record = await t.plane.tenants.get('squatted');
    expect(record.state).toBe('FAILED');
    expect(record.lastError).toMatch(
      /belongs to clone 999999999999.*left untouched: database .* \(clone 999999999999\)/,
    );
    expect(await sqlite.readMarker(squatter)).toEqual({ kind: 'clone', cloneId: '999999999999' });
  });

  it('marks FAILED, with the reason, a clone whose workflow input asks for what is not served', async () => {
    const execution = await startRaw('not-served', '0123456789ab', { placement: 'dedicated' });
    expect(execution.events.filter((e) => e.type === 'StateEntered').map((e) => e.state)).toEqual([
      'Select template',
      'Roll back clone',
      'Clone failed',
    ]);
    expect(await t.plane.tenants.get('not-served')).toMatchObject({
      state: 'FAILED',
      lastError:
        'ValidationError: dedicated sqlite is not available: a SQLite database is a file of its own already; there is no server to dedicate',
    });
  });

  it('refuses, without touching it, a workflow for a tenant that is already READY', async () => {
    const ready = await t.plane.tenants.get('twice');
    const execution = await startRaw(
      'twice',
      ready.cloneId,
      { version: 'v1.0', industry: 'finance' },
      { register: false, executionName: 'twice--again' },
    );
    expect(execution.error).toBe('TenantStateConflictError');
    expect(execution.events.filter((e) => e.type === 'StateEntered').map((e) => e.state)).toEqual([
      'Select template',
      'Clone refused',
    ]);
    expect(await t.plane.tenants.get('twice')).toEqual(ready);
    expect(await t.artefacts('sqlite', ready.cloneId)).toMatchObject({ database: true, secret: true });
  });

  it('keeps a READY clone when the retry of "Verify and register" finds it READY already', async () => {
    const execution = await t.create({ tenantId: 'flaky-verify', engine: 'sqlite' });
    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.events.filter((e) => e.type === 'StateRetried').map((e) => e.state)).toEqual([
      'Verify and register',
    ]);
    const record = await t.plane.tenants.get('flaky-verify');
    expect(record.state).toBe('READY');
    expect(await t.artefacts('sqlite', record.cloneId)).toMatchObject({ database: true, secret: true });
  });

  it('lets a deletion that failed be asked for again, under a new execution name', async () => {
    await t.create({ tenantId: 'undeletable', engine: 'sqlite' });
    const first = await t.plane.tenants.delete('undeletable');
    expect((await t.plane.runner.wait(first.executionName)).status).toBe('FAILED');
    expect((await t.plane.tenants.get('undeletable')).state).toBe('DELETING');
    const second = await t.plane.tenants.delete('undeletable');
    expect(second.executionName).not.toBe(first.executionName);
    expect((await t.plane.runner.wait(second.executionName)).status).toBe('SUCCEEDED');
    expect((await t.plane.tenants.get('undeletable')).state).toBe('DELETED');
  });

  it('starts an execution once when two starts of the same name race', async () => {
    const input = {
      tenantId: 'race-one',
      cloneId: '0123456789ac',
      engine: 'sqlite' as const,
      placement: 'shared' as const,
      version: 'v1.1',
      industry: 'finance',
      sampleSize: 1,
    };
    const results = await Promise.all([
      t.plane.runner.start('clone', 'race-one--0123456789ac', input),
      t.plane.runner.start('clone', 'race-one--0123456789ac', input),
      t.plane.runner.start('clone', 'race-one--0123456789ac', input),
    ]);
    expect(results.filter((r) => r.started)).toHaveLength(1);
    const execution = await t.plane.runner.wait('race-one--0123456789ac');
    // no registry entry: the first step refuses, and the one execution ends there
    expect(execution.events.filter((e) => e.type === 'ExecutionStarted')).toHaveLength(1);
    expect(execution.events.filter((e) => e.type === 'StateEntered').map((e) => e.state)).toEqual([
      'Select template',
      'Clone refused',
    ]);
  });

  it('answers for an ended execution at once and writes its final history behind the waiter', async () => {
    const created = await t.plane.tenants.create({
      tenantId: 'history-behind',
      engine: 'sqlite',
      industry: 'finance',
      version: 'v1.1',
    });
    const name = created.executionName as string;
    const ended = await t.plane.runner.wait(name);
    expect(ended.status).toBe('SUCCEEDED');
    // Whether or not the file has it yet, this process answers with the ended record: a start
    // of the same name is refused, and nothing counts it as interrupted.
    expect(await t.plane.runner.describe(name)).toEqual(ended);
    expect((await t.plane.runner.list()).find((r) => r.name === name)).toEqual(ended);
    expect((await t.plane.runner.interrupted()).map((r) => r.name)).not.toContain(name);
    expect((await t.plane.runner.start('clone', name, {} as never)).started).toBe(false);
    await t.plane.runner.drain();
    const onDisk = JSON.parse(readFileSync(join(t.home, 'executions', `${name}.json`), 'utf8'));
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(ended)));
  });

  it('runs exactly the definitions that CDK synthesizes', () => {
    expect(t.plane.runner.definitions).toEqual(synthesizeWorkflowDefinitions(t.namespace));
    expect(Object.keys(t.plane.runner.definitions.clone.States).sort()).toEqual(
      [
        ...CLONE_STEPS,
        'Placement?',
        'Provision instance',
        'Instance available?',
        'Wait for instance',
        'Check instance',
        'Roll back clone',
        'Clone failed',
        'Clone refused',
      ].sort(),
    );
  });
});

describe('bad input creates nothing and starts no execution', () => {
  const valid = { engine: 'sqlite', industry: 'technology', version: 'v1.1' };
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['SQL metacharacters', { ...valid, tenantId: "x'; DROP TABLE users; --" }, /invalid tenant id/],
    ['shell metacharacters', { ...valid, tenantId: 'abc$(rm -rf /)' }, /invalid tenant id/],
    ['uppercase', { ...valid, tenantId: 'AcmeCorp' }, /invalid tenant id/],
    ['unicode look-alike', { ...valid, tenantId: 'аcme' }, /invalid tenant id/],
    ['path traversal', { ...valid, tenantId: '../etc' }, /invalid tenant id/],
    ['NUL', { ...valid, tenantId: 'ab\u0000cd' }, /invalid tenant id/],
    ['too long', { ...valid, tenantId: `a${'b'.repeat(31)}` }, /invalid tenant id/],
    ['too short', { ...valid, tenantId: 'ab' }, /invalid tenant id/],
    ['reserved postgres', { ...valid, tenantId: 'postgres' }, /is a reserved name/],
    ['reserved template0', { ...valid, tenantId: 'template0' }, /is a reserved name/],
    ['reserved mysql', { ...valid, tenantId: 'mysql' }, /is a reserved name/],
    ['reserved information_schema', { ...valid, tenantId: 'information-schema' }, /is a reserved name/],
    ['unknown engine', { ...valid, tenantId: 'okay-id', engine: 'oracle' }, /engine/],
    ['unknown industry', { ...valid, tenantId: 'okay-id', industry: 'retail' }, /unknown industry "retail"/],
    ['unknown version', { ...valid, tenantId: 'okay-id', version: 'v9.9' }, /unknown version "v9.9"/],
    ['missing engine', { tenantId: 'okay-id', industry: 'technology', version: 'v1.1' }, /engine/],
    ['missing version', { tenantId: 'okay-id', engine: 'sqlite', industry: 'technology' }, /version/],
    ['wrong type', { ...valid, tenantId: 42 }, /tenantId/],
    ['unknown field', { ...valid, tenantId: 'okay-id', password: 'x' }, /password/],
    [
      'dedicated SQLite, which has no server to dedicate',
      { ...valid, tenantId: 'okay-id', placement: 'dedicated' },
      /dedicated sqlite is not available on this machine/,
    ],
  ];

  it.each(cases)('%s', async (_label, request, message) => {
    const before = await t.plane.tenants.list();
    // Histories only: an earlier execution's final history may still be being written (a temporary file).
    const histories = () => readdirSync(join(t.home, 'executions')).filter((f) => f.endsWith('.json'));
    const executions = histories().length;
    const error = await t.plane.tenants.create(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toMatch(message);
    expect(await t.plane.tenants.list()).toEqual(before);
    expect(histories()).toHaveLength(executions);
  });

  it('refuses a reserved or malformed id on show and delete too', async () => {
    await expect(t.plane.tenants.get('Robert"); --')).rejects.toThrow(InvalidIdentifierError);
    await expect(t.plane.tenants.delete('template1')).rejects.toThrow(InvalidIdentifierError);
  });
});
