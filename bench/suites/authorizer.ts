import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { Authorizer, DEFAULT_AUTHORIZER_CONFIG } from '../../functions/core/auth/authorizer.js';
import { createAuthorizerHandler } from '../../functions/handlers/authorizer.js';
import { LOCAL_API_ARN } from '../../local/api-gateway.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { DEV_AUDIENCE, DEV_ISSUER, DevIssuer } from '../../local/dev-issuer.js';
import { LocalEnvironment } from '../../local/environment.js';
import type { SuiteContext, SuiteResult } from '../run.js';
import { round } from '../stats.js';

/**
 * The warm authorizer (the Lambda handler: structural checks, jose, the resolution cache,
 * the policy) against a bare jwtVerify of the same token with the same key set, in
 * alternating rounds; then authorizations per second on one core (this process is one
 * thread), and the cost of a miss (mapping and clone read from the registry, dynalite here).
 */
export async function authorizerSuite(ctx: SuiteContext): Promise<SuiteResult> {
  const home = mkdtempSync(join(tmpdir(), 'clonefactory-bench-auth-'));
  const env = new LocalEnvironment({
    env: { ...process.env, CLONEFACTORY_HOME: home, CLONEFACTORY_LOG_LEVEL: 'SILENT' },
  });
  const plane = await LocalControlPlane.start({ env, namespace: 'cfa' });
  try {
    const r = await plane.tenants.create({
      tenantId: 'bench-auth',
      engine: 'sqlite',
      industry: 'technology',
      version: 'v1.1',
    });
    await plane.runner.wait(r.executionName);
    await plane.users.map({ email: 'bench@example.com', tenantId: 'bench-auth', appRole: 'user' });
    const issuer = await DevIssuer.load(home);
    const token = await issuer.mint({ email: 'bench@example.com', tenant: 'bench-auth', ttlSeconds: 3600 });
    const keys = createLocalJWKSet(issuer.jwks());
    const config = {
      ...DEFAULT_AUTHORIZER_CONFIG,
      issuer: DEV_ISSUER,
      audience: DEV_AUDIENCE,
      algorithms: ['ES256'],
    };
    const make = (resolutionTtlMs: number, verifiedTokenTtlMs = 60_000) => {
      // One instance per warm container, as in Lambda.
      const authorizer = new Authorizer({
        keys,
        users: plane.userRegistry,
        clones: plane.deps.registry,
        config: { ...config, resolutionTtlMs, verifiedTokenTtlMs },
      });
      return createAuthorizerHandler(async () => authorizer, { info: () => {} });
    };
    const warm = make(3_600_000);
    const cold = make(0, 0);
    // Tokens the instance has not seen: each one's signature is verified (resolution cached).
    const fresh = await Promise.all(
      Array.from({ length: ctx.quick ? 300 : 1000 }, (_, i) =>
        issuer.mint({ email: 'bench@example.com', tenant: 'bench-auth', ttlSeconds: 3600 + i }),
      ),
    );
    const event = {
      type: 'TOKEN' as const,
      authorizationToken: `Bearer ${token}`,
      methodArn: `${LOCAL_API_ARN}/GET/data/products`,
    };
    const bare = () =>
      jwtVerify(token, keys, { issuer: DEV_ISSUER, audience: DEV_AUDIENCE, algorithms: ['ES256'] });
    const result = await warm(event);
    if (result.policyDocument.Statement[0]?.Effect !== 'Allow')
      throw new Error('the bench token is not allowed');

    const perOp = async (n: number, fn: () => Promise<unknown>) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await fn();
      return ((performance.now() - t0) * 1000) / n; // µs
    };
    const rounds = ctx.quick ? 5 : 15;
    const n = ctx.quick ? 300 : 1000;
    await perOp(n, bare);
    await perOp(n, () => warm(event));
    const bareUs: number[] = [];
    const warmUs: number[] = [];
    for (let i = 0; i < rounds; i++) {
      bareUs.push(await perOp(n, bare));
      warmUs.push(await perOp(n, () => warm(event)));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const ratio = median(warmUs) / median(bareUs);
    ctx.log(
      `warm authorizer ${median(warmUs).toFixed(1)} µs vs bare jwtVerify ${median(bareUs).toFixed(1)} µs (x${ratio.toFixed(2)})`,
    );

    const seconds = ctx.quick ? 1 : 3;
    let count = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await warm(event);
      count++;
    }
    const perSecond = count / ((performance.now() - t0) / 1000);
    ctx.log(`${perSecond.toFixed(0)} authorizations per second on one core`);

    const newUs: number[] = [];
    const bareNewUs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const half = fresh.length / 2;
      let k = 0;
      bareNewUs.push(
        await perOp(half, () =>
          jwtVerify(fresh[k++] as string, keys, {
            issuer: DEV_ISSUER,
            audience: DEV_AUDIENCE,
            algorithms: ['ES256'],
          }),
        ),
      );
      const newcomer = make(3_600_000);
      await newcomer(event);
      newUs.push(await perOp(half, () => newcomer({ ...event, authorizationToken: `Bearer ${fresh[k++]}` })));
    }
    const newRatio = median(newUs) / median(bareNewUs);
    ctx.log(
      `first sight of a token ${median(newUs).toFixed(1)} µs vs bare ${median(bareNewUs).toFixed(1)} µs (x${newRatio.toFixed(2)})`,
    );

    const missN = ctx.quick ? 50 : 200;
    const missUs = await perOp(missN, () => cold(event));
    ctx.log(
      `cache miss ${(missUs / 1000).toFixed(2)} ms (signature, then mapping and clone read through dynalite)`,
    );
    return {
      suite: 'authorizer',
      table: {
        headers: ['MEASURE', 'VALUE', 'BASELINE', 'RATIO', 'TARGET'],
        rows: [
          [
            'warm authorizer (µs/op)',
            median(warmUs).toFixed(1),
            median(bareUs).toFixed(1),
            ratio.toFixed(2),
            '<= 1.30',
          ],
          ['authorizations/s, one core', perSecond.toFixed(0), '', '', '>= 5000'],
          [
            'first sight of a token (µs/op)',
            median(newUs).toFixed(1),
            median(bareNewUs).toFixed(1),
            newRatio.toFixed(2),
            '',
          ],
          [
            'cache miss (ms/op)',
            (missUs / 1000).toFixed(2),
            (median(warmUs) / 1000).toFixed(3),
            (missUs / median(warmUs)).toFixed(1),
            '',
          ],
        ],
      },
      data: {
        warmMicros: round(median(warmUs), 1),
        bareJwtVerifyMicros: round(median(bareUs), 1),
        ratio: round(ratio, 3),
        authorizationsPerSecond: Math.round(perSecond),
        firstSightMicros: round(median(newUs), 1),
        firstSightBareMicros: round(median(bareNewUs), 1),
        firstSightRatio: round(newRatio, 3),
        cacheMissMillis: round(missUs / 1000, 3),
        rounds,
        perRound: n,
      },
    };
  } finally {
    await plane.close();
    await env.close();
  }
}
