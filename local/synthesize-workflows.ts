import { App } from 'aws-cdk-lib';
import { CloneFactoryStack } from '../lib/clone-factory-stack.js';
import { type AslDefinition, resolveIntrinsics, type WorkflowDefinitions } from './workflow-definitions.js';

const PATHS = {
  clone: 'CloneFactory/Workflows/CloneStateMachine/Resource',
  deprovision: 'CloneFactory/Workflows/DeprovisionStateMachine/Resource',
  upgrade: 'CloneFactory/Workflows/UpgradeStateMachine/Resource',
} as const;

/**
 * Synthesizes the CDK app's stack (bundling skipped: only the definitions are needed) and
 * returns the state machine definitions exactly as CloudFormation would receive them, with
 * Lambda ARNs resolved to placeholders. There is no second, hand-written copy of the flow.
 */
export function synthesizeWorkflowDefinitions(namespace = 'cf'): WorkflowDefinitions {
  const app = new App({
    context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:enable-path-metadata': true },
    // The built-in CloudFormation validation takes about 4 s; `cdk synth` (bin/app.ts) and
    // the CDK tests run it on this same stack, so the local runtime need not.
    builtinCloudFormationValidation: false,
  });
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
  return { clone: find(PATHS.clone), deprovision: find(PATHS.deprovision), upgrade: find(PATHS.upgrade) };
}
