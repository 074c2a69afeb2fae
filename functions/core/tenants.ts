import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ENGINE_NAMES, type EngineName } from './engine.js';
import { InvalidIdentifierError } from './errors.js';
import { assertDatabaseName, assertNamespace } from './identifiers.js';

/** Tenant ids: lowercase, start with a letter, 3 to 31 characters of letters, digits and `-`. */
export const TENANT_ID = /^[a-z][a-z0-9-]{2,30}$/;

/**
 * Names that would confuse an operator or collide with an engine's own objects if they ever
 * leaked into a physical name. Physical names are derived from the clone id, not the tenant
 * id, so this is defence in depth and clarity, not the only wall.
 */
export const RESERVED_TENANT_IDS: ReadonlySet<string> = new Set([
  'postgres',
  'template0',
  'template1',
  'mysql',
  'information-schema',
  'information_schema',
  'performance-schema',
  'performance_schema',
  'sys',
  'sqlite',
  'admin',
  'root',
  'public',
  'default',
  'system',
  'clonefactory',
  'tenants',
  'templates',
  'health',
  'api',
  'me',
]);

/** Returns the tenant id when valid; else InvalidIdentifierError naming the rule. */
export function assertTenantId(id: unknown): string {
  if (typeof id !== 'string' || !TENANT_ID.test(id)) {
    throw new InvalidIdentifierError(
      'tenant id',
      String(id),
      'must match ^[a-z][a-z0-9-]{2,30}$ (3 to 31 lowercase letters, digits or dashes, starting with a letter)',
    );
  }
  if (RESERVED_TENANT_IDS.has(id)) throw new InvalidIdentifierError('tenant id', id, 'is a reserved name');
  return id;
}

export const CLONE_ID = /^[0-9a-f]{12}$/;

/** A fresh opaque clone id: 48 random bits, 12 hex digits. */
export function newCloneId(): string {
  return randomBytes(6).toString('hex');
}

export function assertCloneId(id: unknown): string {
  if (typeof id !== 'string' || !CLONE_ID.test(id))
    throw new InvalidIdentifierError('clone id', String(id), 'must be 12 lowercase hex digits');
  return id;
}

/** MOVING: a READY clone being copied to its other placement (`tenants move`); not served meanwhile. */
export const CLONE_STATES = [
  'PENDING',
  'CREATING',
  'READY',
  'MOVING',
  'FAILED',
  'DELETING',
  'DELETED',
] as const;
export type CloneState = (typeof CLONE_STATES)[number];

export const PLACEMENTS = ['shared', 'dedicated'] as const;
export type Placement = (typeof PLACEMENTS)[number];

export const APP_ROLES = ['admin', 'user', 'analyst'] as const;
export type AppRole = (typeof APP_ROLES)[number];

/** Where one tenant stands in a fleet upgrade run, as the registry records it while the run goes. */
export const UPGRADE_STATUSES = ['queued', 'upgrading', 'upgraded', 'failed', 'skipped'] as const;
export type UpgradeStatus = (typeof UPGRADE_STATUSES)[number];

export interface TenantUpgradeStatus {
  /** The fleet run; absent for a single-tenant `tenants upgrade`. */
  readonly runId?: string;
  readonly to: string;
  readonly status: UpgradeStatus;
  /** Why it failed, or why it was skipped. */
  readonly detail?: string;
  /** How long the tenant's upgrade took (`upgraded` only). */
  readonly durationMs?: number;
  readonly at: string;
}

/** The health monitor's last look at a clone (see checkFleetHealth). */
export interface CloneHealth {
  readonly status: 'HEALTHY' | 'DEGRADED' | 'UNREACHABLE';
  readonly checkedAt: string;
  /** A `SELECT 1` as the tenant's analyst, after the session opened. */
  readonly latencyMs?: number;
  readonly sizeBytes?: number;
  readonly connections?: number;
  /** The live fingerprint differs from the registry's. */
  readonly drift?: boolean;
  readonly isolation: 'passed' | 'failed' | 'not sampled';
  readonly problems: readonly string[];
}

/** The registry's view of one tenant's clone. Holds ids and coordinates, never a password. */
export interface CloneRecord {
  readonly tenantId: string;
  readonly cloneId: string;
  readonly state: CloneState;
  readonly engine: EngineName;
  readonly placement: Placement;
  readonly version: string;
  readonly industry: string;
  readonly database?: string;
  readonly endpoint?: string;
  readonly secretId?: string;
  readonly fingerprint?: string;
  readonly executionName?: string;
  readonly lastError?: string;
  /** Migration files applied since the clone was made, oldest first (its version table has the same). */
  readonly migrations?: readonly string[];
  /** The tenant this one was branched from. */
  readonly branchOf?: string;
  /** The health monitor's last result. */
  readonly health?: CloneHealth;
  /** The last upgrade of this tenant, as it goes. */
  readonly upgrade?: TenantUpgradeStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Incremented by every write; conditional writes compare it. */
  readonly rev: number;
}

/** What an operator asks for. Validated at every edge (API, CLI, first workflow step). */
export const createTenantRequest = z.strictObject({
  tenantId: z.string().max(64),
  engine: z.enum(ENGINE_NAMES),
  industry: z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'must be a lowercase word'),
  version: z.string().regex(/^v\d+\.\d+$/, 'must look like v1.0'),
  placement: z.enum(PLACEMENTS).default('shared'),
  /** Rows of per-tenant sample data; for benchmarks. */
  sampleSize: z.number().int().min(0).max(100_000).default(20),
  /**
   * A branch: the READY shared tenant whose live database (data included) this clone copies,
   * with the engine's own copy, instead of the root image. Engine, version and industry must be its.
   */
  branchOf: z.string().max(64).optional(),
});
export type CreateTenantRequest = z.infer<typeof createTenantRequest>;

/** The physical names of one clone's artefacts, all derived from its clone id. */
export interface PhysicalNames {
  readonly database: string;
  readonly ownerRole: string;
  readonly roles: Readonly<Record<AppRole, string>>;
  readonly secretId: string;
}

/**
 * Derives a clone's physical names. They are opaque (no tenant id in them: PostgreSQL lets
 * every role list database names) and short enough for MySQL's 32-character user names.
 */
export function physicalNames(namespace: string, cloneId: string): PhysicalNames {
  const ns = assertNamespace(namespace);
  const id = assertCloneId(cloneId);
  const role = (suffix: string) => {
    const name = assertDatabaseName(`${ns}_r_${id}_${suffix}`);
    if (name.length > 32)
      throw new InvalidIdentifierError('role name', name, 'must be at most 32 characters (MySQL)');
    return name;
  };
  return {
    database: assertDatabaseName(`${ns}_t_${id}`),
    ownerRole: role('owner'),
    roles: { admin: role('admin'), user: role('user'), analyst: role('analyst') },
    secretId: `${ns}/clones/${id}`,
  };
}
