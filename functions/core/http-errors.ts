import {
  CloneFactoryError,
  EngineUnavailableError,
  TenantAlreadyExistsError,
  TenantNotFoundError,
  TenantStateConflictError,
  ValidationError,
} from './errors.js';

/** The one table from error to HTTP status. Unknown errors are 500 and never show their message. */
export function httpStatusOf(error: unknown): 400 | 404 | 409 | 503 | 500 {
  if (error instanceof ValidationError) return 400;
  if (error instanceof TenantNotFoundError) return 404;
  if (error instanceof TenantAlreadyExistsError || error instanceof TenantStateConflictError) return 409;
  if (error instanceof EngineUnavailableError) return 503;
  return 500;
}

/** The JSON body of an error response: the error's name and message, or a generic one for bugs. */
export function errorBody(error: unknown): { error: string; message: string } {
  if (error instanceof CloneFactoryError && httpStatusOf(error) !== 500)
    return { error: error.name, message: error.message };
  return { error: 'InternalError', message: 'internal error' };
}
