/**
 * One base error and named subclasses. Step Functions Retry/Catch and the HTTP
 * layer match on `name`, so every subclass sets it explicitly (minifiers rename classes).
 */
export class CloneFactoryError extends Error {
  /** Whether a retry of the same call may succeed (network blips, throttling, lock waits). */
  readonly retryable: boolean = false;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CloneFactoryError';
  }
}

/** Input that fails validation: an identifier, an option, a request field. */
export class ValidationError extends CloneFactoryError {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ValidationError';
  }
}

/** An identifier (tenant id, database name, namespace) that may not reach SQL or a path. */
export class InvalidIdentifierError extends ValidationError {
  constructor(kind: string, value: string, rule: string) {
    super(`invalid ${kind} ${JSON.stringify(truncate(value))}: ${rule}`, kind);
    this.name = 'InvalidIdentifierError';
  }
}

/** The template manifest does not parse or does not match its schema. */
export class ManifestError extends CloneFactoryError {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid template manifest ${file}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ManifestError';
  }
}

/** A template script on disk no longer matches the checksum recorded in the manifest. */
export class ChecksumMismatchError extends CloneFactoryError {
  constructor(
    readonly file: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(
      `checksum mismatch for ${file}: the manifest records sha256 ${expected} but the file has ${actual} ` +
        `(run "clonectl templates rehash" after an intended edit)`,
    );
    this.name = 'ChecksumMismatchError';
  }
}

/** A file the manifest names is not on disk. */
export class TemplateFileMissingError extends CloneFactoryError {
  constructor(readonly file: string) {
    super(`template file ${file} is listed in the manifest but does not exist`);
    this.name = 'TemplateFileMissingError';
  }
}

/** An engine, version or industry that the catalogue does not have. */
export class UnknownTemplateError extends ValidationError {
  constructor(kind: 'engine' | 'version' | 'industry', value: string, known: readonly string[]) {
    super(`unknown ${kind} ${JSON.stringify(truncate(value))}; known: ${known.join(', ')}`, kind);
    this.name = 'UnknownTemplateError';
  }
}

/** One statement of a script failed; names the file, the statement's number and line, and its text. */
export class ScriptExecutionError extends CloneFactoryError {
  constructor(
    readonly file: string,
    readonly statementIndex: number,
    readonly line: number,
    readonly statement: string,
    cause: unknown,
  ) {
    super(
      `${file}: statement ${statementIndex + 1} (line ${line}) failed: ${errorMessage(cause)}\n  ${truncate(
        statement.replace(/\s+/g, ' ').trim(),
        300,
      )}`,
      { cause },
    );
    this.name = 'ScriptExecutionError';
  }
}

/** A freshly built root image did not pass verification; it was discarded. */
export class ImageVerificationError extends CloneFactoryError {
  constructor(
    readonly image: string,
    readonly problems: readonly string[],
  ) {
    super(`root image ${image} failed verification: ${problems.join('; ')}`);
    this.name = 'ImageVerificationError';
  }
}

/** A database server is not reachable or not configured. */
export class EngineUnavailableError extends CloneFactoryError {
  override readonly retryable = true;
  constructor(engine: string, detail: string, options?: { cause?: unknown }) {
    super(`${engine} is not available: ${detail}`, options);
    this.name = 'EngineUnavailableError';
  }
}

/** A database (or image) of that name already exists and is not ours to take. */
export class DatabaseExistsError extends CloneFactoryError {
  constructor(readonly database: string) {
    super(`database ${database} already exists`);
    this.name = 'DatabaseExistsError';
  }
}

/** A database (or image) that should exist does not. */
export class DatabaseNotFoundError extends CloneFactoryError {
  constructor(readonly database: string) {
    super(`database ${database} does not exist`);
    this.name = 'DatabaseNotFoundError';
  }
}

/** The message of anything thrown, without assuming it is an Error. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

function truncate(value: string, max = 80): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}

/** A tenant already has a clone that does not match the request (other engine, version, …). */
export class TenantAlreadyExistsError extends CloneFactoryError {
  constructor(
    readonly tenantId: string,
    detail: string,
  ) {
    super(`tenant ${tenantId} already exists: ${detail}`);
    this.name = 'TenantAlreadyExistsError';
  }
}

/** The tenant is in a lifecycle state that does not allow the request (e.g. create while DELETING). */
export class TenantStateConflictError extends CloneFactoryError {
  constructor(
    readonly tenantId: string,
    readonly state: string,
    action: string,
  ) {
    super(`tenant ${tenantId} is ${state}: cannot ${action}`);
    this.name = 'TenantStateConflictError';
  }
}

/** No clone is registered for the tenant. */
export class TenantNotFoundError extends CloneFactoryError {
  constructor(readonly tenantId: string) {
    super(`tenant ${tenantId} not found`);
    this.name = 'TenantNotFoundError';
  }
}

/** An artefact (database, role, secret) carries another clone's marker: a step refuses to touch it. */
export class ForeignArtefactError extends CloneFactoryError {
  constructor(kind: string, name: string, owner: string) {
    super(`${kind} ${name} belongs to clone ${owner}, not to this one; refusing to touch it`);
    this.name = 'ForeignArtefactError';
  }
}

/** A transient failure worth retrying (throttling, a lock wait, a dropped connection). */
export class TransientError extends CloneFactoryError {
  override readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/**
 * A tenant login the server refused. `authenticated` says the credentials were accepted and
 * the database then refused the login (PostgreSQL 42501 "permission denied for database",
 * MySQL 1044): such a refusal proves both that the credentials work and that the database is
 * closed to them. Otherwise the credentials themselves were rejected (or, on SQLite, which
 * keeps its logins inside each database, the database does not know them).
 */
export class LoginRefusedError extends CloneFactoryError {
  constructor(
    readonly database: string,
    readonly authenticated: boolean,
    options?: { cause?: unknown },
  ) {
    super(
      authenticated
        ? `login accepted but refused access to database ${database}`
        : `login refused for database ${database}`,
      options,
    );
    this.name = 'LoginRefusedError';
  }
}

/** A dedicated instance failed, vanished, or did not become available within its polls. */
export class InstanceFailedError extends CloneFactoryError {
  constructor(
    readonly tenantId: string,
    readonly detail: string,
  ) {
    super(`the dedicated instance of ${tenantId} is not usable: ${detail}`);
    this.name = 'InstanceFailedError';
  }
}

/** Verification of a new clone failed: its fingerprint differs or the isolation probe got through. */
export class CloneVerificationError extends CloneFactoryError {
  constructor(
    readonly tenantId: string,
    readonly problems: readonly string[],
  ) {
    super(`clone of ${tenantId} failed verification: ${problems.join('; ')}`);
    this.name = 'CloneVerificationError';
  }
}

/** A fault injected on purpose by a test or the chaos harness. */
export class InjectedFaultError extends CloneFactoryError {
  constructor(step: string, when: string) {
    super(`injected fault ${when} ${step}`);
    this.name = 'InjectedFaultError';
  }
}

/** The user is mapped to another tenant, or the email belongs to another user id. */
export class UserMappingConflictError extends CloneFactoryError {
  constructor(
    readonly userId: string,
    detail: string,
  ) {
    super(`user ${userId}: ${detail}`);
    this.name = 'UserMappingConflictError';
  }
}

/** No mapping for the user. */
export class UserNotFoundError extends CloneFactoryError {
  constructor(readonly user: string) {
    super(`no mapping for user ${user}`);
    this.name = 'UserNotFoundError';
  }
}

/** The request carries no valid credentials (HTTP 401): bad, expired or unverifiable token. */
export class UnauthenticatedError extends CloneFactoryError {
  constructor(readonly reason: string) {
    super(`unauthenticated: ${reason}`);
    this.name = 'UnauthenticatedError';
  }
}

/** Valid credentials that do not grant this request (HTTP 403). */
export class AccessDeniedError extends CloneFactoryError {
  constructor(readonly reason: string) {
    super(`access denied: ${reason}`);
    this.name = 'AccessDeniedError';
  }
}

/** A row the data plane was asked for does not exist. */
export class RowNotFoundError extends CloneFactoryError {
  constructor(
    readonly table: string,
    readonly id: string,
  ) {
    super(`no row ${id} in ${table}`);
    this.name = 'RowNotFoundError';
  }
}

/** No connection could be had within the acquire timeout (the pool or the global cap is full). */
export class PoolExhaustedError extends CloneFactoryError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`connection pool exhausted: ${detail}`, options);
    this.name = 'PoolExhaustedError';
  }
}

/**
 * A tenant's schema upgrade failed. `state` says where that left the tenant: `unchanged`
 * (PostgreSQL and SQLite roll the whole upgrade back) or `partial` (MySQL commits DDL as it
 * goes; `applied` statements of `file` are in, recorded, and a retry resumes after them).
 */
export class UpgradeFailedError extends CloneFactoryError {
  constructor(
    readonly tenantId: string,
    readonly from: string,
    readonly to: string,
    readonly state: 'unchanged' | 'partial',
    detail: string,
    readonly progress?: { readonly file: string; readonly applied: number; readonly total: number },
    options?: { cause?: unknown },
  ) {
    super(
      `upgrade of ${tenantId} from ${from} to ${to} failed: ${detail}; ${
        state === 'unchanged'
          ? `rolled back, ${tenantId} is still at ${from}`
          : `${progress?.applied ?? 0} of ${progress?.total ?? '?'} statements of ${progress?.file ?? 'the migration'} are applied and recorded; run the upgrade again to resume after them`
      }`,
      options,
    );
    this.name = 'UpgradeFailedError';
  }
}
