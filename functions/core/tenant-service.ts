import type { EngineName } from './engine.js';
import {
  TenantAlreadyExistsError,
  TenantNotFoundError,
  TenantStateConflictError,
  ValidationError,
} from './errors.js';
import type { CloneRegistry } from './registry.js';
import type { TemplateCatalog } from './templates.js';
import {
  assertTenantId,
  type CloneRecord,
  type CreateTenantRequest,
  createTenantRequest,
  newCloneId,
} from './tenants.js';
import type { CloneWorkflowState } from './workflow/clone-workflow.js';
import type { DeprovisionState } from './workflow/deprovision-workflow.js';
import type { UpgradeWorkflowState } from './workflow/upgrade-workflow.js';

export type WorkflowKind = 'clone' | 'deprovision' | 'upgrade';

/** Starts workflow executions: Step Functions on AWS, the local runner on one machine. */
export interface WorkflowStarter {
  /**
   * Starts `name` unless an execution of that name exists; the name is the idempotency key.
   * Returns whether this call started it.
   */
  start(
    kind: WorkflowKind,
    name: string,
    input: CloneWorkflowState | DeprovisionState | UpgradeWorkflowState,
  ): Promise<{ started: boolean }>;
}

export interface TenantRequestResult {
  readonly record: CloneRecord;
  /** false when the tenant already had this clone (an idempotent repeat). */
  readonly created: boolean;
  readonly executionName: string;
}

/** The execution name of a clone's create workflow: after the tenant, unique per clone. */
export function cloneExecutionName(record: Pick<CloneRecord, 'tenantId' | 'cloneId'>): string {
  return `${record.tenantId}--${record.cloneId}`;
}

/**
 * The deprovision execution's name carries the entry's revision: a deletion that failed
 * (the entry stays DELETING, one revision on) can be asked for again under a new name.
 */
export function deprovisionExecutionName(record: Pick<CloneRecord, 'tenantId' | 'cloneId' | 'rev'>): string {
  return `${record.tenantId}--${record.cloneId}--delete-${record.rev}`;
}

/**
 * Creating and deleting tenants: validation, the registry's conditional writes and the
 * start of the workflows. The API handler and the CLI call this; it has no I/O of its own.
 */
export class TenantService {
  constructor(
    private readonly deps: {
      readonly registry: CloneRegistry;
      readonly catalog: TemplateCatalog;
      readonly workflows: WorkflowStarter;
      readonly now?: () => Date;
      /** Placements this deployment can serve. */
      readonly placements?: readonly string[];
      /** Why `engine` cannot have a server of its own here, or null (checked before anything is written). */
      readonly dedicatedUnavailable?: (engine: EngineName) => string | null;
    },
  ) {}

  /**
   * Registers the tenant (PENDING) and starts its clone workflow. Asking again for the same
   * tenant with the same template returns the same clone. Bad input creates nothing.
   */
  async create(request: unknown): Promise<TenantRequestResult> {
    const parsed = createTenantRequest.safeParse(request);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ValidationError(
        `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
        issue?.path.join('.'),
      );
    }
    const req = parsed.data;
    assertTenantId(req.tenantId);
    this.deps.catalog.checkEngine(req.engine);
    this.deps.catalog.checkVersion(req.version);
    this.deps.catalog.checkIndustry(req.industry);
    const placements = this.deps.placements ?? ['shared'];
    if (!placements.includes(req.placement))
      throw new ValidationError(
        `placement ${req.placement} is not available here; available: ${placements.join(', ')}`,
        'placement',
      );
    const dedicatedReason =
      req.placement === 'dedicated' ? this.deps.dedicatedUnavailable?.(req.engine) : null;
    if (dedicatedReason)
      throw new ValidationError(
        `dedicated ${req.engine} is not available on this machine: ${dedicatedReason}`,
        'placement',
      );
    if (req.branchOf) await this.checkBranchSource(req);
    const now = (this.deps.now ?? (() => new Date()))().toISOString();
    const candidate: CloneRecord = {
      tenantId: req.tenantId,
      cloneId: newCloneId(),
      state: 'PENDING',
      engine: req.engine,
      placement: req.placement,
      version: req.version,
      industry: req.industry,
      ...(req.branchOf ? { branchOf: req.branchOf } : {}),
      createdAt: now,
      updatedAt: now,
      rev: 0,
    };
    const { created, record } = await this.deps.registry.register({
      ...candidate,
      executionName: cloneExecutionName(candidate),
    });
    if (!created) {
      if (record.state === 'DELETING')
        throw new TenantStateConflictError(
          record.tenantId,
          record.state,
          'create it again until deletion ends',
        );
      const differs = (['engine', 'version', 'industry', 'placement'] as const).filter(
        (k) => record[k] !== req[k],
      );
      if (differs.length)
        throw new TenantAlreadyExistsError(
          record.tenantId,
          `it has ${differs.map((k) => `${k} ${record[k]}`).join(', ')} (asked for ${differs.map((k) => req[k]).join(', ')})`,
        );
    }
    const executionName = cloneExecutionName(record);
    if (record.state === 'PENDING' || record.state === 'CREATING') {
      await this.deps.workflows.start('clone', executionName, {
        tenantId: record.tenantId,
        cloneId: record.cloneId,
        engine: record.engine,
        placement: record.placement,
        version: record.version,
        industry: record.industry,
        sampleSize: req.sampleSize,
        ...(record.branchOf ? { branchOf: record.branchOf } : {}),
      });
    }
    return { record, created, executionName };
  }

  /**
   * Makes `tenantId` a sandbox copy of the READY tenant `sourceId`: a full clone of its live
   * database, data included, with its own credentials and registry entry.
   */
  branch(
    sourceId: string,
    request: { tenantId: unknown; sampleSize?: unknown },
  ): Promise<TenantRequestResult> {
    return this.branchFrom(sourceId, request);
  }

  private async branchFrom(sourceId: string, request: { tenantId: unknown }): Promise<TenantRequestResult> {
    const source = await this.get(sourceId);
    return this.create({
      tenantId: request.tenantId,
      engine: source.engine,
      industry: source.industry,
      version: source.version,
      placement: source.placement,
      branchOf: source.tenantId,
    });
  }

  private async checkBranchSource(req: CreateTenantRequest): Promise<void> {
    const sourceId = assertTenantId(req.branchOf);
    if (sourceId === req.tenantId)
      throw new ValidationError('a tenant cannot be branched from itself', 'branchOf');
    const source = await this.deps.registry.get(sourceId);
    if (!source || source.state === 'DELETED') throw new TenantNotFoundError(sourceId);
    if (source.state !== 'READY')
      throw new TenantStateConflictError(sourceId, source.state, 'branch it (it must be READY)');
    if (source.placement !== 'shared' || req.placement !== 'shared')
      throw new ValidationError('branches are made of shared tenants, onto the shared server', 'placement');
    const differs = (['engine', 'version', 'industry'] as const).filter((k) => source[k] !== req[k]);
    if (differs.length)
      throw new ValidationError(
        `a branch has its source's ${differs.join(', ')} (${differs.map((k) => source[k]).join(', ')})`,
        differs[0],
      );
  }

  /** Starts the deprovision workflow. Deleting a deleted tenant is a no-op. */
  async delete(tenantId: string): Promise<TenantRequestResult> {
    const record = await this.get(tenantId);
    const executionName = deprovisionExecutionName(record);
    if (record.state === 'DELETED') return { record, created: false, executionName };
    if (record.state === 'PENDING' || record.state === 'CREATING')
      throw new TenantStateConflictError(
        record.tenantId,
        record.state,
        'delete it while it is being created',
      );
    const { started } = await this.deps.workflows.start('deprovision', executionName, {
      tenantId: record.tenantId,
      cloneId: record.cloneId,
      engine: record.engine,
      placement: record.placement,
    });
    return { record, created: started, executionName };
  }

  async get(tenantId: string): Promise<CloneRecord> {
    const record = await this.deps.registry.get(assertTenantId(tenantId));
    if (!record) throw new TenantNotFoundError(tenantId);
    return record;
  }

  list(filter: { state?: CloneRecord['state'] } = {}): Promise<CloneRecord[]> {
    return this.deps.registry.list(filter);
  }
}
