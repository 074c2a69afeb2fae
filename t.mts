import { LocalControlPlane } from './local/control-plane.ts';
import { LocalEnvironment } from './local/environment.ts';

const env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: '/tmp/cf-t3' } });
const t0 = performance.now();
const cp = await LocalControlPlane.start({ env, namespace: 'cfx', log: console.log });
console.log('start', (performance.now() - t0).toFixed(0));
for (const engine of ['sqlite', 'postgresql', 'mysql']) {
  const t1 = performance.now();
  const r = await cp.tenants.create({
    tenantId: `demo-${engine.slice(0, 2)}`,
    engine,
    industry: 'technology',
    version: 'v1.1',
  });
  const ex = await cp.runner.wait(r.executionName);
  console.log(engine, ex.status, ex.error, ex.cause, (performance.now() - t1).toFixed(0), 'ms');
  console.log(await cp.tenants.get(`demo-${engine.slice(0, 2)}`));
}
await cp.close();
await env.close();
