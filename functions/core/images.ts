import { randomBytes } from 'node:crypto';
import { ensureControlTables } from './control-tables.js';
import type { DatabaseEngine, EngineName, Marker } from './engine.js';
import { DatabaseExistsError, ImageVerificationError } from './errors.js';
import { type Fingerprint, fingerprint } from './fingerprint.js';
import { assertDatabaseName, assertNamespace } from './identifiers.js';
import type { LoadedScript, ResolvedTemplate, TemplateCatalog } from './templates.js';

/** A root image as its marker describes it. */
export interface ImageInfo {
  readonly name: string;
  readonly engine: EngineName;
  readonly version: string;
  readonly industry: string;
  /** The template checksum the image was built from; a different one means rebuild. */
  readonly checksum: string;
  /** The image's schema fingerprint hash; every clone must have the same. */
  readonly fingerprint: string;
  readonly builtAt: string;
}

export interface EnsureResult extends ImageInfo {
  /** `built` when this call built it, `reused` when an image with the same checksum was there. */
  readonly action: 'built' | 'reused';
  readonly durationMs: number;
}

export interface RootImageOptions {
  /** Prefix of every physical name (default `cf`), so that deployments and test runs never collide. */
  readonly namespace?: string;
  /** A build database older than this is a leftover of a crashed build and is dropped. */
  readonly staleBuildMs?: number;
  readonly now?: () => Date;
}

const IMAGE_KIND = 'image';

/**
 * Builds, reuses and clones root images: one per (engine, version, industry).
 * A build runs under a temporary name, is verified, sealed and only then renamed into place,
 * so a reader finds a complete image or none. A failed build leaves nothing behind.
 */
export class RootImageManager {
  readonly namespace: string;
  private readonly staleBuildMs: number;
  private readonly now: () => Date;

  constructor(
    readonly engine: DatabaseEngine,
    readonly catalog: TemplateCatalog,
    options: RootImageOptions = {},
  ) {
    this.namespace = assertNamespace(options.namespace ?? 'cf');
    this.staleBuildMs = options.staleBuildMs ?? 10 * 60_000;
    this.now = options.now ?? (() => new Date());
  }

  /** The physical name of an image, e.g. `cf_img_v1_1_healthcare`. */
  imageName(version: string, industry: string): string {
    return assertDatabaseName(
      `${this.namespace}_img_${this.catalog.checkVersion(version).replace('.', '_')}_${this.catalog.checkIndustry(industry)}`,
    );
  }

  /** Reads an image's marker; null when there is no complete image of that name. */
  async describe(version: string, industry: string): Promise<ImageInfo | null> {
    const name = this.imageName(version, industry);
    if (!(await this.engine.databaseExists(name))) return null;
    return toImageInfo(name, await this.engine.readMarker(name));
  }

  /** Every complete image of this namespace on this engine. */
  async list(): Promise<ImageInfo[]> {
    const names = await this.engine.listDatabases(`${this.namespace}_img_`);
    const infos = await Promise.all(names.map(async (n) => toImageInfo(n, await this.engine.readMarker(n))));
    return infos.filter((i): i is ImageInfo => i !== null);
  }

  /**
   * Returns the image for (version, industry), building it when it is missing or was built
   * from other scripts (checksum changed), or when `force` is set.
   */
  async ensure(version: string, industry: string, options: { force?: boolean } = {}): Promise<EnsureResult> {
    const started = performance.now();
    const template = await this.catalog.resolve(this.engine.engine, version, industry);
    const name = this.imageName(version, industry);
    const reuse = async () => {
      const current = await this.describe(version, industry);
      return current && current.checksum === template.checksum ? current : null;
    };
    // The common case needs no lock: the image is there and current.
    const current = options.force ? null : await reuse();
    if (current) return { ...current, action: 'reused', durationMs: performance.now() - started };
    // Builders of one image take turns; whoever comes second finds it built.
    return this.engine.withLock(name, async () => {
      const built = options.force ? null : await reuse();
      if (built) return { ...built, action: 'reused' as const, durationMs: performance.now() - started };
      await this.dropStaleBuilds();
      const info = await this.build(template, name);
      return { ...info, action: 'built' as const, durationMs: performance.now() - started };
    });
  }

  /** Clones the image (building it first when needed) into `target`, with the target's marker. */
  async clone(version: string, industry: string, target: string, marker?: Marker): Promise<ImageInfo> {
    const image = await this.ensure(version, industry);
    await this.engine.cloneDatabase(image.name, target, marker);
    return image;
  }

  /**
   * Creates `target` by running the template's scripts one by one (and then `migrations`).
   * This is the path images replace; validation and benchmarks use it as the baseline.
   * On failure the target is dropped.
   */
  async replay(
    version: string,
    industry: string,
    target: string,
    migrations: readonly LoadedScript[] = [],
  ): Promise<ResolvedTemplate> {
    const template = await this.catalog.resolve(this.engine.engine, version, industry);
    await this.engine.createDatabase(target);
    try {
      for (const script of [...template.scripts, ...migrations])
        await this.engine.applyScript(target, script);
    } catch (error) {
      await this.engine.dropDatabase(target);
      throw error;
    }
    return template;
  }

  /** Introspects and fingerprints a database. */
  async fingerprintOf(database: string): Promise<Fingerprint> {
    return fingerprint(await this.engine.introspect(database));
  }

  /** A fresh name for a scratch database that {@link dropStaleBuilds} can recognise by its age. */
  scratchName(purpose: 'bld' | 'val' | 'old', label: string): string {
    const stamp = Math.floor(this.now().getTime() / 1000).toString(36);
    return assertDatabaseName(
      `${this.namespace}_${purpose}_${label}_${stamp}${randomBytes(3).toString('hex')}`,
    );
  }

  private async build(template: ResolvedTemplate, name: string): Promise<ImageInfo> {
    const label = `${template.version.replace('.', '_')}_${template.industry}`;
    const tmp = this.scratchName('bld', label);
    try {
      await this.replay(template.version, template.industry, tmp);
      // Clones inherit the control plane's own (empty) tables: no DDL per clone for them.
      await this.engine.transaction(tmp, ensureControlTables);
      const fp = await this.fingerprintOf(tmp);
      const problems = verify(template, fp);
      if (problems.length) throw new ImageVerificationError(name, problems);
      const info: ImageInfo = {
        name,
        engine: template.engine,
        version: template.version,
        industry: template.industry,
        checksum: template.checksum,
        fingerprint: fp.hash,
        builtAt: this.now().toISOString(),
      };
      const { name: _name, ...facts } = info;
      await this.engine.writeMarker(tmp, { kind: IMAGE_KIND, ...facts });
      await this.engine.sealImage(tmp);
      await this.publish(tmp, name, template.checksum, label);
      return info;
    } finally {
      await this.engine.dropDatabase(tmp);
    }
  }

  /**
   * Moves a verified build into place. If another builder got there first with the same
   * checksum, its image is kept; an image from other scripts is retired first.
   */
  private async publish(tmp: string, name: string, checksum: string, label: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = (await this.engine.databaseExists(name)) ? await this.engine.readMarker(name) : null;
      if (existing?.checksum === checksum && existing.kind === IMAGE_KIND) return;
      if (await this.engine.databaseExists(name)) {
        const retired = this.scratchName('old', label);
        await this.engine.renameDatabase(name, retired);
        await this.engine.dropDatabase(retired);
      }
      try {
        await this.engine.renameDatabase(tmp, name);
        return;
      } catch (error) {
        if (!(error instanceof DatabaseExistsError)) throw error;
      }
    }
    throw new DatabaseExistsError(name);
  }

  /** Drops build, validation and retired databases of this namespace older than `staleBuildMs`. */
  async dropStaleBuilds(): Promise<string[]> {
    const dropped: string[] = [];
    const cutoff = this.now().getTime() - this.staleBuildMs;
    for (const purpose of ['bld', 'val', 'old'] as const) {
      for (const db of await this.engine.listDatabases(`${this.namespace}_${purpose}_`)) {
        const stamp = /_([0-9a-z]+)[0-9a-f]{6}$/.exec(db)?.[1];
        const created = stamp ? Number.parseInt(stamp, 36) * 1000 : 0;
        if (created < cutoff) {
          await this.engine.dropDatabase(db);
          dropped.push(db);
        }
      }
    }
    return dropped;
  }
}

function verify(template: ResolvedTemplate, fp: Fingerprint): string[] {
  const problems: string[] = [];
  const actual = fp.schema.tables.map((t) => t.name);
  for (const t of template.tables) if (!actual.includes(t)) problems.push(`table ${t} is missing`);
  for (const t of actual)
    if (!template.tables.includes(t)) problems.push(`table ${t} is not in the manifest`);
  for (const t of fp.schema.tables)
    if (t.primaryKey.length === 0) problems.push(`table ${t.name} has no primary key`);
  return problems;
}

function toImageInfo(name: string, marker: Marker | null): ImageInfo | null {
  if (!marker || marker.kind !== IMAGE_KIND) return null;
  const { engine, version, industry, checksum, fingerprint: fp, builtAt } = marker;
  if (!engine || !version || !industry || !checksum || !fp || !builtAt) return null;
  return { name, engine: engine as EngineName, version, industry, checksum, fingerprint: fp, builtAt };
}

/** Where a template's root image stands. */
export type ImageStatus =
  | ({ readonly status: 'current' | 'stale' } & ImageInfo)
  | { readonly status: 'not built' }
  | { readonly status: 'unknown'; readonly reason: string };

/** A template with its scripts and the state of its root image, for `templates show` and the API. */
export interface TemplateDetail {
  readonly engine: EngineName;
  readonly version: string;
  readonly industry: string;
  readonly checksum: string;
  readonly tables: readonly string[];
  readonly scripts: readonly { readonly kind: string; readonly file: string; readonly sha256: string }[];
  readonly image: ImageStatus;
}

/**
 * A resolved template with the state of its image: `current` when built from these very
 * scripts, `stale` when built from others, `unknown` when the engine is unavailable (`{ reason }`).
 */
export async function templateDetail(
  template: ResolvedTemplate,
  catalog: TemplateCatalog,
  engine: DatabaseEngine | { readonly reason: string },
): Promise<TemplateDetail> {
  let image: ImageStatus;
  if ('reason' in engine) image = { status: 'unknown', reason: engine.reason };
  else {
    const info = await new RootImageManager(engine, catalog).describe(template.version, template.industry);
    image = info
      ? { status: info.checksum === template.checksum ? 'current' : 'stale', ...info }
      : { status: 'not built' };
  }
  return {
    engine: template.engine,
    version: template.version,
    industry: template.industry,
    checksum: template.checksum,
    tables: template.tables,
    scripts: template.scripts.map((s) => ({ kind: s.kind, file: s.file, sha256: s.sha256 })),
    image,
  };
}
