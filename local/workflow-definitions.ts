import { App } from 'aws-cdk-lib';
import { CloneFactoryStack } from '../lib/clone-factory-stack.js';

/** An Amazon States Language definition as JSON. */
export interface AslDefinition {
  readonly StartAt: string;
  readonly States: Record<string, Record<string, unknown> & { Type: string }>;
  readonly TimeoutSeconds?: number;
  readonly [key: string]: unknown;
}

export interface WorkflowDefinitions {
  readonly clone: AslDefinition;
  readonly deprovision: AslDefinition;
}

const PATHS = {
  clone: 'CloneFactory/Workflows/CloneStateMachine/Resource',
  deprovision: 'CloneFactory/Workflows/DeprovisionStateMachine/Resource',
} as const;

/**
 * Synthesizes the CDK app's stack (bundling skipped: only the definitions are needed) and
 * returns the state machine definitions exactly as CloudFormation would receive them, with
 * Lambda ARNs resolved to placeholders. There is no second, hand-written copy of the flow.
 */
export function synthesizeWorkflowDefinitions(namespace = 'cf'): WorkflowDefinitions {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true } });
  new CloneFactoryStack(app, 'CloneFactory', { namespace });
  const template = app.synth().getStackByName('CloneFactory').template as {
    Resources: Record<
      string,
      { Type: string; Metadata?: Record<string, string>; Properties: { DefinitionString: unknown } }
    >;
  };
  const find = (path: string): AslDefinition => {
    const resource = Object.values(template.Resources).find(
      (r) => r.Type === 'AWS::StepFunctions::StateMachine' && r.Metadata?.['aws:cdk:path'] === path,
    );
    if (!resource) throw new Error(`state machine ${path} not found in the synthesized stack`);
    return JSON.parse(resolveIntrinsics(resource.Properties.DefinitionString)) as AslDefinition;
  };
  return { clone: find(PATHS.clone), deprovision: find(PATHS.deprovision) };
}

/** Resolves the Fn::Join / Fn::GetAtt / Ref that CDK leaves in a definition string. */
export function resolveIntrinsics(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v['Fn::Join'])) {
      const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map(resolveIntrinsics).join(sep);
    }
    if (Array.isArray(v['Fn::GetAtt']))
      return `arn:aws:lambda:us-east-1:000000000000:function:${(v['Fn::GetAtt'] as string[])[0]}`;
    if (typeof v.Ref === 'string')
      return v.Ref === 'AWS::Partition'
        ? 'aws'
        : v.Ref === 'AWS::Region'
          ? 'us-east-1'
          : v.Ref === 'AWS::AccountId'
            ? '000000000000'
            : String(v.Ref);
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)} in a state machine definition`);
}
