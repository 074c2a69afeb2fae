import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createRemoteJWKSet } from 'jose';
import { type ApiEnv, createApiApp } from '../functions/api/app.js';
import {
  Authorizer,
  type AuthorizerConfig,
  DEFAULT_AUTHORIZER_CONFIG,
} from '../functions/core/auth/authorizer.js';
import { templateDetail } from '../functions/core/images.js';
import { createAuthorizerHandler } from '../functions/handlers/authorizer.js';
import { LocalApiGateway } from './api-gateway.js';
import type { LocalControlPlane } from './control-plane.js';
import { DEV_ALGORITHM, DEV_AUDIENCE, DEV_ISSUER, DevIssuer } from './dev-issuer.js';

export interface LocalServerOptions {
  readonly plane: LocalControlPlane;
  readonly port?: number;
  readonly host?: string;
  /** API Gateway's authorizer result cache (seconds; 0 turns it off). Default 60. */
  readonly cacheTtlSeconds?: number;
  /** Overrides of the authorizer's configuration (issuer, audience and JWKS default to the dev issuer's). */
  readonly authorizer?: Partial<AuthorizerConfig> & { readonly jwksUrl?: string };
}

/**
 * The local control plane's HTTP server: the same API app and authorizer handler as on AWS,
 * with API Gateway's authorizer caching emulated in front, and the dev issuer's JWKS at
 * /.well-known/jwks.json, fetched by the authorizer over HTTP as it would fetch an IdP's.
 */
const CONSOLE_DIR = fileURLToPath(new URL('./console/', import.meta.url));
const MODULES = fileURLToPath(new URL('../node_modules/', import.meta.url));
const JS = 'text/javascript; charset=utf-8';
/** The console: its page, its script, and Preact and htm from node_modules (no build step). */
const CONSOLE_FILES: readonly (readonly [string, string, string])[] = [
  ['/console', join(CONSOLE_DIR, 'index.html'), 'text/html; charset=utf-8'],
  ['/console/app.js', join(CONSOLE_DIR, 'app.js'), JS],
  ['/console/vendor/preact.mjs', join(MODULES, 'preact/dist/preact.mjs'), JS],
  ['/console/vendor/hooks.mjs', join(MODULES, 'preact/hooks/dist/hooks.mjs'), JS],
  ['/console/vendor/htm.mjs', join(MODULES, 'htm/dist/htm.mjs'), JS],
];

export class LocalServer {
  private constructor(
    readonly url: string,
    readonly gateway: LocalApiGateway,
    readonly issuer: DevIssuer,
    readonly authorizer: Authorizer,
    private readonly server: ReturnType<typeof serve>,
  ) {}

  static async start(options: LocalServerOptions): Promise<LocalServer> {
    const { plane } = options;
    const env = plane.env;
    const issuer = await DevIssuer.load(env.home);
    let jwksUrl = options.authorizer?.jwksUrl ?? env.env.JWKS_URL;
    const config: AuthorizerConfig = {
      ...DEFAULT_AUTHORIZER_CONFIG,
      issuer: env.env.JWT_ISSUER ?? DEV_ISSUER,
      audience: env.env.JWT_AUDIENCE ?? DEV_AUDIENCE,
      algorithms: env.env.JWT_ALGORITHMS?.split(',') ?? [DEV_ALGORITHM, 'RS256'],
      ...options.authorizer,
    };
    let keys: ReturnType<typeof createRemoteJWKSet> | undefined;
    const authorizer = new Authorizer({
      // Resolved at the first request: the default JWKS URL is this server's, known once it listens.
      keys: (header, token) => {
        keys ??= createRemoteJWKSet(new URL(jwksUrl as string), {
          timeoutDuration: 2000,
          cooldownDuration: 5000,
        });
        return keys(header, token);
      },
      users: plane.userRegistry,
      clones: plane.deps.registry,
      config,
    });
    const gateway = new LocalApiGateway(
      createAuthorizerHandler(async () => authorizer, { info: () => {} }),
      options.cacheTtlSeconds ?? Number(env.env.AUTHORIZER_CACHE_TTL_SECONDS ?? 60),
    );
    const api = createApiApp({
      catalog: plane.deps.catalog,
      tenants: plane.tenants,
      users: plane.users,
      data: plane.data,
      authenticate: gateway.middleware(),
      health: async () => {
        const engines: Record<string, { status: 'up' | 'down'; location?: string; reason?: string }> = {};
        for (const name of plane.deps.catalog.engines) {
          const r = await env.tryEngine(name);
          engines[name] =
            'engine' in r
              ? { status: 'up', location: r.engine.location }
              : { status: 'down', reason: r.reason };
        }
        const ok = Object.values(engines).some((e) => e.status === 'up');
        return { ok, body: { status: ok ? 'ok' : 'degraded', engines, pools: plane.pools.metrics() } };
      },
      templateDetail: async (engine, version, industry) => {
        const template = await plane.deps.catalog.resolve(engine, version, industry);
        const r = await env.tryEngine(template.engine);
        return templateDetail(template, plane.deps.catalog, 'engine' in r ? r.engine : r);
      },
      execution: (name) => plane.runner.describe(name),
      // This process made the change: its caches let go at once (on AWS, within the TTLs).
      onCloneGone: (cloneId) => plane.pools.closeClone(cloneId),
      moveTenant: async (tenantId, placement) => {
        const result = await plane.move(tenantId, placement);
        // Cached principals name the old placement: this process lets go of them at once.
        gateway.flush();
        authorizer.forget();
        return result;
      },
      branchTenant: (source, tenantId) => plane.branch(source, tenantId),
      upgrades: plane.upgrades,
      upgradeTenant: async (tenantId, to) => {
        const result = await plane.upgradeTenant(tenantId, to);
        // Cached principals carry the old fingerprint and version.
        gateway.flush();
        authorizer.forget();
        return result;
      },
      drift: () => plane.drift(),
      reconcile: (options) => plane.reconcile(options),
      status: () => plane.status(),
      onUserChange: () => {
        gateway.flush();
        authorizer.forget();
      },
    });
    const app = new Hono<ApiEnv>();
    app.get('/.well-known/jwks.json', (c) => c.json(issuer.jwks()));
    // The console's static files: public, like any page; its data comes from the API with
    // the operator token the page reads from its URL fragment.
    for (const [path, file, type] of CONSOLE_FILES)
      app.get(path, async (c) =>
        c.body(await readFile(file), 200, { 'content-type': type, 'cache-control': 'no-store' }),
      );
    app.route('/', api);
    app.notFound((c) =>
      c.json({ error: 'NotFound', message: `no route for ${c.req.method} ${c.req.path}` }, 404),
    );
    const host = options.host ?? '127.0.0.1';
    const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>(
      (resolve, reject) => {
        const s = serve(
          { fetch: app.fetch, port: options.port ?? 3000, hostname: host },
          (info: AddressInfo) => resolve({ server: s, port: info.port }),
        );
        s.once('error', reject);
      },
    );
    const url = `http://${host}:${port}`;
    jwksUrl ??= `${url}/.well-known/jwks.json`;
    return new LocalServer(url, gateway, issuer, authorizer, server);
  }

  async close(): Promise<void> {
    const server = this.server as unknown as import('node:http').Server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections?.();
    await closed;
  }
}
