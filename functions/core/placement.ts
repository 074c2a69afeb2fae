import type { DatabaseEngine, EngineName, Marker } from './engine.js';
import type { Placement } from './tenants.js';

/** The clone a step works on: enough to find its server, never a password. */
export interface CloneTarget {
  readonly tenantId: string;
  readonly cloneId: string;
  readonly engine: EngineName;
  readonly placement: Placement;
}

/** Where a dedicated instance is in its life, as its provisioner reports it. */
export const INSTANCE_STATES = ['pending', 'available', 'failed'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export interface InstanceStatus {
  readonly state: InstanceState;
  /** host:port once known; never a password. */
  readonly endpoint?: string;
  /** Why it failed, or what it is waiting for. */
  readonly detail?: string;
}

/** A root image a provisioner prepared ahead of the instance (locally: inside a data directory). */
export interface PreparedImage {
  readonly name: string;
  readonly fingerprint: string;
}

/**
 * A database server of its own per tenant. One implementation per way of running one: a
 * PostgreSQL process on this machine (local), an RDS instance, an ECS Fargate service.
 * Every method is idempotent, and every instance carries its clone id: a provisioner adopts
 * an instance marked with the same clone id and refuses (ForeignArtefactError) one marked
 * with another.
 */
export interface DedicatedProvisioner {
  /** For messages: `local-postgres`, `rds`, `fargate`. */
  readonly kind: string;
  /** Why `engine` cannot be hosted here, or null when it can. Checked before anything is created. */
  unavailable(engine: EngineName): string | null;
  /**
   * Makes the root image of (version, industry) ready to go into new instances, when the
   * provisioner copies prepared images (local); null when images are built inside each
   * instance once it is up (AWS).
   */
  prepareImage(engine: EngineName, version: string, industry: string): Promise<PreparedImage | null>;
  /**
   * Where the provisioner's prepared image also holds a database already cloned from `image`
   * (locally, copied with the data directory), makes it the clone's `database`: marks it,
   * then renames it. False when there is none; `Create database` then clones the image.
   */
  claimPrepared?(target: CloneTarget, image: string, database: string, marker: Marker): Promise<boolean>;
  /** Starts creating the instance, or adopts this clone's. Returns at once with its status. */
  provision(target: CloneTarget): Promise<InstanceStatus>;
  /** The instance's status now; `failed` with a detail when it is gone or broken. */
  status(target: CloneTarget): Promise<InstanceStatus>;
  /** An admin engine on the instance (which must be available). */
  engine(target: CloneTarget): Promise<DatabaseEngine>;
  /**
   * The admin databases of the other dedicated instances this provisioner runs, each with
   * an engine that can attempt logins there: the isolation probe tries the new tenant's
   * credentials on every one of them.
   */
  others(
    target: CloneTarget,
  ): Promise<readonly { readonly engine: DatabaseEngine; readonly database: string }[]>;
  /** Removes the instance and everything it stored (data, volume, master secret). Idempotent. */
  deprovision(target: CloneTarget): Promise<void>;
  /**
   * Every tenant instance it runs, by the marker it carries (clone id, creation time): for the
   * reconciler.
   */
  listInstances(): Promise<
    readonly {
      readonly cloneId: string;
      readonly tenantId: string;
      readonly engine: EngineName;
      readonly createdAt: string;
    }[]
  >;
}
