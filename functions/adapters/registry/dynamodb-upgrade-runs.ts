import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TenantStateConflictError, ValidationError } from '../../core/errors.js';
import {
  MAX_RECORDED_FAILURES,
  type RunOutcome,
  type RunState,
  type RunSummary,
  type UpgradeRun,
  type UpgradeRunStore,
} from '../../core/fleet-upgrade.js';

export interface DynamoDbUpgradeRunStoreOptions {
  readonly tableName: string;
  readonly client?: DynamoDBClient;
  readonly now?: () => Date;
}

/**
 * Upgrade runs on DynamoDB (dynalite locally). Counts are added with update expressions, so
 * tenants finishing at the same time never lose each other's counts.
 */
export class DynamoDbUpgradeRunStore implements UpgradeRunStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly now: () => Date;

  constructor(options: DynamoDbUpgradeRunStoreOptions) {
    this.table = options.tableName;
    this.doc = DynamoDBDocumentClient.from(options.client ?? new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.now = options.now ?? (() => new Date());
  }

  async create(run: UpgradeRun): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: run,
          ConditionExpression: 'attribute_not_exists(runId)',
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException)
        throw new ValidationError(`upgrade run ${run.runId} exists already`, 'runId');
      throw error;
    }
  }

  async get(runId: string): Promise<UpgradeRun | null> {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { runId }, ConsistentRead: true }),
    );
    return (r.Item as UpgradeRun | undefined) ?? null;
  }

  async summary(runId: string): Promise<RunSummary | null> {
    const fields = [
      'runId',
      'to',
      'dryRun',
      'selection',
      'policy',
      'state',
      'total',
      'upgraded',
      'already',
      'failed',
      'skipped',
      'reason',
      'executions',
      'createdAt',
      'updatedAt',
      'finishedAt',
    ];
    const r = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { runId },
        ConsistentRead: true,
        ProjectionExpression: fields.map((_, i) => `#f${i}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(fields.map((f, i) => [`#f${i}`, f])),
      }),
    );
    return (r.Item as RunSummary | undefined) ?? null;
  }

  async list(): Promise<UpgradeRun[]> {
    const out: UpgradeRun[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: start }));
      out.push(...((page.Items ?? []) as UpgradeRun[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return out.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  }

  async count(
    runId: string,
    outcome: RunOutcome,
    failure?: { tenantId: string; error: string },
  ): Promise<number> {
    const sets = ['#n = #n + :one', '#updatedAt = :now'];
    const names: Record<string, string> = { '#n': outcome, '#updatedAt': 'updatedAt' };
    const values: Record<string, unknown> = { ':one': 1, ':now': this.now().toISOString() };
    let condition = 'attribute_exists(runId)';
    if (failure) {
      sets.push('#failures = list_append(#failures, :failure)');
      names['#failures'] = 'failures';
      values[':failure'] = [{ tenantId: failure.tenantId, error: failure.error.slice(0, 1000) }];
      values[':max'] = MAX_RECORDED_FAILURES;
      condition += ' AND size(#failures) < :max';
    }
    try {
      // Only the count comes back: the run's lists stay on the server.
      const counted = await this.update(runId, sets, names, values, condition, 'UPDATED_NEW');
      return Number(counted[outcome] ?? 0);
    } catch (error) {
      // The failure list is full: the count still goes up.
      if (failure && error instanceof ConditionalCheckFailedException) return this.count(runId, outcome);
      throw error;
    }
  }

  async transition(
    runId: string,
    from: readonly RunState[],
    to: RunState,
    patch: Partial<UpgradeRun> = {},
  ): Promise<UpgradeRun> {
    const names: Record<string, string> = { '#state': 'state', '#updatedAt': 'updatedAt' };
    const values: Record<string, unknown> = { ':to': to, ':now': this.now().toISOString() };
    const sets = ['#state = :to', '#updatedAt = :now'];
    for (const [i, [key, value]] of Object.entries(patch).entries()) {
      if (value === undefined) continue;
      names[`#p${i}`] = key;
      values[`:p${i}`] = value;
      sets.push(`#p${i} = :p${i}`);
    }
    const fromKeys = from.map((s, i) => {
      values[`:from${i}`] = s;
      return `:from${i}`;
    });
    try {
      return await this.update(runId, sets, names, values, `#state IN (${fromKeys.join(', ')})`);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const current = await this.get(runId);
      throw new TenantStateConflictError(
        `upgrade run ${runId}`,
        current?.state ?? 'unknown',
        `move to ${to}`,
      );
    }
  }

  private async update(
    runId: string,
    sets: string[],
    names: Record<string, string>,
    values: Record<string, unknown>,
    condition: string,
    returnValues: 'ALL_NEW' | 'UPDATED_NEW' = 'ALL_NEW',
  ): Promise<UpgradeRun> {
    const r = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { runId },
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValues: returnValues,
      }),
    );
    return (r.Attributes ?? {}) as UpgradeRun;
  }
}
