import { Command } from 'commander';
import { EngineUnavailableError } from '../../functions/core/errors.js';
import { readOwner } from '../client.js';
import { LocalControlPlane } from '../control-plane.js';
import { DevIssuer } from '../dev-issuer.js';
import { LocalEnvironment } from '../environment.js';
import { LocalServer } from '../server.js';
import { printJson, table } from './output.js';

interface DemoTenant {
  readonly id: string;
  readonly engine: 'postgresql' | 'mysql' | 'sqlite';
  readonly industry: string;
}
interface DemoUser {
  readonly email: string;
  readonly tenant: string;
  readonly role: 'admin' | 'user' | 'analyst';
}

/** The seed's scenario: TechCorp and HealthPlus, FinanceOne on MySQL when there is one, and one SQLite tenant. */
export const DEMO_TENANTS: readonly DemoTenant[] = [
  { id: 'techcorp', engine: 'postgresql', industry: 'technology' },
  { id: 'healthplus', engine: 'postgresql', industry: 'healthcare' },
  { id: 'financeone', engine: 'mysql', industry: 'finance' },
  { id: 'smallshop', engine: 'sqlite', industry: 'technology' },
];
export const DEMO_USERS: readonly DemoUser[] = [
  { email: 'admin@techcorp.com', tenant: 'techcorp', role: 'admin' },
  { email: 'analyst@techcorp.com', tenant: 'techcorp', role: 'analyst' },
  { email: 'admin@healthplus.com', tenant: 'healthplus', role: 'admin' },
  { email: 'nurse@healthplus.com', tenant: 'healthplus', role: 'user' },
  { email: 'admin@financeone.com', tenant: 'financeone', role: 'admin' },
  { email: 'owner@smallshop.com', tenant: 'smallshop', role: 'admin' },
];

export interface DemoResult {
  readonly tenants: readonly { id: string; engine: string; state: string }[];
  readonly products: Readonly<Record<string, number>>;
  /** user -> tenant -> outcome (e.g. "read 12", "403"). */
  readonly matrix: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** user -> outcome of inserting a product into the user's own tenant. */
  readonly writes: Readonly<Record<string, string>>;
  readonly crossTenantReads: number;
}

/**
 * Runs the scenario through the HTTP API of `url`, with tokens from the dev issuer: creates
 * the tenants and maps the users (both idempotent), lists each user's products, then tries
 * every user against every tenant. Exported for the end-to-end test.
 */
export async function runDemo(url: string, issuer: DevIssuer, log: (m: string) => void): Promise<DemoResult> {
  const call = async (token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(new URL(path, url), {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  };
  const operator = await issuer.mint({ email: 'demo@clonefactory.local', operator: true, ttlSeconds: 900 });
  const health = await call(operator, 'GET', '/health');
  const engines = (health.json.engines ?? {}) as Record<string, { status: string }>;
  const tenants = DEMO_TENANTS.filter((t) => {
    if (engines[t.engine]?.status === 'up') return true;
    log(`${t.id}: skipped, no ${t.engine} server is reachable`);
    return false;
  });
  const states: { id: string; engine: string; state: string }[] = [];
  for (const t of tenants) {
    const r = await call(operator, 'POST', '/tenants', {
      tenantId: t.id,
      engine: t.engine,
      industry: t.industry,
      version: 'v1.1',
    });
    if (r.status >= 400) throw new Error(`creating ${t.id}: ${r.status} ${JSON.stringify(r.json)}`);
    let state = '';
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      state = String((await call(operator, 'GET', `/tenants/${t.id}`)).json.state);
      if (state === 'READY' || state === 'FAILED') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    log(`${t.id}: ${t.engine} ${t.industry} ${state}`);
    states.push({ id: t.id, engine: t.engine, state });
  }
  const ready = new Set(states.filter((s) => s.state === 'READY').map((s) => s.id));
  const users = DEMO_USERS.filter((u) => ready.has(u.tenant));
  for (const u of users) {
    const r = await call(operator, 'POST', `/tenants/${u.tenant}/users`, {
      email: u.email,
      appRole: u.role,
      remap: true,
    });
    if (r.status >= 400) throw new Error(`mapping ${u.email}: ${r.status} ${JSON.stringify(r.json)}`);
  }
  const products: Record<string, number> = {};
  const matrix: Record<string, Record<string, string>> = {};
  const writes: Record<string, string> = {};
  let crossTenantReads = 0;
  for (const u of users) {
    const own = await issuer.mint({ email: u.email, tenant: u.tenant, ttlSeconds: 900 });
    const list = await call(own, 'GET', '/data/products?limit=200');
    const rows = Array.isArray(list.json.rows) ? (list.json.rows as { name?: string }[]) : [];
    products[u.email] = Array.isArray(list.json.rows) ? rows.length : -1;
    log(
      `${u.email} (${u.role} at ${u.tenant}): ${rows.length} products: ${rows.map((r) => r.name).join(', ')}`,
    );
    matrix[u.email] = {};
    for (const t of states) {
      // The user claims tenant t in an otherwise valid token.
      const token = await issuer.mint({ email: u.email, tenant: t.id, ttlSeconds: 900 });
      const r = await call(token, 'GET', '/data/products?limit=200');
      const rows = Array.isArray(r.json.rows) ? r.json.rows.length : 0;
      if (r.status === 200 && t.id !== u.tenant) crossTenantReads++;
      (matrix[u.email] as Record<string, string>)[t.id] =
        r.status === 200 ? `read ${rows}` : String(r.status);
    }
    const w = await call(own, 'POST', '/data/products', {
      sku: `DEMO-${u.role.toUpperCase()}`,
      name: 'Demo product',
      category: 'demo',
      price: 1,
    });
    writes[u.email] = w.status === 201 ? 'inserted' : `refused ${w.status}`;
    if (w.status === 201) await call(own, 'DELETE', `/data/products/${(w.json as { id: number }).id}`);
  }
  return { tenants: states, products, matrix, writes, crossTenantReads };
}

/** `clonectl demo` */
export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'run the seed scenario through the API (the running control plane, else one started here): tenants, users, products, and the isolation table',
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const env = new LocalEnvironment();
      const log = opts.json ? () => {} : (m: string) => console.log(m);
      const owner = await readOwner(env.home);
      let plane: LocalControlPlane | undefined;
      let server: LocalServer | undefined;
      try {
        let url = owner?.url;
        if (!url) {
          log('no control plane is running on this state directory: starting one in this process');
          plane = await LocalControlPlane.start({ env });
          server = await LocalServer.start({ plane, port: 0 });
          url = server.url;
        }
        log(`control plane at ${url}`);
        let result: DemoResult;
        try {
          result = await runDemo(url, await DevIssuer.load(env.home), log);
        } catch (error) {
          if ((error as Error).name === 'TypeError')
            throw new EngineUnavailableError('control plane', `${url} does not answer`, { cause: error });
          throw error;
        }
        if (opts.json) return printJson(result);
        const tenantIds = result.tenants.map((t) => t.id);
        console.log('\nEach user with a token claiming each tenant (GET /data/products):');
        console.log(
          table(
            ['USER', ...tenantIds, 'WRITE OWN'],
            Object.entries(result.matrix).map(([user, row]) => [
              user,
              ...tenantIds.map((t) => row[t] ?? '-'),
              result.writes[user] ?? '-',
            ]),
          ),
        );
        console.log(
          `\ncross-tenant reads: ${result.crossTenantReads} (403: the token names a tenant the user is not mapped to)`,
        );
        if (result.crossTenantReads > 0) process.exitCode = 1;
      } finally {
        await server?.close();
        await plane?.close();
        await env.close();
      }
    });
}
