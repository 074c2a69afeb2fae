import { InvalidIdentifierError } from './errors.js';

/**
 * Physical database names the control plane creates: lowercase ASCII, digits and `_`,
 * starting with a letter, at most 63 bytes (PostgreSQL's NAMEDATALEN - 1; MySQL allows 64).
 * Names are still quoted by each driver's escape function; validation is the first wall.
 */
const DATABASE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** A namespace prefixes every physical name, so that test runs and deployments never collide. */
const NAMESPACE = /^[a-z][a-z0-9]{0,11}$/;

/** Returns the name when it is a valid physical database name, else throws InvalidIdentifierError. */
export function assertDatabaseName(name: string): string {
  if (typeof name !== 'string' || !DATABASE_NAME.test(name)) {
    throw new InvalidIdentifierError(
      'database name',
      String(name),
      'must match ^[a-z][a-z0-9_]{0,62}$ (lowercase letters, digits and underscores, at most 63)',
    );
  }
  return name;
}

/** Returns the namespace when valid, else throws InvalidIdentifierError. */
export function assertNamespace(namespace: string): string {
  if (typeof namespace !== 'string' || !NAMESPACE.test(namespace)) {
    throw new InvalidIdentifierError(
      'namespace',
      String(namespace),
      'must match ^[a-z][a-z0-9]{0,11}$ (a lowercase letter, then up to 11 letters or digits)',
    );
  }
  return namespace;
}

/**
 * Quotes an identifier for SQLite after validating it. better-sqlite3 has no identifier
 * escape function, so this follows SQLite's own rule: wrap in double quotes, double any inside.
 */
export function quoteSqliteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
