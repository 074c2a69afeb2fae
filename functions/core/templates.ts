import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ENGINE_NAMES, type EngineName, type SqlScript } from './engine.js';
import {
  ChecksumMismatchError,
  ManifestError,
  TemplateFileMissingError,
  UnknownTemplateError,
  ValidationError,
} from './errors.js';

/** The scripts of a version, in the order they run. */
export const SCRIPT_KINDS = ['root_schema', 'indexes', 'constraints', 'initial_data'] as const;
export type ScriptKind = (typeof SCRIPT_KINDS)[number] | 'industry_template' | 'migration';

/** Bump when the way images are built changes, so every image is rebuilt once. */
export const IMAGE_FORMAT = 2;

/** The catalogue that ships with the code: `root_schemas/` at the repository root. */
export const DEFAULT_TEMPLATES_DIR = fileURLToPath(new URL('../../root_schemas/', import.meta.url));

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex sha256');
const relativeFile = z
  .string()
  .min(1)
  .refine((p) => !isAbsolute(p) && !normalize(p).startsWith('..'), 'must be a path inside root_schemas/')
  .refine((p) => p.endsWith('.sql'), 'must name a .sql file');
const fileEntry = z.strictObject({ file: relativeFile, sha256 });
const identifier = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier');
const versionId = z.string().regex(/^v\d+\.\d+$/, 'must look like v1.0');
const industryId = z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, 'must be a lowercase word');

const engineVersion = z.strictObject({
  scripts: z.strictObject({
    root_schema: fileEntry,
    indexes: fileEntry,
    constraints: fileEntry,
    initial_data: fileEntry,
  }),
  migration: z.strictObject({ from: versionId, file: relativeFile, sha256 }).optional(),
});

/** The manifest's schema. It is the single list of what the catalogue holds. */
export const manifestSchema = z.strictObject({
  manifestVersion: z.literal(1),
  versions: z
    .array(
      z.strictObject({
        id: versionId,
        description: z.string(),
        tables: z.array(identifier).min(1),
      }),
    )
    .min(1),
  industries: z.record(
    industryId,
    z.strictObject({ description: z.string(), tables: z.array(identifier).min(1) }),
  ),
  engines: z.record(
    z.enum(ENGINE_NAMES),
    z.strictObject({
      versions: z.record(versionId, engineVersion),
      industries: z.record(industryId, fileEntry),
    }),
  ),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** A script read from disk whose checksum matched the manifest. */
export interface LoadedScript extends SqlScript {
  readonly kind: ScriptKind;
  readonly sha256: string;
}

/** Everything needed to build one root image. */
export interface ResolvedTemplate {
  readonly engine: EngineName;
  readonly version: string;
  readonly industry: string;
  /** Root schema, indexes, constraints, initial data, then the industry template. */
  readonly scripts: readonly LoadedScript[];
  /** Tables the built database must have, exactly. */
  readonly tables: readonly string[];
  /** Changes whenever a script, the order or the image format changes. */
  readonly checksum: string;
}

export interface TemplateSummary {
  readonly engine: EngineName;
  readonly version: string;
  readonly industry: string;
  readonly files: readonly string[];
  readonly tables: readonly string[];
}

/**
 * The root template catalogue (the seed's Root Image Manager): reads and validates the
 * manifest, lists templates, and resolves engine + version + industry into an ordered,
 * checksum-verified list of scripts.
 */
export class TemplateCatalog {
  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
  ) {}

  /** Loads `manifest.json` from `dir`; throws ManifestError naming the file and every bad field. */
  static async load(dir: string = DEFAULT_TEMPLATES_DIR): Promise<TemplateCatalog> {
    const file = join(dir, 'manifest.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (cause) {
      throw new ManifestError(file, [`cannot read: ${(cause as NodeJS.ErrnoException).code ?? cause}`]);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new ManifestError(file, [`not valid JSON: ${(cause as Error).message}`]);
    }
    const parsed = manifestSchema.safeParse(json);
    if (!parsed.success) {
      throw new ManifestError(
        file,
        parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
      );
    }
    const problems = crossCheck(parsed.data);
    if (problems.length) throw new ManifestError(file, problems);
    return new TemplateCatalog(resolve(dir), parsed.data);
  }

  get engines(): EngineName[] {
    return ENGINE_NAMES.filter((e) => this.manifest.engines[e]);
  }

  /** Versions, oldest first. */
  get versions(): string[] {
    return this.manifest.versions.map((v) => v.id);
  }

  get industries(): string[] {
    return Object.keys(this.manifest.industries).sort();
  }

  get latestVersion(): string {
    return this.versions.at(-1) as string;
  }

  /** Every (engine, version, industry) the catalogue can build, with its files. */
  list(filter: { engine?: string; version?: string; industry?: string } = {}): TemplateSummary[] {
    const engines = filter.engine ? [this.checkEngine(filter.engine)] : this.engines;
    const versions = filter.version ? [this.checkVersion(filter.version)] : this.versions;
    const industries = filter.industry ? [this.checkIndustry(filter.industry)] : this.industries;
    const out: TemplateSummary[] = [];
    for (const engine of engines)
      for (const version of versions)
        for (const industry of industries) {
          const entries = this.entries(engine, version, industry);
          out.push({
            engine,
            version,
            industry,
            files: entries.map((e) => e.file),
            tables: this.tables(version, industry),
          });
        }
    return out;
  }

  private readonly resolved = new Map<string, Promise<ResolvedTemplate>>();

  /**
   * Resolves a template into its ordered, checksum-verified scripts. Files are read and
   * checked once per catalog instance: a process loads the catalogue at start, and an edit
   * on disk takes effect (and is verified) at the next start.
   */
  resolve(engine: string, version: string, industry: string): Promise<ResolvedTemplate> {
    const key = `${engine}/${version}/${industry}`;
    let result = this.resolved.get(key);
    if (!result) {
      result = this.resolveFromDisk(engine, version, industry);
      this.resolved.set(key, result);
      result.catch(() => this.resolved.delete(key));
    }
    return result;
  }

  private async resolveFromDisk(
    engine: string,
    version: string,
    industry: string,
  ): Promise<ResolvedTemplate> {
    const e = this.checkEngine(engine);
    const v = this.checkVersion(version);
    const i = this.checkIndustry(industry);
    const scripts = await Promise.all(this.entries(e, v, i).map((entry) => this.read(entry)));
    const checksum = createHash('sha256')
      .update(
        JSON.stringify({
          format: IMAGE_FORMAT,
          engine: e,
          version: v,
          industry: i,
          scripts: scripts.map((s) => s.sha256),
        }),
      )
      .digest('hex');
    return { engine: e, version: v, industry: i, scripts, tables: this.tables(v, i), checksum };
  }

  /** The migration scripts that take a database from `from` to `to`, in order (one per step). */
  async migrationPath(engine: string, from: string, to: string): Promise<LoadedScript[]> {
    const e = this.checkEngine(engine);
    const versions = this.versions;
    const start = versions.indexOf(this.checkVersion(from));
    const end = versions.indexOf(this.checkVersion(to));
    if (end <= start)
      throw new ValidationError(`cannot migrate from ${from} to ${to}: ${to} is not newer`, 'to');
    const out: LoadedScript[] = [];
    for (const step of versions.slice(start + 1, end + 1)) {
      const migration = this.manifest.engines[e]?.versions[step]?.migration;
      if (!migration) throw new ValidationError(`${e} has no migration into ${step}`, 'to');
      out.push(await this.read({ kind: 'migration', file: migration.file, sha256: migration.sha256 }));
    }
    return out;
  }

  /** Reads and checksums every file the manifest names; returns one problem per bad file. */
  async verifyFiles(): Promise<string[]> {
    const problems: string[] = [];
    for (const { kind, entry } of manifestEntries(this.manifest)) {
      try {
        await this.read({ kind, ...entry });
      } catch (error) {
        problems.push((error as Error).message);
      }
    }
    return problems;
  }

  checkEngine(engine: string): EngineName {
    if (!(this.engines as string[]).includes(engine))
      throw new UnknownTemplateError('engine', engine, this.engines);
    return engine as EngineName;
  }

  checkVersion(version: string): string {
    if (!this.versions.includes(version)) throw new UnknownTemplateError('version', version, this.versions);
    return version;
  }

  checkIndustry(industry: string): string {
    if (!this.industries.includes(industry))
      throw new UnknownTemplateError('industry', industry, this.industries);
    return industry;
  }

  private tables(version: string, industry: string): string[] {
    const v = this.manifest.versions.find((x) => x.id === version);
    return [...(v?.tables ?? []), ...(this.manifest.industries[industry]?.tables ?? [])].sort();
  }

  private entries(engine: EngineName, version: string, industry: string) {
    const ev = this.manifest.engines[engine]?.versions[version];
    const ind = this.manifest.engines[engine]?.industries[industry];
    // crossCheck guarantees both exist; this guards against a manifest mutated after load.
    if (!ev || !ind) throw new UnknownTemplateError('version', version, this.versions);
    return [
      ...SCRIPT_KINDS.map((kind) => ({ kind: kind as ScriptKind, ...ev.scripts[kind] })),
      { kind: 'industry_template' as ScriptKind, ...ind },
    ];
  }

  private async read(entry: { kind: ScriptKind; file: string; sha256: string }): Promise<LoadedScript> {
    const { bytes, sha256: actual } = await readTemplateFile(this.dir, entry.file);
    if (actual !== entry.sha256) throw new ChecksumMismatchError(entry.file, entry.sha256, actual);
    return { kind: entry.kind, file: entry.file, sha256: actual, sql: bytes.toString('utf8') };
  }
}

/** Reads a file of the catalogue and its sha256; a missing file or one outside `dir` is named. */
async function readTemplateFile(dir: string, file: string): Promise<{ bytes: Buffer; sha256: string }> {
  const path = join(dir, file);
  if (relative(dir, path).startsWith('..')) throw new TemplateFileMissingError(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw new TemplateFileMissingError(file);
  }
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

type FileEntry = { file: string; sha256: string };

/** Every file entry of a manifest, by reference (rehash updates them in place), with its kind. */
function manifestEntries(manifest: Manifest): { kind: ScriptKind; entry: FileEntry }[] {
  const out: { kind: ScriptKind; entry: FileEntry }[] = [];
  for (const engine of Object.values(manifest.engines)) {
    for (const version of Object.values(engine.versions)) {
      for (const kind of SCRIPT_KINDS) out.push({ kind, entry: version.scripts[kind] });
      if (version.migration) out.push({ kind: 'migration', entry: version.migration });
    }
    for (const industry of Object.values(engine.industries))
      out.push({ kind: 'industry_template', entry: industry });
  }
  return out;
}

/** Rules a JSON schema cannot say: completeness of the matrix and the migration chain. */
function crossCheck(m: Manifest): string[] {
  const problems: string[] = [];
  const versions = m.versions.map((v) => v.id);
  const industries = Object.keys(m.industries);
  if (new Set(versions).size !== versions.length) problems.push('versions: duplicate version id');
  if (industries.length === 0) problems.push('industries: at least one industry is required');
  if (Object.keys(m.engines).length === 0) problems.push('engines: at least one engine is required');
  for (const [engine, e] of Object.entries(m.engines)) {
    for (const v of versions) if (!e.versions[v]) problems.push(`engines.${engine}.versions: missing ${v}`);
    for (const v of Object.keys(e.versions))
      if (!versions.includes(v)) problems.push(`engines.${engine}.versions.${v}: not a declared version`);
    for (const i of industries)
      if (!e.industries[i]) problems.push(`engines.${engine}.industries: missing ${i}`);
    for (const i of Object.keys(e.industries))
      if (!industries.includes(i))
        problems.push(`engines.${engine}.industries.${i}: not a declared industry`);
    versions.forEach((v, idx) => {
      const migration = e.versions[v]?.migration;
      if (idx === 0 && migration)
        problems.push(`engines.${engine}.versions.${v}.migration: the first version has none`);
      if (idx > 0 && !migration) problems.push(`engines.${engine}.versions.${v}.migration: missing`);
      if (idx > 0 && migration && migration.from !== versions[idx - 1])
        problems.push(`engines.${engine}.versions.${v}.migration.from: must be ${versions[idx - 1]}`);
    });
  }
  return problems;
}

/**
 * Recomputes every checksum in `dir/manifest.json` from the files on disk and writes the
 * manifest back. For maintainers after an intended edit of a script; returns the files
 * whose checksum changed. A missing file is an error: nothing is written.
 */
export async function rehashManifest(dir: string = DEFAULT_TEMPLATES_DIR): Promise<string[]> {
  const { writeFile } = await import('node:fs/promises');
  const catalog = await TemplateCatalog.load(dir);
  const manifest = structuredClone(catalog.manifest);
  const changed: string[] = [];
  for (const { entry } of manifestEntries(manifest)) {
    const { sha256 } = await readTemplateFile(catalog.dir, entry.file);
    if (sha256 !== entry.sha256) {
      entry.sha256 = sha256;
      changed.push(entry.file);
    }
  }
  if (changed.length)
    await writeFile(join(catalog.dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return changed;
}
