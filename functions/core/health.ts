import pMap from 'p-map';
import type { DatabaseEngine } from './engine.js';
import { errorMessage, LoginRefusedError, TenantStateConflictError } from './errors.js';
import { fingerprint } from './fingerprint.js';
import type { CloneTarget } from './placement.js';
import type { CloneRegistry } from './registry.js';
import { parseCredentials, type SecretStore } from './secrets.js';
import type { CloneHealth, CloneRecord } from './tenants.js';

/** The monitor's schedule: every 30 seconds locally; EventBridge's minimum, 1 minute, on AWS. */
export const HEALTH_INTERVAL_SECONDS = 30;
/** Clones checked at the same time: 1,000 clones at about 50 ms each fit one interval. */
export const DEFAULT_HEALTH_CONCURRENCY = 8;
/** Share of the clones whose isolation is probed per pass (each probe costs a login). */
export const DEFAULT_ISOLATION_SAMPLE = 0.1;

export interface HealthDeps {
  readonly registry: CloneRegistry;
  readonly secrets: SecretStore;
  engineFor(target: CloneTarget): Promise<DatabaseEngine>;
}

export interface HealthOptions {
  readonly concurrency?: number;
  /** 0 to 1: the share of clones whose cross-tenant isolation is probed this pass. */
  readonly isolationSample?: number;
  readonly now?: () => Date;
  /** Tests: which clones are probed (default: a random sample). */
  readonly sample?: (record: CloneRecord) => boolean;
}

export interface HealthReport {
  readonly checkedAt: string;
  readonly durationMs: number;
  readonly clones: readonly (CloneHealth & { readonly tenantId: string; readonly cloneId: string })[];
  readonly counts: Readonly<Record<CloneHealth['status'], number>> & {
    readonly drifted: number;
    readonly isolationFailures: number;
    readonly probed: number;
  };
}

/**
 * One pass of the health monitor over every READY clone, a bounded number at a time. Each
 * clone's health (HEALTHY, DEGRADED or UNREACHABLE, with its figures) is written to its
 * registry entry; the report carries the fleet's counts for metrics and alarms.
 */
export async function checkFleetHealth(deps: HealthDeps, options: HealthOptions = {}): Promise<HealthReport> {
  const started = performance.now();
  const now = options.now ?? (() => new Date());
  const ready = (await deps.registry.list({ state: 'READY' })).filter((r) => r.database && r.secretId);
  const rate = options.isolationSample ?? DEFAULT_ISOLATION_SAMPLE;
  const sample = options.sample ?? (() => Math.random() < rate);
  // The isolation probe tries a neighbour on the same server: shared clones only (a
  // dedicated clone's neighbours live on other servers, where its roles do not even exist).
  const shared = ready.filter((r) => r.placement === 'shared');
  const out = await pMap(
    ready,
    async (r) => {
      const neighbour =
        r.placement === 'shared' && sample(r)
          ? shared.find((o) => o.cloneId !== r.cloneId && o.engine === r.engine)
          : undefined;
      const health = await checkClone(deps, r, { neighbour, probe: Boolean(neighbour), now });
      try {
        await deps.registry.transition(r.tenantId, r.cloneId, ['READY'], 'READY', { health });
      } catch (error) {
        // Deleted or moved meanwhile: its health is no longer this pass's business.
        if (!(error instanceof TenantStateConflictError)) throw error;
      }
      return { tenantId: r.tenantId, cloneId: r.cloneId, ...health };
    },
    { concurrency: Math.max(1, options.concurrency ?? DEFAULT_HEALTH_CONCURRENCY) },
  );
  const count = (s: CloneHealth['status']) => out.filter((c) => c.status === s).length;
  return {
    checkedAt: now().toISOString(),
    durationMs: Math.round(performance.now() - started),
    clones: out,
    counts: {
      HEALTHY: count('HEALTHY'),
      DEGRADED: count('DEGRADED'),
      UNREACHABLE: count('UNREACHABLE'),
      drifted: out.filter((c) => c.drift).length,
      isolationFailures: out.filter((c) => c.isolation === 'failed').length,
      probed: out.filter((c) => c.isolation !== 'not sampled').length,
    },
  };
}

/**
 * One clone: opens a session as the tenant's own `analyst` role (connectivity) and times a
 * query (latency), reads its size and open sessions, compares its live fingerprint with the
 * registry's (drift) and, when sampled, tries the tenant's `admin` login on a neighbour's
 * database, which must be refused (isolation). A login that fails makes it UNREACHABLE;
 * drift or a failed isolation probe, DEGRADED.
 */
export async function checkClone(
  deps: HealthDeps,
  record: CloneRecord,
  options: { neighbour?: CloneRecord; probe?: boolean; now?: () => Date } = {},
): Promise<CloneHealth> {
  const checkedAt = (options.now ?? (() => new Date()))().toISOString();
  const database = record.database as string;
  const problems: string[] = [];
  let engine: DatabaseEngine;
  let credentials: ReturnType<typeof parseCredentials>;
  try {
    engine = await deps.engineFor(record);
    const stored = await deps.secrets.get(record.secretId as string);
    if (!stored) throw new Error(`secret ${record.secretId} is missing`);
    credentials = parseCredentials(stored, record.secretId as string);
  } catch (error) {
    return { status: 'UNREACHABLE', checkedAt, problems: [errorMessage(error)], isolation: 'not sampled' };
  }
  const login = credentials.roles.analyst;
  let latencyMs: number;
  try {
    if (!login) throw new Error('credentials have no analyst login');
    const session = await engine.openSession(database, login, { statementTimeoutMs: 5000 });
    try {
      const t0 = performance.now();
      await session.query('SELECT 1 AS ok');
      latencyMs = Math.round((performance.now() - t0) * 100) / 100;
    } finally {
      await session.close();
    }
  } catch (error) {
    return {
      status: 'UNREACHABLE',
      checkedAt,
      problems: [`cannot open ${database} as the tenant's analyst: ${errorMessage(error)}`],
      isolation: 'not sampled',
    };
  }
  let sizeBytes: number | undefined;
  let connections: number | undefined;
  let drift = false;
  try {
    ({ sizeBytes, connections } = await engine.databaseStats(database));
    const live = fingerprint(await engine.introspect(database)).hash;
    drift = Boolean(record.fingerprint) && live !== record.fingerprint;
    if (drift)
      problems.push(
        `schema drifted: fingerprint ${live.slice(0, 12)}, recorded ${String(record.fingerprint).slice(0, 12)}`,
      );
  } catch (error) {
    problems.push(`cannot read its figures: ${errorMessage(error)}`);
  }
  let isolation: CloneHealth['isolation'] = 'not sampled';
  const admin = credentials.roles.admin;
  if (options.probe && options.neighbour?.database && admin) {
    try {
      const session = await engine.openSession(options.neighbour.database, admin);
      await session.close();
      isolation = 'failed';
      problems.push(`its admin login opened ${options.neighbour.tenantId}'s database`);
    } catch (error) {
      // Anything but a refusal (the neighbour's database is gone, its server down) proves
      // nothing either way: the probe counts as not made, and another pass samples again.
      if (error instanceof LoginRefusedError) isolation = 'passed';
    }
  }
  return {
    status: problems.length ? 'DEGRADED' : 'HEALTHY',
    checkedAt,
    latencyMs,
    ...(sizeBytes !== undefined ? { sizeBytes } : {}),
    ...(connections !== undefined ? { connections } : {}),
    drift,
    isolation,
    problems,
  };
}
