import { describe, expect, it } from 'vitest';
import type { DatabaseEngine, EngineName, Login } from '../../functions/core/engine.js';
import { EngineUnavailableError, LoginRefusedError } from '../../functions/core/errors.js';
import type { CloneRecord } from '../../functions/core/tenants.js';
import {
  type CloneWorkflowDeps,
  type CloneWorkflowState,
  isolationProbe,
} from '../../functions/core/workflow/clone-workflow.js';

// The probe's decisions over the engine interface. The integration tests run it against the
// real servers (clone-workflow.test.ts); here each login's outcome is chosen, to reach the
// branches a healthy server never takes.

type Outcome = 'open' | 'refused-authenticated' | 'refused' | 'unreachable';

function setup(
  engine: EngineName,
  outcomes: Record<string, Outcome>,
  neighbour?: string,
  close: () => Promise<void> = async () => {},
) {
  const logins: string[] = [];
  const closed: string[] = [];
  const fake = {
    engine,
    async databaseExists() {
      return true;
    },
    async openSession(database: string, login: Login) {
      const key = `${login.username}@${database}`;
      logins.push(key);
      const outcome = outcomes[key] ?? 'open';
      if (outcome === 'refused-authenticated') throw new LoginRefusedError(database, true);
      if (outcome === 'refused') throw new LoginRefusedError(database, false);
      if (outcome === 'unreachable') throw new EngineUnavailableError(engine, 'connection refused');
      return {
        query: async () => [],
        close: () => {
          closed.push(key);
          return close();
        },
      };
    },
  } as unknown as DatabaseEngine;
  const deps = {
    registry: {
      async list() {
        return neighbour
          ? [{ engine, placement: 'shared', cloneId: 'other', database: neighbour } as unknown as CloneRecord]
          : [];
      },
    },
  } as unknown as CloneWorkflowDeps;
  const state: CloneWorkflowState = {
    tenantId: 'acme',
    cloneId: `c-${engine}-${Math.random().toString(36).slice(2)}`,
    engine,
    placement: 'shared',
    version: 'v1.1',
    industry: 'finance',
    sampleSize: 15,
    image: 'cf_img',
    database: 'cf_own',
  };
  const credentials = {
    engine,
    database: 'cf_own',
    roles: {
      admin: { username: 'adm', password: 'p1' },
      user: { username: 'usr', password: 'p2' },
      analyst: { username: 'ana', password: 'p3' },
    },
  };
  return { probe: () => isolationProbe(fake, deps, state, credentials), logins, closed };
}

describe('isolation probe', () => {
  it('needs three logins when the server says its refusals came after authentication', async () => {
    const { probe, logins } = setup(
      'postgresql',
      { 'adm@cf_other': 'refused-authenticated', 'usr@postgres': 'refused-authenticated' },
      'cf_other',
    );
    expect(await probe()).toEqual([]);
    expect(logins.sort()).toEqual(['adm@cf_other', 'ana@cf_own', 'usr@postgres']);
  });

  it('closes every session it opened without waiting for the close, which may fail', async () => {
    const never = () => new Promise<void>(() => {});
    const { probe, closed } = setup(
      'postgresql',
      { 'adm@cf_other': 'refused-authenticated', 'usr@postgres': 'refused-authenticated' },
      'cf_other',
      never,
    );
    expect(await probe()).toEqual([]);
    expect(closed).toEqual(['ana@cf_own']);
    const failing = setup('sqlite', { 'adm@cf_other': 'refused' }, 'cf_other', async () => {
      throw new Error('close failed');
    });
    // A rejected close is neither the probe's problem nor an unhandled rejection (vitest fails the run on one).
    expect(await failing.probe()).toEqual([]);
    expect(failing.closed.sort()).toEqual(['adm@cf_own', 'ana@cf_own', 'usr@cf_own']);
  });

  it("fails when the admin login opens another tenant's database", async () => {
    const { probe } = setup('postgresql', { 'usr@postgres': 'refused-authenticated' }, 'cf_other');
    expect(await probe()).toEqual(["the tenant's admin login opened cf_other"]);
  });

  it("fails when the user login opens the server's own database", async () => {
    const { probe } = setup('mysql', { 'adm@cf_img': 'refused-authenticated' });
    expect(await probe()).toEqual(["the tenant's user login opened mysql"]);
  });

  it('probes the root image when there is no other tenant', async () => {
    const { probe, logins } = setup('postgresql', {
      'adm@cf_img': 'refused-authenticated',
      'usr@postgres': 'refused-authenticated',
    });
    expect(await probe()).toEqual([]);
    expect(logins).toContain('adm@cf_img');
  });

  it('does not count an unreachable server as a refusal', async () => {
    const { probe } = setup(
      'postgresql',
      { 'adm@cf_other': 'unreachable', 'usr@postgres': 'refused-authenticated' },
      'cf_other',
    );
    const problems = await probe();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^could not probe cf_other as admin: .*connection refused/);
  });

  it('opens the own database with a role whose refusal proved nothing about its password', async () => {
    const { probe, logins } = setup(
      'postgresql',
      { 'adm@cf_other': 'refused', 'usr@postgres': 'refused-authenticated', 'adm@cf_own': 'refused' },
      'cf_other',
    );
    expect(await probe()).toEqual(['admin cannot open its own database: login refused for database cf_own']);
    expect(logins.sort()).toEqual(['adm@cf_other', 'adm@cf_own', 'ana@cf_own', 'usr@postgres']);
  });

  it('fails when the analyst cannot open its own database', async () => {
    const { probe } = setup(
      'postgresql',
      {
        'adm@cf_other': 'refused-authenticated',
        'usr@postgres': 'refused-authenticated',
        'ana@cf_own': 'refused',
      },
      'cf_other',
    );
    expect(await probe()).toEqual([
      'analyst cannot open its own database: login refused for database cf_own',
    ]);
  });

  it('on SQLite, where logins live in each file, opens the own database with every role', async () => {
    const { probe, logins } = setup('sqlite', { 'adm@cf_other': 'refused' }, 'cf_other');
    expect(await probe()).toEqual([]);
    expect(logins.sort()).toEqual(['adm@cf_other', 'adm@cf_own', 'ana@cf_own', 'usr@cf_own']);
  });
});
