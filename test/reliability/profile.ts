import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The reliability suite's two profiles: `quick` (the default, and what `.ci/run` runs) and
 * `full` (`RELIABILITY_PROFILE=full npm run test:reliability`, whose figures go in
 * docs/RELIABILITY.md). Every suite takes its sizes from here.
 */
export type ProfileName = 'quick' | 'full';

export interface Profile {
  readonly name: ProfileName;
  /** Chaos: create runs with faults injected, at this per-step rate. */
  readonly chaosRuns: number;
  readonly chaosFaultRate: number;
  /** Chaos: runs in which the control plane process is SIGKILLed mid-step and restarted. */
  readonly killRuns: number;
  /** JWT fuzzing: fast-check runs per property. */
  readonly jwtRuns: number;
  /** Load: seconds of traffic, concurrent clients and tenants. */
  readonly loadSeconds: number;
  readonly loadClients: number;
  readonly loadTenants: number;
  /** Isolation matrix: tenants per shared engine, and dedicated PostgreSQL tenants. */
  readonly isolationTenants: number;
  readonly isolationDedicated: number;
  /** The seed of every random choice (fault plans, kill points, fuzzing): a run can be replayed. */
  readonly seed: number;
}

const PROFILES: Record<ProfileName, Omit<Profile, 'seed'>> = {
  quick: {
    name: 'quick',
    chaosRuns: 30,
    chaosFaultRate: 0.2,
    killRuns: 5,
    jwtRuns: 1_000,
    loadSeconds: 20,
    loadClients: 200,
    loadTenants: 20,
    isolationTenants: 5,
    isolationDedicated: 2,
  },
  full: {
    name: 'full',
    chaosRuns: 200,
    chaosFaultRate: 0.2,
    killRuns: 50,
    jwtRuns: 10_000,
    loadSeconds: 60,
    loadClients: 200,
    loadTenants: 20,
    isolationTenants: 5,
    isolationDedicated: 5,
  },
};

function profileFromEnv(env: NodeJS.ProcessEnv): Profile {
  const name = env.RELIABILITY_PROFILE ?? 'quick';
  if (name !== 'quick' && name !== 'full')
    throw new Error(`RELIABILITY_PROFILE must be quick or full, not ${JSON.stringify(name)}`);
  const seed = env.RELIABILITY_SEED === undefined ? 20261127 : Number(env.RELIABILITY_SEED);
  if (!Number.isSafeInteger(seed))
    throw new Error(`RELIABILITY_SEED must be an integer, not ${env.RELIABILITY_SEED}`);
  return { ...PROFILES[name], seed };
}

export const PROFILE: Profile = profileFromEnv(process.env);

/** One suite's figures, as the report shows them; absent figures do not apply to the suite. */
export interface SuiteFigures {
  readonly suite: string;
  readonly runs: number;
  readonly faultsInjected?: number;
  readonly orphans?: number;
  readonly crossTenantSuccesses?: number;
  readonly jwtAllows?: number;
  readonly badInputsTried?: number;
  readonly badInputsRejected?: number;
  readonly load?: {
    readonly seconds: number;
    readonly clients: number;
    readonly tenants: number;
    readonly requests: number;
    readonly throughputPerSecond: number;
    readonly p50Ms: number;
    readonly p95Ms: number;
    readonly p99Ms: number;
    readonly statuses: Record<string, number>;
    readonly rssMaxMb: number;
    readonly connectionsMax: number;
    readonly connectionCap: number;
  };
  /** Anything else the suite measured (per-kind counts, durations). */
  readonly details?: Record<string, unknown>;
}

/** Where suites leave their figures for the report (written by the global teardown). */
export const FIGURES_DIR = fileURLToPath(new URL('../../bench/results/.reliability/', import.meta.url));

export function recordFigures(figures: SuiteFigures): void {
  mkdirSync(FIGURES_DIR, { recursive: true });
  writeFileSync(
    join(FIGURES_DIR, `${figures.suite}.json`),
    JSON.stringify(
      { ...figures, profile: PROFILE.name, seed: PROFILE.seed, at: new Date().toISOString() },
      null,
      1,
    ),
  );
}

/** A small seeded generator (mulberry32): the same seed gives the same faults and kill points. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
