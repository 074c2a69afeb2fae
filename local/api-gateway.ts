import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from 'aws-lambda';
import type { MiddlewareHandler } from 'hono';
import type { ApiEnv } from '../functions/api/app.js';
import { principalFromContext } from '../functions/core/auth/authorizer.js';
import { type IamPolicy, policyAllows } from '../functions/core/auth/policy.js';

/** What API Gateway calls the method ARN of a local request. */
export const LOCAL_API_ARN = 'arn:aws:execute-api:local:000000000000:local/local';
const IDENTITY = /^Bearer [A-Za-z0-9._~+/=-]+$/;

export type TokenAuthorizer = (event: APIGatewayTokenAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;

/**
 * API Gateway's TOKEN authorizer, emulated in front of the local app with its rules: the
 * Authorization header must match the identity pattern or it is 401 without a call; the
 * authorizer's answer (policy and context) is cached per token for the TTL and evaluated
 * against each request's method ARN; an "Unauthorized" error is 401 and not cached; a
 * policy that does not allow the method is 403; the context becomes the principal.
 */
export class LocalApiGateway {
  private readonly cache = new Map<string, { result: APIGatewayAuthorizerResult; until: number }>();
  private readonly stats = { calls: 0, hits: 0 };

  constructor(
    private readonly authorizer: TokenAuthorizer,
    private readonly cacheTtlSeconds: number,
  ) {}

  middleware(): MiddlewareHandler<ApiEnv> {
    return async (c, next) => {
      const header = c.req.header('authorization') ?? '';
      if (!IDENTITY.test(header)) return c.json({ message: 'Unauthorized' }, 401);
      const methodArn = `${LOCAL_API_ARN}/${c.req.method}${c.req.path}`;
      let result: APIGatewayAuthorizerResult;
      try {
        result = await this.authorize(header, methodArn);
      } catch {
        return c.json({ message: 'Unauthorized' }, 401);
      }
      if (!policyAllows(result.policyDocument as unknown as IamPolicy, methodArn))
        return c.json(
          { message: 'User is not authorized to access this resource with an explicit deny' },
          403,
        );
      c.set('principal', principalFromContext(result.context));
      await next();
    };
  }

  /** Drops every cached answer (an operator changed a mapping in this process). */
  flush(): void {
    this.cache.clear();
  }

  metrics(): { calls: number; hits: number } {
    return { ...this.stats };
  }

  private async authorize(header: string, methodArn: string): Promise<APIGatewayAuthorizerResult> {
    const now = Date.now();
    const cached = this.cache.get(header);
    if (cached && cached.until > now) {
      this.stats.hits++;
      return cached.result;
    }
    this.stats.calls++;
    const result = await this.authorizer({ type: 'TOKEN', authorizationToken: header, methodArn });
    if (this.cacheTtlSeconds > 0) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(header, { result, until: now + this.cacheTtlSeconds * 1000 });
    }
    return result;
  }
}
