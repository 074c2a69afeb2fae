import {
  AccessDeniedError,
  CloneFactoryError,
  EngineUnavailableError,
  PoolExhaustedError,
  RowNotFoundError,
  TenantAlreadyExistsError,
  TenantNotFoundError,
  TenantStateConflictError,
  UnauthenticatedError,
  UserMappingConflictError,
  UserNotFoundError,
  ValidationError,
} from './errors.js';

export type HttpErrorStatus = 400 | 401 | 403 | 404 | 409 | 503 | 500;

/** The one table from error to HTTP status. Unknown errors are 500 and never show their message. */
export function httpStatusOf(error: unknown): HttpErrorStatus {
  if (error instanceof ValidationError) return 400;
  if (error instanceof UnauthenticatedError) return 401;
  if (error instanceof AccessDeniedError) return 403;
  if (error instanceof TenantNotFoundError || error instanceof UserNotFoundError) return 404;
  if (error instanceof RowNotFoundError) return 404;
  if (
    error instanceof TenantAlreadyExistsError ||
    error instanceof TenantStateConflictError ||
    error instanceof UserMappingConflictError
  )
    return 409;
  if (error instanceof EngineUnavailableError || error instanceof PoolExhaustedError) return 503;
  return 500;
}

/** The JSON body of an error response: the error's name and message, or a generic one for bugs. */
export function errorBody(error: unknown): { error: string; message: string } {
  if (error instanceof CloneFactoryError && httpStatusOf(error) !== 500)
    return { error: error.name, message: error.message };
  return { error: 'InternalError', message: 'internal error' };
}
