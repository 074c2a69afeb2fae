import { ValidationError } from '../core/errors.js';

/** Reads a required environment variable, naming it when it is missing. */
export function requireEnv(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[name];
  if (!value) throw new ValidationError(`missing environment variable ${name}`, name);
  return value;
}
