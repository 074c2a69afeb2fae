import type { SqlExecutor } from '../../core/engine.js';
import { AccessDeniedError, errorMessage, ValidationError } from '../../core/errors.js';

/** How an engine's error reads to the tenant API: a refused privilege, refused values, or neither. */
export type TenantErrorKind = 'denied' | 'values' | null;

/**
 * A tenant session's errors as the API reports them: the database refusing a privilege is
 * AccessDeniedError (403), a constraint or a bad value is ValidationError (400), anything
 * else passes through. Each adapter says which of its errors are which.
 */
export function tenantExecutor(
  inner: SqlExecutor,
  classify: (error: unknown) => TenantErrorKind,
): SqlExecutor {
  return {
    async query<T>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      try {
        return await inner.query<T>(sql, params);
      } catch (error) {
        const kind = classify(error);
        if (kind === 'denied') throw new AccessDeniedError(`the database refused: ${errorMessage(error)}`);
        if (kind === 'values')
          throw new ValidationError(`the database refused the values: ${errorMessage(error)}`);
        throw error;
      }
    },
  };
}
