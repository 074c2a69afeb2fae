import { Pool, TimeoutError } from 'tarn';

import type { UserPrincipal } from '../auth/authorizer.js';
import type { Login, SessionOptions, SqlExecutor, SqlSession } from '../engine.js';
import {
  AccessDeniedError,
  EngineUnavailableError,
  errorMessage,
  PoolExhaustedError,
  ValidationError,
} from '../errors.js';
import { type CloneCredentials, parseCredentials, type SecretStore } from '../secrets.js';

export interface TenantPoolOptions {
  /** Connections kept open per tenant pool when idle. */
  readonly min: number;
  /** Connections per tenant pool (per clone and app role). */
  readonly max: number;
  /** Connections across every tenant pool of this process. */
  readonly globalMax: number;
  /** How long a request waits for a connection before PoolExhaustedError (503). */
  readonly acquireTimeoutMs: number;
  /** An idle connection is closed after this long. */
  readonly idleTimeoutMs: number;
  /** Server-side limit on one statement. */
  readonly statementTimeoutMs: number;
  /** How long credentials read from the secret store are reused. */
  readonly credentialTtlMs: number;
}

export const DEFAULT_POOL_OPTIONS: TenantPoolOptions = {
  min: 0,
  max: 5,
  globalMax: 40,
  acquireTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  statementTimeoutMs: 10_000,
  credentialTtlMs: 60_000,
};

export interface PoolMetrics {
  /** Connections handed out since start. */
  readonly acquired: number;
  /** Acquisitions that failed (timeout, login refused, server down). */
  readonly failed: number;
  /** Idle connections closed to make room under the global cap. */
  readonly evicted: number;
  /** Connections closed by a pool that held more than a waiting pool, to give it their slot. */
  readonly shed: number;
  /** Requests waiting for a connection now. */
  readonly waiting: number;
  /** Connections open now, across every tenant pool. */
  readonly open: number;
  /** The most that were ever open at once. */
  readonly peakOpen: number;
  readonly pools: number;
}

/** How long a pool must have been idle before a pool that has connections may close it. */
const IDLE_BEFORE_EVICTION_MS = 1_000;

/** Sessions found broken; tarn's validate() keeps them from being handed out again. */
const brokenSessions = new WeakSet<SqlSession>();
/** Sessions that hold no slot (closed for a poorer pool, or never opened): destroy() has nothing to do. */
const shedSessions = new WeakSet<SqlSession>();

/**
 * What a create that gave up waiting for a slot resolves to instead of failing: no connection
 * and no slot, dropped by tarn's validate() before any request could get it.
 */
function slotless(tenantId: string): SqlSession {
  const session: SqlSession = {
    query: () => Promise.reject(new PoolExhaustedError(`no connection for tenant ${tenantId}`)),
    close: async () => {},
  };
  brokenSessions.add(session);
  shedSessions.add(session);
  return session;
}

/** A pool's share of the global cap: its connections that hold a slot (open or opening). */
interface Slots {
  open: number;
}

interface TenantPool {
  readonly key: string;
  readonly pool: Pool<SqlSession>;
  readonly slots: Slots;
  lastUsed: number;
}

/** A connection waiting for a slot of the global cap, for a pool that holds `slots.open`. */
interface SlotWaiter {
  readonly slots: Slots;
  readonly wake: () => void;
}

/**
 * One connection pool per tenant clone and app role, under one global cap. A pool connects
 * only to its own clone's database, as the login its app role names: the database comes
 * from the registry (through the principal) and must equal the one in the clone's secret.
 * When the cap is reached, the idle connections of the least recently used pools are closed
 * first; if none is idle, the request waits (up to the acquire timeout).
 */
export class TenantPools {
  private readonly pools = new Map<string, TenantPool>();
  private readonly credentials = new Map<string, { value: CloneCredentials; until: number }>();
  private readonly waiters: SlotWaiter[] = [];
  private open = 0;
  private peakOpen = 0;
  private counts = { acquired: 0, failed: 0, evicted: 0, shed: 0, waiting: 0 };
  private readonly options: TenantPoolOptions;

  constructor(
    private readonly deps: {
      readonly secrets: SecretStore;
      /**
       * Opens a session on the principal's clone as `login`. Locally the engine adapter of the
       * environment; on AWS one built from the host and port in the clone's own secret, so the
       * API never needs an admin credential.
       */
      openSession(
        principal: UserPrincipal,
        credentials: CloneCredentials,
        login: Login,
        options: SessionOptions,
      ): Promise<SqlSession>;
      readonly options?: Partial<TenantPoolOptions>;
    },
  ) {
    this.options = { ...DEFAULT_POOL_OPTIONS, ...deps.options };
    if (this.options.max > this.options.globalMax)
      throw new ValidationError('the per-tenant pool maximum exceeds the global connection cap', 'max');
  }

  /** Runs `fn` on a connection of the principal's clone, as its app role's login. */
  async withSession<T>(principal: UserPrincipal, fn: (session: SqlExecutor) => Promise<T>): Promise<T> {
    const entry = this.poolFor(principal);
    entry.lastUsed = Date.now();
    this.counts.waiting++;
    let session: SqlSession;
    try {
      session = await entry.pool.acquire().promise;
      this.counts.acquired++;
    } catch (error) {
      this.counts.failed++;
      if (
        error instanceof AccessDeniedError ||
        error instanceof ValidationError ||
        error instanceof PoolExhaustedError
      )
        throw error;
      if (error instanceof TimeoutError)
        throw new PoolExhaustedError(
          `no connection for tenant ${principal.tenantId} within ${this.options.acquireTimeoutMs} ms`,
          {
            cause: error,
          },
        );
      // Login refused, server down, a broken secret: the tenant's database is unavailable (503).
      // The driver's message names at most the role, never a password.
      throw new EngineUnavailableError(
        principal.engine,
        `tenant ${principal.tenantId}: ${errorMessage(error)}`,
        {
          cause: error,
        },
      );
    } finally {
      this.counts.waiting--;
    }
    let broken = false;
    try {
      return await fn(session);
    } catch (error) {
      // A connection whose server side went away must not serve the next request.
      broken = isConnectionError(error);
      throw error;
    } finally {
      entry.lastUsed = Date.now();
      // A broken connection is marked; tarn's validate() drops it before anyone reuses it.
      if (broken) brokenSessions.add(session);
      else if (this.owesSlot(entry.slots)) this.shed(entry.slots, session);
      entry.pool.release(session);
    }
  }

  metrics(): PoolMetrics {
    return { ...this.counts, open: this.open, peakOpen: this.peakOpen, pools: this.pools.size };
  }

  /** Closes one clone's pools (its tenant was deleted or remapped) and forgets its credentials. */
  async closeClone(cloneId: string): Promise<void> {
    for (const [key, entry] of this.pools)
      if (key.startsWith(`${cloneId}:`)) {
        this.pools.delete(key);
        await entry.pool.destroy();
      }
    for (const key of this.credentials.keys())
      if (key.startsWith(`${cloneId}:`)) this.credentials.delete(key);
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((e) => e.pool.destroy()));
  }

  private poolFor(principal: UserPrincipal): TenantPool {
    // The database is part of the key: a pool serves exactly one clone database.
    const key = `${principal.cloneId}:${principal.appRole}:${principal.database}`;
    const existing = this.pools.get(key);
    if (existing) return existing;
    // Assigned below: tarn may call create() before the entry exists only if min > 0, and then
    // a create is wanted whatever the waiters.
    let pending: () => boolean = () => true;
    const slots: Slots = { open: 0 };
    const pool = new Pool<SqlSession>({
      create: async () => this.connect(principal, slots, () => pending()),
      validate: (session) => !brokenSessions.has(session),
      destroy: async (session) => {
        // A shed session was closed, and its slot given back, when it was shed.
        if (shedSessions.has(session)) return;
        try {
          await session.close();
        } finally {
          this.releaseSlot(slots);
        }
      },
      min: this.options.min,
      max: this.options.max,
      acquireTimeoutMillis: this.options.acquireTimeoutMs,
      createTimeoutMillis: 2 * this.options.acquireTimeoutMs,
      idleTimeoutMillis: this.options.idleTimeoutMs,
      reapIntervalMillis: Math.min(1_000, this.options.idleTimeoutMs),
      // A refused login fails the request at once instead of retrying until the timeout.
      propagateCreateError: true,
    });
    const entry: TenantPool = { key, pool, slots, lastUsed: Date.now() };
    pending = () => pool.numPendingAcquires() > 0;
    this.pools.set(key, entry);
    return entry;
  }

  private async connect(
    principal: UserPrincipal,
    slots: Slots,
    stillNeeded: () => boolean,
  ): Promise<SqlSession> {
    if (!(await this.takeSlot(principal.tenantId, slots, stillNeeded))) return slotless(principal.tenantId);
    try {
      const credentials = await this.credentialsOf(principal);
      const login = credentials.roles[principal.appRole];
      if (!login)
        throw new AccessDeniedError(`no ${principal.appRole} login for tenant ${principal.tenantId}`);
      return await this.deps.openSession(principal, credentials, login, {
        statementTimeoutMs: this.options.statementTimeoutMs,
      });
    } catch (error) {
      this.releaseSlot(slots);
      // The cached credentials may be stale (rotated): read them again next time.
      this.credentials.delete(`${principal.cloneId}:${principal.secretId}`);
      throw error;
    }
  }

  private async credentialsOf(principal: UserPrincipal): Promise<CloneCredentials> {
    const key = `${principal.cloneId}:${principal.secretId}`;
    const cached = this.credentials.get(key);
    let value: CloneCredentials;
    if (cached && cached.until > Date.now()) value = cached.value;
    else {
      const raw = await this.deps.secrets.get(principal.secretId);
      if (!raw) throw new AccessDeniedError(`the credentials of tenant ${principal.tenantId} are missing`);
      try {
        value = parseCredentials(raw, principal.secretId);
      } catch (error) {
        // A broken secret makes the tenant's database unreachable (503), not the request invalid.
        throw new EngineUnavailableError('secrets', errorMessage(error), { cause: error });
      }
      this.credentials.set(key, { value, until: Date.now() + this.options.credentialTtlMs });
    }
    // Isolation, on every connection: the secret must describe the clone the registry names.
    if (value.database !== principal.database || value.engine !== principal.engine)
      throw new AccessDeniedError(`the credentials of tenant ${principal.tenantId} name another database`);
    return value;
  }

  /**
   * One slot of the global cap; evicts idle connections of other pools, else waits. A freed
   * slot goes to the waiting pool that holds the fewest connections, and a pool that holds at
   * least two more than a waiting one gives one up as its request ends (see owesSlot): without
   * that, pools that are never idle keep every slot and the other tenants' requests time out.
   */
  private async takeSlot(tenantId: string, slots: Slots, stillNeeded: () => boolean): Promise<boolean> {
    // A create serves whichever request of its pool waits, not the one that started it: it
    // goes on while any waits (each request times out on its own), up to a hard bound.
    const started = Date.now();
    const deadline = started + 2 * this.options.acquireTimeoutMs;
    while (this.open >= this.options.globalMax) {
      // The pool's own connections served its waiters meanwhile: this one is not needed, and
      // waiting on would keep the pool from being evicted.
      if (!stillNeeded()) throw new PoolExhaustedError(`connection for tenant ${tenantId} no longer needed`);
      if (await this.evictIdle(slots)) continue;
      // A pool that has connections is served by them meanwhile. Its extra one gives up before
      // tarn's create timeout: failing, it would fail the pool's oldest request with it.
      if (slots.open > 0 && Date.now() - started >= this.options.acquireTimeoutMs) return false;
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new PoolExhaustedError(
          `the global cap of ${this.options.globalMax} connections is reached (tenant ${tenantId})`,
        );
      await new Promise<void>((resolve) => {
        const waiter: SlotWaiter = {
          slots,
          wake: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        const timer = setTimeout(
          () => {
            const i = this.waiters.indexOf(waiter);
            if (i >= 0) this.waiters.splice(i, 1);
            resolve();
          },
          Math.min(remaining, 50),
        );
        this.waiters.push(waiter);
      });
    }
    this.open++;
    slots.open++;
    this.peakOpen = Math.max(this.peakOpen, this.open);
    return true;
  }

  private releaseSlot(slots: Slots): void {
    this.open--;
    slots.open--;
    // The poorest waiting pool first (the first of them that came, on a tie).
    let poorest = -1;
    for (let i = 0; i < this.waiters.length; i++)
      if (
        poorest < 0 ||
        (this.waiters[i] as SlotWaiter).slots.open < (this.waiters[poorest] as SlotWaiter).slots.open
      )
        poorest = i;
    if (poorest >= 0) this.waiters.splice(poorest, 1)[0]?.wake();
  }

  /** At the cap, whether a pool holds at least two connections more than a pool that waits for one. */
  private owesSlot(slots: Slots): boolean {
    return this.open >= this.options.globalMax && this.waiters.some((w) => w.slots.open < slots.open - 1);
  }

  /**
   * Closes a session its pool is about to get back, then gives its slot to the waiting pools;
   * marked broken, it is dropped by tarn before anyone could acquire it.
   */
  private shed(slots: Slots, session: SqlSession): void {
    brokenSessions.add(session);
    shedSessions.add(session);
    this.counts.shed++;
    void session
      .close()
      .catch(() => {})
      .finally(() => this.releaseSlot(slots));
  }

  /**
   * Closes the least recently used pool that has nothing in flight. A pool that already has a
   * connection takes only from pools idle for a while: a pool between two quick requests would
   * otherwise lose its connections to a busier pool, and get them back by shedding, over and over.
   */
  private async evictIdle(slots: Slots): Promise<boolean> {
    const idleSince = Date.now() - IDLE_BEFORE_EVICTION_MS;
    const victim = [...this.pools.values()]
      .filter(
        (e) =>
          e.slots.open > 0 &&
          e.pool.numFree() > 0 &&
          e.pool.numUsed() === 0 &&
          e.pool.numPendingAcquires() === 0 &&
          (slots.open === 0 || e.lastUsed <= idleSince),
      )
      .sort((a, b) => a.lastUsed - b.lastUsed)[0];
    if (!victim) return false;
    this.counts.evicted += victim.slots.open;
    this.pools.delete(victim.key);
    await victim.pool.destroy();
    return true;
  }
}

function isConnectionError(error: unknown): boolean {
  const code = String((error as { code?: string })?.code ?? '');
  return (
    ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'PROTOCOL_CONNECTION_LOST', '57P01', '57P02', '57P03'].includes(
      code,
    ) ||
    /Connection terminated|connection is closed|The database connection is not open/i.test(
      String((error as Error)?.message),
    )
  );
}
