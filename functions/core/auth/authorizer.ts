import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { EngineName } from '../engine.js';
import { AccessDeniedError, CloneFactoryError, UnauthenticatedError } from '../errors.js';
import type { CloneRegistry } from '../registry.js';
import { APP_ROLES, type AppRole, type CloneRecord, type Placement } from '../tenants.js';
import {
  normaliseEmail,
  PERMISSIONS,
  type Permission,
  type UserMapping,
  type UserRegistry,
} from '../users.js';
import { type TokenPolicy, verifyToken } from './token.js';

export interface AuthorizerConfig extends TokenPolicy {
  /** The claim that names the user's tenant. */
  readonly tenantClaim: string;
  /** A token whose `scope` holds this is an operator's: the control-plane routes, no tenant. */
  readonly operatorScope: string;
  /** How long a resolved mapping and clone are reused by this instance (ms). Keep it at most the API cache TTL. */
  readonly resolutionTtlMs: number;
  /** last_accessed is written at most this often per user (ms). */
  readonly touchIntervalMs: number;
  /**
   * How long this instance trusts a token it has verified (ms), never past its exp or max age:
   * a warm instance then checks a signature once per token, like API Gateway's own cache. A key
   * removed from the JWKS stops working within this time.
   */
  readonly verifiedTokenTtlMs: number;
}

export const DEFAULT_AUTHORIZER_CONFIG = {
  algorithms: ['RS256', 'ES256'],
  maxTokenAgeSeconds: 3600,
  maxTokenBytes: 8192,
  clockToleranceSeconds: 0,
  tenantClaim: 'tenant_id',
  operatorScope: 'clonefactory/operator',
  resolutionTtlMs: 5_000,
  touchIntervalMs: 60_000,
  verifiedTokenTtlMs: 60_000,
} as const;

/**
 * The promise under way for `key` in `inFlight`, or a new one from `start`, which every caller
 * for that key shares until it settles (its result or its error alike).
 */
function shared<T>(inFlight: Map<string, Promise<T>>, key: string, start: () => Promise<T>): Promise<T> {
  const running = inFlight.get(key);
  if (running) return running;
  const promise: Promise<T> = start().finally(() => {
    if (inFlight.get(key) === promise) inFlight.delete(key);
  });
  inFlight.set(key, promise);
  return promise;
}

/** Who a request acts for. Never holds a password: the secret id names where the credentials are. */
export type Principal = OperatorPrincipal | UserPrincipal;
export interface OperatorPrincipal {
  readonly kind: 'operator';
  readonly subject: string;
}
export interface UserPrincipal {
  readonly kind: 'user';
  readonly userId: string;
  readonly email: string;
  readonly tenantId: string;
  readonly cloneId: string;
  readonly appRole: AppRole;
  readonly permissions: readonly Permission[];
  readonly engine: EngineName;
  readonly placement: Placement;
  readonly version: string;
  readonly industry: string;
  readonly database: string;
  readonly endpoint: string;
  readonly secretId: string;
}

interface Resolution {
  readonly mapping: UserMapping;
  readonly clone: CloneRecord;
  readonly until: number;
}

/**
 * The authorizer's core: verifies the token, finds the user's mapping, requires that its tenant
 * equals the token's tenant claim and that the clone is READY, and answers the principal.
 * Throws UnauthenticatedError (401) or AccessDeniedError (403); anything else is turned into a
 * denial by {@link authorizeSafely}. Resolutions are reused for `resolutionTtlMs`, so that a warm
 * instance verifies a signature and reads nothing.
 */
export class Authorizer {
  private readonly resolutions = new Map<string, Resolution>();
  private readonly touched = new Map<string, number>();
  private readonly verified = new Map<string, { claims: JWTPayload; until: number }>();
  /**
   * Work under way, by token and by resolution key: concurrent requests that miss the caches
   * for the same token or user (a page's burst of calls) share one verification and one set of
   * registry reads, instead of each doing its own.
   */
  private readonly verifying = new Map<string, Promise<JWTPayload>>();
  private readonly resolving = new Map<string, Promise<Resolution>>();
  /** Bumped by forget(): a resolution read before it is not cached after it. */
  private generation = 0;

  constructor(
    private readonly deps: {
      readonly keys: JWTVerifyGetKey;
      readonly users: UserRegistry;
      readonly clones: CloneRegistry;
      readonly config: AuthorizerConfig;
      readonly now?: () => Date;
    },
  ) {}

  async authenticate(token: string): Promise<Principal> {
    const now = this.deps.now?.() ?? new Date();
    const claims = await this.verify(token, now);
    const subject = typeof claims.sub === 'string' && claims.sub.length > 0 ? claims.sub : undefined;
    const email = typeof claims.email === 'string' && claims.email.length > 0 ? claims.email : undefined;
    if (!subject && !email) throw new UnauthenticatedError('token has neither sub nor email');
    if (isOperator(claims, this.deps.config.operatorScope))
      return { kind: 'operator', subject: subject ?? (email as string) };
    const tenant = claims[this.deps.config.tenantClaim];
    if (typeof tenant !== 'string' || tenant.length === 0)
      throw new UnauthenticatedError(`token has no ${this.deps.config.tenantClaim} claim`);
    const emailVerified = claims.email_verified === true || claims.email_verified === 'true';
    const { mapping, clone } = await this.resolve(subject, email, emailVerified, now.getTime());
    if (mapping.tenantId !== tenant) throw new AccessDeniedError('the token names another tenant');
    if (clone.state !== 'READY' || clone.cloneId !== mapping.cloneId || !clone.database || !clone.secretId)
      throw new AccessDeniedError(`tenant ${mapping.tenantId} is not available (${clone.state})`);
    await this.touch(mapping, now);
    return {
      kind: 'user',
      userId: mapping.userId,
      email: mapping.email,
      tenantId: mapping.tenantId,
      cloneId: clone.cloneId,
      appRole: mapping.appRole,
      permissions: mapping.permissions,
      engine: clone.engine,
      placement: clone.placement,
      version: clone.version,
      industry: clone.industry,
      database: clone.database,
      endpoint: clone.endpoint ?? '',
      secretId: clone.secretId,
    };
  }

  /** Forgets cached resolutions (tests; an operator's change takes effect at once in this process). */
  forget(): void {
    this.generation++;
    this.resolutions.clear();
    this.resolving.clear();
  }

  /** verifyToken, remembered per exact token until the earliest of exp, max age and the TTL. */
  private async verify(token: string, now: Date): Promise<JWTPayload> {
    const t = now.getTime();
    const hit = this.verified.get(token);
    if (hit && t < hit.until) return hit.claims;
    return shared(this.verifying, token, () => this.verifyNow(token, now));
  }

  private async verifyNow(token: string, now: Date): Promise<JWTPayload> {
    const t = now.getTime();
    const claims = await verifyToken(token, this.deps.keys, this.deps.config, now);
    const ttl = this.deps.config.verifiedTokenTtlMs;
    if (ttl > 0 && typeof claims.exp === 'number' && typeof claims.iat === 'number') {
      const until = Math.min(
        claims.exp * 1000 - this.deps.config.clockToleranceSeconds * 1000,
        (claims.iat + this.deps.config.maxTokenAgeSeconds) * 1000,
        t + ttl,
      );
      if (this.verified.size >= 5_000) this.verified.clear();
      this.verified.set(token, { claims, until });
    }
    return claims;
  }

  private async resolve(
    subject: string | undefined,
    email: string | undefined,
    emailVerified: boolean,
    now: number,
  ): Promise<Resolution> {
    const key = `${subject ?? ''}\u0000${email ? normaliseEmail(email) : ''}\u0000${emailVerified}`;
    const cached = this.resolutions.get(key);
    if (cached && cached.until > now) return cached;
    return shared(this.resolving, key, () => this.resolveNow(key, subject, email, emailVerified, now));
  }

  private async resolveNow(
    key: string,
    subject: string | undefined,
    email: string | undefined,
    emailVerified: boolean,
    now: number,
  ): Promise<Resolution> {
    const generation = this.generation;
    let mapping = subject ? await this.deps.users.get(subject) : null;
    // By email only for a user mapped by email (no subject of its own), and only when the
    // issuer says it verified the address: a subject never borrows another user's mapping.
    if (!mapping && email && (emailVerified || !subject)) {
      const lower = normaliseEmail(email);
      const found = (await this.deps.users.findByEmail(lower)).filter((m) => m.userId === lower);
      if (found.length === 1) mapping = found[0] ?? null;
    }
    if (!mapping) throw new AccessDeniedError('user is not mapped to a tenant');
    const clone = await this.deps.clones.get(mapping.tenantId);
    if (!clone) throw new AccessDeniedError(`tenant ${mapping.tenantId} is not available (not registered)`);
    const resolution = { mapping, clone, until: now + this.deps.config.resolutionTtlMs };
    if (generation === this.generation) {
      if (this.resolutions.size > 10_000) this.resolutions.clear();
      this.resolutions.set(key, resolution);
    }
    return resolution;
  }

  /** last_accessed, at most once per interval per user; a failed write never fails the request. */
  private async touch(mapping: UserMapping, now: Date): Promise<void> {
    // Awaited, because Lambda freezes after the handler returns, but never for more than
    // 250 ms; a failed write never fails the request and is tried again next time.
    const interval = this.deps.config.touchIntervalMs;
    const last = Math.max(this.touched.get(mapping.userId) ?? 0, Date.parse(mapping.lastAccessed ?? '') || 0);
    if (now.getTime() - last < interval) return;
    this.touched.set(mapping.userId, now.getTime());
    const write = this.deps.users
      .touch(mapping.userId, now.toISOString(), new Date(now.getTime() - interval).toISOString())
      .then(
        () => true,
        () => false,
      );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), 250);
    });
    const ok = await Promise.race([write, timeout]);
    clearTimeout(timer);
    if (!ok) this.touched.delete(mapping.userId);
  }
}

function isOperator(claims: JWTPayload, scope: string): boolean {
  const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
  return scopes.includes(scope);
}

/** The outcome an API Gateway authorizer can express: 401, a policy, nothing else (never a 500). */
export type AuthorizationOutcome =
  | { readonly status: 'allow'; readonly principal: Principal }
  | { readonly status: 'unauthenticated'; readonly reason: string }
  | { readonly status: 'denied'; readonly reason: string };

/** {@link Authorizer.authenticate} with every failure, bugs included, turned into a refusal. */
export async function authorizeSafely(authorizer: Authorizer, token: string): Promise<AuthorizationOutcome> {
  try {
    return { status: 'allow', principal: await authorizer.authenticate(token) };
  } catch (error) {
    if (error instanceof UnauthenticatedError) return { status: 'unauthenticated', reason: error.reason };
    if (error instanceof AccessDeniedError) return { status: 'denied', reason: error.reason };
    // The registry or anything else failing: fail closed, and say only that.
    return {
      status: 'denied',
      reason: error instanceof CloneFactoryError ? error.name : 'authorizer error',
    };
  }
}

/** The principal as API Gateway's authorizer context carries it: flat strings. */
export function principalToContext(principal: Principal): Record<string, string> {
  if (principal.kind === 'operator') return { kind: 'operator', subject: principal.subject };
  return {
    kind: 'user',
    userId: principal.userId,
    email: principal.email,
    tenantId: principal.tenantId,
    cloneId: principal.cloneId,
    appRole: principal.appRole,
    permissions: principal.permissions.join(' '),
    engine: principal.engine,
    placement: principal.placement,
    version: principal.version,
    industry: principal.industry,
    database: principal.database,
    endpoint: principal.endpoint,
    secretId: principal.secretId,
  };
}

const contextSchema = z.union([
  z.object({ kind: z.literal('operator'), subject: z.string().min(1) }),
  z.object({
    kind: z.literal('user'),
    userId: z.string().min(1),
    email: z.string(),
    tenantId: z.string().min(1),
    cloneId: z.string().min(1),
    appRole: z.enum(APP_ROLES),
    permissions: z.string(),
    engine: z.enum(['postgresql', 'mysql', 'sqlite']),
    placement: z.enum(['shared', 'dedicated']),
    version: z.string(),
    industry: z.string(),
    database: z.string().min(1),
    endpoint: z.string(),
    secretId: z.string().min(1),
  }),
]);

/** The principal back from an authorizer context; a malformed one is a denial, not a guess. */
export function principalFromContext(context: unknown): Principal {
  const parsed = contextSchema.safeParse(context);
  if (!parsed.success) throw new AccessDeniedError('no authorizer context');
  const c = parsed.data;
  if (c.kind === 'operator') return c;
  return {
    ...c,
    permissions: c.permissions
      .split(' ')
      .filter((p): p is Permission => (PERMISSIONS as readonly string[]).includes(p)),
  };
}
