import { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from 'aws-lambda';
import { type Authorizer, authorizeSafely, principalToContext } from '../core/auth/authorizer.js';
import { denyAll, policyFor } from '../core/auth/policy.js';
import { awsAuthorizer } from './aws-authorizer-deps.js';

const logger = new Logger({ serviceName: 'clonefactory-authorizer' });
const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]+)$/;

/**
 * The API Gateway TOKEN authorizer. A bad token is 401 (the "Unauthorized" error is how a
 * Lambda authorizer says so); a valid token that may not proceed gets a Deny policy (403);
 * nothing becomes a 500: every failure, the authorizer's own included, is a refusal. The
 * policy allows every route the principal's role may call, so API Gateway's cached answer
 * for this token is right for any route. Context carries ids, never a password.
 */
export function createAuthorizerHandler(
  authorizer: () => Promise<Authorizer>,
  log: Pick<Logger, 'info'> = logger,
) {
  return async (event: APIGatewayTokenAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const token = BEARER.exec(event.authorizationToken ?? '')?.[1];
    if (!token) throw new Error('Unauthorized');
    let outcome: Awaited<ReturnType<typeof authorizeSafely>>;
    try {
      outcome = await authorizeSafely(await authorizer(), token);
    } catch {
      outcome = { status: 'denied', reason: 'authorizer unavailable' };
    }
    if (outcome.status === 'unauthenticated') {
      log.info('token refused', { reason: outcome.reason });
      throw new Error('Unauthorized');
    }
    if (outcome.status === 'denied') {
      log.info('access denied', { reason: outcome.reason });
      return {
        principalId: 'denied',
        policyDocument: denyAll(event.methodArn) as never,
        context: { reason: outcome.reason },
      };
    }
    const p = outcome.principal;
    try {
      return {
        principalId: p.kind === 'operator' ? p.subject : p.userId,
        policyDocument: policyFor(p, event.methodArn) as never,
        context: principalToContext(p),
      };
    } catch {
      // A malformed registry item (say, a mapping without permissions): refuse, never a 500.
      log.info('access denied', { reason: 'malformed principal' });
      return { principalId: 'denied', policyDocument: denyAll(event.methodArn) as never, context: {} };
    }
  };
}

export const handler = createAuthorizerHandler(awsAuthorizer);
