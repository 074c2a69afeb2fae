import { App, Aspects, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../functions/core/auth/policy.js';
import { CloneFactoryStack } from '../../lib/clone-factory-stack.js';
import { RETRYABLE_ERRORS } from '../../lib/workflow/clone-workflows.js';
import { resolveIntrinsics } from '../../local/workflow-definitions.js';

const DEDICATED_VARIABLES = [
  'DEDICATED_PROVISIONER',
  'DEDICATED_INSTANCE_CLASS',
  'DEDICATED_STORAGE_GB',
  'DEDICATED_SUBNET_GROUP',
  'DEDICATED_SECURITY_GROUP',
  'DEDICATED_SUBNETS',
  'DEDICATED_CLUSTER',
  'DEDICATED_FILE_SYSTEM',
  'DEDICATED_EXECUTION_ROLE',
  'DEDICATED_TASK_ROLE',
  'DEDICATED_LOG_GROUP',
  'DEDICATED_IMAGE_PREFIX',
  'DEDICATED_DELETION_PROTECTION',
  'DEDICATED_FINAL_SNAPSHOT',
];
const PG_SECRET = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:shared-pg-admin-AbCdEf';

function synth(
  options: { env?: { account: string; region: string }; dedicated?: 'rds' | 'fargate' | 'off' } = {},
): {
  stack: Stack;
  template: Template;
} {
  // Bundling is skipped: these tests read the template, not the Lambda code.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new CloneFactoryStack(app, 'Test', { pgAdminSecretArn: PG_SECRET, ...options });
  Aspects.of(app).add(new AwsSolutionsChecks());
  return { stack, template: Template.fromStack(stack) };
}

const { stack, template } = synth();

function definition(pathPart: string): { StartAt: string; States: Record<string, Record<string, unknown>> } {
  const machines = template.findResources('AWS::StepFunctions::StateMachine');
  const [, resource] = Object.entries(machines).find(([id]) => id.includes(pathPart)) ?? [];
  if (!resource) throw new Error(`no state machine ${pathPart}`);
  return JSON.parse(resolveIntrinsics(resource.Properties.DefinitionString));
}

describe('CloneFactoryStack', () => {
  it('keeps the clone registry keyed by tenant, with PITR, and retained', () => {
    template.hasResource('AWS::DynamoDB::GlobalTable', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        KeySchema: [{ AttributeName: 'tenantId', KeyType: 'HASH' }],
        Replicas: [
          Match.objectLike({
            PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
            DeletionProtectionEnabled: true,
          }),
        ],
        GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'by-state' })],
      }),
    });
  });

  it('keys user mappings by user, with email and tenant indexes', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        Match.objectLike({ IndexName: 'by-email' }),
        Match.objectLike({ IndexName: 'by-tenant' }),
      ],
    });
  });

  it('runs the clone, deprovision and upgrade workflows as Standard state machines with logging and tracing', () => {
    const machines = Object.values(template.findResources('AWS::StepFunctions::StateMachine'));
    expect(machines).toHaveLength(3);
    for (const m of machines) {
      expect(m.Properties.StateMachineType).toBe('STANDARD');
      expect(m.Properties.TracingConfiguration).toEqual({ Enabled: true });
      expect(m.Properties.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
    }
  });

  it('has the six steps, named exactly, then rollback ending in a Fail state', () => {
    const { States } = definition('CloneStateMachine');
    const tasks = Object.entries(States)
      .filter(([, s]) => s.Type === 'Task')
      .map(([name]) => name);
    expect(tasks.sort()).toEqual(
      [
        'Select template',
        'Create database',
        'Apply schema',
        'Populate data',
        'Configure security',
        'Verify and register',
        'Provision instance',
        'Check instance',
        'Roll back clone',
      ].sort(),
    );
    // the six steps in order (a shared clone's path: the placement Choice sends it straight on)
    expect(States['Select template']?.Next).toBe('Placement?');
    expect(States['Placement?']?.Default).toBe('Create database');
    const order = [
      'Create database',
      'Apply schema',
      'Populate data',
      'Configure security',
      'Verify and register',
    ];
    for (const [i, name] of order.slice(0, -1).entries()) expect(States[name]?.Next).toBe(order[i + 1]);
    expect(States['Verify and register']?.End).toBe(true);
    expect(States['Roll back clone']?.Next).toBe('Clone failed');
    expect(States['Clone failed']).toEqual({
      Type: 'Fail',
      ErrorPath: '$.error.Error',
      CausePath: '$.error.Cause',
    });
  });

  it("upgrades a fleet with a canary Distributed Map, a check, then the main Distributed Map, at the run's concurrency", () => {
    const { StartAt, States } = definition('UpgradeStateMachine');
    expect(StartAt).toBe('Plan upgrade');
    expect(States['Plan upgrade']?.Next).toBe('Canary wave');
    expect(States['Canary wave']?.Next).toBe('Check canary');
    expect(States['Check canary']?.Next).toBe('Canary passed?');
    expect(States['Canary passed?']).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.proceed', BooleanEquals: true, Next: 'Main wave' }],
      Default: 'Finish upgrade',
    });
    expect(States['Main wave']?.Next).toBe('Finish upgrade');
    expect(States['Finish upgrade']?.End).toBe(true);
    for (const [wave, items, item] of [
      ['Canary wave', '$.canary', 'Upgrade canary tenant'],
      ['Main wave', '$.rest', 'Upgrade tenant'],
    ] as const) {
      const map = States[wave] as Record<string, unknown> & {
        ItemProcessor: {
          ProcessorConfig: unknown;
          StartAt: string;
          States: Record<string, { Retry?: unknown }>;
        };
      };
      expect(map).toMatchObject({
        Type: 'Map',
        ItemsPath: items,
        MaxConcurrencyPath: '$.maxConcurrency',
        ItemSelector: { 'runId.$': '$.runId', 'tenantId.$': '$$.Map.Item.Value' },
        ResultPath: null,
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Finish upgrade' }],
      });
      expect(map.ItemProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
      expect(map.ItemProcessor.StartAt).toBe(item);
      expect(map.ItemProcessor.States[item]?.Retry).toBeDefined();
    }
    // Both waves invoke one function; the API may start the machine and keeps the runs' table.
    const fns = template.findResources('AWS::Lambda::Function', {
      Properties: { Handler: 'index.upgradeTenant' },
    });
    expect(Object.keys(fns)).toHaveLength(1);
    const api = Object.values(
      template.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.handler' } }),
    ).find((f) => f.Properties.Environment.Variables.UPGRADE_STATE_MACHINE_ARN);
    expect(api?.Properties.Environment.Variables).toMatchObject({
      UPGRADE_STATE_MACHINE_ARN: { Ref: expect.stringContaining('UpgradeStateMachine') },
      UPGRADE_RUNS_TABLE: { Ref: expect.stringContaining('UpgradeRuns') },
    });
  });

  it('runs the health monitor every minute, with alarms on unreachable clones, isolation failures and drift, and a dashboard', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule'));
    expect(rules.map((r) => r.Properties.ScheduleExpression).sort()).toEqual([
      'rate(1 hour)',
      'rate(1 minute)',
    ]);
    const rule = rules.find((r) => r.Properties.ScheduleExpression === 'rate(1 minute)');
    const monitor = Object.entries(
      template.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.checkHealth' } }),
    );
    expect(monitor).toHaveLength(1);
    expect(JSON.stringify(rule?.Properties.Targets)).toContain(monitor[0]?.[0]);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a.Properties);
    expect(alarms.map((a) => a.MetricName).sort()).toEqual([
      'DriftedClones',
      'IsolationFailures',
      'UnreachableClones',
    ]);
    for (const a of alarms)
      expect(a).toMatchObject({
        Namespace: 'CloneFactory',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Dimensions: [{ Name: 'service', Value: 'clonefactory-health' }],
      });
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });

  it('sends a dedicated clone through a Wait-state poll of its instance, then to the same five steps', () => {
    const { States } = definition('CloneStateMachine');
    expect(States['Placement?']).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.placement', StringEquals: 'dedicated', Next: 'Provision instance' }],
      Default: 'Create database',
    });
    expect(States['Provision instance']?.Next).toBe('Instance available?');
    expect(States['Instance available?']).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.instanceState', StringEquals: 'available', Next: 'Create database' }],
      Default: 'Wait for instance',
    });
    // the poll waits in the state machine, not in a sleeping Lambda
    expect(States['Wait for instance']).toEqual({ Type: 'Wait', Seconds: 15, Next: 'Check instance' });
    expect(States['Check instance']?.Next).toBe('Instance available?');
  });

  it('retries transient errors with backoff and jitter on every Task, and catches the rest', () => {
    for (const name of ['CloneStateMachine', 'DeprovisionStateMachine']) {
      const { States } = definition(name);
      const tasks = Object.entries(States).filter(([, s]) => s.Type === 'Task');
      expect(tasks.length).toBeGreaterThanOrEqual(3);
      for (const [stateName, s] of tasks) {
        expect(s.Retry, stateName).toEqual([
          {
            ErrorEquals: RETRYABLE_ERRORS,
            IntervalSeconds: 2,
            MaxAttempts: 4,
            BackoffRate: 2,
            MaxDelaySeconds: 30,
            JitterStrategy: 'FULL',
          },
        ]);
        if (stateName === 'Roll back clone') continue;
        const catchers = s.Catch as { ErrorEquals: string[]; Next: string; ResultPath: string }[];
        expect(catchers.at(-1), stateName).toEqual({
          ErrorEquals: ['States.ALL'],
          ResultPath: '$.error',
          Next: name === 'CloneStateMachine' ? 'Roll back clone' : 'Deletion failed',
        });
      }
    }
  });

  it('keeps secrets out of state: each Task gets the state and the execution id, and its result passes through whole', () => {
    const text = JSON.stringify([definition('CloneStateMachine'), definition('DeprovisionStateMachine')]);
    expect(text).not.toMatch(/password|SecretString|secretsmanager/i);
    for (const s of Object.values(definition('CloneStateMachine').States)) {
      if (s.Type === 'Task')
        expect(s.Parameters).toEqual({ 'state.$': '$', 'executionId.$': '$$.Execution.Id' });
      else expect(s.Parameters).toBeUndefined();
      expect(s.ResultSelector).toBeUndefined();
    }
  });

  it('runs every step on nodejs22.x arm64 with ids, not secrets, in its environment', () => {
    const all = Object.values(template.findResources('AWS::Lambda::Function'));
    for (const f of all) {
      expect(f.Properties.Runtime).toBe('nodejs22.x');
      expect(f.Properties.Architectures).toEqual(['arm64']);
    }
    const functions = all.filter((f) => 'PG_ADMIN_SECRET_ARN' in (f.Properties.Environment?.Variables ?? {}));
    // 12 clone and deprovision steps, 4 upgrade steps (both waves share one function), the health
    // monitor and the reconciler
    expect(functions).toHaveLength(18);
    for (const f of functions) {
      expect(f.Properties.Runtime).toBe('nodejs22.x');
      expect(f.Properties.Architectures).toEqual(['arm64']);
      const env = f.Properties.Environment.Variables as Record<string, unknown>;
      expect(Object.keys(env).sort()).toEqual(
        [
          'CLONES_TABLE',
          'NAMESPACE',
          'NODE_OPTIONS',
          'PG_ADMIN_SECRET_ARN',
          'POWERTOOLS_SERVICE_NAME',
          'TEMPLATES_DIR',
          'UPGRADE_RUNS_TABLE',
          ...DEDICATED_VARIABLES,
        ].sort(),
      );
      // names and ids only: no password, no secret value
      expect(JSON.stringify(env)).not.toMatch(/password|SecretString/i);
      expect(env.PG_ADMIN_SECRET_ARN).toBe(PG_SECRET);
    }
  });

  it('scopes secret permissions to the clone prefix and the configured admin secret', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy'));
    const statements = policies.flatMap(
      (p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[],
    );
    const secretStatements = statements.filter((s) =>
      [s.Action].flat().some((a) => a.startsWith('secretsmanager:')),
    );
    expect(secretStatements.length).toBeGreaterThan(0);
    for (const s of secretStatements) {
      const resource = JSON.stringify(s.Resource);
      // ListSecrets has no resource-level permissions: the reconciler's, alone.
      if (resource === '"*"') {
        expect(s.Action).toBe('secretsmanager:ListSecrets');
        continue;
      }
      expect(
        resource === JSON.stringify(PG_SECRET) ||
          resource.includes(':secret:cf/clones/*') ||
          // dedicated instances: their own master secrets, and RDS's for cf-* instances only
          resource.includes(':secret:cf/instances/*') ||
          (resource.includes(':secret:rds!db-*') &&
            JSON.stringify((s as { Condition?: unknown }).Condition).includes(':db:cf-*')),
        resource,
      ).toBe(true);
    }
  });

  it('builds dedicated placement: private network, a database group that admits only the functions, ECS, encrypted EFS, parameters', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL' });
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroup')).find(
      (g) =>
        g.Properties.GroupDescription ===
        'Dedicated tenant databases: only the Clone Factory functions get in',
    )?.Properties.SecurityGroupIngress;
    const rules = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map(
      (r) => r.Properties,
    );
    const databaseRules = [...(ingress ?? []), ...rules].filter(
      (r) => r.FromPort === 5432 || r.FromPort === 3306,
    );
    expect(databaseRules.map((r) => r.FromPort).sort()).toEqual([3306, 5432]);
    for (const r of databaseRules) {
      expect(r.SourceSecurityGroupId).toBeDefined();
      expect(r.CidrIp).toBeUndefined();
    }
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    template.hasResourceProperties('AWS::EFS::FileSystem', { Encrypted: true });
    template.hasParameter('TenantInstanceClass', { Type: 'String', Default: 'db.t4g.micro' });
    template.hasParameter('TenantStorageGb', { Type: 'Number', Default: 20 });
    // the workflow's functions run in the private subnets, with the client group
    // the workflow's functions and the API's (which serves dedicated tenants' data) run in
    // the private subnets, with the client group
    const steps = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (f) => f.Properties.Environment?.Variables?.DEDICATED_PROVISIONER === 'rds',
    );
    expect(steps).toHaveLength(19);
    for (const f of steps) expect(f.Properties.VpcConfig?.SecurityGroupIds).toHaveLength(1);
  });

  it('creates and deletes tenant instances only with the managed-by tag', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
      (p) =>
        p.Properties.PolicyDocument.Statement as {
          Action: string | string[];
          Condition?: Record<string, unknown>;
        }[],
    );
    const find = (action: string) => statements.find((s) => [s.Action].flat().includes(action));
    expect(find('rds:CreateDBInstance')?.Condition).toEqual({
      StringEquals: { 'aws:RequestTag/clonefactory:managed-by': 'clonefactory' },
    });
    expect(find('rds:DeleteDBInstance')?.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/clonefactory:managed-by': 'clonefactory' },
    });
    expect(find('ecs:DeleteService')?.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/clonefactory:managed-by': 'clonefactory' },
    });
    expect(find('elasticfilesystem:DeleteAccessPoint')?.Condition).toEqual({
      StringEquals: { 'aws:ResourceTag/clonefactory:managed-by': 'clonefactory' },
    });
  });

  it.each([
    [
      'with a concrete account and region (as `cdk deploy` synthesizes)',
      { env: { account: '111122223333', region: 'eu-west-1' } },
    ],
    ['with Fargate for dedicated tenants', { dedicated: 'fargate' as const }],
    ['without dedicated placement', { dedicated: 'off' as const }],
  ])('passes the cdk-nag gate %s', (_label, options) => {
    const other = synth(options).stack;
    const errors = Annotations.fromStack(other).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
    const warnings = Annotations.fromStack(other).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(warnings.map((w) => `${w.id}: ${w.entry.data}`)).toEqual([]);
  });

  it('passes the cdk-nag AwsSolutions gate with no unsuppressed error or warning', () => {
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(warnings.map((w) => `${w.id}: ${w.entry.data}`)).toEqual([]);
  });

  it('puts every API route behind the JWT authorizer, with validation, access logs and throttling', () => {
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method'));
    expect(methods).toHaveLength(ROUTES.length);
    for (const m of methods) {
      expect(m.Properties.AuthorizationType).toBe('CUSTOM');
      expect(m.Properties.AuthorizerId).toBeDefined();
      expect(m.Properties.RequestValidatorId).toBeDefined();
    }
    template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'TOKEN',
      IdentitySource: 'method.request.header.Authorization',
      AuthorizerResultTtlInSeconds: 60,
    });
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      TracingEnabled: true,
      MethodSettings: [
        Match.objectLike({ DataTraceEnabled: false, ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 }),
      ],
    });
  });

  it('takes the authorizer cache TTL and the identity provider from context', () => {
    const app = new App({
      context: {
        'aws:cdk:bundling-stacks': [],
        authorizerCacheTtlSeconds: 5,
        jwksUrl: 'https://idp.example/.well-known/jwks.json',
        jwtIssuer: 'https://idp.example',
        jwtAudience: 'clone-api',
      },
    });
    const t = Template.fromStack(new CloneFactoryStack(app, 'Ctx'));
    t.hasResourceProperties('AWS::ApiGateway::Authorizer', { AuthorizerResultTtlInSeconds: 5 });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          JWKS_URL: 'https://idp.example/.well-known/jwks.json',
          JWT_ISSUER: 'https://idp.example',
          JWT_AUDIENCE: 'clone-api',
        }),
      },
    });
  });

  it('gives the authorizer and the API no admin secret, and the API only reads clone secrets', () => {
    const fns = Object.values(template.findResources('AWS::Lambda::Function')).filter(
      (f) => !('PG_ADMIN_SECRET_ARN' in (f.Properties.Environment?.Variables ?? {})),
    );
    expect(fns).toHaveLength(2);
    const authorizer = fns.find((f) => 'JWKS_URL' in f.Properties.Environment.Variables);
    expect(Object.keys(authorizer?.Properties.Environment.Variables ?? {}).sort()).toEqual(
      [
        'AUTHORIZER_RESOLUTION_TTL_MS',
        'CLONES_TABLE',
        'JWKS_URL',
        'JWT_AUDIENCE',
        'JWT_ISSUER',
        'NODE_OPTIONS',
        'TEMPLATES_DIR',
        'USERS_TABLE',
      ].sort(),
    );
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p).includes('ApiHandler'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[])
      .filter((s) => JSON.stringify(s.Action).includes('secretsmanager'));
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      expect(s.Action).toBe('secretsmanager:GetSecretValue');
      expect(JSON.stringify(s.Resource)).toContain(':secret:cf/clones/*');
    }
  });
});
