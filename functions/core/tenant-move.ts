import type { DatabaseEngine, SqlExecutor } from './engine.js';
import {
  CloneFactoryError,
  errorMessage,
  ForeignArtefactError,
  TenantNotFoundError,
  TenantStateConflictError,
  ValidationError,
} from './errors.js';
import { fingerprint } from './fingerprint.js';
import { RootImageManager } from './images.js';
import type { CloneTarget } from './placement.js';
import { parseCredentials } from './secrets.js';
import { APP_ROLES, assertTenantId, PLACEMENTS, type Placement, physicalNames } from './tenants.js';
import { type CloneWorkflowDeps, dedicatedProvisioner } from './workflow/clone-workflow.js';

/** The data did not arrive whole at the new placement; nothing was switched. */
export class MoveVerificationError extends CloneFactoryError {
  constructor(
    readonly tenantId: string,
    readonly problems: readonly string[],
  ) {
    super(`move of ${tenantId} failed verification: ${problems.join('; ')}`);
    this.name = 'MoveVerificationError';
  }
}

export interface MoveResult {
  readonly tenantId: string;
  readonly cloneId: string;
  readonly from: Placement;
  readonly to: Placement;
  readonly endpoint: string;
  /** Rows copied, per table. */
  readonly rows: Readonly<Record<string, number>>;
  readonly fingerprint: string;
  /** Whether the old copy was removed (false: the move is done, the old copy is left; see the log). */
  readonly oldRemoved: boolean;
}

export interface MoveOptions {
  /** Polls of the new instance's status before giving up (1 s apart). */
  readonly instancePolls?: number;
  readonly log?: (message: string) => void;
}

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
function q(name: string): string {
  if (!TABLE_NAME.test(name)) throw new ValidationError(`unexpected table name ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/**
 * Moves a READY PostgreSQL tenant between the shared server and a server of its own, keeping
 * its clone id (so its physical names, its secret and its users' mappings stay the same):
 *
 * 1. the entry goes READY → MOVING (the authorizer serves only READY clones);
 * 2. the new placement gets the clone's database from the root image, and its roles with the
 *    same passwords;
 * 3. in one source transaction that locks every table against writes (readers go on), each
 *    table's rows are copied as JSON (lossless for every PostgreSQL type) and the sequences
 *    are set;
 * 4. the copy must have the source's fingerprint and row counts; then the secret gets the new
 *    host and port and the entry goes MOVING → READY with the new placement and endpoint;
 * 5. the old database and roles (or the old instance) are removed.
 *
 * Any failure before the switch removes what was made at the new placement and puts the
 * entry back to READY where it was: nothing is lost, nothing is half-moved.
 */
export async function moveTenant(
  deps: CloneWorkflowDeps,
  tenantId: string,
  to: unknown,
  options: MoveOptions = {},
): Promise<MoveResult> {
  assertTenantId(tenantId);
  if (!PLACEMENTS.includes(to as Placement))
    throw new ValidationError(`placement must be one of ${PLACEMENTS.join(', ')}`, 'placement');
  const placement = to as Placement;
  const record = await deps.registry.get(tenantId);
  if (!record || record.state === 'DELETED') throw new TenantNotFoundError(tenantId);
  // MOVING with nobody moving it here: a move cut short by a crash, which this one takes up.
  if (record.state !== 'READY' && !(record.state === 'MOVING' && !moving.has(tenantId)))
    throw new TenantStateConflictError(tenantId, record.state, 'move it once it is READY');
  if (record.placement === placement)
    throw new ValidationError(`${tenantId} is already ${placement}`, 'placement');
  if (record.engine !== 'postgresql')
    throw new ValidationError(
      `moving between placements is built for PostgreSQL, not ${record.engine}`,
      'engine',
    );
  if (placement === 'dedicated') dedicatedProvisioner(deps, record.engine);
  const log = options.log ?? (() => {});
  const names = physicalNames(deps.namespace, record.cloneId);
  const database = record.database ?? names.database;
  const source: CloneTarget = { ...record, placement: record.placement };
  const target: CloneTarget = { ...record, placement };

  if (moving.has(tenantId)) throw new TenantStateConflictError(tenantId, 'MOVING', 'a move of it is running');
  moving.add(tenantId);
  if (record.state === 'MOVING') log(`taking up the interrupted move of ${tenantId}`);
  let switched = false;
  try {
    await deps.registry.transition(tenantId, record.cloneId, ['READY', 'MOVING'], 'MOVING');
    const stored = await deps.secrets.get(names.secretId);
    if (!stored) throw new ValidationError(`the secret of ${tenantId} is missing`);
    const credentials = parseCredentials(stored, names.secretId);
    const targetEngine = await prepareTarget(deps, target, database, options, log);
    await targetEngine.configureTenantAccess({
      cloneId: record.cloneId,
      database,
      ownerRole: names.ownerRole,
      roles: APP_ROLES.map((appRole) => {
        const login = credentials.roles[appRole];
        if (!login) throw new ValidationError(`credentials of ${tenantId} have no ${appRole} login`);
        return { appRole, name: names.roles[appRole], password: login.password };
      }),
      connectionLimit: deps.connectionLimit ?? 20,
    });
    const sourceEngine = await deps.engineFor(source);
    const result = await sourceEngine.transaction(database, async (src) => {
      const tables = (
        await src.query<{ name: string }>(
          "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
        )
      ).map((t) => t.name);
      // Writers wait (and then find the database gone); readers go on.
      if (tables.length) await src.query(`LOCK TABLE ${tables.map(q).join(', ')} IN EXCLUSIVE MODE`);
      log(`copying ${tables.length} tables of ${tenantId}`);
      const rows = await targetEngine.transaction(database, (dst) => copyTables(src, dst, tables));
      const [before, after] = await Promise.all([
        sourceEngine.introspect(database),
        targetEngine.introspect(database),
      ]);
      const problems: string[] = [];
      const expected = fingerprint(before).hash;
      const actual = fingerprint(after).hash;
      if (actual !== expected)
        problems.push(`fingerprint ${actual.slice(0, 12)} differs from ${expected.slice(0, 12)}`);
      const counted = await targetEngine.transaction(database, async (dst) => {
        const counts: Record<string, number> = {};
        for (const t of tables)
          counts[t] = Number((await dst.query<{ n: string }>(`SELECT count(*) AS n FROM ${q(t)}`))[0]?.n);
        return counts;
      });
      for (const t of tables)
        if (counted[t] !== rows[t])
          problems.push(`${t}: ${counted[t]} rows at the new placement, ${rows[t]} here`);
      if (problems.length) throw new MoveVerificationError(tenantId, problems);
      // The switch: the secret first (its passwords are unchanged), then the entry.
      const endpoint = targetEngine.endpoint(database);
      await deps.secrets.put(
        names.secretId,
        JSON.stringify({ ...credentials, host: endpoint.host, port: endpoint.port }),
        { cloneId: record.cloneId, tenantId, managedBy: 'clonefactory' },
      );
      const moved = await deps.registry.transition(tenantId, record.cloneId, ['MOVING'], 'READY', {
        placement,
        database,
        endpoint: `${endpoint.host}:${endpoint.port}/${database}`,
        fingerprint: actual,
      });
      switched = true;
      return { rows, endpoint: moved.endpoint as string, fingerprint: actual };
    });
    log(`${tenantId} now ${placement}; removing the old placement`);
    // The move is done: an old copy that cannot be removed now is reported, not undone.
    const oldRemoved = await removePlacement(deps, sourceEngine, source, database).then(
      () => true,
      (error: unknown) => {
        log(`could not remove the old placement of ${tenantId}: ${errorMessage(error)}`);
        return false;
      },
    );
    return {
      tenantId,
      cloneId: record.cloneId,
      from: record.placement,
      to: placement,
      ...result,
      oldRemoved,
    };
  } catch (error) {
    if (switched) throw error;
    log(`move of ${tenantId} failed (${errorMessage(error)}); removing the new placement`);
    await removeTarget(deps, target, database).catch((cleanup) =>
      log(`could not remove the new placement of ${tenantId}: ${errorMessage(cleanup)}`),
    );
    await deps.registry.transition(tenantId, record.cloneId, ['MOVING'], 'READY').catch(() => {});
    throw error;
  } finally {
    moving.delete(tenantId);
  }
}

/** Tenants this process is moving: a second move of one is refused while it runs. */
const moving = new Set<string>();

/** The clone's database at the new placement, from the root image, marked with the clone id. */
async function prepareTarget(
  deps: CloneWorkflowDeps,
  target: CloneTarget,
  database: string,
  options: MoveOptions,
  log: (message: string) => void,
): Promise<DatabaseEngine> {
  const record = await deps.registry.get(target.tenantId);
  const { version, industry } = record ?? { version: '', industry: '' };
  if (target.placement === 'dedicated') {
    const dedicated = dedicatedProvisioner(deps, target.engine);
    await dedicated.prepareImage(target.engine, version, industry);
    let status = await dedicated.provision(target);
    for (let poll = 0; status.state === 'pending' && poll < (options.instancePolls ?? 1200); poll++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      status = await dedicated.status(target);
    }
    if (status.state !== 'available')
      throw new ValidationError(
        `the new instance of ${target.tenantId} is ${status.state}: ${status.detail ?? ''}`,
      );
    log(`instance of ${target.tenantId} available at ${status.endpoint}`);
  }
  const engine = await deps.engineFor(target);
  const image = await new RootImageManager(engine, deps.catalog, { namespace: deps.namespace }).ensure(
    version,
    industry,
  );
  if (await engine.databaseExists(database)) {
    // A leftover of an earlier attempt of this same move: start over. Another clone's: refuse.
    const owner = (await engine.readMarker(database))?.cloneId;
    if (owner !== target.cloneId) throw new ForeignArtefactError('database', database, owner ?? '(unmarked)');
    await engine.dropDatabase(database);
  }
  // No tenant id in the marker (see Create database).
  await engine.cloneDatabase(image.name, database, { kind: 'clone', cloneId: target.cloneId });
  return engine;
}

/**
 * Replaces the target's rows with the source's, table by table, foreign keys not checked
 * until the end of the copy (session_replication_role), then sets every sequence.
 */
async function copyTables(
  src: SqlExecutor,
  dst: SqlExecutor,
  tables: readonly string[],
): Promise<Record<string, number>> {
  await dst.query('SET LOCAL session_replication_role = replica');
  for (const t of tables) await dst.query(`DELETE FROM ${q(t)}`);
  const rows: Record<string, number> = {};
  for (const t of tables) {
    const [data] = await src.query<{ rows: string; n: string }>(
      `SELECT COALESCE(json_agg(t), '[]')::text AS rows, count(*) AS n FROM ${q(t)} t`,
    );
    rows[t] = Number(data?.n ?? 0);
    if (rows[t])
      await dst.query(`INSERT INTO ${q(t)} SELECT * FROM json_populate_recordset(NULL::${q(t)}, ?::json)`, [
        data?.rows,
      ]);
  }
  const sequences = await src.query<{ name: string; value: string | null }>(
    "SELECT sequencename AS name, last_value::text AS value FROM pg_sequences WHERE schemaname = 'public'",
  );
  for (const s of sequences)
    if (s.value !== null)
      await dst.query(`SELECT setval(?::regclass, ?::bigint, true)`, [q(s.name), s.value]);
  return rows;
}

/** Removes the clone from where it was: its database and roles, or its whole instance. */
async function removePlacement(
  deps: CloneWorkflowDeps,
  engine: DatabaseEngine,
  source: CloneTarget,
  database: string,
): Promise<void> {
  if (source.placement === 'dedicated') {
    await dedicatedProvisioner(deps, source.engine).deprovision(source);
    return;
  }
  const names = physicalNames(deps.namespace, source.cloneId);
  const owner = (await engine.readMarker(database))?.cloneId;
  if (owner !== undefined && owner !== source.cloneId)
    throw new ForeignArtefactError('database', database, owner);
  await engine.dropDatabase(database);
  await engine.dropTenantAccess({
    cloneId: source.cloneId,
    database,
    ownerRole: names.ownerRole,
    roleNames: APP_ROLES.map((r) => names.roles[r]),
  });
}

/** Undoes a move that did not switch: the new database and roles, or the new instance. */
async function removeTarget(deps: CloneWorkflowDeps, target: CloneTarget, database: string): Promise<void> {
  if (target.placement === 'dedicated') {
    await dedicatedProvisioner(deps, target.engine).deprovision(target);
    return;
  }
  const engine = await deps.engineFor(target);
  if (await engine.databaseExists(database)) await removePlacement(deps, engine, target, database);
  else {
    const names = physicalNames(deps.namespace, target.cloneId);
    await engine.dropTenantAccess({
      cloneId: target.cloneId,
      database,
      ownerRole: names.ownerRole,
      roleNames: APP_ROLES.map((r) => names.roles[r]),
    });
  }
}
