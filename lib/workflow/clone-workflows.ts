import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { ITableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Grant } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import {
  Chain,
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  JitterType,
  JsonPath,
  LogLevel,
  StateMachine,
  StateMachineType,
  TaskInput,
  type TaskStateBase,
  Timeout,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import type { DedicatedPlacement } from '../dedicated/dedicated-placement.js';
import { StepFunction } from './step-function.js';

/** Errors worth retrying: our transient ones and Lambda's own service errors. */
export const RETRYABLE_ERRORS = [
  'TransientError',
  'EngineUnavailableError',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'Lambda.ClientExecutionTimeoutException',
];

/** Seconds between two polls of a dedicated instance's status. */
export const INSTANCE_POLL_SECONDS = 15;

/** Errors of `Select template` that mean this execution created nothing, so there is nothing to roll back. */
export const NOTHING_TO_ROLL_BACK = ['TenantStateConflictError', 'TenantNotFoundError'];

export interface CloneWorkflowsProps {
  readonly clonesTable: ITableV2;
  /** Prefix of every physical name and of the clone secrets. */
  readonly namespace: string;
  /** Admin secrets of the shared servers, by engine. */
  readonly adminSecrets?: { readonly postgresql?: ISecret; readonly mysql?: ISecret };
  /** The network and provisioning rights of `--placement dedicated`; absent, it is refused. */
  readonly dedicated?: DedicatedPlacement;
  /** Fleet upgrade runs (the upgrade workflow's own records). */
  readonly upgradeRunsTable?: ITableV2;
}

/**
 * The clone workflow (six steps, rollback) and the deprovision workflow, both Standard state
 * machines over one Lambda per state. The local runner executes the ASL these synthesize.
 */
export class CloneWorkflows extends Construct {
  readonly cloneStateMachine: StateMachine;
  readonly deprovisionStateMachine: StateMachine;
  readonly upgradeStateMachine?: StateMachine;
  /** The health monitor's function: the steps' access to the servers and secrets, read-only use. */
  readonly healthFunction: IFunction;
  /** The reconciler's function: the steps' rights, and listing secrets to find orphans. */
  readonly reconcileFunction: IFunction;
  readonly functions: IFunction[] = [];

  constructor(scope: Construct, id: string, props: CloneWorkflowsProps) {
    super(scope, id);
    const environment: Record<string, string> = {
      CLONES_TABLE: props.clonesTable.tableName,
      NAMESPACE: props.namespace,
      POWERTOOLS_SERVICE_NAME: 'clonefactory-workflow',
      ...(props.adminSecrets?.postgresql
        ? { PG_ADMIN_SECRET_ARN: props.adminSecrets.postgresql.secretArn }
        : {}),
      ...(props.adminSecrets?.mysql ? { MYSQL_ADMIN_SECRET_ARN: props.adminSecrets.mysql.secretArn } : {}),
      ...(props.dedicated?.environment ?? {}),
      ...(props.upgradeRunsTable ? { UPGRADE_RUNS_TABLE: props.upgradeRunsTable.tableName } : {}),
    };
    const network = props.dedicated
      ? { vpc: props.dedicated.vpc, securityGroups: [props.dedicated.clientSecurityGroup] }
      : undefined;
    const cloneSecretArn = Stack.of(this).formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${props.namespace}/clones/*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    const functions = new Map<string, StepFunction>();
    const stepFunction = (handler: string) => {
      const existing = functions.get(handler);
      if (existing) return existing;
      const fn = new StepFunction(this, handler, { handler, environment, network });
      functions.set(handler, fn);
      props.upgradeRunsTable?.grantReadWriteData(fn);
      props.dedicated?.grantProvisioning(fn);
      props.clonesTable.grantReadWriteData(fn);
      Grant.addToPrincipal({
        grantee: fn,
        actions: [
          'secretsmanager:CreateSecret',
          'secretsmanager:PutSecretValue',
          'secretsmanager:GetSecretValue',
          'secretsmanager:DescribeSecret',
          'secretsmanager:DeleteSecret',
          'secretsmanager:TagResource',
        ],
        resourceArns: [cloneSecretArn],
      });
      props.adminSecrets?.postgresql?.grantRead(fn);
      props.adminSecrets?.mysql?.grantRead(fn);
      NagSuppressions.addResourceSuppressions(
        fn,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason:
              'Clone secrets are created at run time, one per clone, under the namespace prefix; the policy is scoped to that prefix.',
            appliesTo: [
              {
                regex: `/^Resource::arn:<AWS::Partition>:secretsmanager:.*:secret:${props.namespace}\\/clones\\/\\*$/g`,
              },
            ],
          },
          {
            id: 'AwsSolutions-IAM5',
            reason: "grantReadWriteData covers the table's own indexes (by-state).",
            appliesTo: [{ regex: '/^Resource::<.*\\.Arn>\\/index\\/\\*$/g' }],
          },
        ],
        true,
      );
      this.functions.push(fn);
      return fn;
    };
    const task = (stateName: string, handler: string) => {
      const fn = stepFunction(handler);
      const invoke = new LambdaInvoke(this, stateName, {
        stateName,
        lambdaFunction: fn,
        // The state, with the execution's id beside it for the step's logs (a log key).
        payload: TaskInput.fromObject({ state: JsonPath.entirePayload, executionId: JsonPath.executionId }),
        payloadResponseOnly: true,
        retryOnServiceExceptions: false,
        taskTimeout: Timeout.duration(Duration.minutes(5)),
      });
      invoke.addRetry({
        errors: RETRYABLE_ERRORS,
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxAttempts: 4,
        maxDelay: Duration.seconds(30),
        jitterStrategy: JitterType.FULL,
      });
      return invoke;
    };

    // Clone workflow
    const cloneFailed = new Fail(this, 'Clone failed', {
      stateName: 'Clone failed',
      errorPath: '$.error.Error',
      causePath: '$.error.Cause',
    });
    const rollback = task('Roll back clone', 'rollBackClone').next(cloneFailed);
    const steps: [string, string][] = [
      ['Select template', 'selectTemplate'],
      ['Create database', 'createDatabase'],
      ['Apply schema', 'applySchema'],
      ['Populate data', 'populateData'],
      ['Configure security', 'configureSecurity'],
      ['Verify and register', 'verifyAndRegister'],
    ];
    const tasks: TaskStateBase[] = steps.map(([name, handler]) => task(name, handler));
    const [first] = tasks as [TaskStateBase, ...TaskStateBase[]];
    first.addCatch(
      new Fail(this, 'Clone refused', {
        stateName: 'Clone refused',
        errorPath: '$.error.Error',
        causePath: '$.error.Cause',
      }),
      {
        errors: NOTHING_TO_ROLL_BACK,
        resultPath: '$.error',
      },
    );
    // Dedicated placement: the instance is requested, then polled with a Wait state (no
    // Lambda sleeps) until it is available; `Check instance` fails into the rollback when
    // it failed or after its bounded number of polls. Shared placement goes straight on.
    const provision = task('Provision instance', 'provisionInstance');
    const check = task('Check instance', 'checkInstance');
    for (const t of [...tasks, provision, check]) t.addCatch(rollback, { resultPath: '$.error' });
    const [, create, ...rest] = tasks as [TaskStateBase, TaskStateBase, ...TaskStateBase[]];
    rest.reduce((chain, t) => chain.next(t), Chain.start(create));
    const wait = new Wait(this, 'Wait for instance', {
      stateName: 'Wait for instance',
      time: WaitTime.duration(Duration.seconds(INSTANCE_POLL_SECONDS)),
    });
    const available = new Choice(this, 'Instance available?', { stateName: 'Instance available?' })
      .when(Condition.stringEquals('$.instanceState', 'available'), create)
      .otherwise(wait);
    wait.next(check);
    check.next(available);
    provision.next(available);
    first.next(
      new Choice(this, 'Placement?', { stateName: 'Placement?' })
        .when(Condition.stringEquals('$.placement', 'dedicated'), provision)
        .otherwise(create),
    );
    this.cloneStateMachine = this.stateMachine('CloneStateMachine', first);

    // Deprovision workflow
    const deletionFailed = new Fail(this, 'Deletion failed', {
      stateName: 'Deletion failed',
      errorPath: '$.error.Error',
      causePath: '$.error.Cause',
    });
    const deprovision: TaskStateBase[] = [
      task('Begin deletion', 'beginDeletion'),
      task('Remove clone', 'removeClone'),
      task('Mark deleted', 'markDeleted'),
    ];
    for (const t of deprovision) t.addCatch(deletionFailed, { resultPath: '$.error' });
    deprovision.slice(1).reduce((chain, t) => chain.next(t), Chain.start(deprovision[0] as TaskStateBase));
    this.deprovisionStateMachine = this.stateMachine(
      'DeprovisionStateMachine',
      deprovision[0] as TaskStateBase,
    );
    if (props.upgradeRunsTable) this.upgradeStateMachine = this.upgradeWorkflow(task);
    this.healthFunction = stepFunction('checkHealth');
    this.reconcileFunction = stepFunction('reconcileFleet');
    Grant.addToPrincipal({
      grantee: this.reconcileFunction,
      actions: ['secretsmanager:ListSecrets'],
      resourceArns: ['*'],
    });
    NagSuppressions.addResourceSuppressions(
      this.reconcileFunction,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'ListSecrets has no resource-level permissions; the reconciler reads and deletes only secrets under the clone prefix, tagged with a clone id.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
  }

  /**
   * Fleet upgrades: `Plan upgrade` reads the run (made by whoever started it), a canary wave
   * and then the main wave run `Upgrade tenant` per tenant in a Distributed Map (a child
   * execution per tenant, at most the run's concurrency at once), and `Finish upgrade` closes
   * the run. A tenant's failure is recorded by its item, which never fails the Map for it:
   * the failure policy is the run's own (halt after N failures or X%), the same on AWS and in
   * the local runner. An item that cannot reach the registry fails the Map after its retries,
   * and the run is closed FAILED.
   */
  private upgradeWorkflow(task: (stateName: string, handler: string) => TaskStateBase): StateMachine {
    const finish = task('Finish upgrade', 'finishUpgrade');
    const wave = (stateName: string, itemsPath: string, itemState: string) => {
      const map = new DistributedMap(this, stateName, {
        stateName,
        itemsPath,
        itemSelector: { 'runId.$': '$.runId', 'tenantId.$': '$$.Map.Item.Value' },
        maxConcurrencyPath: '$.maxConcurrency',
        resultPath: JsonPath.DISCARD,
        mapExecutionType: StateMachineType.STANDARD,
      });
      map.itemProcessor(task(itemState, 'upgradeTenant'));
      map.addCatch(finish, { resultPath: '$.error' });
      return map;
    };
    const canary = wave('Canary wave', '$.canary', 'Upgrade canary tenant');
    const main = wave('Main wave', '$.rest', 'Upgrade tenant');
    const check = task('Check canary', 'checkCanary');
    const plan = task('Plan upgrade', 'planUpgrade');
    plan.addCatch(finish, { resultPath: '$.error' });
    check.addCatch(finish, { resultPath: '$.error' });
    plan.next(canary);
    canary.next(check);
    check.next(
      new Choice(this, 'Canary passed?', { stateName: 'Canary passed?' })
        .when(Condition.booleanEquals('$.proceed', true), main)
        .otherwise(finish),
    );
    main.next(finish);
    const machine = this.stateMachine('UpgradeStateMachine', plan, Duration.hours(24));
    NagSuppressions.addResourceSuppressions(
      machine,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'A Distributed Map starts child executions of this state machine and manages its own map runs; the policy CDK writes is scoped to this state machine.',
        },
      ],
      true,
    );
    return machine;
  }

  private stateMachine(id: string, start: TaskStateBase, timeout = Duration.hours(1)): StateMachine {
    const logs = new LogGroup(this, `${id}Logs`, {
      retention: RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const machine = new StateMachine(this, id, {
      definitionBody: DefinitionBody.fromChainable(start),
      stateMachineType: StateMachineType.STANDARD,
      timeout,
      tracingEnabled: true,
      // The workflow state holds ids only (a strict schema enforces it), so execution data may be logged.
      logs: { destination: logs, level: LogLevel.ALL, includeExecutionData: true },
    });
    NagSuppressions.addResourceSuppressions(
      machine,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "Step Functions may invoke any version of its own step functions (`<fn>:*`); the functions are this construct's only.",
          appliesTo: [{ regex: '/^Resource::<.*\\.Arn>:\\*$/g' }],
        },
        {
          id: 'AwsSolutions-IAM5',
          reason: 'X-Ray and CloudWatch Logs delivery actions do not support resource-level permissions.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
    return machine;
  }
}
