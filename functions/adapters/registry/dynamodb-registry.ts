import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { TenantStateConflictError, TransientError } from '../../core/errors.js';
import type { ClonePatch, CloneRegistry } from '../../core/registry.js';
import type { CloneRecord, CloneState } from '../../core/tenants.js';
import { CLONES_TABLE } from './table-schemas.js';

export interface DynamoDbCloneRegistryOptions {
  readonly tableName: string;
  readonly client?: DynamoDBClient;
  readonly now?: () => Date;
}

const REPLACEABLE: readonly CloneState[] = ['FAILED', 'DELETED'];
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
]);

/** The clone registry on DynamoDB (dynalite locally). Single-item conditional writes only. */
export class DynamoDbCloneRegistry implements CloneRegistry {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly now: () => Date;

  constructor(options: DynamoDbCloneRegistryOptions) {
    this.table = options.tableName;
    this.doc = DynamoDBDocumentClient.from(options.client ?? new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.now = options.now ?? (() => new Date());
  }

  async register(record: CloneRecord): Promise<{ created: boolean; record: CloneRecord }> {
    for (let attempt = 0; attempt < 5; attempt++) {
      // The common case, a new tenant, takes one write; only a conflict reads.
      const current = attempt === 0 ? null : await this.get(record.tenantId);
      if (current && !REPLACEABLE.includes(current.state)) return { created: false, record: current };
      const item = { ...record, rev: current ? current.rev + 1 : 1 };
      try {
        await this.send(
          new PutCommand({
            TableName: this.table,
            Item: item,
            ConditionExpression: current ? '#rev = :rev' : 'attribute_not_exists(#pk)',
            ExpressionAttributeNames: current ? { '#rev': 'rev' } : { '#pk': CLONES_TABLE.partitionKey },
            ExpressionAttributeValues: current ? { ':rev': current.rev } : undefined,
          }),
        );
        return { created: true, record: item };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // someone else wrote first: read again and decide again
      }
    }
    throw new TransientError(`registry: too much contention registering ${record.tenantId}`);
  }

  async get(tenantId: string): Promise<CloneRecord | null> {
    const r = await this.send(
      new GetCommand({ TableName: this.table, Key: { tenantId }, ConsistentRead: true }),
    );
    return (r.Item as CloneRecord | undefined) ?? null;
  }

  async transition(
    tenantId: string,
    cloneId: string,
    from: readonly CloneState[],
    to: CloneState,
    patch: ClonePatch = {},
  ): Promise<CloneRecord> {
    const names: Record<string, string> = {
      '#state': 'state',
      '#rev': 'rev',
      '#updatedAt': 'updatedAt',
      '#cloneId': 'cloneId',
    };
    const values: Record<string, unknown> = {
      ':to': to,
      ':now': this.now().toISOString(),
      ':one': 1,
      ':cloneId': cloneId,
    };
    const sets = ['#state = :to', '#updatedAt = :now', '#rev = #rev + :one'];
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
      const r = await this.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { tenantId },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `#cloneId = :cloneId AND #state IN (${fromKeys.join(', ')})`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return r.Attributes as CloneRecord;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const current = await this.get(tenantId);
      if (current && current.cloneId !== cloneId)
        throw new TenantStateConflictError(
          tenantId,
          `owned by clone ${current.cloneId}`,
          `move clone ${cloneId} to ${to}`,
        );
      throw new TenantStateConflictError(tenantId, current?.state ?? 'not registered', `move to ${to}`);
    }
  }

  async list(filter: { state?: CloneState; limit?: number } = {}): Promise<CloneRecord[]> {
    const out: CloneRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = filter.state
        ? await this.send(
            new QueryCommand({
              TableName: this.table,
              IndexName: 'by-state',
              KeyConditionExpression: '#state = :state',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':state': filter.state },
              ExclusiveStartKey: start,
              Limit: filter.limit,
            }),
          )
        : await this.send(
            new ScanCommand({ TableName: this.table, ExclusiveStartKey: start, Limit: filter.limit }),
          );
      out.push(...((page.Items ?? []) as CloneRecord[]));
      start = page.LastEvaluatedKey;
    } while (start && (filter.limit === undefined || out.length < filter.limit));
    return out.sort((a, b) => (a.tenantId < b.tenantId ? -1 : 1));
  }

  /** Sends a command, turning throttling into TransientError so the workflow retries it. */
  // biome-ignore lint/suspicious/noExplicitAny: the document client's send is generic over every command type
  private async send(command: any): Promise<Record<string, any>> {
    try {
      return (await this.doc.send(command)) as Record<string, unknown>;
    } catch (error) {
      if (THROTTLING.has((error as Error).name))
        throw new TransientError(`registry throttled: ${(error as Error).name}`, { cause: error });
      throw error;
    }
  }
}
