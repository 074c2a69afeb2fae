import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ForeignArtefactError, InvalidIdentifierError } from '../../core/errors.js';
import type { SecretStore } from '../../core/secrets.js';

const SECRET_ID = /^[a-z0-9][a-z0-9/_.-]{0,200}$/;

/**
 * The local stand-in for Secrets Manager: one JSON file per secret, mode 0600, in a 0700
 * directory. Writes go to a temporary file first and are renamed into place.
 */
export class FileSecretStore implements SecretStore {
  constructor(private readonly dir: string) {}

  async put(id: string, value: string, tags: Readonly<Record<string, string>>): Promise<void> {
    const existing = await this.tags(id);
    if (existing && existing.cloneId !== tags.cloneId)
      throw new ForeignArtefactError('secret', id, existing.cloneId ?? '(untagged)');
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const file = this.file(id);
    const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, JSON.stringify({ id, value, tags }), { mode: 0o600 });
    await rename(tmp, file);
  }

  async get(id: string): Promise<string | null> {
    return (await this.read(id))?.value ?? null;
  }

  async tags(id: string): Promise<Readonly<Record<string, string>> | null> {
    return (await this.read(id))?.tags ?? null;
  }

  async delete(id: string): Promise<void> {
    await rm(this.file(id), { force: true });
  }

  async list(prefix: string): Promise<string[]> {
    let files: string[];
    try {
      files = await readdir(this.dir);
    } catch {
      return [];
    }
    return files
      .filter((f) => f.endsWith('.json'))
      .map((f) => decodeURIComponent(f.slice(0, -5)))
      .filter((id) => id.startsWith(prefix))
      .sort();
  }

  private file(id: string): string {
    if (!SECRET_ID.test(id) || id.includes('..'))
      throw new InvalidIdentifierError('secret id', id, 'must match ^[a-z0-9][a-z0-9/_.-]{0,200}$');
    return join(this.dir, `${encodeURIComponent(id)}.json`);
  }

  private async read(id: string): Promise<{ value: string; tags: Record<string, string> } | null> {
    try {
      return JSON.parse(await readFile(this.file(id), 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }
}
