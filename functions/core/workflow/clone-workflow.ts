import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ensureControlTables } from '../control-tables.js';
import { type DatabaseEngine, ENGINE_NAMES, type Endpoint, type EngineName, type Login } from '../engine.js';
import {
  CloneVerificationError,
  DatabaseExistsError,
  errorMessage,
  ForeignArtefactError,
  InstanceFailedError,
  LoginRefusedError,
  TenantStateConflictError,
  ValidationError,
} from '../errors.js';
import { fingerprint } from '../fingerprint.js';
import type { UpgradeRunStore } from '../fleet-upgrade.js';
import { RootImageManager } from '../images.js';
import { type CloneTarget, type DedicatedProvisioner, INSTANCE_STATES } from '../placement.js';
import type { CloneRegistry } from '../registry.js';
import { type CloneCredentials, parseCredentials, type SecretStore } from '../secrets.js';
import type { TemplateCatalog } from '../templates.js';
import {
  APP_ROLES,
  type AppRole,
  assertCloneId,
  assertTenantId,
  PLACEMENTS,
  physicalNames,
} from '../tenants.js';
import { populateSampleData } from './sample-data.js';

/** The six Task states, named exactly as in the state machine. */
export const CLONE_STEPS = [
  'Select template',
  'Create database',
  'Apply schema',
  'Populate data',
  'Configure security',
  'Verify and register',
] as const;
export type CloneStepName = (typeof CLONE_STEPS)[number];
export const ROLLBACK_STEP = 'Roll back clone';
/** The Task states of the dedicated branch, between `Select template` and `Create database`. */
export const INSTANCE_STEPS = ['Provision instance', 'Check instance'] as const;
export type InstanceStepName = (typeof INSTANCE_STEPS)[number];
/** Every Task state of the clone workflow, for handlers and the local runner. */
export const CLONE_TASKS = [...CLONE_STEPS, ...INSTANCE_STEPS, ROLLBACK_STEP] as const;
/** Polls of `Check instance` before the clone is rolled back (with the Wait state's 15 s: 20 minutes). */
export const DEFAULT_INSTANCE_POLLS = 80;

/**
 * The state that flows between the steps. Ids and names only: a strict schema, so that a
 * password can never ride along unnoticed (an unknown field is an error).
 */
export const cloneWorkflowState = z.strictObject({
  tenantId: z.string(),
  cloneId: z.string(),
  engine: z.enum(ENGINE_NAMES),
  placement: z.enum(PLACEMENTS),
  version: z.string(),
  industry: z.string(),
  sampleSize: z.number().int().min(0).max(100_000),
  image: z.string().optional(),
  imageFingerprint: z.string().optional(),
  /** A branch: the source tenant, and its database, which `Create database` copies instead of the image. */
  branchOf: z.string().optional(),
  sourceDatabase: z.string().optional(),
  database: z.string().optional(),
  secretId: z.string().optional(),
  /** Dedicated placement: the instance's status as last seen, and how many polls it took. */
  instanceState: z.enum(INSTANCE_STATES).optional(),
  instancePolls: z.number().int().min(0).optional(),
  /** Set by the Catch of any step: `{ Error, Cause }` as Step Functions writes it. */
  error: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
});
export type CloneWorkflowState = z.infer<typeof cloneWorkflowState>;

export interface CloneWorkflowDeps {
  readonly registry: CloneRegistry;
  readonly secrets: SecretStore;
  readonly catalog: TemplateCatalog;
  /**
   * The server (or directory) that hosts the clone: the shared one of its engine, or its own
   * instance (through `dedicated`) when its placement is dedicated.
   */
  engineFor(target: CloneTarget): Promise<DatabaseEngine>;
  /** Runs dedicated instances; absent where that placement is not deployed. */
  readonly dedicated?: DedicatedProvisioner;
  /** Polls of `Check instance` before giving up (default {@link DEFAULT_INSTANCE_POLLS}). */
  readonly instancePolls?: number;
  /** Prefix of every physical name. */
  readonly namespace: string;
  /** Fleet upgrade runs; absent where the upgrade workflow is not deployed. */
  readonly upgradeRuns?: UpgradeRunStore;
  /** Per tenant login role. Default 20. */
  readonly connectionLimit?: number;
  /** Tests and the chaos harness: throw to inject a failure before or after a step's side effect. */
  readonly faults?: (
    step: string,
    when: 'before' | 'after',
    state: Pick<CloneWorkflowState, 'tenantId' | 'cloneId'>,
  ) => void | Promise<void>;
}

type Step = (state: CloneWorkflowState, deps: CloneWorkflowDeps) => Promise<CloneWorkflowState>;

/**
 * `Apply schema` and `Populate data` write to a clone nobody can use yet, and `Configure
 * security`, which always runs next, writes to it durably (its commits and SQLite's file sync):
 * their own commits need not wait for the disk. A crash in between loses a whole transaction
 * at most, which the retried step writes again (both are idempotent).
 */
const CLONE_WRITES = { durability: 'deferred' } as const;

/** The dedicated provisioner, or a clear refusal when this deployment has none for the engine. */
export function dedicatedProvisioner(deps: CloneWorkflowDeps, engine: EngineName): DedicatedProvisioner {
  if (!deps.dedicated) throw new ValidationError('dedicated placement is not deployed here', 'placement');
  const reason = deps.dedicated.unavailable(engine);
  if (reason) throw new ValidationError(`dedicated ${engine} is not available: ${reason}`, 'placement');
  return deps.dedicated;
}

/** Every step, by state name. Lambda handlers and the local runner both call these. */
export const cloneSteps: Record<(typeof CLONE_TASKS)[number], Step> = {
  'Select template': async (state, deps) => {
    // Input checks before anything is written: a refusal here leaves nothing to roll back
    // (rollback then only marks the entry FAILED with the reason).
    deps.catalog.checkEngine(state.engine);
    deps.catalog.checkVersion(state.version);
    deps.catalog.checkIndustry(state.industry);
    const dedicated = state.placement === 'dedicated' ? dedicatedProvisioner(deps, state.engine) : null;
    const engine = dedicated ? null : await deps.engineFor(state);
    await fault(deps, 'Select template', 'before', state);
    if (state.branchOf) return selectBranchSource(state, deps, engine);
    // One conditional write checks that the entry exists, is this clone's and is not READY
    // or beyond (TenantStateConflictError otherwise, which the state machine does not roll back).
    // The root image is shared and idempotent to ensure: it is looked up while the entry moves.
    // A dedicated clone's image is prepared by its provisioner (or built in its instance).
    const [, image] = await Promise.all([
      deps.registry.transition(state.tenantId, state.cloneId, ['PENDING', 'CREATING'], 'CREATING'),
      engine
        ? new RootImageManager(engine, deps.catalog, { namespace: deps.namespace }).ensure(
            state.version,
            state.industry,
          )
        : (dedicated as DedicatedProvisioner).prepareImage(state.engine, state.version, state.industry),
    ]);
    await fault(deps, 'Select template', 'after', state);
    return image ? { ...state, image: image.name, imageFingerprint: image.fingerprint } : state;
  },

  'Provision instance': async (state, deps) => {
    const dedicated = dedicatedProvisioner(deps, state.engine);
    await fault(deps, 'Provision instance', 'before', state);
    const status = await dedicated.provision(state);
    if (status.state === 'failed') throw new InstanceFailedError(state.tenantId, status.detail ?? 'failed');
    await fault(deps, 'Provision instance', 'after', state);
    return { ...state, instanceState: status.state, instancePolls: 0 };
  },

  'Check instance': async (state, deps) => {
    const dedicated = dedicatedProvisioner(deps, state.engine);
    await fault(deps, 'Check instance', 'before', state);
    const polls = (state.instancePolls ?? 0) + 1;
    const status = await dedicated.status(state);
    if (status.state === 'failed') throw new InstanceFailedError(state.tenantId, status.detail ?? 'failed');
    const limit = deps.instancePolls ?? DEFAULT_INSTANCE_POLLS;
    if (status.state !== 'available' && polls >= limit)
      throw new InstanceFailedError(state.tenantId, `not available after ${polls} polls`);
    await fault(deps, 'Check instance', 'after', state);
    return { ...state, instanceState: status.state, instancePolls: polls };
  },

  'Create database': async (state, deps) => {
    const { database } = physicalNames(deps.namespace, state.cloneId);
    const engine = await deps.engineFor(state);
    await fault(deps, 'Create database', 'before', state);
    // A dedicated instance whose provisioner prepared no image builds it now, in the instance.
    if (!state.image && !state.sourceDatabase) {
      const image = await new RootImageManager(engine, deps.catalog, { namespace: deps.namespace }).ensure(
        state.version,
        state.industry,
      );
      state = { ...state, image: image.name, imageFingerprint: image.fingerprint };
    }
    // The time lets the reconciler tell a half-made clone from an abandoned one. No tenant id:
    // on PostgreSQL the marker is the database's comment, which every role of the server can
    // read (pg_shdescription), and a tenant id may be a customer's name.
    const marker = { kind: 'clone', cloneId: state.cloneId, createdAt: new Date().toISOString() };
    // A branch copies its source tenant's live database; every other clone, the root image.
    const image = state.sourceDatabase ?? required(state.image, 'image');
    if (!(await adoptDatabase(engine, database, state.cloneId))) {
      try {
        // A dedicated instance may come with a database already cloned from the image.
        const claimed =
          state.placement === 'dedicated' &&
          (await deps.dedicated?.claimPrepared?.(state, image, database, marker));
        if (!claimed) await engine.cloneDatabase(image, database, marker);
      } catch (error) {
        // A concurrent retry of this same step may have won the race: adopt it if it is ours.
        if (
          !(error instanceof DatabaseExistsError) ||
          !(await adoptDatabase(engine, database, state.cloneId))
        )
          throw error;
      }
    }
    await fault(deps, 'Create database', 'after', state);
    return { ...state, database };
  },

  'Apply schema': async (state, deps) => {
    const engine = await deps.engineFor(state);
    const database = required(state.database, 'database');
    await fault(deps, 'Apply schema', 'before', state);
    // The schema came with the root image; what the clone still needs is its own record of
    // which template version it is at, which fleet upgrades extend.
    await engine.transaction(
      database,
      async (tx) => {
        await ensureControlTables(tx);
        await tx.query('DELETE FROM _clonefactory_schema_history WHERE version = ?', [state.version]);
        await tx.query(
          'INSERT INTO _clonefactory_schema_history (version, industry, fingerprint, applied_by, applied_at) VALUES (?, ?, ?, ?, ?)',
          [
            state.version,
            state.industry,
            required(state.imageFingerprint, 'imageFingerprint'),
            'root-image',
            new Date().toISOString(),
          ],
        );
      },
      CLONE_WRITES,
    );
    await fault(deps, 'Apply schema', 'after', state);
    return state;
  },

  'Populate data': async (state, deps) => {
    const engine = await deps.engineFor(state);
    const database = required(state.database, 'database');
    const template = await deps.catalog.resolve(state.engine, state.version, state.industry);
    await fault(deps, 'Populate data', 'before', state);
    // A branch has its source's data, which is the point of it.
    if (!state.branchOf)
      await engine.transaction(
        database,
        (tx) => populateSampleData(tx, state.tenantId, state.sampleSize, template.tables),
        CLONE_WRITES,
      );
    await fault(deps, 'Populate data', 'after', state);
    return state;
  },

  'Configure security': async (state, deps) => {
    const names = physicalNames(deps.namespace, state.cloneId);
    const engine = await deps.engineFor(state);
    const database = required(state.database, 'database');
    await fault(deps, 'Configure security', 'before', state);
    // The secret is written before the roles, so that a crash in between never leaves a role
    // whose password nobody knows; a retry reuses the stored passwords.
    const stored = await deps.secrets.get(names.secretId);
    const credentials: CloneCredentials = stored
      ? parseCredentials(stored, names.secretId)
      : {
          engine: state.engine,
          ...endpointFields(engine.endpoint(database)),
          database,
          roles: Object.fromEntries(
            APP_ROLES.map((r) => [
              r,
              { username: names.roles[r], password: randomBytes(24).toString('base64url') },
            ]),
          ),
        };
    await deps.secrets.put(names.secretId, JSON.stringify(credentials), {
      cloneId: state.cloneId,
      tenantId: state.tenantId,
      managedBy: 'clonefactory',
      createdAt: new Date().toISOString(),
    });
    await applyTenantAccess(engine, deps, state.cloneId, database, credentials);
    await fault(deps, 'Configure security', 'after', state);
    return { ...state, secretId: names.secretId };
  },

  'Verify and register': async (state, deps) => {
    const engine = await deps.engineFor(state);
    const database = required(state.database, 'database');
    const secretId = required(state.secretId, 'secretId');
    await fault(deps, 'Verify and register', 'before', state);
    const problems: string[] = [];
    // The fingerprint and the isolation probe are independent: side by side, the catalogue
    // read first, since the probe has the secret and a neighbour to look up before it starts.
    const introspected = engine.introspect(database);
    introspected.catch(() => {}); // awaited below; until then its failure must not go unhandled
    const stored = await deps.secrets.get(secretId);
    const probed = stored
      ? await isolationProbe(engine, deps, state, parseCredentials(stored, secretId))
      : [`secret ${secretId} is missing`];
    const tables = await introspected;
    const fp = fingerprint(tables);
    if (fp.hash !== state.imageFingerprint)
      problems.push(
        `fingerprint ${fp.hash.slice(0, 12)} differs from the image's ${String(state.imageFingerprint).slice(0, 12)}`,
      );
    problems.push(...probed);
    if (problems.length) throw new CloneVerificationError(state.tenantId, problems);
    // READY -> READY too: a retry after a lost response must not fail (and roll back) a good clone.
    await deps.registry.transition(state.tenantId, state.cloneId, ['CREATING', 'READY'], 'READY', {
      database,
      endpoint: describeEndpoint(engine.endpoint(database)),
      secretId,
      fingerprint: fp.hash,
    });
    rememberNeighbour(deps, state);
    await fault(deps, 'Verify and register', 'after', state);
    return state;
  },

  'Roll back clone': async (state, deps) => {
    await fault(deps, ROLLBACK_STEP, 'before', state);
    let foreign: readonly string[] = [];
    let incomplete: unknown;
    try {
      ({ foreign } = await removeClone(deps, state));
    } catch (error) {
      // An engine or placement this deployment does not serve holds nothing of this clone;
      // any other failure is reported, after the entry is marked, and retried.
      if (!(error instanceof ValidationError)) incomplete = error;
    }
    // Another clone's artefacts are never touched; the entry says that they were left.
    const notes = [
      ...(foreign.length ? [`left untouched: ${foreign.join('; ')}`] : []),
      ...(incomplete ? [`rollback incomplete: ${errorMessage(incomplete)}`] : []),
    ];
    const lastError = `${describeError(state.error)}${notes.length ? ` (${notes.join('; ')})` : ''}`;
    try {
      // Marked FAILED even when the clean-up failed: the entry never stays PENDING or CREATING,
      // and deleting a FAILED tenant finishes the clean-up.
      await deps.registry.transition(
        state.tenantId,
        state.cloneId,
        ['PENDING', 'CREATING', 'READY', 'FAILED'],
        'FAILED',
        {
          lastError,
        },
      );
    } catch (error) {
      // The entry belongs to another clone (or is gone): there is nothing of ours to mark.
      if (!(error instanceof TenantStateConflictError)) throw error;
    }
    if (incomplete) throw incomplete;
    await fault(deps, ROLLBACK_STEP, 'after', state);
    return state;
  },
};

/**
 * `Select template` of a branch: the source must be a READY shared tenant of the same
 * template; the branch must end with the fingerprint the source has now (drift included).
 */
async function selectBranchSource(
  state: CloneWorkflowState,
  deps: CloneWorkflowDeps,
  engine: DatabaseEngine | null,
): Promise<CloneWorkflowState> {
  const sourceId = assertTenantId(state.branchOf);
  const source = await deps.registry.get(sourceId);
  if (
    !engine ||
    !source ||
    source.state !== 'READY' ||
    source.placement !== 'shared' ||
    !source.database ||
    source.engine !== state.engine ||
    source.version !== state.version ||
    source.industry !== state.industry
  )
    throw new ValidationError(
      `${sourceId} cannot be branched: it must be a READY shared ${state.engine} tenant at ${state.version} (${state.industry})`,
      'branchOf',
    );
  await deps.registry.transition(state.tenantId, state.cloneId, ['PENDING', 'CREATING'], 'CREATING');
  const live = fingerprint(await engine.introspect(source.database));
  await fault(deps, 'Select template', 'after', state);
  return { ...state, sourceDatabase: source.database, imageFingerprint: live.hash };
}

/**
 * Creates or re-aligns a clone's roles and grants from its stored credentials. Idempotent:
 * the clone workflow runs it once, and an upgrade runs it again for the tables it added.
 */
export async function applyTenantAccess(
  engine: DatabaseEngine,
  deps: Pick<CloneWorkflowDeps, 'namespace' | 'connectionLimit'>,
  cloneId: string,
  database: string,
  credentials: CloneCredentials,
): Promise<void> {
  const names = physicalNames(deps.namespace, cloneId);
  await engine.configureTenantAccess({
    cloneId,
    database,
    ownerRole: names.ownerRole,
    roles: APP_ROLES.map((appRole) => ({
      appRole,
      name: names.roles[appRole],
      password: loginOf(credentials, appRole).password,
    })),
    connectionLimit: deps.connectionLimit ?? 20,
  });
}

/**
 * Removes everything of a clone: on the shared server its database, roles and secret; for a
 * dedicated clone its secret and its whole instance. Used by rollback and deprovisioning.
 * Idempotent; what carries another clone's marker is left and reported.
 */
export async function removeClone(
  deps: CloneWorkflowDeps,
  target: CloneTarget,
): Promise<{ readonly foreign: readonly string[] }> {
  if (target.placement !== 'dedicated')
    return removeArtefacts(await deps.engineFor(target), deps, target.cloneId);
  const dedicated = dedicatedProvisioner(deps, target.engine);
  const foreign = [...(await removeSecret(deps, target.cloneId))];
  try {
    await dedicated.deprovision(target);
  } catch (error) {
    if (!(error instanceof ForeignArtefactError)) throw error;
    foreign.push(error.message);
  }
  return { foreign };
}

/** Deletes the clone's secret if it is tagged with this clone id; else names it as foreign. */
async function removeSecret(
  deps: Pick<CloneWorkflowDeps, 'namespace' | 'secrets'>,
  cloneId: string,
): Promise<string[]> {
  const names = physicalNames(deps.namespace, cloneId);
  const tags = await deps.secrets.tags(names.secretId);
  if (!tags) return [];
  if (tags.cloneId !== cloneId) return [`secret ${names.secretId} (clone ${tags.cloneId ?? 'untagged'})`];
  await deps.secrets.delete(names.secretId);
  return [];
}

/**
 * Removes a clone's database, roles and secret from a shared server, each only if it
 * carries this clone's marker. Idempotent.
 */
export async function removeArtefacts(
  engine: DatabaseEngine,
  deps: Pick<CloneWorkflowDeps, 'namespace' | 'secrets'>,
  cloneId: string,
): Promise<{ readonly foreign: readonly string[] }> {
  const names = physicalNames(deps.namespace, cloneId);
  const foreign: string[] = [];
  if (await engine.databaseExists(names.database)) {
    const owner = (await engine.readMarker(names.database))?.cloneId;
    // An unmarked database with this clone's derived name is a half-made clone of ours.
    if (owner !== undefined && owner !== cloneId) foreign.push(`database ${names.database} (clone ${owner})`);
    else await engine.dropDatabase(names.database);
  }
  try {
    await engine.dropTenantAccess({
      cloneId,
      database: names.database,
      ownerRole: names.ownerRole,
      roleNames: APP_ROLES.map((r) => names.roles[r]),
    });
  } catch (error) {
    if (!(error instanceof ForeignArtefactError)) throw error;
    foreign.push(error.message);
  }
  foreign.push(...(await removeSecret(deps, cloneId)));
  return { foreign };
}

/** Runs one step by state name, validating the state on the way in and on the way out. */
export async function runCloneStep(
  name: string,
  input: unknown,
  deps: CloneWorkflowDeps,
): Promise<CloneWorkflowState> {
  const step = cloneSteps[name as (typeof CLONE_TASKS)[number]];
  if (!step) throw new ValidationError(`unknown step ${JSON.stringify(name)}`, 'step');
  const parsed = cloneWorkflowState.safeParse(input);
  if (!parsed.success)
    throw new ValidationError(
      `invalid workflow state for ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  assertTenantId(parsed.data.tenantId);
  assertCloneId(parsed.data.cloneId);
  return cloneWorkflowState.parse(await step(parsed.data, deps));
}

/** The control plane's own tables in a tenant database (markers, history, seeds). */
const CONTROL_TABLE = /^_clonefactory_/;

async function adoptDatabase(engine: DatabaseEngine, database: string, cloneId: string): Promise<boolean> {
  if (!(await engine.databaseExists(database))) return false;
  const marker = await engine.readMarker(database);
  if (!marker && (await engine.introspect(database)).every((t) => CONTROL_TABLE.test(t.name))) {
    // A database with this clone's own name and nothing in it but, at most, an empty marker
    // table: a process killed between MySQL's CREATE DATABASE and the marker row that follows
    // it. Nothing to lose: made again.
    await engine.dropDatabase(database);
    return false;
  }
  const owner = marker?.cloneId;
  if (owner !== cloneId) throw new ForeignArtefactError('database', database, owner ?? '(unmarked)');
  if (marker?.incomplete === 'true') {
    // This clone's own copy, which a killed attempt left half-made: made again.
    await engine.dropDatabase(database);
    return false;
  }
  return true;
}

/**
 * One login per app role, side by side:
 * - `admin` on another tenant's database (with no other tenant yet, the root image): refused;
 * - `user` on the server's admin database (`postgres`, `mysql`; SQLite has none): refused;
 * - `analyst` on its own database: opens.
 * A refusal only counts when the server refused the login (LoginRefusedError), not when it
 * could not be reached. PostgreSQL and MySQL say whether they refused the database after
 * accepting the credentials; such a refusal also proves the role's password works. Where a
 * refusal cannot prove that (SQLite keeps its logins inside each database), the role also
 * opens its own database: in the same round on SQLite, which never proves it, and in a
 * second round where a server happened to refuse before authenticating. Each login costs a
 * server process on PostgreSQL, so the common case is three logins rather than one per role
 * and target.
 */
export async function isolationProbe(
  engine: DatabaseEngine,
  deps: CloneWorkflowDeps,
  state: CloneWorkflowState,
  credentials: CloneCredentials,
): Promise<string[]> {
  const database = required(state.database, 'database');
  // A dedicated instance holds no other tenant: there the root image stands in, and the
  // other instances are probed below.
  const neighbour =
    (state.placement === 'dedicated' ? undefined : await anotherTenantDatabase(engine, deps, state)) ??
    state.sourceDatabase ??
    required(state.image, 'image');
  const serverDatabase = SERVER_DATABASES[state.engine];
  // A dedicated tenant's logins must also fail on every other server: the other dedicated
  // instances and the shared one. There the roles do not exist, so any refusal will do.
  const elsewhere =
    state.placement === 'dedicated' ? probeOtherServers(deps, state, credentials) : Promise.resolve([]);
  elsewhere.catch(() => {}); // awaited below; until then its failure must not go unhandled
  // Without a server database (SQLite), no refusal can prove a password: the admin login's
  // own-database check is then known to be needed, and runs in the first round.
  const [admin, user, analyst, adminOwn] = await Promise.all([
    attempt(engine, neighbour, loginOf(credentials, 'admin')),
    attempt(engine, serverDatabase ?? database, loginOf(credentials, 'user')),
    attempt(engine, database, loginOf(credentials, 'analyst')),
    serverDatabase ? undefined : attempt(engine, database, loginOf(credentials, 'admin')),
  ]);
  const problems: string[] = [];
  const refused = (role: AppRole, target: string, error: unknown): boolean => {
    if (error === null) problems.push(`the tenant's ${role} login opened ${target}`);
    else if (!(error instanceof LoginRefusedError))
      problems.push(`could not probe ${target} as ${role}: ${errorMessage(error)}`);
    else return !error.authenticated;
    return false;
  };
  const ownOpens = (role: AppRole, error: unknown) => {
    if (error !== null) problems.push(`${role} cannot open its own database: ${errorMessage(error)}`);
  };
  const unproven: AppRole[] = [];
  if (refused('admin', neighbour, admin)) {
    if (serverDatabase) unproven.push('admin');
    else ownOpens('admin', adminOwn);
  }
  if (serverDatabase) {
    if (refused('user', serverDatabase, user)) unproven.push('user');
  } else ownOpens('user', user);
  ownOpens('analyst', analyst);
  const again = await Promise.all(
    unproven.map(
      async (role) => [role, await attempt(engine, database, loginOf(credentials, role))] as const,
    ),
  );
  for (const [role, error] of again) ownOpens(role, error);
  return [...problems, ...(await elsewhere)];
}

/** The admin login tried on every other server of a dedicated tenant's provisioner: problems found. */
async function probeOtherServers(
  deps: CloneWorkflowDeps,
  state: CloneWorkflowState,
  credentials: CloneCredentials,
): Promise<string[]> {
  const others = await dedicatedProvisioner(deps, state.engine).others(state);
  const results = await Promise.all(
    others.map(async (o) => [o, await attempt(o.engine, o.database, loginOf(credentials, 'admin'))] as const),
  );
  const problems: string[] = [];
  for (const [o, error] of results) {
    const where = `${o.database} on ${o.engine.location}`;
    if (error === null) problems.push(`the tenant's admin login opened ${where}`);
    else if (!(error instanceof LoginRefusedError))
      problems.push(`could not probe ${where} as admin: ${errorMessage(error)}`);
  }
  return problems;
}

/** The server's own database, which no tenant login may open. */
const SERVER_DATABASES: Readonly<Record<EngineName, string | undefined>> = {
  postgresql: 'postgres',
  mysql: 'mysql',
  sqlite: undefined,
};

/**
 * A READY database of another tenant on the same engine and placement, for the isolation
 * probe: the last one this process registered, else one from the registry (one query per
 * process and placement, not one per clone).
 */
const neighbours = new WeakMap<CloneRegistry, Map<string, string>>();

function knownNeighbours(deps: CloneWorkflowDeps): Map<string, string> {
  let known = neighbours.get(deps.registry);
  if (!known) {
    known = new Map();
    neighbours.set(deps.registry, known);
  }
  return known;
}

async function anotherTenantDatabase(
  engine: DatabaseEngine,
  deps: CloneWorkflowDeps,
  state: CloneWorkflowState,
): Promise<string | undefined> {
  const known = knownNeighbours(deps);
  const key = `${state.engine}/${state.placement}`;
  const remembered = known.get(key);
  // A refusal only proves something if the database is there to refuse.
  if (remembered && remembered !== state.database && (await engine.databaseExists(remembered)))
    return remembered;
  const found = (await deps.registry.list({ state: 'READY', limit: 25 })).find(
    (r) =>
      r.engine === state.engine &&
      r.placement === state.placement &&
      r.cloneId !== state.cloneId &&
      r.database,
  )?.database;
  if (found) known.set(key, found);
  return found;
}

/** Remembers a clone that just became READY as the next probe target. */
function rememberNeighbour(deps: CloneWorkflowDeps, state: CloneWorkflowState): void {
  const known = knownNeighbours(deps);
  if (state.database) known.set(`${state.engine}/${state.placement}`, state.database);
}

/** Opens a session and runs one query: null when that works, else the error. */
async function attempt(engine: DatabaseEngine, database: string, login: Login): Promise<unknown> {
  try {
    const session = await engine.openSession(database, login);
    try {
      await session.query('SELECT 1 AS ok');
    } finally {
      // Not waited for: the answer is in, and the server ends the session on its own time.
      // Waiting for PostgreSQL's backend to exit was the probe's slowest path (probe p50
      // 59.5 ms waiting, 48.4 ms not, alternated 40 times on one tenant pair).
      session.close().catch(() => {});
    }
    return null;
  } catch (error) {
    return error;
  }
}

function loginOf(credentials: CloneCredentials, role: AppRole): Login {
  const login = credentials.roles[role];
  if (!login) throw new ValidationError(`credentials have no ${role} login`);
  return login;
}

function endpointFields(e: Endpoint): { host?: string; port?: number } {
  return e.host ? { host: e.host, port: e.port } : {};
}

function describeEndpoint(e: Endpoint): string {
  return e.path ? `sqlite:${e.path}` : `${e.host}:${e.port}/${e.database}`;
}

/** `Error: message`, from a Catch's `{ Error, Cause }`; AWS wraps Lambda causes in JSON. */
export function describeError(error: CloneWorkflowState['error']): string {
  if (!error) return 'unknown error';
  let message = error.Cause ?? '';
  try {
    const parsed = JSON.parse(message) as { errorMessage?: string };
    if (parsed.errorMessage) message = parsed.errorMessage;
  } catch {
    // a plain message (the local runner)
  }
  return `${error.Error}: ${message}`.slice(0, 1000);
}

function required<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new ValidationError(`workflow state lacks ${field}`, field);
  return value;
}

async function fault(
  deps: CloneWorkflowDeps,
  step: string,
  when: 'before' | 'after',
  state: CloneWorkflowState,
) {
  await deps.faults?.(step, when, state);
}
