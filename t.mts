import { startTestPlane } from './test/support/control-plane.ts';

const t = await startTestPlane();
for (const engine of ['sqlite', 'postgresql']) {
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    const r = await t.plane.tenants.create({
      tenantId: `p-${engine.slice(0, 2)}-${i}`,
      engine,
      industry: 'finance',
      version: 'v1.1',
    });
    const t1 = performance.now();
    const e = await t.plane.runner.wait(r.executionName);
    const t2 = performance.now();
    const ev = e.events;
    const per: string[] = [];
    for (let j = 0; j < ev.length; j++)
      if (ev[j].type === 'StateEntered') {
        const exit = ev
          .slice(j)
          .find((x) => (x.type === 'StateExited' || x.type === 'StateFailed') && x.state === ev[j].state);
        per.push(`${ev[j].state}=${Date.parse(exit.timestamp) - Date.parse(ev[j].timestamp)}`);
      }
    if (i > 0)
      console.log(engine, 'create', (t1 - t0).toFixed(1), 'run', (t2 - t1).toFixed(1), per.join(' '));
  }
}
await t.close();
