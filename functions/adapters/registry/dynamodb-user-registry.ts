import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { UserMappingConflictError } from '../../core/errors.js';
import type { UserMapping, UserRegistry } from '../../core/users.js';

export interface DynamoDbUserRegistryOptions {
  readonly tableName: string;
  readonly client?: DynamoDBClient;
}

/** User-to-clone mappings on DynamoDB (dynalite locally): key userId, indexes by-email and by-tenant. */
export class DynamoDbUserRegistry implements UserRegistry {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(options: DynamoDbUserRegistryOptions) {
    this.table = options.tableName;
    this.doc = DynamoDBDocumentClient.from(options.client ?? new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  async get(userId: string): Promise<UserMapping | null> {
    const r = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { userId }, ConsistentRead: true }),
    );
    return (r.Item as UserMapping | undefined) ?? null;
  }

  async findByEmail(emailLower: string): Promise<UserMapping[]> {
    return this.query('by-email', 'emailLower', emailLower);
  }

  async list(filter: { tenantId?: string } = {}): Promise<UserMapping[]> {
    if (filter.tenantId) return this.query('by-tenant', 'tenantId', filter.tenantId);
    const out: UserMapping[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(new ScanCommand({ TableName: this.table, ExclusiveStartKey: start }));
      out.push(...((page.Items ?? []) as UserMapping[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async put(mapping: UserMapping, expectedRev: number | null): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: mapping,
          ConditionExpression: expectedRev === null ? 'attribute_not_exists(userId)' : '#rev = :rev',
          ExpressionAttributeNames: expectedRev === null ? undefined : { '#rev': 'rev' },
          ExpressionAttributeValues: expectedRev === null ? undefined : { ':rev': expectedRev },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException)
        throw new UserMappingConflictError(mapping.userId, 'changed concurrently; try again');
      throw error;
    }
  }

  async delete(userId: string, expectedRev: number): Promise<boolean> {
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { userId },
          ConditionExpression: '#rev = :rev',
          ExpressionAttributeNames: { '#rev': 'rev' },
          ExpressionAttributeValues: { ':rev': expectedRev },
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      if ((await this.get(userId)) === null) return false;
      throw new UserMappingConflictError(userId, 'changed concurrently; try again');
    }
  }

  async touch(userId: string, at: string, notBefore: string): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { userId },
          UpdateExpression: 'SET lastAccessed = :at',
          // Only an existing mapping, and at most once per interval however many instances race.
          ConditionExpression:
            'attribute_exists(userId) AND (attribute_not_exists(lastAccessed) OR lastAccessed < :nb)',
          ExpressionAttributeValues: { ':at': at, ':nb': notBefore },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  private async query(index: string, key: string, value: string): Promise<UserMapping[]> {
    const out: UserMapping[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index,
          KeyConditionExpression: '#k = :v',
          ExpressionAttributeNames: { '#k': key },
          ExpressionAttributeValues: { ':v': value },
          ExclusiveStartKey: start,
        }),
      );
      out.push(...((page.Items ?? []) as UserMapping[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return out;
  }
}
