import { Stack, type StackProps } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { RegistryTables } from './registry/registry-tables.js';
import { CloneWorkflows } from './workflow/clone-workflows.js';

export interface CloneFactoryStackProps extends StackProps {
  /** Prefix of physical names and clone secrets (default `cf`). */
  readonly namespace?: string;
  /** ARNs of the shared servers' admin secrets (`{url}` or the RDS master-secret shape). */
  readonly pgAdminSecretArn?: string;
  readonly mysqlAdminSecretArn?: string;
}

/**
 * The Clone Factory control plane. One folder per capability under lib/; this stack wires
 * them together. Context keys `namespace`, `pgAdminSecretArn` and `mysqlAdminSecretArn`
 * configure it from `cdk deploy -c …`.
 */
export class CloneFactoryStack extends Stack {
  readonly registry: RegistryTables;
  readonly workflows: CloneWorkflows;

  constructor(scope: Construct, id: string, props: CloneFactoryStackProps = {}) {
    super(scope, id, props);
    const context = (key: string) => this.node.tryGetContext(key) as string | undefined;
    const pgArn = props.pgAdminSecretArn ?? context('pgAdminSecretArn');
    const mysqlArn = props.mysqlAdminSecretArn ?? context('mysqlAdminSecretArn');
    this.registry = new RegistryTables(this, 'Registry');
    this.workflows = new CloneWorkflows(this, 'Workflows', {
      clonesTable: this.registry.clones,
      namespace: props.namespace ?? context('namespace') ?? 'cf',
      adminSecrets: {
        postgresql: pgArn ? Secret.fromSecretCompleteArn(this, 'PgAdminSecret', pgArn) : undefined,
        mysql: mysqlArn ? Secret.fromSecretCompleteArn(this, 'MysqlAdminSecret', mysqlArn) : undefined,
      },
    });
  }
}
