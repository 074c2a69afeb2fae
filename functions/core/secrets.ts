import { z } from 'zod';
import { ValidationError } from './errors.js';

/**
 * Where credentials live: Secrets Manager on AWS, 0600 files locally. Workflow state, logs
 * and errors carry a secret's id, never its value.
 */
export interface SecretStore {
  /**
   * Creates the secret, or updates it when it exists with the same `cloneId` tag. A secret
   * tagged with another clone id makes this throw ForeignArtefactError.
   */
  put(id: string, value: string, tags: Readonly<Record<string, string>>): Promise<void>;
  /** The value, or null when there is no such secret. */
  get(id: string): Promise<string | null>;
  /** The tags, or null when there is no such secret. */
  tags(id: string): Promise<Readonly<Record<string, string>> | null>;
  /** Deletes the secret at once. Idempotent. */
  delete(id: string): Promise<void>;
  /** Ids that start with `prefix`. */
  list(prefix: string): Promise<string[]>;
}

/** The credentials document of one clone, as stored in its secret. */
export interface CloneCredentials {
  readonly engine: string;
  readonly host?: string;
  readonly port?: number;
  readonly database: string;
  readonly roles: Readonly<Record<string, { readonly username: string; readonly password: string }>>;
}

const cloneCredentials = z.object({
  engine: z.string(),
  database: z.string(),
  host: z.string().optional(),
  port: z.number().optional(),
  roles: z.record(z.string(), z.object({ username: z.string(), password: z.string() })),
});

/** Reads a clone's credentials document; the error names the secret, never its content. */
export function parseCredentials(text: string, secretId: string): CloneCredentials {
  try {
    return cloneCredentials.parse(JSON.parse(text));
  } catch {
    throw new ValidationError(`secret ${secretId} does not hold a credentials document`);
  }
}
