import { probeEngines, TEST_PREFIX } from './engines.js';

/**
 * Drops databases left by an earlier test run that was killed before its cleanup ran.
 * Only names starting with the test prefix are touched.
 */
export default async function setup(): Promise<void> {
  const { env, probes } = await probeEngines();
  try {
    for (const probe of Object.values(probes)) {
      if (!probe.engine || probe.name === 'sqlite') continue;
      for (const db of await probe.engine.listDatabases(TEST_PREFIX)) await probe.engine.dropDatabase(db);
    }
  } finally {
    await env.close();
  }
}
