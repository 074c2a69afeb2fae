import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import { diffSchemas, type Fingerprint, logicalSchema } from '../../functions/core/fingerprint.js';
import { RootImageManager } from '../../functions/core/images.js';
import { TemplateCatalog } from '../../functions/core/templates.js';
import { dropNamespace, engineTitle, probeEngines, testNamespace } from '../support/engines.js';

/**
 * The catalogue's invariants on real engines, one test per engine x industry:
 * (a) every template applies, (b) v1.0 + migration = fresh v1.1, (d) a clone of a root
 * image has the image's fingerprint; and (c) across engines, the same logical schema.
 */
const { env, probes } = await probeEngines();
const catalog = await TemplateCatalog.load();
const ns = testNamespace();
const fresh = new Map<string, Fingerprint>();
afterAll(async () => {
  for (const p of Object.values(probes)) if (p.engine) await dropNamespace(p.engine, ns);
  await env.close();
});

describe.each(Object.values(probes))('template invariants', (probe) => {
  describe.skipIf(!probe.engine)(engineTitle(probe), () => {
    const engine = probe.engine as DatabaseEngine;
    const images = new RootImageManager(engine, catalog, { namespace: ns });

    describe.each(catalog.industries)('%s', (industry) => {
      it.each(catalog.versions)('(a) %s applies cleanly with the manifest tables', async (version) => {
        const db = `${ns}_a_${version.replace('.', '_')}_${industry}`;
        const template = await images.replay(version, industry, db);
        const fp = await images.fingerprintOf(db);
        expect(fp.schema.tables.map((t) => t.name)).toEqual(template.tables);
        fresh.set(`${probe.name}/${version}/${industry}`, fp);
      });

      it('(b) v1.0 plus its migration fingerprints exactly like a fresh v1.1', async () => {
        const db = `${ns}_b_${industry}`;
        await images.replay('v1.0', industry, db, await catalog.migrationPath(probe.name, 'v1.0', 'v1.1'));
        const migrated = await images.fingerprintOf(db);
        const target = `${ns}_b_fresh_${industry}`;
        await images.replay('v1.1', industry, target);
        const expected = await images.fingerprintOf(target);
        expect(diffSchemas(expected.schema, migrated.schema)).toEqual([]);
        expect(migrated.hash).toBe(expected.hash);
      });

      it.each(catalog.versions)(
        '(d) a clone of the %s root image has the image fingerprint',
        async (version) => {
          const target = `${ns}_d_${version.replace('.', '_')}_${industry}`;
          const image = await images.clone(version, industry, target, { kind: 'clone', cloneId: 'test' });
          const clone = await images.fingerprintOf(target);
          expect(clone.hash).toBe(image.fingerprint);
          // and the image is what the scripts make, not merely self-consistent
          const replayed = `${ns}_r_${version.replace('.', '_')}_${industry}`;
          await images.replay(version, industry, replayed);
          expect((await images.fingerprintOf(replayed)).hash).toBe(image.fingerprint);
        },
      );
    });
  });
});

describe('(c) cross-engine parity', () => {
  const available = Object.values(probes)
    .filter((p) => p.engine)
    .map((p) => p.name);
  const pairs = catalog.versions.flatMap((v) => catalog.industries.map((i) => [v, i] as const));
  it.each(pairs)('%s %s has one logical schema on every engine', (version, industry) => {
    const [reference, ...others] = available as [EngineName, ...EngineName[]];
    const ref = fresh.get(`${reference}/${version}/${industry}`);
    expect(ref, `fingerprint of ${reference} from invariant (a)`).toBeDefined();
    expect(ref?.schema.tables.length).toBeGreaterThan(2);
    for (const other of others) {
      const fp = fresh.get(`${other}/${version}/${industry}`);
      expect(fp, `fingerprint of ${other} from invariant (a)`).toBeDefined();
      expect(
        diffSchemas(
          logicalSchema(ref?.schema as Fingerprint['schema']),
          logicalSchema(fp?.schema as Fingerprint['schema']),
        ),
      ).toEqual([]);
    }
  });
});
