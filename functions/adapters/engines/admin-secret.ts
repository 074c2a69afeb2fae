import { ValidationError } from '../../core/errors.js';

/**
 * The admin connection of a shared server, from its secret: either `{ "url": "postgres://…" }`
 * or the shape RDS writes for managed master secrets (`engine`, `host`, `port`, `username`,
 * `password`, `dbname`).
 */
export function adminUrlFromSecret(secretString: string, engine: 'postgresql' | 'mysql'): string {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(secretString);
  } catch {
    throw new ValidationError('the admin secret is not JSON');
  }
  if (typeof value.url === 'string') return value.url;
  const { host, port, username, password, dbname } = value as Record<string, string | number | undefined>;
  if (!host || !username || !password)
    throw new ValidationError('the admin secret lacks host, username or password');
  const scheme = engine === 'postgresql' ? 'postgres' : 'mysql';
  const database = dbname ?? (engine === 'postgresql' ? 'postgres' : '');
  return `${scheme}://${encodeURIComponent(String(username))}:${encodeURIComponent(String(password))}@${host}:${port ?? (engine === 'postgresql' ? 5432 : 3306)}/${database}`;
}
