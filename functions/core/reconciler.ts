import type { DatabaseEngine, Marker } from './engine.js';
import { errorMessage, TenantStateConflictError } from './errors.js';
import type { DedicatedProvisioner } from './placement.js';
import type { CloneRegistry } from './registry.js';
import type { SecretStore } from './secrets.js';
import { APP_ROLES, type CloneRecord, type CloneState, physicalNames } from './tenants.js';
import { removeArtefacts } from './workflow/clone-workflow.js';

/**
 * Longer than the longest execution that can be making an artefact: the clone state machine
 * times out after an hour, a dry run's branch lives for one item's five-minute Lambda.
 */
export const DEFAULT_GRACE_MS = 2 * 60 * 60_000;

/** Entries whose clone may still be making or removing artefacts. */
const LIVE_STATES: readonly CloneState[] = ['PENDING', 'CREATING', 'READY', 'MOVING', 'DELETING'];
/** Entries that an execution is working on; stuck when no write came for longer than the grace. */
const IN_FLIGHT: readonly CloneState[] = ['PENDING', 'CREATING', 'MOVING', 'DELETING'];

export interface ReconcileDeps {
  readonly registry: CloneRegistry;
  readonly secrets: SecretStore;
  readonly namespace: string;
  /** The shared servers (and SQLite directory) to look through. */
  readonly engines: readonly DatabaseEngine[];
  /** Dedicated instances, where the provisioner can list them. */
  readonly dedicated?: DedicatedProvisioner;
  /** Starts a deletion again (a stuck DELETING entry). */
  readonly restartDeletion?: (tenantId: string) => Promise<void>;
}

export interface ReconcileOptions {
  /** Without it nothing is changed: the report says what would be. */
  readonly apply?: boolean;
  readonly graceMs?: number;
  readonly now?: Date;
}

export type ArtefactAction =
  | 'removed'
  | 'would remove'
  | 'kept: younger than the grace period'
  | 'kept: no timestamp';

export interface OrphanArtefact {
  readonly kind: 'database' | 'role' | 'secret' | 'instance';
  readonly name: string;
  /** The engine's location, or `secrets`. */
  readonly where: string;
  /** The clone id its marker names (absent for branches and scratch copies). */
  readonly cloneId?: string;
  readonly ageMs?: number;
  readonly action: ArtefactAction;
  readonly error?: string;
}

export interface ReconcileReport {
  readonly applied: boolean;
  readonly graceMs: number;
  readonly at: string;
  readonly orphans: readonly OrphanArtefact[];
  /** READY entries whose database is not there. */
  readonly dangling: readonly { tenantId: string; cloneId: string; database?: string; reason: string }[];
  /** In-flight entries with no write for longer than the grace period, and what was done. */
  readonly stuck: readonly {
    tenantId: string;
    cloneId: string;
    state: CloneState;
    updatedAt: string;
    action: string;
  }[];
  /** Databases under the namespace that carry no marker: never touched, only counted. */
  readonly unmarked: number;
  readonly counts: Readonly<Record<'orphans' | 'removed' | 'dangling' | 'stuck' | 'unmarked', number>>;
}

/**
 * Makes the registry and reality agree. It finds:
 * - orphans: databases, roles and secrets whose marker names a clone with no live registry
 *   entry (and branches or scratch copies a dry run or drift report left behind);
 * - dangling entries: READY entries whose database is gone;
 * - stuck entries: in-flight entries with no write for longer than the grace period.
 * With `apply` it removes orphans older than the grace period, fails stuck creations (their
 * artefacts become orphans, removed on a later pass) and restarts stuck deletions. It never
 * touches what carries no marker, nor anything younger than the grace period.
 */
export async function reconcile(
  deps: ReconcileDeps,
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const apply = options.apply ?? false;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const now = options.now ?? new Date();
  const records = await deps.registry.list();
  const live = new Set(records.filter((r) => LIVE_STATES.includes(r.state)).map((r) => r.cloneId));
  const ns = deps.namespace;
  const orphans: OrphanArtefact[] = [];
  let unmarked = 0;

  const decide = (marker: Marker | null): { ageMs?: number; action: ArtefactAction } => {
    const created = marker?.createdAt ? Date.parse(marker.createdAt) : Number.NaN;
    if (Number.isNaN(created)) return { action: 'kept: no timestamp' };
    const ageMs = now.getTime() - created;
    if (ageMs <= graceMs) return { ageMs, action: 'kept: younger than the grace period' };
    return { ageMs, action: apply ? 'removed' : 'would remove' };
  };
  const attempt = async (entry: OrphanArtefact, remove: () => Promise<void>) => {
    if (entry.action !== 'removed') return orphans.push(entry);
    try {
      await remove();
      orphans.push(entry);
    } catch (error) {
      orphans.push({ ...entry, action: 'would remove', error: errorMessage(error) });
    }
  };

  for (const engine of deps.engines) {
    const databases = [
      ...(await engine.listDatabases(`${ns}_t_`)),
      ...(await engine.listDatabases(`${ns}_branch_`)),
      ...(await engine.listDatabases(`${ns}_scratch_`)),
    ];
    for (const name of databases) {
      const marker = await engine.readMarker(name);
      if (!marker) {
        unmarked++;
        continue;
      }
      const cloneId = marker.cloneId;
      if (cloneId && live.has(cloneId)) continue;
      if (!cloneId && !['branch', 'scratch'].includes(marker.kind ?? '')) {
        unmarked++;
        continue;
      }
      const entry = { kind: 'database' as const, name, where: engine.location, cloneId, ...decide(marker) };
      // An orphan clone goes the way a rollback removes one: database, roles and secret.
      await attempt(entry, async () => {
        if (cloneId && physicalNames(ns, cloneId).database === name)
          await removeArtefacts(engine, deps, cloneId);
        else await engine.dropDatabase(name);
      });
    }
    for (const role of (await engine.listMarkedRoles?.(`${ns}_r_`)) ?? []) {
      const cloneId = role.marker?.cloneId;
      if (!cloneId) {
        unmarked++;
        continue;
      }
      if (live.has(cloneId)) continue;
      // Dropped above with its database already, in this same pass.
      if (orphans.some((o) => o.kind === 'database' && o.cloneId === cloneId && o.action === 'removed'))
        continue;
      const names = physicalNames(ns, cloneId);
      await attempt(
        { kind: 'role', name: role.name, where: engine.location, cloneId, ...decide(role.marker) },
        () =>
          engine.dropTenantAccess({
            cloneId,
            database: names.database,
            ownerRole: names.ownerRole,
            roleNames: APP_ROLES.map((r) => names.roles[r]).filter((n) => n === role.name),
          }),
      );
    }
  }

  for (const instance of (await deps.dedicated?.listInstances()) ?? []) {
    if (live.has(instance.cloneId)) continue;
    await attempt(
      {
        kind: 'instance',
        name: `${instance.engine} instance of clone ${instance.cloneId}`,
        where: 'dedicated',
        cloneId: instance.cloneId,
        ...decide({ createdAt: instance.createdAt }),
      },
      () => (deps.dedicated as DedicatedProvisioner).deprovision({ ...instance, placement: 'dedicated' }),
    );
  }

  for (const id of await deps.secrets.list(`${ns}/clones/`)) {
    const tags = await deps.secrets.tags(id);
    const cloneId = tags?.cloneId;
    if (!tags || !cloneId || tags.managedBy !== 'clonefactory') continue;
    if (live.has(cloneId)) continue;
    await attempt({ kind: 'secret', name: id, where: 'secrets', cloneId, ...decide(tags) }, () =>
      deps.secrets.delete(id),
    );
  }

  const dangling: ReconcileReport['dangling'][number][] = [];
  for (const r of records.filter((x) => x.state === 'READY' && x.placement === 'shared')) {
    const engine = deps.engines.find((e) => e.engine === r.engine);
    if (!engine) continue;
    try {
      if (!r.database || !(await engine.databaseExists(r.database)))
        dangling.push({
          tenantId: r.tenantId,
          cloneId: r.cloneId,
          database: r.database,
          reason: 'database is gone',
        });
    } catch (error) {
      dangling.push({
        tenantId: r.tenantId,
        cloneId: r.cloneId,
        database: r.database,
        reason: errorMessage(error),
      });
    }
  }

  const stuck: ReconcileReport['stuck'][number][] = [];
  for (const r of records.filter((x) => IN_FLIGHT.includes(x.state))) {
    const idleMs = now.getTime() - Date.parse(r.updatedAt);
    if (!(idleMs > graceMs)) continue;
    stuck.push({
      tenantId: r.tenantId,
      cloneId: r.cloneId,
      state: r.state,
      updatedAt: r.updatedAt,
      action: await unstick(deps, r, apply),
    });
  }

  const removed = orphans.filter((o) => o.action === 'removed' && !o.error).length;
  return {
    applied: apply,
    graceMs,
    at: now.toISOString(),
    orphans,
    dangling,
    stuck,
    unmarked,
    counts: { orphans: orphans.length, removed, dangling: dangling.length, stuck: stuck.length, unmarked },
  };
}

/** A stuck creation is failed (its artefacts go with a later pass); a stuck deletion is started again. */
async function unstick(deps: ReconcileDeps, r: CloneRecord, apply: boolean): Promise<string> {
  if (r.state === 'DELETING') {
    if (!deps.restartDeletion) return 'left: no way to restart deletions here';
    if (!apply) return 'would restart its deletion';
    await deps.restartDeletion(r.tenantId);
    return 'deletion restarted';
  }
  if (r.state === 'MOVING') return 'left: a move resumes itself (`clonectl tenants move` again)';
  if (!apply) return 'would mark FAILED';
  try {
    await deps.registry.transition(r.tenantId, r.cloneId, [r.state], 'FAILED', {
      lastError: `stuck in ${r.state} since ${r.updatedAt}: failed by the reconciler`,
    });
    return 'marked FAILED';
  } catch (error) {
    if (error instanceof TenantStateConflictError) return 'moved on meanwhile';
    // One entry's failure (a throttled registry, say) does not stop the pass: reported, and
    // the next pass tries again.
    return `not marked FAILED (${errorMessage(error)}): the next pass tries again`;
  }
}
