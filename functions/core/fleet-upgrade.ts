import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ENGINE_NAMES } from './engine.js';
import { TenantStateConflictError, ValidationError } from './errors.js';
import type { CloneRegistry } from './registry.js';
import type { TemplateCatalog } from './templates.js';
import type { WorkflowStarter } from './tenant-service.js';
import { assertTenantId, type CloneRecord, PLACEMENTS } from './tenants.js';

/**
 * A fleet upgrade run's life: RUNNING until its waves are done (SUCCEEDED, or FAILED when some
 * tenant failed and the policy let the run go on), HALTED by its failure policy, STOPPING then
 * STOPPED by an operator. A halted, stopped or failed run can be resumed.
 */
export const RUN_STATES = ['RUNNING', 'STOPPING', 'STOPPED', 'HALTED', 'SUCCEEDED', 'FAILED'] as const;
export type RunState = (typeof RUN_STATES)[number];
export const RESUMABLE_RUN_STATES: readonly RunState[] = ['STOPPED', 'HALTED', 'FAILED'];

/** Which tenants a run takes: every filter given must match; `tenants` names them outright. */
export const upgradeSelection = z.strictObject({
  engine: z.enum(ENGINE_NAMES).optional(),
  version: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v1.0')
    .optional(),
  industry: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,30}$/, 'must be a lowercase word')
    .optional(),
  placement: z.enum(PLACEMENTS).optional(),
  tenants: z.array(z.string().max(64)).min(1).max(10_000).optional(),
});
export type UpgradeSelection = z.infer<typeof upgradeSelection>;

/**
 * How a run goes: a canary wave of `canary` tenants first (the rest only start when no canary
 * failed, unless `continueOnError`), at most `maxConcurrency` tenants at a time, and a halt
 * once `maxFailures` tenants failed or `maxFailurePercent` of the selection did. With neither
 * threshold set and no `continueOnError`, the first failure halts the run.
 */
export const upgradePolicy = z
  .strictObject({
    canary: z.number().int().min(0).max(1000).default(1),
    maxConcurrency: z.number().int().min(1).max(100).default(4),
    maxFailures: z.number().int().min(1).optional(),
    maxFailurePercent: z.number().gt(0).max(100).optional(),
    continueOnError: z.boolean().default(false),
  })
  .refine((p) => !(p.continueOnError && (p.maxFailures || p.maxFailurePercent)), {
    message: 'continueOnError and a failure threshold exclude each other',
  });
export type UpgradePolicy = z.infer<typeof upgradePolicy>;

export const startUpgradeRequest = z.strictObject({
  to: z.string().regex(/^v\d+\.\d+$/, 'must look like v1.1'),
  selection: upgradeSelection.default({}),
  policy: upgradePolicy.prefault({}),
  dryRun: z.boolean().default(false),
});
export type StartUpgradeRequest = z.input<typeof startUpgradeRequest>;

export interface RunCounts {
  /** Tenants upgraded by this run (a dry run: whose rehearsal passed). */
  readonly upgraded: number;
  /** Tenants found at the target version already. */
  readonly already: number;
  /** Tenants whose upgrade (or rehearsal) failed. */
  readonly failed: number;
  /** Tenants not touched: the run was halted or stopped, or the tenant was not READY. */
  readonly skipped: number;
}

/** A fleet upgrade run, as its record keeps it. */
export interface UpgradeRun extends RunCounts {
  readonly runId: string;
  readonly to: string;
  readonly dryRun: boolean;
  readonly selection: UpgradeSelection;
  readonly policy: UpgradePolicy;
  readonly state: RunState;
  /** The selected tenants, in the order they are taken; the first `policy.canary` are the canary wave. */
  readonly tenants: readonly string[];
  /** How many tenants were selected (`tenants.length`, readable without the list). */
  readonly total: number;
  /** Failed tenants and why (at most {@link MAX_RECORDED_FAILURES}). */
  readonly failures: readonly { readonly tenantId: string; readonly error: string }[];
  /** Why the run halted or failed. */
  readonly reason?: string;
  /** Executions of this run (1, plus one per resume). */
  readonly executions: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
}

export const MAX_RECORDED_FAILURES = 100;

/** A run without its tenant list and failures: what each tenant's step reads. */
export type RunSummary = Omit<UpgradeRun, 'tenants' | 'failures'>;
export type RunOutcome = keyof RunCounts;

/** Where upgrade runs are kept: a DynamoDB table (dynalite locally). Single-item conditional writes. */
export interface UpgradeRunStore {
  /** Stores a new run; throws when the id is taken. */
  create(run: UpgradeRun): Promise<void>;
  get(runId: string): Promise<UpgradeRun | null>;
  /**
   * The run without its lists. Every tenant's step reads it: with a fleet's list in the item,
   * reading (and rewriting) the whole item per tenant made a run's cost grow with its size.
   */
  summary(runId: string): Promise<RunSummary | null>;
  /** Newest first. */
  list(): Promise<UpgradeRun[]>;
  /** Adds one tenant's outcome to the counts (and its failure to the list); returns that count now. */
  count(runId: string, outcome: RunOutcome, failure?: { tenantId: string; error: string }): Promise<number>;
  /**
   * Moves the run from one of `from` to `to` with `patch`; throws TenantStateConflictError
   * (naming the run) when it is in another state.
   */
  transition(
    runId: string,
    from: readonly RunState[],
    to: RunState,
    patch?: Partial<Pick<UpgradeRun, 'reason' | 'finishedAt' | 'executions' | keyof RunCounts | 'failures'>>,
  ): Promise<UpgradeRun>;
}

/** Why the policy halts the run now, or null. */
export function policyBreach(policy: UpgradePolicy, failed: number, total: number): string | null {
  if (policy.continueOnError || failed === 0) return null;
  const limit = policy.maxFailures ?? (policy.maxFailurePercent === undefined ? 1 : undefined);
  if (limit !== undefined && failed >= limit)
    return `${failed} tenant${failed === 1 ? '' : 's'} failed, the limit is ${limit}`;
  if (
    policy.maxFailurePercent !== undefined &&
    (failed * 100) / Math.max(total, 1) >= policy.maxFailurePercent
  )
    return `${failed} of ${total} tenants failed, the limit is ${policy.maxFailurePercent}%`;
  return null;
}

/**
 * The READY tenants a selection takes for an upgrade to `to`, sorted by tenant id. Tenants
 * already at `to` are left out unless named. Named tenants that do not exist or are not
 * READY are an error, so that a typo never shrinks a run silently.
 */
export function selectTenants(
  records: readonly CloneRecord[],
  selection: UpgradeSelection,
  to: string,
  catalog: TemplateCatalog,
): CloneRecord[] {
  const byId = new Map(records.map((r) => [r.tenantId, r]));
  if (selection.tenants) {
    const problems: string[] = [];
    for (const id of selection.tenants) {
      assertTenantId(id);
      const r = byId.get(id);
      if (!r || r.state === 'DELETED') problems.push(`${id} does not exist`);
      else if (r.state !== 'READY') problems.push(`${id} is ${r.state}`);
    }
    if (problems.length) throw new ValidationError(`cannot upgrade: ${problems.join('; ')}`, 'tenants');
  }
  const named = selection.tenants ? new Set(selection.tenants) : null;
  const target = catalog.versions.indexOf(to);
  return records
    .filter(
      (r) =>
        r.state === 'READY' &&
        (!named || named.has(r.tenantId)) &&
        (!selection.engine || r.engine === selection.engine) &&
        (!selection.version || r.version === selection.version) &&
        (!selection.industry || r.industry === selection.industry) &&
        (!selection.placement || r.placement === selection.placement) &&
        (named || catalog.versions.indexOf(r.version) < target),
    )
    .sort((a, b) => (a.tenantId < b.tenantId ? -1 : 1));
}

/** The execution name of a run's nth execution: the run id, then `-r2`, `-r3` for resumes. */
export function runExecutionName(runId: string, execution: number): string {
  return execution <= 1 ? runId : `${runId}-r${execution}`;
}

export const RUN_ID = /^upg-\d{8}t\d{6}-[0-9a-f]{6}$/;

export function assertRunId(id: unknown): string {
  if (typeof id !== 'string' || !RUN_ID.test(id))
    throw new ValidationError(`invalid upgrade run id ${JSON.stringify(String(id)).slice(0, 80)}`, 'runId');
  return id;
}

/**
 * Starting, stopping, resuming and reading fleet upgrade runs. The selection is made and
 * checked here, before anything is written: bad input creates nothing and starts nothing.
 * The upgrade workflow then does the work.
 */
export class UpgradeService {
  constructor(
    private readonly deps: {
      readonly registry: CloneRegistry;
      readonly runs: UpgradeRunStore;
      readonly catalog: TemplateCatalog;
      readonly workflows: WorkflowStarter;
      readonly now?: () => Date;
    },
  ) {}

  async start(request: unknown): Promise<UpgradeRun> {
    const parsed = startUpgradeRequest.safeParse(request);
    if (!parsed.success)
      throw new ValidationError(
        `invalid upgrade request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
        parsed.error.issues[0]?.path.join('.'),
      );
    const req = parsed.data;
    // A dry run changes nothing, so by default it goes on and reports every tenant that
    // would fail; a threshold given explicitly still halts it.
    const policy: UpgradePolicy =
      req.dryRun && req.policy.maxFailures === undefined && req.policy.maxFailurePercent === undefined
        ? { ...req.policy, continueOnError: true }
        : req.policy;
    const { catalog } = this.deps;
    catalog.checkVersion(req.to);
    if (req.selection.version) catalog.checkVersion(req.selection.version);
    if (req.selection.industry) catalog.checkIndustry(req.selection.industry);
    const selected = selectTenants(await this.deps.registry.list(), req.selection, req.to, catalog);
    const now = this.now();
    const run: UpgradeRun = {
      runId: newRunId(now),
      to: req.to,
      dryRun: req.dryRun,
      selection: req.selection,
      policy,
      state: 'RUNNING',
      tenants: selected.map((r) => r.tenantId),
      total: selected.length,
      failures: [],
      upgraded: 0,
      already: 0,
      failed: 0,
      skipped: 0,
      executions: 1,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    await this.deps.runs.create(run);
    await this.deps.workflows.start('upgrade', runExecutionName(run.runId, 1), { runId: run.runId });
    return run;
  }

  async get(runId: string): Promise<UpgradeRun> {
    const run = await this.deps.runs.get(assertRunId(runId));
    if (!run) throw new ValidationError(`no upgrade run ${runId}`, 'runId');
    return run;
  }

  list(): Promise<UpgradeRun[]> {
    return this.deps.runs.list();
  }

  /** Asks a running run to stop: tenants in flight finish, the others are skipped. */
  async stop(runId: string): Promise<UpgradeRun> {
    await this.get(runId);
    return this.deps.runs.transition(runId, ['RUNNING', 'STOPPING'], 'STOPPING');
  }

  /**
   * Runs a halted, stopped or failed run again as a new execution: tenants it upgraded are
   * skipped, failed ones are tried again.
   */
  async resume(runId: string): Promise<UpgradeRun> {
    const run = await this.get(runId);
    if (!RESUMABLE_RUN_STATES.includes(run.state))
      throw new TenantStateConflictError(
        `upgrade run ${runId}`,
        run.state,
        'resume (it must be STOPPED, HALTED or FAILED)',
      );
    const execution = run.executions + 1;
    const resumed = await this.deps.runs.transition(runId, [run.state], 'RUNNING', {
      executions: execution,
      reason: '',
    });
    await this.deps.workflows.start('upgrade', runExecutionName(runId, execution), { runId });
    return resumed;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }
}

function newRunId(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '')
    .toLowerCase();
  return `upg-${stamp}-${randomBytes(3).toString('hex')}`;
}
