import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { upgradeTenant } from '../functions/core/tenant-upgrade.js';
import { removeArtefacts } from '../functions/core/workflow/clone-workflow.js';
import { LocalControlPlane } from '../local/control-plane.js';
import { LocalEnvironment } from '../local/environment.js';

const home = await mkdtemp(join(tmpdir(), 'prof-'));
const env = new LocalEnvironment({
  env: { ...process.env, CLONEFACTORY_HOME: home, CLONEFACTORY_LOG_LEVEL: 'SILENT' },
});
const plane = await LocalControlPlane.start({ env, namespace: 'cfp' });
const engine = await env.engine('postgresql');
const ids = Array.from({ length: 12 }, (_, i) => `prof-${i}`);
for (const id of ids) {
  const r = await plane.tenants.create({
    tenantId: id,
    engine: 'postgresql',
    industry: 'technology',
    version: 'v1.0',
    sampleSize: 5,
  });
  await plane.runner.wait(r.executionName);
}
const times: Record<string, number> = {};
const wrap = (obj: any, name: string, label: string) => {
  const orig = obj[name].bind(obj);
  obj[name] = async (...args: any[]) => {
    const t = performance.now();
    try {
      return await orig(...args);
    } finally {
      times[label] = (times[label] ?? 0) + performance.now() - t;
    }
  };
};
for (const m of ['withLock', 'transaction', 'configureTenantAccess', 'introspect'])
  wrap(engine, m, `engine.${m}`);
for (const m of ['get', 'transition']) wrap(plane.deps.registry, m, `registry.${m}`);
wrap(plane.deps.secrets, 'get', 'secrets.get');
const t0 = performance.now();
for (const id of ids.slice(2)) await upgradeTenant(plane.deps, id, 'v1.1');
const total = performance.now() - t0;
console.log('per tenant', (total / 10).toFixed(1));
for (const [k, v] of Object.entries(times)) console.log(k, (v / 10).toFixed(1));
for (const r of await plane.tenants.list())
  await removeArtefacts(engine, plane.deps, r.cloneId).catch(() => {});
await plane.close();
await env.close();
