import { startTestPlane } from './test/support/control-plane.ts';

const t = await startTestPlane();
const ids = ['con-a', 'con-b', 'con-c', 'con-d', 'con-e'];
const reqs = Array.from({ length: 20 }, (_, i) => ({
  tenantId: ids[i % 5],
  engine: (i % 5) % 2 ? 'postgresql' : 'sqlite',
  industry: 'technology',
  version: 'v1.1',
}));
const results = await Promise.all(reqs.map((r) => t.plane.tenants.create(r)));
const ex = await Promise.all(results.map((r) => t.plane.runner.wait(r.executionName)));
for (const e of ex) if (e.status !== 'SUCCEEDED') console.log(e.name, e.error, e.cause);
await t.close();
