import { Annotations, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { TenantApi } from './api/tenant-api.js';
import { DedicatedPlacement } from './dedicated/dedicated-placement.js';
import { HealthMonitoring } from './monitoring/health-monitoring.js';
import { RegistryTables } from './registry/registry-tables.js';
import { CloneWorkflows } from './workflow/clone-workflows.js';

export interface CloneFactoryStackProps extends StackProps {
  /** Prefix of physical names and clone secrets (default `cf`). */
  readonly namespace?: string;
  /** ARNs of the shared servers' admin secrets (`{url}` or the RDS master-secret shape). */
  readonly pgAdminSecretArn?: string;
  readonly mysqlAdminSecretArn?: string;
  /** The identity provider the API trusts (context `jwksUrl`, `jwtIssuer`, `jwtAudience`). */
  readonly jwt?: { readonly jwksUrl: string; readonly issuer: string; readonly audience: string };
  /** Authorizer result cache, seconds (context `authorizerCacheTtlSeconds`, default 60). */
  readonly authorizerCacheTtlSeconds?: number;
  /** How dedicated tenants run (context `dedicated`): `rds` (default), `fargate`, or `off`. */
  readonly dedicated?: 'rds' | 'fargate' | 'off';
}

/**
 * The Clone Factory control plane. One folder per capability under lib/; this stack wires
 * them together. Context keys `namespace`, `pgAdminSecretArn` and `mysqlAdminSecretArn`
 * configure it from `cdk deploy -c …`.
 */
export class CloneFactoryStack extends Stack {
  readonly registry: RegistryTables;
  readonly workflows: CloneWorkflows;
  readonly api: TenantApi;
  readonly dedicated?: DedicatedPlacement;

  constructor(scope: Construct, id: string, props: CloneFactoryStackProps = {}) {
    super(scope, id, props);
    const context = (key: string) => this.node.tryGetContext(key) as string | undefined;
    const pgArn = props.pgAdminSecretArn ?? context('pgAdminSecretArn');
    const mysqlArn = props.mysqlAdminSecretArn ?? context('mysqlAdminSecretArn');
    const namespace = props.namespace ?? context('namespace') ?? 'cf';
    this.registry = new RegistryTables(this, 'Registry');
    // Dedicated placement (context `dedicated`: rds, the default, fargate, or off).
    const dedicatedKind = props.dedicated ?? context('dedicated') ?? 'rds';
    if (!['rds', 'fargate', 'off'].includes(dedicatedKind))
      throw new Error(`context dedicated must be rds, fargate or off, not ${dedicatedKind}`);
    this.dedicated =
      dedicatedKind === 'off'
        ? undefined
        : new DedicatedPlacement(this, 'Dedicated', {
            namespace,
            provisioner: dedicatedKind as 'rds' | 'fargate',
            deletionProtection: context('dedicatedDeletionProtection') === 'true',
            finalSnapshot: context('dedicatedFinalSnapshot') === 'true',
          });
    this.workflows = new CloneWorkflows(this, 'Workflows', {
      clonesTable: this.registry.clones,
      upgradeRunsTable: this.registry.upgradeRuns,
      namespace,
      dedicated: this.dedicated,
      adminSecrets: {
        postgresql: pgArn ? Secret.fromSecretCompleteArn(this, 'PgAdminSecret', pgArn) : undefined,
        mysql: mysqlArn ? Secret.fromSecretCompleteArn(this, 'MysqlAdminSecret', mysqlArn) : undefined,
      },
    });
    new HealthMonitoring(this, 'Monitoring', {
      monitor: this.workflows.healthFunction,
      reconciler: this.workflows.reconcileFunction,
    });
    const jwt = props.jwt ?? {
      jwksUrl: context('jwksUrl') ?? '',
      issuer: context('jwtIssuer') ?? '',
      audience: context('jwtAudience') ?? '',
    };
    if (!jwt.jwksUrl || !jwt.issuer || !jwt.audience)
      Annotations.of(this).addWarningV2(
        'clonefactory:jwt',
        'No identity provider configured (-c jwksUrl=... -c jwtIssuer=... -c jwtAudience=...): the API refuses every token.',
      );
    const ttl = props.authorizerCacheTtlSeconds ?? Number(context('authorizerCacheTtlSeconds') ?? 60);
    this.api = new TenantApi(this, 'Api', {
      clonesTable: this.registry.clones,
      usersTable: this.registry.userMappings,
      cloneStateMachine: this.workflows.cloneStateMachine,
      deprovisionStateMachine: this.workflows.deprovisionStateMachine,
      upgrades: this.workflows.upgradeStateMachine
        ? { stateMachine: this.workflows.upgradeStateMachine, runsTable: this.registry.upgradeRuns }
        : undefined,
      namespace,
      network: this.dedicated
        ? { vpc: this.dedicated.vpc, securityGroups: [this.dedicated.clientSecurityGroup] }
        : undefined,
      dedicatedProvisioner: this.dedicated ? dedicatedKind : undefined,
      jwt: {
        // Unset: a JWKS that cannot exist, so that the authorizer fails closed.
        jwksUrl: jwt.jwksUrl || 'https://identity-provider.invalid/.well-known/jwks.json',
        issuer: jwt.issuer || 'unconfigured',
        audience: jwt.audience || 'unconfigured',
      },
      authorizerCacheTtl: Duration.seconds(ttl),
    });
  }
}
