import { existsSync } from 'node:fs';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CloneFactoryError, EngineUnavailableError } from '../functions/core/errors.js';
import type { UpgradeRun } from '../functions/core/fleet-upgrade.js';
import type { ReconcileReport } from '../functions/core/reconciler.js';
import type { MoveResult } from '../functions/core/tenant-move.js';
import type { TenantRequestResult } from '../functions/core/tenant-service.js';
import type { DriftEntry, UpgradeOutcome } from '../functions/core/tenant-upgrade.js';
import type { CloneRecord } from '../functions/core/tenants.js';
import type { UserMapping } from '../functions/core/users.js';
import { LocalControlPlane, type PlaneStatus } from './control-plane.js';
import { DevIssuer } from './dev-issuer.js';
import { LocalEnvironment } from './environment.js';
import type { ExecutionRecord } from './workflow-runner.js';

/** What the CLI asks of the control plane, whether it runs in this process or behind `npm start`. */
export interface ControlPlaneClient {
  readonly mode: 'in-process' | 'server';
  createTenant(request: unknown): Promise<TenantRequestResult>;
  listTenants(): Promise<CloneRecord[]>;
  getTenant(tenantId: string): Promise<CloneRecord>;
  deleteTenant(tenantId: string): Promise<TenantRequestResult>;
  moveTenant(tenantId: string, placement: string): Promise<MoveResult>;
  branchTenant(sourceId: string, tenantId: string): Promise<TenantRequestResult>;
  upgradeTenant(tenantId: string, to: string): Promise<UpgradeOutcome>;
  drift(): Promise<DriftEntry[]>;
  reconcile(options: { apply?: boolean; graceMs?: number }): Promise<ReconcileReport>;
  status(): Promise<PlaneStatus>;
  startUpgrade(request: unknown): Promise<UpgradeRun>;
  upgradeRun(runId: string): Promise<UpgradeRun>;
  upgradeRuns(): Promise<UpgradeRun[]>;
  stopUpgrade(runId: string): Promise<UpgradeRun>;
  resumeUpgrade(runId: string): Promise<UpgradeRun>;
  execution(name: string): Promise<ExecutionRecord | null>;
  /** Resolves when the execution has stopped. */
  waitForExecution(name: string): Promise<ExecutionRecord>;
  mapUser(request: Record<string, unknown>): Promise<{ mapping: UserMapping; created: boolean }>;
  unmapUser(user: string): Promise<UserMapping>;
  listUsers(tenantId?: string): Promise<UserMapping[]>;
  close(): Promise<void>;
}

/** Written by `clonectl serve` while it owns the state directory. */
export interface OwnerFile {
  readonly pid: number;
  readonly url: string;
  readonly startedAt: string;
}

export const ownerFilePath = (home: string) => join(home, 'control-plane.json');

/** Written whole or not at all (a temporary file renamed): a CLI reading it never sees half of it. */
export async function writeOwnerFile(home: string, owner: OwnerFile): Promise<void> {
  const tmp = `${ownerFilePath(home)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(owner), { mode: 0o600 });
  await rename(tmp, ownerFilePath(home));
}

export async function removeOwnerFile(home: string): Promise<void> {
  await rm(ownerFilePath(home), { force: true });
}

/**
 * Connects the CLI to the control plane of the state directory: over HTTP when `clonectl serve`
 * owns it (its owner file names a live process), else by starting one in this process. The
 * registry's LevelDB lock makes sure the two never share the files.
 */
export async function connectControlPlane(
  env: LocalEnvironment = new LocalEnvironment(),
): Promise<ControlPlaneClient> {
  const owner = await readOwner(env.home);
  if (owner) return new HttpControlPlaneClient(owner.url, env);
  return InProcessControlPlaneClient.start(env);
}

export async function readOwner(home: string): Promise<OwnerFile | null> {
  const file = ownerFilePath(home);
  if (!existsSync(file)) return null;
  try {
    const owner = JSON.parse(await readFile(file, 'utf8')) as OwnerFile;
    process.kill(owner.pid, 0);
    return owner;
  } catch {
    return null;
  }
}

class InProcessControlPlaneClient implements ControlPlaneClient {
  readonly mode = 'in-process' as const;
  private constructor(
    private readonly plane: LocalControlPlane,
    private readonly env: LocalEnvironment,
  ) {}

  static async start(env: LocalEnvironment): Promise<InProcessControlPlaneClient> {
    return new InProcessControlPlaneClient(await LocalControlPlane.start({ env }), env);
  }

  createTenant(request: unknown) {
    return this.plane.tenants.create(request);
  }
  listTenants() {
    return this.plane.tenants.list();
  }
  getTenant(tenantId: string) {
    return this.plane.tenants.get(tenantId);
  }
  async deleteTenant(tenantId: string) {
    // As the API does: the tenant's users lose their mappings with it.
    const result = await this.plane.tenants.delete(tenantId);
    for (const m of await this.plane.users.list({ tenantId }))
      await this.plane.users.unmap(m.userId).catch(() => {});
    return result;
  }
  moveTenant(tenantId: string, placement: string) {
    return this.plane.move(tenantId, placement);
  }
  branchTenant(sourceId: string, tenantId: string) {
    return this.plane.branch(sourceId, tenantId);
  }
  upgradeTenant(tenantId: string, to: string) {
    return this.plane.upgradeTenant(tenantId, to);
  }
  drift() {
    return this.plane.drift();
  }
  reconcile(options: { apply?: boolean; graceMs?: number }) {
    return this.plane.reconcile(options);
  }
  status() {
    return this.plane.status();
  }
  startUpgrade(request: unknown) {
    return this.plane.upgrades.start(request);
  }
  upgradeRun(runId: string) {
    return this.plane.upgrades.get(runId);
  }
  upgradeRuns() {
    return this.plane.upgrades.list();
  }
  stopUpgrade(runId: string) {
    return this.plane.upgrades.stop(runId);
  }
  resumeUpgrade(runId: string) {
    return this.plane.upgrades.resume(runId);
  }
  execution(name: string) {
    return this.plane.runner.describe(name);
  }
  waitForExecution(name: string) {
    return this.plane.runner.wait(name);
  }
  mapUser(request: Record<string, unknown>) {
    return this.plane.users.map(request);
  }
  unmapUser(user: string) {
    return this.plane.users.unmap(user);
  }
  listUsers(tenantId?: string) {
    return this.plane.users.list(tenantId ? { tenantId } : {});
  }
  async close() {
    await this.plane.close();
    await this.env.close();
  }
}

/** An error answered by the control plane server: its name, message and HTTP status. */
export class ControlPlaneError extends CloneFactoryError {
  constructor(
    readonly status: number,
    name: string,
    message: string,
  ) {
    super(message);
    this.name = name;
  }
}

class HttpControlPlaneClient implements ControlPlaneClient {
  readonly mode = 'server' as const;
  constructor(
    private readonly url: string,
    private readonly env: LocalEnvironment,
  ) {}

  createTenant(request: unknown) {
    return this.call<TenantRequestResult>('POST', '/tenants', request);
  }
  async listTenants() {
    return (await this.call<{ tenants: CloneRecord[] }>('GET', '/tenants')).tenants;
  }
  getTenant(tenantId: string) {
    return this.call<CloneRecord>('GET', `/tenants/${encodeURIComponent(tenantId)}`);
  }
  deleteTenant(tenantId: string) {
    return this.call<TenantRequestResult>('DELETE', `/tenants/${encodeURIComponent(tenantId)}`);
  }
  moveTenant(tenantId: string, placement: string) {
    return this.call<MoveResult>('POST', `/tenants/${encodeURIComponent(tenantId)}/move`, { placement });
  }
  branchTenant(sourceId: string, tenantId: string) {
    return this.call<TenantRequestResult>('POST', `/tenants/${encodeURIComponent(sourceId)}/branch`, {
      tenantId,
    });
  }
  upgradeTenant(tenantId: string, to: string) {
    return this.call<UpgradeOutcome>('POST', `/tenants/${encodeURIComponent(tenantId)}/upgrade`, { to });
  }
  async drift() {
    return (await this.call<{ tenants: DriftEntry[] }>('GET', '/drift')).tenants;
  }
  reconcile(options: { apply?: boolean; graceMs?: number }) {
    return this.call<ReconcileReport>('POST', '/reconcile', options);
  }
  status() {
    return this.call<PlaneStatus>('GET', '/status');
  }
  startUpgrade(request: unknown) {
    return this.call<UpgradeRun>('POST', '/upgrades', request);
  }
  upgradeRun(runId: string) {
    return this.call<UpgradeRun>('GET', `/upgrades/${encodeURIComponent(runId)}`);
  }
  async upgradeRuns() {
    return (await this.call<{ runs: UpgradeRun[] }>('GET', '/upgrades')).runs;
  }
  stopUpgrade(runId: string) {
    return this.call<UpgradeRun>('POST', `/upgrades/${encodeURIComponent(runId)}/stop`);
  }
  resumeUpgrade(runId: string) {
    return this.call<UpgradeRun>('POST', `/upgrades/${encodeURIComponent(runId)}/resume`);
  }
  async execution(name: string) {
    try {
      return await this.call<ExecutionRecord>('GET', `/executions/${encodeURIComponent(name)}`);
    } catch (error) {
      if (error instanceof ControlPlaneError && error.status === 404) return null;
      throw error;
    }
  }
  async waitForExecution(name: string) {
    for (;;) {
      const e = await this.execution(name);
      if (e && e.status !== 'RUNNING') return e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  async mapUser(request: Record<string, unknown>) {
    const { tenantId, ...body } = request;
    return this.call<{ mapping: UserMapping; created: boolean }>(
      'POST',
      `/tenants/${encodeURIComponent(String(tenantId))}/users`,
      body,
    );
  }
  async unmapUser(user: string) {
    return (await this.call<{ unmapped: UserMapping }>('DELETE', `/users/${encodeURIComponent(user)}`))
      .unmapped;
  }
  async listUsers(tenantId?: string) {
    const path = tenantId ? `/tenants/${encodeURIComponent(tenantId)}/users` : '/users';
    return (await this.call<{ users: UserMapping[] }>('GET', path)).users;
  }
  async close() {
    await this.env.close();
  }

  /** An operator token from the dev issuer of this state directory: the server verifies it like any other. */
  private token?: Promise<string>;
  private operatorToken(): Promise<string> {
    this.token ??= DevIssuer.load(this.env.home).then((issuer) =>
      issuer.mint({ email: 'clonectl@clonefactory.local', operator: true, ttlSeconds: 3600 }),
    );
    return this.token;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    const authorization = `Bearer ${await this.operatorToken()}`;
    try {
      res = await fetch(new URL(path, this.url), {
        method,
        headers:
          body === undefined ? { authorization } : { authorization, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (cause) {
      throw new EngineUnavailableError('control plane', `${this.url} does not answer`, { cause });
    }
    const json = (await res.json()) as { error?: string; message?: string };
    if (res.ok) return json as T;
    throw new ControlPlaneError(res.status, json.error ?? 'Error', json.message ?? `HTTP ${res.status}`);
  }
}
