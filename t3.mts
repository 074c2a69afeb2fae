import { fingerprint } from './functions/core/fingerprint.ts';
import { startTestPlane } from './test/support/control-plane.ts';

const t = await startTestPlane();
const r = await t.plane.tenants.create({
  tenantId: 'prof-a',
  engine: 'sqlite',
  industry: 'finance',
  version: 'v1.1',
});
await t.plane.runner.wait(r.executionName);
const rec = await t.plane.tenants.get('prof-a');
const eng = await t.plane.env.engine('sqlite');
const creds = JSON.parse(await t.plane.deps.secrets.get(rec.secretId));
const time = async (label, fn, n = 20) => {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  console.log(label, ((performance.now() - t0) / n).toFixed(2), 'ms');
};
await time('introspect+fp', async () => fingerprint(await eng.introspect(rec.database)));
await time('secrets.get', () => t.plane.deps.secrets.get(rec.secretId));
await time('registry.list READY limit', () => t.plane.deps.registry.list({ state: 'READY', limit: 25 }));
await time('registry.get', () => t.plane.deps.registry.get('prof-a'));
await time('registry.transition', () =>
  t.plane.deps.registry.transition('prof-a', rec.cloneId, ['READY'], 'READY'),
);
await time('openSession+select+close', async () => {
  const s = await eng.openSession(rec.database, creds.roles.admin);
  await s.query('SELECT 1');
  await s.close();
});
await time('readMarker', () => eng.readMarker(rec.database));
await time('catalog.resolve', () => t.plane.deps.catalog.resolve('sqlite', 'v1.1', 'finance'));
await t.close();
