import { App, Aspects, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { CloneFactoryStack } from '../../lib/clone-factory-stack.js';

function synth(): { stack: Stack; template: Template } {
  // Bundling is skipped: these tests read the template, not the Lambda code.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new CloneFactoryStack(app, 'Test');
  Aspects.of(app).add(new AwsSolutionsChecks());
  return { stack, template: Template.fromStack(stack) };
}

describe('CloneFactoryStack', () => {
  it('keeps the clone registry keyed by tenant, with PITR, and retained', () => {
    const { template } = synth();
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
    const { template } = synth();
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
      GlobalSecondaryIndexes: [
        Match.objectLike({ IndexName: 'by-email' }),
        Match.objectLike({ IndexName: 'by-tenant' }),
      ],
    });
  });

  it('passes the cdk-nag AwsSolutions gate with no unsuppressed error', () => {
    const { stack } = synth();
    const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(errors.map((e) => `${e.id}: ${e.entry.data}`)).toEqual([]);
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
    expect(warnings).toEqual([]);
  });
});
