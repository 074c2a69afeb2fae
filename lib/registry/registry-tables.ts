import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, Billing, TableEncryptionV2, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';

export interface RegistryTablesProps {
  /** RETAIN by default: the registry is the source of truth for every tenant database. */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The clone registry and the user-to-tenant mappings. Keys follow the queries the control
 * plane makes: a clone by tenant id, clones by lifecycle state; a mapping by user id, by
 * lower-cased email, and every mapping of a tenant.
 */
export class RegistryTables extends Construct {
  readonly clones: TableV2;
  readonly userMappings: TableV2;

  constructor(scope: Construct, id: string, props: RegistryTablesProps = {}) {
    super(scope, id);
    const common = {
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryptionV2.awsManagedKey(),
      deletionProtection: (props.removalPolicy ?? RemovalPolicy.RETAIN) === RemovalPolicy.RETAIN,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    };
    this.clones = new TableV2(this, 'Clones', {
      ...common,
      partitionKey: { name: 'tenantId', type: AttributeType.STRING },
      globalSecondaryIndexes: [
        {
          indexName: 'by-state',
          partitionKey: { name: 'state', type: AttributeType.STRING },
          sortKey: { name: 'tenantId', type: AttributeType.STRING },
        },
      ],
    });
    this.userMappings = new TableV2(this, 'UserMappings', {
      ...common,
      partitionKey: { name: 'userId', type: AttributeType.STRING },
      globalSecondaryIndexes: [
        { indexName: 'by-email', partitionKey: { name: 'emailLower', type: AttributeType.STRING } },
        {
          indexName: 'by-tenant',
          partitionKey: { name: 'tenantId', type: AttributeType.STRING },
          sortKey: { name: 'userId', type: AttributeType.STRING },
        },
      ],
    });
  }
}
