import { describe, expect, it } from 'vitest';
import { clonectl } from '../support/cli.js';

// These commands read only the catalogue on disk: no database is involved.
describe('clonectl', () => {
  it('prints help with the environment it reads', () => {
    const r = clonectl(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: clonectl');
    expect(r.stdout).toContain('templates');
    expect(r.stdout).toContain('CLONEFACTORY_HOME');
    for (const command of ['tenants', 'users', 'token', 'serve', 'demo']) expect(r.stdout).toContain(command);
    expect(r.stdout).toContain('AUTHORIZER_CACHE_TTL_SECONDS');
  });

  it('lists templates as JSON', () => {
    const r = clonectl(['templates', 'list', '--engine', 'sqlite', '--version', 'v1.1', '--json']);
    expect(r.status).toBe(0);
    const rows = JSON.parse(r.stdout) as {
      engine: string;
      version: string;
      industry: string;
      tables: string[];
    }[];
    expect(rows.map((t) => `${t.engine} ${t.version} ${t.industry}`)).toEqual([
      'sqlite v1.1 finance',
      'sqlite v1.1 healthcare',
      'sqlite v1.1 technology',
    ]);
    expect(rows[0]?.tables).toContain('customers');
  });

  it('exits 2 and names the unknown value', () => {
    const version = clonectl(['templates', 'list', '--version', 'v9.9']);
    expect(version.status).toBe(2);
    expect(version.stderr).toContain('unknown version "v9.9"; known: v1.0, v1.1');
    const engine = clonectl(['templates', 'list', '--engine', 'oracle']);
    expect(engine.status).toBe(2);
    expect(engine.stderr).toContain("argument 'oracle' is invalid");
    const command = clonectl(['templates', 'frobnicate']);
    expect(command.status).toBe(2);
  });
});
