import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine } from '../../functions/core/engine.js';
import { ImageVerificationError, ScriptExecutionError } from '../../functions/core/errors.js';
import { RootImageManager } from '../../functions/core/images.js';
import { rehashManifest, TemplateCatalog } from '../../functions/core/templates.js';
import { copyCatalog, readManifest, writeManifest } from '../support/catalog.js';
import { dropNamespace, engineTitle, probeEngines, testNamespace } from '../support/engines.js';

const { env, probes } = await probeEngines();
const catalog = await TemplateCatalog.load();
const namespaces: string[] = [];
afterAll(async () => {
  for (const p of Object.values(probes))
    if (p.engine) for (const ns of namespaces) await dropNamespace(p.engine, ns);
  await env.close();
});

function freshNamespace(): string {
  const ns = testNamespace();
  namespaces.push(ns);
  return ns;
}

/** What a namespace holds besides its finished images: must be nothing after any build. */
async function leftovers(engine: DatabaseEngine, ns: string): Promise<string[]> {
  return (await engine.listDatabases(`${ns}_`)).filter((d) => !d.startsWith(`${ns}_img_`));
}

/** A copy of the catalogue with one file changed and the manifest rehashed. */
async function editedCatalog(file: string, edit: (sql: string) => string): Promise<TemplateCatalog> {
  const dir = copyCatalog();
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  await rehashManifest(dir);
  return TemplateCatalog.load(dir);
}

describe.each(Object.values(probes))('RootImageManager', (probe) => {
  describe.skipIf(!probe.engine)(engineTitle(probe), () => {
    const engine = probe.engine as DatabaseEngine;
    const e = probe.name;

    it('builds an image once and reuses it while the checksum is unchanged', async () => {
      const images = new RootImageManager(engine, catalog, { namespace: freshNamespace() });
      const first = await images.ensure('v1.0', 'technology');
      const second = await images.ensure('v1.0', 'technology');
      expect(first.action).toBe('built');
      expect(second.action).toBe('reused');
      expect(second.builtAt).toBe(first.builtAt);
      expect(second.fingerprint).toBe(first.fingerprint);
      expect((await images.list()).map((i) => i.name)).toEqual([images.imageName('v1.0', 'technology')]);
      expect(await leftovers(engine, images.namespace)).toEqual([]);
    });

    it('rebuilds the image when a script changes, replacing the old one', async () => {
      const ns = freshNamespace();
      const before = await new RootImageManager(engine, catalog, { namespace: ns }).ensure('v1.1', 'finance');
      const edited = await editedCatalog(
        `${e}/v1.1/indexes.sql`,
        (sql) => `${sql}\nCREATE INDEX idx_users_full_name ON users (full_name);\n`,
      );
      const images = new RootImageManager(engine, edited, { namespace: ns });
      const after = await images.ensure('v1.1', 'finance');
      expect(after.action).toBe('built');
      expect(after.checksum).not.toBe(before.checksum);
      expect(after.fingerprint).not.toBe(before.fingerprint);
      expect(await images.describe('v1.1', 'finance')).toMatchObject({ checksum: after.checksum });
      expect(await leftovers(engine, ns)).toEqual([]);
    });

    it('names the file and statement of a failing script and leaves no half-built image', async () => {
      const ns = freshNamespace();
      const good = await new RootImageManager(engine, catalog, { namespace: ns }).ensure(
        'v1.0',
        'healthcare',
      );
      const broken = await editedCatalog(`${e}/industry_templates/healthcare_template.sql`, (sql) =>
        sql.replace("('CPT-93000'", "('CPT-93000', 'one value too many'"),
      );
      const images = new RootImageManager(engine, broken, { namespace: ns });
      const error = (await images
        .ensure('v1.0', 'healthcare')
        .catch((x: unknown) => x)) as ScriptExecutionError;
      expect(error).toBeInstanceOf(ScriptExecutionError);
      expect(error.file).toBe(`${e}/industry_templates/healthcare_template.sql`);
      expect(error.message).toMatch(/statement 3 \(line \d+\) failed/);
      expect(error.message).toContain('INSERT INTO medical_procedures');
      expect(await leftovers(engine, ns)).toEqual([]);
      // the image built from the good scripts is untouched
      expect(await images.describe('v1.0', 'healthcare')).toEqual({
        name: good.name,
        engine: good.engine,
        version: good.version,
        industry: good.industry,
        checksum: good.checksum,
        fingerprint: good.fingerprint,
        builtAt: good.builtAt,
      });
    });

    it('refuses to publish an image whose tables differ from the manifest', async () => {
      const ns = freshNamespace();
      const dir = copyCatalog();
      const m = readManifest(dir);
      m.industries.finance?.tables.push('ledger_entries');
      writeManifest(dir, m);
      const images = new RootImageManager(engine, await TemplateCatalog.load(dir), { namespace: ns });
      const error = await images.ensure('v1.0', 'finance').catch((x: unknown) => x);
      expect(error).toBeInstanceOf(ImageVerificationError);
      expect((error as Error).message).toMatch(/table ledger_entries is missing/);
      expect(await engine.listDatabases(`${ns}_`)).toEqual([]);
    });

    it('drops build databases left by a crashed build once they are stale', async () => {
      const ns = freshNamespace();
      const images = new RootImageManager(engine, catalog, { namespace: ns });
      const crashed = images
        .scratchName('bld', 'v1_0_finance')
        .replace(/_[0-9a-z]{6}([0-9a-f]{6})$/, '_0000001$1');
      const recent = images.scratchName('bld', 'v1_0_finance');
      await engine.createDatabase(crashed);
      await engine.createDatabase(recent);
      expect(await images.dropStaleBuilds()).toEqual([crashed]);
      expect(await engine.databaseExists(recent)).toBe(true);
      await engine.dropDatabase(recent);
    });

    it('two builders racing for one image end with one image and no leftovers', async () => {
      const ns = freshNamespace();
      const a = new RootImageManager(engine, catalog, { namespace: ns });
      const b = new RootImageManager(engine, catalog, { namespace: ns });
      const [x, y] = await Promise.all([a.ensure('v1.1', 'technology'), b.ensure('v1.1', 'technology')]);
      expect(x.checksum).toBe(y.checksum);
      expect(await engine.listDatabases(`${ns}_`)).toEqual([a.imageName('v1.1', 'technology')]);
      const image = await a.describe('v1.1', 'technology');
      expect([x.builtAt, y.builtAt]).toContain(image?.builtAt);
    });
  });
});

describe.skipIf(!probes.postgresql.engine)('PostgreSQL root image', () => {
  it('is a sealed template database: no connections, no PUBLIC grant, comment holds the marker', async () => {
    const ns = freshNamespace();
    const engine = probes.postgresql.engine as DatabaseEngine;
    const images = new RootImageManager(engine, catalog, { namespace: ns });
    const image = await images.ensure('v1.0', 'finance');
    const url = await env.postgresUrl();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const r = await admin.query(
        'SELECT datistemplate, datallowconn, datacl::text AS acl FROM pg_database WHERE datname = $1',
        [image.name],
      );
      expect(r.rows[0]).toMatchObject({ datistemplate: true, datallowconn: false });
      expect(r.rows[0].acl ?? '').not.toMatch(/(^|[{,])=/);
    } finally {
      await admin.end();
    }
    const u = new URL(url);
    u.pathname = `/${image.name}`;
    const direct = new pg.Client({ connectionString: u.toString() });
    await expect(direct.connect()).rejects.toThrow(/not currently accepting connections/);
  });
});
