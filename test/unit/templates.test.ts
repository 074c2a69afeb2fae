import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ChecksumMismatchError,
  ManifestError,
  TemplateFileMissingError,
  UnknownTemplateError,
} from '../../functions/core/errors.js';
import { rehashManifest, TemplateCatalog } from '../../functions/core/templates.js';
import { copyCatalog, readManifest, writeManifest } from '../support/catalog.js';

describe('TemplateCatalog', () => {
  it('lists every engine x version x industry', async () => {
    const catalog = await TemplateCatalog.load();
    expect(catalog.engines).toEqual(['postgresql', 'mysql', 'sqlite']);
    expect(catalog.versions).toEqual(['v1.0', 'v1.1']);
    expect(catalog.industries).toEqual(['finance', 'healthcare', 'technology']);
    expect(catalog.list()).toHaveLength(18);
    expect(catalog.list({ engine: 'sqlite', version: 'v1.1' }).map((t) => t.industry)).toEqual([
      'finance',
      'healthcare',
      'technology',
    ]);
  });

  it('resolves a template into its scripts in order, industry template last', async () => {
    const catalog = await TemplateCatalog.load();
    const t = await catalog.resolve('mysql', 'v1.1', 'healthcare');
    expect(t.scripts.map((s) => s.file)).toEqual([
      'mysql/v1.1/root_schema.sql',
      'mysql/v1.1/indexes.sql',
      'mysql/v1.1/constraints.sql',
      'mysql/v1.1/initial_data.sql',
      'mysql/industry_templates/healthcare_template.sql',
    ]);
    expect(t.tables).toEqual(['customers', 'medical_procedures', 'orders', 'products', 'users']);
    expect(t.scripts[0]?.sql).toContain('CREATE TABLE users');
    expect(t.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives every template its own checksum', async () => {
    const catalog = await TemplateCatalog.load();
    const sums = await Promise.all(
      catalog.list().map((t) => catalog.resolve(t.engine, t.version, t.industry)),
    );
    expect(new Set(sums.map((s) => s.checksum)).size).toBe(18);
  });

  it('resolves the migration path between versions', async () => {
    const catalog = await TemplateCatalog.load();
    const path = await catalog.migrationPath('postgresql', 'v1.0', 'v1.1');
    expect(path.map((s) => s.file)).toEqual(['postgresql/v1.1/migration_v1.0_to_v1.1.sql']);
    await expect(catalog.migrationPath('postgresql', 'v1.1', 'v1.0')).rejects.toThrow(/is not newer/);
  });

  it.each([
    ['engine', ['oracle', 'v1.0', 'finance'], /unknown engine "oracle"; known: postgresql, mysql, sqlite/],
    ['version', ['sqlite', 'v2.0', 'finance'], /unknown version "v2.0"; known: v1.0, v1.1/],
    [
      'industry',
      ['sqlite', 'v1.0', 'retail'],
      /unknown industry "retail"; known: finance, healthcare, technology/,
    ],
  ])('names an unknown %s', async (_kind, [e, v, i], message) => {
    const catalog = await TemplateCatalog.load();
    const attempt = catalog.resolve(e as string, v as string, i as string);
    await expect(attempt).rejects.toThrow(UnknownTemplateError);
    await expect(catalog.resolve(e as string, v as string, i as string)).rejects.toThrow(message);
  });
});

describe('TemplateCatalog bad input', () => {
  it('names the manifest file when it is not JSON', async () => {
    const dir = copyCatalog();
    writeFileSync(join(dir, 'manifest.json'), '{ "manifestVersion": 1,');
    const error = await TemplateCatalog.load(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ManifestError);
    expect((error as Error).message).toContain(join(dir, 'manifest.json'));
    expect((error as Error).message).toMatch(/not valid JSON/);
  });

  it('names each bad field of a malformed manifest', async () => {
    const dir = copyCatalog();
    // biome-ignore lint/suspicious/noExplicitAny: the test breaks the manifest into shapes its type forbids
    const m = readManifest(dir) as unknown as Record<string, any>;
    m.engines.postgresql.versions['v1.0'].scripts.indexes.sha256 = 'not-a-sha';
    delete m.engines.mysql.industries.finance;
    m.engines.sqlite.versions['v1.1'].scripts.root_schema.file = '../../etc/passwd.sql';
    m.unexpected = true;
    writeManifest(dir, m);
    const error = (await TemplateCatalog.load(dir).catch((e: unknown) => e)) as ManifestError;
    expect(error).toBeInstanceOf(ManifestError);
    expect(error.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^engines\.postgresql\.versions\.v1\.0\.scripts\.indexes\.sha256: must be a lowercase hex sha256/,
        ),
        expect.stringMatching(
          /^engines\.sqlite\.versions\.v1\.1\.scripts\.root_schema\.file: must be a path inside root_schemas/,
        ),
        expect.stringMatching(/unexpected/),
      ]),
    );
  });

  it('names an engine that lacks an industry or a version', async () => {
    const dir = copyCatalog();
    // biome-ignore lint/suspicious/noExplicitAny: the test breaks the manifest into shapes its type forbids
    const m = readManifest(dir) as unknown as Record<string, any>;
    delete m.engines.mysql.industries.finance;
    delete m.engines.sqlite.versions['v1.1'].migration;
    writeManifest(dir, m);
    const error = (await TemplateCatalog.load(dir).catch((e: unknown) => e)) as ManifestError;
    expect(error.problems).toEqual([
      'engines.mysql.industries: missing finance',
      'engines.sqlite.versions.v1.1.migration: missing',
    ]);
  });

  it('names the file whose checksum does not match', async () => {
    const dir = copyCatalog();
    appendFileSync(join(dir, 'sqlite/v1.0/indexes.sql'), '\nCREATE INDEX idx_extra ON users (full_name);\n');
    const catalog = await TemplateCatalog.load(dir);
    const error = await catalog.resolve('sqlite', 'v1.0', 'finance').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as ChecksumMismatchError).file).toBe('sqlite/v1.0/indexes.sql');
    expect(await catalog.verifyFiles()).toEqual([
      expect.stringMatching(/^checksum mismatch for sqlite\/v1\.0\/indexes\.sql/),
    ]);
  });

  it('names a file the manifest lists but the disk lacks', async () => {
    const dir = copyCatalog();
    rmSync(join(dir, 'postgresql/industry_templates/finance_template.sql'));
    const catalog = await TemplateCatalog.load(dir);
    await expect(catalog.resolve('postgresql', 'v1.0', 'finance')).rejects.toThrow(TemplateFileMissingError);
    await expect(catalog.resolve('postgresql', 'v1.0', 'finance')).rejects.toThrow(
      /postgresql\/industry_templates\/finance_template\.sql is listed in the manifest but does not exist/,
    );
  });

  it('rehash records the new checksum of an edited file and nothing else', async () => {
    const dir = copyCatalog();
    appendFileSync(join(dir, 'mysql/v1.0/indexes.sql'), '\n-- a comment\n');
    expect(await rehashManifest(dir)).toEqual(['mysql/v1.0/indexes.sql']);
    expect(await (await TemplateCatalog.load(dir)).verifyFiles()).toEqual([]);
    expect(await rehashManifest(dir)).toEqual([]);
  });

  it('the shipped manifest matches the shipped files', async () => {
    expect(await (await TemplateCatalog.load()).verifyFiles()).toEqual([]);
  });
});
