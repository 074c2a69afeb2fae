import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/core/errors.js';
import { taskPayload } from '../../functions/handlers/workflow-steps.js';

describe('task payload', () => {
  it('unwraps the state and the execution id that every Task state sends', () => {
    const state = { tenantId: 'acme', cloneId: 'abcdef012345' };
    expect(
      taskPayload({ state, executionId: 'arn:aws:states:eu-west-1:1:execution:m:x' }, 'Apply schema'),
    ).toEqual({
      state,
      executionId: 'arn:aws:states:eu-west-1:1:execution:m:x',
    });
  });

  it.each([
    ['a bare state (a definition older than the function)', { tenantId: 'acme', cloneId: 'abcdef012345' }],
    ['no execution id', { state: {} }],
    ['a non-string execution id', { state: {}, executionId: 7 }],
    ['an extra field', { state: {}, executionId: 'x', password: 'p' }],
    ['null', null],
    ['a string', 'acme'],
  ])('refuses %s with a clear error', (_label, event) => {
    expect(() => taskPayload(event, 'Apply schema')).toThrow(ValidationError);
    expect(() => taskPayload(event, 'Apply schema')).toThrow(
      /Apply schema: expected a task payload \{ state, executionId \}/,
    );
  });
});
