import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import {
  CLONES_TABLE,
  type TableSchema,
  UPGRADE_RUNS_TABLE,
  USER_MAPPINGS_TABLE,
} from '../../functions/adapters/registry/table-schemas.js';

export interface RegistryTablesProps {
  /** RETAIN by default: the registry is the source of truth for every tenant database. */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The clone registry and the user-to-tenant mappings. Keys follow the queries the control
 * plane makes (a clone by tenant id, clones by lifecycle state; a mapping by user id, by
 * lower-cased email, every mapping of a tenant) and come from the same schema definitions
 * the local dynalite tables are created from.
 */
export class RegistryTables extends Construct {
  readonly clones: TableV2;
  readonly userMappings: TableV2;
  readonly upgradeRuns: TableV2;

  constructor(scope: Construct, id: string, props: RegistryTablesProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const table = (tableId: string, schema: TableSchema) =>
      new TableV2(this, tableId, {
        billing: Billing.onDemand(),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: TableEncryptionV2.awsManagedKey(),
        deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
        removalPolicy,
        partitionKey: { name: schema.partitionKey, type: AttributeType.STRING },
        ...(schema.sortKey ? { sortKey: { name: schema.sortKey, type: AttributeType.STRING } } : {}),
        globalSecondaryIndexes: schema.indexes.map((i) => ({
          indexName: i.name,
          partitionKey: { name: i.partitionKey, type: AttributeType.STRING },
          ...(i.sortKey ? { sortKey: { name: i.sortKey, type: AttributeType.STRING } } : {}),
        })),
      });
    this.clones = table('Clones', CLONES_TABLE);
    this.userMappings = table('UserMappings', USER_MAPPINGS_TABLE);
    this.upgradeRuns = table('UpgradeRuns', UPGRADE_RUNS_TABLE);
  }
}
