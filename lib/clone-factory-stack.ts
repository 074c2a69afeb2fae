import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { RegistryTables } from './registry/registry-tables.js';

/**
 * The Clone Factory control plane. One folder per capability under lib/; this stack only
 * wires them together. The cloning workflow, API and tenant database infrastructure join
 * here as they are built.
 */
export class CloneFactoryStack extends Stack {
  readonly registry: RegistryTables;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.registry = new RegistryTables(this, 'Registry');
  }
}
