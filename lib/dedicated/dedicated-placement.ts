import { ArnFormat, CfnParameter, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  GatewayVpcEndpointAwsService,
  InterfaceVpcEndpointAwsService,
  Peer,
  Port,
  SecurityGroup,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { CfnPullThroughCacheRule } from 'aws-cdk-lib/aws-ecr';
import { Cluster, ContainerInsights } from 'aws-cdk-lib/aws-ecs';
import { FileSystem } from 'aws-cdk-lib/aws-efs';
import { type IGrantable, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { SubnetGroup } from 'aws-cdk-lib/aws-rds';
import { NagSuppressions } from 'cdk-nag';
import { Construct, type IConstruct } from 'constructs';

export interface DedicatedPlacementProps {
  readonly namespace: string;
  /** Which provisioner the workflow uses for `--placement dedicated`. */
  readonly provisioner: 'rds' | 'fargate';
  /** Keep RDS instances from deletion until deprovisioning lifts it. */
  readonly deletionProtection?: boolean;
  /** Take a final snapshot of an RDS instance when its tenant is deleted. */
  readonly finalSnapshot?: boolean;
}

/** The tag every dedicated resource carries, and that the IAM conditions below check. */
const MANAGED_TAG = 'clonefactory:managed-by';

/**
 * What a database server per tenant needs: a VPC of private subnets with endpoints (no NAT,
 * no internet), a security group for tenant databases that admits only the control plane's
 * and the API's functions, an RDS subnet group, an ECS cluster and an encrypted EFS file
 * system for Fargate, and IAM scoped to resources tagged `clonefactory:managed-by`.
 * Instance class and storage are stack parameters.
 */
export class DedicatedPlacement extends Construct {
  readonly vpc: Vpc;
  /** For the functions that reach tenant databases (workflow steps, tenant API). */
  readonly clientSecurityGroup: SecurityGroup;
  readonly databaseSecurityGroup: SecurityGroup;
  readonly cluster: Cluster;
  readonly fileSystem: FileSystem;
  /** Variables for the workflow functions: which provisioner, and where. */
  readonly environment: Record<string, string>;
  private readonly executionRole: Role;
  private readonly taskRole: Role;

  constructor(
    scope: Construct,
    id: string,
    private readonly props: DedicatedPlacementProps,
  ) {
    super(scope, id);
    const stack = Stack.of(this);
    const instanceClass = new CfnParameter(stack, 'TenantInstanceClass', {
      type: 'String',
      default: 'db.t4g.micro',
      allowedPattern: '^db\\.[a-z0-9]+\\.[a-z0-9]+$',
      description: 'RDS instance class of a dedicated tenant database',
    });
    const storage = new CfnParameter(stack, 'TenantStorageGb', {
      type: 'Number',
      default: 20,
      minValue: 20,
      maxValue: 16384,
      description: 'Allocated storage (GiB) of a dedicated tenant database',
    });

    const flowLogs = new LogGroup(this, 'FlowLogs', {
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.vpc = new Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'tenants', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      flowLogs: { all: { destination: FlowLogDestination.toCloudWatchLogs(flowLogs) } },
      gatewayEndpoints: {
        DynamoDb: { service: GatewayVpcEndpointAwsService.DYNAMODB },
        S3: { service: GatewayVpcEndpointAwsService.S3 },
      },
    });
    // The services the functions and tasks call, without a route to the internet.
    for (const [name, service] of Object.entries({
      SecretsManager: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      Rds: InterfaceVpcEndpointAwsService.RDS,
      Ecs: InterfaceVpcEndpointAwsService.ECS,
      Ecr: InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
      Efs: InterfaceVpcEndpointAwsService.ELASTIC_FILESYSTEM,
      StepFunctions: InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
      XRay: InterfaceVpcEndpointAwsService.XRAY,
    })) {
      const endpoint = this.vpc.addInterfaceEndpoint(name, { service, privateDnsEnabled: true });
      NagSuppressions.addResourceSuppressions(
        endpoint,
        [
          {
            id: 'CdkNagValidationFailure',
            reason:
              "EC23 cannot read the endpoint's ingress CIDR, the VPC's own block (an intrinsic): HTTPS from inside the VPC, never 0.0.0.0/0.",
          },
        ],
        true,
      );
    }

    this.clientSecurityGroup = new SecurityGroup(this, 'ClientSecurityGroup', {
      vpc: this.vpc,
      description: 'Clone Factory functions that reach tenant databases',
      allowAllOutbound: true,
    });
    this.databaseSecurityGroup = new SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc: this.vpc,
      description: 'Dedicated tenant databases: only the Clone Factory functions get in',
      // Outbound reaches only the VPC: the subnets are isolated (the endpoints, EFS, and S3
      // through its gateway endpoint for ECR's image layers).
      allowAllOutbound: true,
    });
    for (const [port, engine] of [
      [5432, 'PostgreSQL'],
      [3306, 'MySQL'],
    ] as const)
      this.databaseSecurityGroup.addIngressRule(
        Peer.securityGroupId(this.clientSecurityGroup.securityGroupId),
        Port.tcp(port),
        `${engine} from the Clone Factory functions`,
      );

    const subnets = this.vpc.selectSubnets({ subnetType: SubnetType.PRIVATE_ISOLATED });
    const subnetGroup = new SubnetGroup(this, 'SubnetGroup', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      description: 'Dedicated tenant databases',
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.cluster = new Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ContainerInsights.ENABLED,
    });
    this.fileSystem = new FileSystem(this, 'Data', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
      encrypted: true,
      enableAutomaticBackups: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.fileSystem.connections.allowDefaultPortFrom(this.databaseSecurityGroup, 'tenant database tasks');
    // Official engine images from ECR Public, pulled through this account's ECR (no internet).
    const cache = new CfnPullThroughCacheRule(this, 'EcrPublicCache', {
      ecrRepositoryPrefix: `${props.namespace}-ecr-public`,
      upstreamRegistryUrl: 'public.ecr.aws',
    });
    const logs = new LogGroup(this, 'TenantDatabaseLogs', { retention: RetentionDays.ONE_YEAR });

    this.executionRole = new Role(this, 'TaskExecutionRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Pulls the engine image, writes logs, reads the instance master secret',
    });
    const repositories = stack.formatArn({
      service: 'ecr',
      resource: 'repository',
      resourceName: `${cache.ecrRepositoryPrefix}/*`,
    });
    this.executionRole.addToPolicy(
      new PolicyStatement({
        actions: [
          'ecr:BatchGetImage',
          'ecr:GetDownloadUrlForLayer',
          'ecr:BatchImportUpstreamImage',
          'ecr:CreateRepository',
        ],
        resources: [repositories],
      }),
    );
    this.executionRole.addToPolicy(
      new PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
    );
    logs.grantWrite(this.executionRole);
    this.executionRole.addToPolicy(
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [this.instanceSecrets()],
      }),
    );
    this.taskRole = new Role(this, 'TaskRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'A tenant database task: mounts its own EFS access point',
    });
    this.taskRole.addToPolicy(
      new PolicyStatement({
        actions: ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'],
        resources: [this.fileSystem.fileSystemArn],
        conditions: { StringEquals: { 'elasticfilesystem:AccessedViaMountTarget': 'true' } },
      }),
    );

    this.environment = {
      DEDICATED_PROVISIONER: props.provisioner,
      DEDICATED_INSTANCE_CLASS: instanceClass.valueAsString,
      DEDICATED_STORAGE_GB: storage.valueAsString,
      DEDICATED_SUBNET_GROUP: subnetGroup.subnetGroupName,
      DEDICATED_SECURITY_GROUP: this.databaseSecurityGroup.securityGroupId,
      DEDICATED_SUBNETS: subnets.subnetIds.join(','),
      DEDICATED_CLUSTER: this.cluster.clusterName,
      DEDICATED_FILE_SYSTEM: this.fileSystem.fileSystemId,
      DEDICATED_EXECUTION_ROLE: this.executionRole.roleArn,
      DEDICATED_TASK_ROLE: this.taskRole.roleArn,
      DEDICATED_LOG_GROUP: logs.logGroupName,
      DEDICATED_IMAGE_PREFIX: `${stack.account}.dkr.ecr.${stack.region}.amazonaws.com/${cache.ecrRepositoryPrefix}`,
      DEDICATED_DELETION_PROTECTION: String(props.deletionProtection ?? false),
      DEDICATED_FINAL_SNAPSHOT: String(props.finalSnapshot ?? false),
    };

    NagSuppressions.addResourceSuppressions(
      [this.executionRole, this.taskRole],
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'ecr:GetAuthorizationToken has no resource-level permissions; repositories and secrets are scoped to this namespace prefix.',
        },
      ],
      true,
    );
  }

  /**
   * Lets a workflow function create, poll and remove dedicated instances: creation only with
   * the managed-by tag in the request, changes and deletion only of resources carrying it.
   */
  grantProvisioning(grantee: IGrantable & IConstruct): void {
    const stack = Stack.of(this);
    const tagged = { StringEquals: { [`aws:ResourceTag/${MANAGED_TAG}`]: 'clonefactory' } };
    const requestTagged = { StringEquals: { [`aws:RequestTag/${MANAGED_TAG}`]: 'clonefactory' } };
    const rds = (resource: string, resourceName: string) =>
      stack.formatArn({ service: 'rds', resource, resourceName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const tenantInstances = rds('db', `${this.props.namespace}-*`);
    const tenantServices = stack.formatArn({
      service: 'ecs',
      resource: 'service',
      resourceName: `${this.cluster.clusterName}/${this.props.namespace}-*`,
    });
    const statements = [
      // RDS
      new PolicyStatement({
        actions: ['rds:CreateDBInstance', 'rds:AddTagsToResource'],
        resources: [tenantInstances],
        conditions: requestTagged,
      }),
      new PolicyStatement({
        actions: ['rds:CreateDBInstance'],
        resources: [rds('subgrp', '*'), rds('og', '*'), rds('pg', '*')],
      }),
      new PolicyStatement({
        actions: ['rds:ModifyDBInstance', 'rds:DeleteDBInstance', 'rds:CreateDBSnapshot'],
        resources: [tenantInstances, rds('snapshot', `${this.props.namespace}-*`)],
        conditions: tagged,
      }),
      new PolicyStatement({ actions: ['rds:DescribeDBInstances'], resources: ['*'] }),
      // The master secrets RDS manages (named rds!db-…), read to build the instance's image.
      new PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [
          stack.formatArn({
            service: 'secretsmanager',
            resource: 'secret',
            resourceName: 'rds!db-*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
        // RDS tags the secrets it manages with their instance: only this namespace's ones.
        conditions: {
          StringLike: {
            'aws:ResourceTag/aws:rds:primaryDBInstanceArn': tenantInstances,
          },
        },
      }),
      // ECS
      new PolicyStatement({
        actions: ['ecs:CreateService', 'ecs:TagResource'],
        resources: [tenantServices],
        conditions: requestTagged,
      }),
      new PolicyStatement({
        actions: ['ecs:DeleteService', 'ecs:UpdateService'],
        resources: [tenantServices],
        conditions: tagged,
      }),
      new PolicyStatement({
        actions: ['ecs:ListServices', 'ecs:DescribeServices', 'ecs:ListTasks', 'ecs:DescribeTasks'],
        resources: ['*'],
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
      }),
      new PolicyStatement({
        actions: ['ecs:RegisterTaskDefinition', 'ecs:DeregisterTaskDefinition'],
        resources: ['*'],
      }),
      new PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.executionRole.roleArn, this.taskRole.roleArn],
      }),
      // EFS access points
      new PolicyStatement({
        actions: ['elasticfilesystem:CreateAccessPoint', 'elasticfilesystem:TagResource'],
        resources: [this.fileSystem.fileSystemArn],
        conditions: requestTagged,
      }),
      new PolicyStatement({
        actions: ['elasticfilesystem:DeleteAccessPoint'],
        resources: [
          stack.formatArn({ service: 'elasticfilesystem', resource: 'access-point', resourceName: '*' }),
        ],
        conditions: tagged,
      }),
      new PolicyStatement({
        actions: ['elasticfilesystem:DescribeAccessPoints'],
        resources: [this.fileSystem.fileSystemArn],
      }),
      // The Fargate instances' master secrets
      new PolicyStatement({
        actions: [
          'secretsmanager:CreateSecret',
          'secretsmanager:DescribeSecret',
          'secretsmanager:GetSecretValue',
          'secretsmanager:DeleteSecret',
          'secretsmanager:TagResource',
        ],
        resources: [this.instanceSecrets()],
      }),
    ];
    for (const statement of statements) grantee.grantPrincipal.addToPrincipalPolicy(statement);
    const ns = this.props.namespace;
    // Region and account are tokens, or literal when the stack has an env (bin/app.ts).
    const arn = (service: string, rest: string) =>
      `/^Resource::arn:<AWS::Partition>:${service}:.*:${rest}$/g`;
    NagSuppressions.addResourceSuppressions(
      grantee,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: `Tenant instances and their final snapshots are made at run time, one per tenant, named ${ns}-<clone id>; modifying and deleting them also requires the ${MANAGED_TAG} tag.`,
          appliesTo: [{ regex: arn('rds', `(db|snapshot):${ns}-\\*`) }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: `CreateDBInstance is also authorised against the subnet, option and parameter groups it uses; the instance itself must carry the ${MANAGED_TAG} tag.`,
          appliesTo: [{ regex: arn('rds', '(subgrp|og|pg):\\*') }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: `RDS names the master secrets it manages itself (rds!db-<uuid>); reads are limited to those of ${ns}-* instances by their aws:rds:primaryDBInstanceArn tag.`,
          appliesTo: [{ regex: arn('secretsmanager', 'secret:rds!db-\\*') }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: `One master secret per Fargate instance, made at run time under the ${ns}/instances/ prefix.`,
          appliesTo: [{ regex: arn('secretsmanager', `secret:${ns}\\/instances\\/\\*`) }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: `One ECS service per tenant, made at run time in this cluster as ${ns}-<clone id>; deleting one requires the ${MANAGED_TAG} tag.`,
          appliesTo: [{ regex: arn('ecs', `service\\/<.*>\\/${ns}-\\*`) }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: `EFS generates access point ids; deleting one requires the ${MANAGED_TAG} tag.`,
          appliesTo: [{ regex: arn('elasticfilesystem', 'access-point\\/\\*') }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'rds:DescribeDBInstances, ecs:RegisterTaskDefinition and ecs:DeregisterTaskDefinition have no resource-level permissions; the ECS reads are limited to this cluster by condition.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
  }

  private instanceSecrets(): string {
    return Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${this.props.namespace}/instances/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }
}
