import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clonectl } from '../support/cli.js';
import { probeEngines, tempDir } from '../support/engines.js';

const home = tempDir('cli');
const { env, probes } = await probeEngines(home);
afterAll(() => env.close());

describe('clonectl templates', () => {
  it('validate exits 0 and prints the parity result', () => {
    const r = clonectl(['templates', 'validate'], { CLONEFACTORY_HOME: home });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const expectedEngines = ['postgresql', 'mysql', 'sqlite']
      .filter((e) => probes[e as 'mysql'].engine)
      .join(' = ');
    for (const v of ['v1.0', 'v1.1'])
      for (const i of ['finance', 'healthcare', 'technology'])
        expect(r.stdout).toMatch(new RegExp(`ok +parity +${v} ${i} +${expectedEngines}`));
    expect(r.stdout).toMatch(/ok +migration +postgresql v1\.0->v1\.1 finance +equals fresh v1\.1/);
    expect(r.stdout).toMatch(/\nvalid: \d+ ok, 0 failed/);
  });

  it('validate --json reports every line', () => {
    const r = clonectl(['templates', 'validate', '--engine', 'sqlite', '--json'], {
      CLONEFACTORY_HOME: home,
    });
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as { ok: boolean; lines: { check: string; status: string }[] };
    expect(report.ok).toBe(true);
    expect(report.lines.filter((l) => l.check === 'applies')).toHaveLength(6);
    expect(report.lines.filter((l) => l.check === 'parity').every((l) => l.status === 'skip')).toBe(true);
  });

  it('validate fails when REQUIRE_MYSQL=1 and MySQL is unreachable', () => {
    const r = clonectl(['templates', 'validate', '--engine', 'sqlite', 'mysql'], {
      CLONEFACTORY_HOME: home,
      MYSQL_URL: 'mysql://root@127.0.0.1:1',
      REQUIRE_MYSQL: '1',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/skip applies +mysql +.*ECONNREFUSED/);
    expect(r.stdout).toContain('FAIL mysql is required (REQUIRE_MYSQL=1) but not reachable');
    expect(r.stdout).not.toContain('127.0.0.1:1 password');
  });

  it('build makes SQLite images with mode 0600-or-stricter files, then reuses them', () => {
    const first = clonectl(['templates', 'build', '--engine', 'sqlite', '--json'], {
      CLONEFACTORY_HOME: home,
    });
    expect(first.status).toBe(0);
    const built = JSON.parse(first.stdout) as { name: string; action: string }[];
    expect(built).toHaveLength(6);
    expect(built.every((b) => b.action === 'built')).toBe(true);
    for (const b of built) {
      const file = join(home, 'sqlite', `${b.name}.db`);
      expect(existsSync(file)).toBe(true);
      expect(statSync(file).mode & 0o077).toBe(0);
    }
    const second = clonectl(['templates', 'build', '--engine', 'sqlite', '--version', 'v1.1', '--json'], {
      CLONEFACTORY_HOME: home,
    });
    expect((JSON.parse(second.stdout) as { action: string }[]).map((b) => b.action)).toEqual([
      'reused',
      'reused',
      'reused',
    ]);
  });

  it('show prints the scripts in order and the image status', () => {
    const r = clonectl(['templates', 'show', 'sqlite', 'v1.0', 'technology', '--json'], {
      CLONEFACTORY_HOME: home,
    });
    expect(r.status).toBe(0);
    const t = JSON.parse(r.stdout) as { scripts: { kind: string }[]; image: { status: string } };
    expect(t.scripts.map((s) => s.kind)).toEqual([
      'root_schema',
      'indexes',
      'constraints',
      'initial_data',
      'industry_template',
    ]);
    expect(t.image.status).toBe('current');
  });

  it('redacts the password of a configured URL in errors', () => {
    const r = clonectl(['templates', 'validate', '--engine', 'mysql', '--json'], {
      CLONEFACTORY_HOME: home,
      MYSQL_URL: 'mysql://root:hunter2secret@127.0.0.1:1',
      REQUIRE_MYSQL: '',
    });
    expect(r.stdout + r.stderr).not.toContain('hunter2secret');
    expect(JSON.parse(r.stdout).lines[1]).toMatchObject({ engine: 'mysql', status: 'skip' });
  });
});
