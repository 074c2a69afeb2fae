import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine, EngineName } from '../../functions/core/engine.js';
import { rehashManifest, TemplateCatalog } from '../../functions/core/templates.js';
import { validateTemplates } from '../../functions/core/validate.js';
import { copyCatalog } from '../support/catalog.js';
import { probeEngines, testNamespace } from '../support/engines.js';

const { env, probes } = await probeEngines();
const ns = testNamespace();
afterAll(() => env.close());

function engineMap(names: readonly EngineName[]) {
  const map = new Map<EngineName, DatabaseEngine | { reason: string }>();
  for (const n of names) map.set(n, probes[n].engine ?? { reason: probes[n].skipReason ?? 'unavailable' });
  return map;
}

async function edited(file: string, edit: (sql: string) => string): Promise<TemplateCatalog> {
  const dir = copyCatalog();
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  await rehashManifest(dir);
  return TemplateCatalog.load(dir);
}

describe('validateTemplates', () => {
  it('passes the shipped catalogue and leaves no scratch database behind', async () => {
    const report = await validateTemplates(await TemplateCatalog.load(), {
      engines: engineMap(['postgresql', 'mysql', 'sqlite']),
      namespace: ns,
    });
    const failures = report.lines.filter((l) => l.status === 'fail');
    expect(failures).toEqual([]);
    expect(report.ok).toBe(true);
    const count = (check: string) =>
      report.lines.filter((l) => l.check === check && l.status === 'ok').length;
    const engines = Object.values(probes).filter((p) => p.engine).length;
    expect(count('applies')).toBe(engines * 6);
    expect(count('migration')).toBe(engines * 3);
    expect(count('parity')).toBe(6);
    for (const p of Object.values(probes))
      if (p.engine) expect(await p.engine.listDatabases(`${ns}_`)).toEqual([]);
  });

  it('fails a migration that forgets an index, naming it', async () => {
    const catalog = await edited('sqlite/v1.1/migration_v1.0_to_v1.1.sql', (sql) =>
      sql.replace('CREATE INDEX idx_orders_status_created_at ON orders (status, created_at);', ''),
    );
    const report = await validateTemplates(catalog, { engines: engineMap(['sqlite']), namespace: ns });
    expect(report.ok).toBe(false);
    const failed = report.lines.filter((l) => l.status === 'fail');
    expect(failed).toHaveLength(3);
    expect(failed[0]).toMatchObject({ check: 'migration', engine: 'sqlite', version: 'v1.0->v1.1' });
    expect(failed[0]?.detail).toContain(
      'orders: index idx_orders_status_created_at removed (status, created_at)',
    );
  });

  it('fails parity when one engine has a column the others lack, naming both', async () => {
    const catalog = await edited('sqlite/v1.0/root_schema.sql', (sql) =>
      sql.replace(
        '  sku         VARCHAR(64)   NOT NULL,',
        '  sku         VARCHAR(64)   NOT NULL,\n  barcode     VARCHAR(32),',
      ),
    );
    const report = await validateTemplates(catalog, {
      engines: engineMap(['postgresql', 'sqlite']),
      namespace: ns,
    });
    const parity = report.lines.filter((l) => l.check === 'parity' && l.status === 'fail');
    expect(parity.map((l) => `${l.version} ${l.industry}`)).toEqual([
      'v1.0 finance',
      'v1.0 healthcare',
      'v1.0 technology',
    ]);
    expect(parity[0]?.detail).toBe(
      'sqlite vs postgresql: products: column barcode added (varchar(32), nullable)',
    );
  });

  it('reports an SQL error with its file and statement', async () => {
    const catalog = await edited('postgresql/v1.0/constraints.sql', (sql) =>
      sql.replace('CHECK (stock >= 0)', 'CHECK (stock >= 0'),
    );
    const report = await validateTemplates(catalog, { engines: engineMap(['postgresql']), namespace: ns });
    const failed = report.lines.filter((l) => l.status === 'fail' && l.check === 'applies');
    expect(failed.map((l) => l.version)).toEqual(['v1.0', 'v1.0', 'v1.0']);
    expect(failed[0]?.detail).toMatch(
      /^postgresql\/v1\.0\/constraints\.sql: statement 6 \(line 8\) failed: syntax error/,
    );
  });

  it('reports a skipped engine with its reason and parity over the rest', async () => {
    const engines = engineMap(['postgresql', 'sqlite']);
    engines.set('mysql', { reason: 'connect ECONNREFUSED 127.0.0.1:3306' });
    const report = await validateTemplates(await TemplateCatalog.load(), { engines, namespace: ns });
    expect(report.ok).toBe(true);
    expect(report.lines.find((l) => l.engine === 'mysql')).toMatchObject({
      status: 'skip',
      detail: 'connect ECONNREFUSED 127.0.0.1:3306',
    });
    expect(report.lines.find((l) => l.check === 'parity')?.detail).toBe(
      'postgresql = sqlite (without mysql)',
    );
  });
});
