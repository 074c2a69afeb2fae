import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ForeignArtefactError } from '../../core/errors.js';
import type { SecretStore } from '../../core/secrets.js';

/** Secrets Manager behind the SecretStore interface. Tags carry the clone id. */
export class SecretsManagerStore implements SecretStore {
  private readonly client: SecretsManagerClient;

  constructor(options: { client?: SecretsManagerClient } = {}) {
    this.client = options.client ?? new SecretsManagerClient({});
  }

  async put(id: string, value: string, tags: Readonly<Record<string, string>>): Promise<void> {
    try {
      await this.client.send(
        new CreateSecretCommand({
          Name: id,
          SecretString: value,
          Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
        }),
      );
      return;
    } catch (error) {
      if (!(error instanceof ResourceExistsException)) throw error;
    }
    const existing = await this.tags(id);
    if (existing?.cloneId !== tags.cloneId)
      throw new ForeignArtefactError('secret', id, existing?.cloneId ?? '(untagged)');
    await this.client.send(new PutSecretValueCommand({ SecretId: id, SecretString: value }));
  }

  async get(id: string): Promise<string | null> {
    try {
      const r = await this.client.send(new GetSecretValueCommand({ SecretId: id }));
      return r.SecretString ?? null;
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return null;
      throw error;
    }
  }

  async tags(id: string): Promise<Readonly<Record<string, string>> | null> {
    try {
      const r = await this.client.send(new DescribeSecretCommand({ SecretId: id }));
      if (r.DeletedDate) return null;
      return Object.fromEntries((r.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return null;
      throw error;
    }
  }

  async delete(id: string): Promise<void> {
    try {
      // Immediately: the name is derived from the clone id, and a rollback must leave nothing.
      await this.client.send(new DeleteSecretCommand({ SecretId: id, ForceDeleteWithoutRecovery: true }));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [prefix] }], NextToken: token }),
      );
      out.push(...(r.SecretList ?? []).map((s) => s.Name ?? '').filter((n) => n.startsWith(prefix)));
      token = r.NextToken;
    } while (token);
    return out.sort();
  }
}
