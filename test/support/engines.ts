import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import { LocalEnvironment } from '../../local/environment.js';

/** Every test run's databases start with this, so leftovers of a crashed run can be found. */
export const TEST_PREFIX = 'cft';

/** A namespace of its own for one test file: `cft` + 4 hex digits (short enough for MySQL user names). */
export function testNamespace(): string {
  return `${TEST_PREFIX}${randomBytes(2).toString('hex')}`;
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `clonefactory-${label}-`));
}

export interface EngineProbe {
  readonly name: EngineName;
  readonly engine?: DatabaseEngine;
  /** Why the engine is not available; set when `engine` is not. */
  readonly skipReason?: string;
}

/**
 * Connects to each engine as the CLI would (PG_URL, MYSQL_URL, CLONEFACTORY_HOME). MySQL may
 * be missing on a developer machine: it is then reported with its reason, unless
 * REQUIRE_MYSQL=1, which makes the missing server fail the run. PostgreSQL and SQLite are
 * always required.
 */
export async function probeEngines(home: string = tempDir('home')): Promise<{
  env: LocalEnvironment;
  probes: Record<EngineName, EngineProbe>;
}> {
  const env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: home } });
  const probes = {} as Record<EngineName, EngineProbe>;
  for (const name of ['postgresql', 'mysql', 'sqlite'] as const) {
    const r = await env.tryEngine(name);
    if ('engine' in r) probes[name] = { name, engine: r.engine };
    else if (name === 'mysql' && process.env.REQUIRE_MYSQL !== '1')
      probes[name] = {
        name,
        skipReason: `MySQL not reachable (${r.reason}); set REQUIRE_MYSQL=1 to make this fail`,
      };
    else throw new Error(`${name} is required for the tests but not reachable: ${r.reason}`);
  }
  return { env, probes };
}

/** Drops every database of a namespace (cleanup after a test file). */
export async function dropNamespace(engine: DatabaseEngine, namespace: string): Promise<void> {
  for (const db of await engine.listDatabases(`${namespace}_`)) await engine.dropDatabase(db);
}

/** The title of a describe block, naming the skip reason when the engine is missing. */
export function engineTitle(probe: EngineProbe): string {
  return probe.skipReason ? `${probe.name} (skipped: ${probe.skipReason})` : probe.name;
}
