import { fileURLToPath } from 'node:url';
import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  JsonSchemaType,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  Model,
  RequestValidator,
  RestApi,
  TokenAuthorizer,
} from 'aws-cdk-lib/aws-apigateway';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import type { ISecurityGroup, IVpc } from 'aws-cdk-lib/aws-ec2';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { ROUTES } from '../../functions/core/auth/policy.js';
import { StepFunction } from '../workflow/step-function.js';

const AUTHORIZER = fileURLToPath(new URL('../../functions/handlers/authorizer.ts', import.meta.url));
const API = fileURLToPath(new URL('../../functions/handlers/api.ts', import.meta.url));

export interface TenantApiProps {
  readonly clonesTable: ITableV2;
  readonly usersTable: ITableV2;
  readonly cloneStateMachine: IStateMachine;
  readonly deprovisionStateMachine: IStateMachine;
  /** Fleet upgrades: the state machine the API starts and the table of its runs. */
  readonly upgrades?: { readonly stateMachine: IStateMachine; readonly runsTable: ITableV2 };
  readonly namespace: string;
  /** The identity provider: its JWKS, issuer and the audience tokens must carry. */
  readonly jwt: { readonly jwksUrl: string; readonly issuer: string; readonly audience: string };
  /** API Gateway's cache of the authorizer's answer per token (0 turns it off). Default 60 s. */
  readonly authorizerCacheTtl?: Duration;
  /** The network of dedicated tenant databases, which the API's function must reach. */
  readonly network?: { readonly vpc: IVpc; readonly securityGroups: readonly ISecurityGroup[] };
  /** Which provisioner runs dedicated tenants (`rds`, `fargate`); absent, the API refuses them. */
  readonly dedicatedProvisioner?: string;
  /** Requests per second, and burst, for the whole stage. */
  readonly throttle?: { readonly rateLimit: number; readonly burstLimit: number };
}

/**
 * The REST API: every route of functions/core/auth/policy.ts ROUTES, each behind the JWT
 * TOKEN authorizer, served by one Lambda running the same Hono app as the local server.
 * Request validation, JSON access logs (no bodies), stage throttling and X-Ray tracing.
 */
export class TenantApi extends Construct {
  readonly api: RestApi;
  readonly authorizerFunction: StepFunction;
  readonly apiFunction: StepFunction;

  constructor(scope: Construct, id: string, props: TenantApiProps) {
    super(scope, id);
    const tables = { CLONES_TABLE: props.clonesTable.tableName, USERS_TABLE: props.usersTable.tableName };
    this.authorizerFunction = new StepFunction(this, 'Authorizer', {
      entry: AUTHORIZER,
      handler: 'handler',
      memorySize: 256,
      timeout: Duration.seconds(10),
      environment: {
        ...tables,
        JWKS_URL: props.jwt.jwksUrl,
        JWT_ISSUER: props.jwt.issuer,
        JWT_AUDIENCE: props.jwt.audience,
        // Kept at most the API cache TTL: together they bound how long a removed user keeps access.
        AUTHORIZER_RESOLUTION_TTL_MS: '5000',
      },
    });
    props.clonesTable.grantReadData(this.authorizerFunction);
    // last_accessed: an UpdateItem on the mapping, besides reads.
    props.usersTable.grantReadWriteData(this.authorizerFunction);

    this.apiFunction = new StepFunction(this, 'Handler', {
      entry: API,
      handler: 'handler',
      timeout: Duration.seconds(29),
      network: props.network,
      environment: {
        ...tables,
        NAMESPACE: props.namespace,
        CLONE_STATE_MACHINE_ARN: props.cloneStateMachine.stateMachineArn,
        DEPROVISION_STATE_MACHINE_ARN: props.deprovisionStateMachine.stateMachineArn,
        ...(props.upgrades
          ? {
              UPGRADE_STATE_MACHINE_ARN: props.upgrades.stateMachine.stateMachineArn,
              UPGRADE_RUNS_TABLE: props.upgrades.runsTable.tableName,
            }
          : {}),
        ...(props.dedicatedProvisioner ? { DEDICATED_PROVISIONER: props.dedicatedProvisioner } : {}),
      },
    });
    props.clonesTable.grantReadWriteData(this.apiFunction);
    props.usersTable.grantReadWriteData(this.apiFunction);
    props.upgrades?.runsTable.grantReadWriteData(this.apiFunction);
    const machines = [props.cloneStateMachine, props.deprovisionStateMachine];
    if (props.upgrades) machines.push(props.upgrades.stateMachine);
    for (const machine of machines) {
      machine.grantStartExecution(this.apiFunction);
      machine.grantRead(this.apiFunction);
    }
    // Tenant sessions read their clone's credentials; the API holds no admin secret.
    Grant.addToPrincipal({
      grantee: this.apiFunction,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: [
        Stack.of(this).formatArn({
          service: 'secretsmanager',
          resource: 'secret',
          resourceName: `${props.namespace}/clones/*`,
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ],
    });

    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_YEAR });
    const authorizer = new TokenAuthorizer(this, 'JwtAuthorizer', {
      handler: this.authorizerFunction,
      identitySource: 'method.request.header.Authorization',
      validationRegex: '^Bearer [-0-9A-Za-z._~+/=]+$',
      resultsCacheTtl: props.authorizerCacheTtl ?? Duration.seconds(60),
    });
    this.api = new RestApi(this, 'RestApi', {
      restApiName: `${props.namespace}-clone-factory`,
      description: 'Clone Factory: control plane (operators) and tenant data plane (mapped users)',
      cloudWatchRole: true,
      deployOptions: {
        stageName: 'v1',
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: MethodLoggingLevel.ERROR,
        // Request and response bodies never reach the logs.
        dataTraceEnabled: false,
        tracingEnabled: true,
        throttlingRateLimit: props.throttle?.rateLimit ?? 100,
        throttlingBurstLimit: props.throttle?.burstLimit ?? 200,
      },
      defaultMethodOptions: { authorizer, authorizationType: AuthorizationType.CUSTOM },
    });
    const validator = new RequestValidator(this, 'Validator', {
      restApi: this.api,
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const objectBody = new Model(this, 'JsonObject', {
      restApi: this.api,
      contentType: 'application/json',
      schema: { type: JsonSchemaType.OBJECT },
    });
    const integration = new LambdaIntegration(this.apiFunction);
    for (const route of ROUTES) {
      const path = route.path.replace(/:([A-Za-z]+)/g, '{$1}');
      const resource = this.api.root.resourceForPath(path);
      const params = [...path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1]);
      resource.addMethod(route.method, integration, {
        requestValidator: validator,
        requestParameters: {
          'method.request.header.Authorization': true,
          ...Object.fromEntries(params.map((p) => [`method.request.path.${p}`, true])),
        },
        ...(route.method === 'POST' || route.method === 'PATCH'
          ? { requestModels: { 'application/json': objectBody } }
          : {}),
      });
    }

    NagSuppressions.addResourceSuppressions(
      [this.authorizerFunction, this.apiFunction],
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "grantReadData/grantReadWriteData cover the tables' own indexes (by-email, by-tenant, by-state).",
          appliesTo: [{ regex: '/^Resource::<.*\\.Arn>\\/index\\/\\*$/g' }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Clone secrets are created at run time, one per clone, under the namespace prefix; read access is scoped to it. grantRead on a state machine covers its executions, named at run time.',
          appliesTo: [
            {
              regex: `/^Resource::arn:<AWS::Partition>:secretsmanager:.*:secret:${props.namespace}\\/clones\\/\\*$/g`,
            },
            { regex: '/^Resource::arn:<AWS::Partition>:states:.*:execution:.*$/g' },
            { regex: '/^Resource::<.*StateMachine.*\\.Arn>:\\*$/g' },
            { regex: '/^Resource::arn:.*:states:.*$/g' },
          ],
        },
      ],
      true,
    );
    NagSuppressions.addResourceSuppressions(
      this.api,
      [
        {
          id: 'AwsSolutions-APIG3',
          reason:
            'WAF is an account-level choice (cost, managed rules); the stage is throttled and every route needs a verified JWT. Attach a web ACL in production.',
        },
        {
          id: 'AwsSolutions-COG4',
          reason:
            'The authorizer verifies JWTs from any OIDC issuer (Cognito included) against its JWKS; a Cognito user pool authorizer would tie the API to Cognito.',
        },
        {
          id: 'AwsSolutions-IAM4',
          reason:
            "API Gateway's account role for CloudWatch logging uses the AWS managed push-to-CloudWatch policy.",
          appliesTo: [
            'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs',
          ],
        },
      ],
      true,
    );
  }
}
