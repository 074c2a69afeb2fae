import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createRemoteJWKSet } from 'jose';
import { requireEnv } from '../adapters/config.js';
import { DynamoDbCloneRegistry } from '../adapters/registry/dynamodb-registry.js';
import { DynamoDbUserRegistry } from '../adapters/registry/dynamodb-user-registry.js';
import { Authorizer, type AuthorizerConfig, DEFAULT_AUTHORIZER_CONFIG } from '../core/auth/authorizer.js';
import { ValidationError } from '../core/errors.js';

/** The authorizer's configuration from its environment (set by the CDK construct). */
export function authorizerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AuthorizerConfig {
  const num = (name: string, fallback: number) => {
    const v = env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new ValidationError(`${name} must be a non-negative number`, name);
    return n;
  };
  return {
    ...DEFAULT_AUTHORIZER_CONFIG,
    issuer: requireEnv('JWT_ISSUER', env),
    audience: requireEnv('JWT_AUDIENCE', env),
    algorithms: (env.JWT_ALGORITHMS ?? DEFAULT_AUTHORIZER_CONFIG.algorithms.join(','))
      .split(',')
      .map((a) => a.trim()),
    maxTokenAgeSeconds: num('JWT_MAX_AGE_SECONDS', DEFAULT_AUTHORIZER_CONFIG.maxTokenAgeSeconds),
    tenantClaim: env.JWT_TENANT_CLAIM || DEFAULT_AUTHORIZER_CONFIG.tenantClaim,
    operatorScope: env.JWT_OPERATOR_SCOPE || DEFAULT_AUTHORIZER_CONFIG.operatorScope,
    resolutionTtlMs: num('AUTHORIZER_RESOLUTION_TTL_MS', DEFAULT_AUTHORIZER_CONFIG.resolutionTtlMs),
  };
}

let authorizer: Promise<Authorizer> | undefined;
/** One authorizer per warm container: its JWKS and resolutions outlive an invocation. */
export function awsAuthorizer(): Promise<Authorizer> {
  authorizer ??= (async () => {
    const dynamo = new DynamoDBClient({});
    return new Authorizer({
      keys: createRemoteJWKSet(new URL(requireEnv('JWKS_URL')), {
        timeoutDuration: 3000,
        cooldownDuration: 30_000,
      }),
      users: new DynamoDbUserRegistry({ tableName: requireEnv('USERS_TABLE'), client: dynamo }),
      clones: new DynamoDbCloneRegistry({ tableName: requireEnv('CLONES_TABLE'), client: dynamo }),
      config: authorizerConfigFromEnv(),
    });
  })();
  authorizer.catch(() => {
    authorizer = undefined;
  });
  return authorizer;
}
