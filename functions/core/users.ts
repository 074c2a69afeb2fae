import { z } from 'zod';
import {
  TenantNotFoundError,
  TenantStateConflictError,
  UserMappingConflictError,
  UserNotFoundError,
  ValidationError,
} from './errors.js';
import type { CloneRegistry } from './registry.js';
import { APP_ROLES, type AppRole, assertTenantId } from './tenants.js';

/** What each app role may do through the tenant API; the database grants enforce the same. */
export const PERMISSIONS = ['read', 'write', 'delete', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];
export const ROLE_PERMISSIONS: Readonly<Record<AppRole, readonly Permission[]>> = {
  admin: ['read', 'write', 'delete', 'admin'],
  user: ['read', 'write'],
  analyst: ['read'],
};

/** One user's access to one tenant's clone. A user belongs to exactly one tenant: the key is the user id. */
export interface UserMapping {
  /** The identity provider's subject; the lowercased email when the operator gave none. */
  readonly userId: string;
  readonly email: string;
  /** Lower case: lookups by email ignore case. */
  readonly emailLower: string;
  readonly tenantId: string;
  readonly cloneId: string;
  readonly appRole: AppRole;
  readonly permissions: readonly Permission[];
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly lastAccessed?: string;
  /** Incremented by every write except last_accessed; conditional writes compare it. */
  readonly rev: number;
}

/** A subject or a lowercased email: printable ASCII without spaces, slashes or quotes. */
export const USER_ID = /^[A-Za-z0-9@._:|+!#$%&'*=?^`{}~-]{1,254}$/;

export const mapUserRequest = z.strictObject({
  email: z.email().max(254),
  tenantId: z.string().max(64),
  appRole: z.enum(APP_ROLES),
  userId: z
    .string()
    .regex(USER_ID, 'printable characters without spaces, slashes or quotes, at most 254')
    .optional(),
  /** Moving a user mapped to another tenant must be asked for explicitly. */
  remap: z.boolean().default(false),
});
export type MapUserRequest = z.input<typeof mapUserRequest>;

/** The user mappings table. Single-item conditional writes only. */
export interface UserRegistry {
  get(userId: string): Promise<UserMapping | null>;
  /** Mappings whose email matches, ignoring case (an index: eventually consistent on AWS). */
  findByEmail(emailLower: string): Promise<UserMapping[]>;
  list(filter?: { tenantId?: string }): Promise<UserMapping[]>;
  /**
   * Writes `mapping` if the stored one is absent (`expectedRev` null) or at `expectedRev`;
   * throws UserMappingConflictError otherwise.
   */
  put(mapping: UserMapping, expectedRev: number | null): Promise<void>;
  /** Deletes the mapping if it is at `expectedRev`; false when it is gone already. */
  delete(userId: string, expectedRev: number): Promise<boolean>;
  /** Sets last_accessed to `at` unless it is already later than `notBefore`. Returns whether it wrote. */
  touch(userId: string, at: string, notBefore: string): Promise<boolean>;
}

export const normaliseEmail = (email: string) => email.trim().toLowerCase();

/**
 * Mapping users to tenants. A mapping needs a READY clone; a user moves to another tenant
 * only when asked to (`remap`); one email is one user.
 */
export class UserService {
  constructor(
    private readonly deps: {
      readonly users: UserRegistry;
      readonly clones: CloneRegistry;
      readonly now?: () => Date;
    },
  ) {}

  async map(input: unknown): Promise<{ mapping: UserMapping; created: boolean }> {
    const parsed = mapUserRequest.safeParse(input);
    if (!parsed.success)
      throw new ValidationError(
        parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '),
        String(parsed.error.issues[0]?.path[0] ?? 'body'),
      );
    const request = parsed.data;
    const tenantId = assertTenantId(request.tenantId);
    const emailLower = normaliseEmail(request.email);
    const userId = request.userId ?? emailLower;
    if (!USER_ID.test(userId))
      throw new ValidationError(
        `the email ${JSON.stringify(emailLower)} cannot serve as a user id; give a user id`,
        'userId',
      );
    const clone = await this.deps.clones.get(tenantId);
    if (!clone) throw new TenantNotFoundError(tenantId);
    if (clone.state !== 'READY') throw new TenantStateConflictError(tenantId, clone.state, 'map a user');
    const sameEmail = (await this.deps.users.findByEmail(emailLower)).filter((m) => m.userId !== userId);
    if (sameEmail.length > 0)
      throw new UserMappingConflictError(
        userId,
        `email ${emailLower} is already mapped as user ${sameEmail[0]?.userId}; unmap that user first`,
      );
    const existing = await this.deps.users.get(userId);
    if (existing && existing.tenantId !== tenantId && !request.remap)
      throw new UserMappingConflictError(
        userId,
        `already mapped to tenant ${existing.tenantId}; ask for a remap to move the user`,
      );
    const now = (this.deps.now ?? (() => new Date()))().toISOString();
    const mapping: UserMapping = {
      userId,
      email: request.email.trim(),
      emailLower,
      tenantId,
      cloneId: clone.cloneId,
      appRole: request.appRole,
      permissions: ROLE_PERMISSIONS[request.appRole],
      createdAt: existing?.tenantId === tenantId ? existing.createdAt : now,
      updatedAt: now,
      ...(existing?.tenantId === tenantId && existing.lastAccessed
        ? { lastAccessed: existing.lastAccessed }
        : {}),
      rev: (existing?.rev ?? 0) + 1,
    };
    await this.deps.users.put(mapping, existing ? existing.rev : null);
    return { mapping, created: !existing };
  }

  /** Removes the mapping of a user id or an email. */
  async unmap(user: string): Promise<UserMapping> {
    const mapping = await this.find(user);
    if (!mapping) throw new UserNotFoundError(user);
    await this.deps.users.delete(mapping.userId, mapping.rev);
    return mapping;
  }

  async list(filter: { tenantId?: string } = {}): Promise<UserMapping[]> {
    if (filter.tenantId !== undefined) assertTenantId(filter.tenantId);
    const all = await this.deps.users.list(filter);
    return [...all].sort((a, b) => (a.emailLower < b.emailLower ? -1 : a.emailLower > b.emailLower ? 1 : 0));
  }

  /** A user by id, else by email (ignoring case). */
  async find(user: string): Promise<UserMapping | null> {
    if (typeof user !== 'string' || !USER_ID.test(user))
      throw new ValidationError('invalid user id or email', 'user');
    const byId = await this.deps.users.get(user);
    if (byId) return byId;
    const byEmail = await this.deps.users.findByEmail(normaliseEmail(user));
    return byEmail.length === 1 ? (byEmail[0] ?? null) : null;
  }
}
