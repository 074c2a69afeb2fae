/**
 * The bad input corpus (issue 8, part 5): hostile and malformed inputs for every API route
 * and every clonectl command, each of which must be refused with a clear error and create
 * nothing. bad-input.test.ts runs it and checks that every route of the app and every command
 * of the CLI has hand-written cases here, so that a new route or command without any fails.
 */

/** What a case attacks with; the report counts cases by kind. */
export const KINDS = [
  'sql-meta',
  'like-wildcard',
  'nul',
  'lookalike',
  'traversal',
  'overlong',
  'wrong-type',
  'huge-body',
  'unknown-field',
  'malformed-json',
  'hostile-query',
  'out-of-range',
  'system-object',
  'reserved-name',
  'constraint',
  'conflict',
  'bad-credential',
  'wrong-principal',
  'missing',
  'bad-choice',
  'excess-args',
  'unknown-option',
] as const;
export type Kind = (typeof KINDS)[number];

/** The data-plane tenants the corpus attacks: one per engine, each with a mapped admin. */
export const DATA_TENANTS = { lite: 'bi-lite', pg: 'bi-pg', my: 'bi-my' } as const;
export type DataTenant = keyof typeof DATA_TENANTS;
export const ENGINE_OF: Record<DataTenant, 'sqlite' | 'postgresql' | 'mysql'> = {
  lite: 'sqlite',
  pg: 'postgresql',
  my: 'mysql',
};
export const adminEmail = (t: DataTenant) => `admin@${DATA_TENANTS[t]}.example`;
/** A read-only user of the SQLite tenant. */
export const ANALYST_EMAIL = 'analyst@bi-lite.example';

/**
 * Who a request is sent as: a principal of the test plane, a raw Authorization header, or
 * claims the test signs with the dev issuer's own key (so that only the claims are hostile).
 */
export type ApiAuth =
  | { readonly as: 'operator' | 'analyst' | DataTenant }
  | { readonly header: string | null }
  | { readonly claims: Readonly<Record<string, unknown>> };

export interface ApiCase {
  /** The route it attacks, as `METHOD /path` of ROUTES. */
  readonly route: string;
  readonly kind: Kind;
  readonly auth: ApiAuth;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Sent as is: no normalisation, no encoding. */
  readonly path: string;
  readonly body?: string;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length). */
  readonly chunked?: boolean;
  /** The exact status expected; otherwise any 4xx. */
  readonly status?: number;
  /** What the error message must say. */
  readonly message?: RegExp;
}

export interface CliCase {
  /** The command it attacks: `clonectl`, `clonectl tenants`, `clonectl tenants create`, … */
  readonly command: string;
  readonly kind: Kind;
  readonly args: readonly string[];
  /** Run as a real process (test/support/cli.ts) instead of in this process. */
  readonly spawn?: boolean;
  /** The exit code expected: 2 invalid request, 1 failed; otherwise any non-zero. */
  readonly exit?: number;
  /** What stderr must say. */
  readonly message?: RegExp;
}

const enc = encodeURIComponent;
/** Cyrillic letters that look like Latin ones. */
const CYR = { a: '\u0430', e: '\u0435', o: '\u043e', i: '\u0456', s: '\u0455', p: '\u0440', c: '\u0441' };
/** Fullwidth forms of ASCII letters and digits. */
const fullwidth = (s: string) =>
  [...s].map((ch) => (ch >= '!' && ch <= '~' ? String.fromCharCode(ch.charCodeAt(0) + 0xfee0) : ch)).join('');
const long = (n: number, ch = 'a') => ch.repeat(n);
const json = (value: unknown) => JSON.stringify(value);

/** A body over the API's 64 KiB limit. */
export const HUGE_BODY = json({ pad: long(70 * 1024, 'x') });

/** Hostile variants of an identifier that must never reach SQL, a file name or a lookup. */
function hostileIds(valid: string): { kind: Kind; value: string }[] {
  return [
    { kind: 'sql-meta', value: `${valid}'; DROP TABLE tenants; --` },
    { kind: 'sql-meta', value: `${valid}" OR "1"="1` },
    { kind: 'like-wildcard', value: '%' },
    { kind: 'like-wildcard', value: `${valid.slice(0, 3)}_%` },
    { kind: 'nul', value: `${valid}\u0000` },
    { kind: 'lookalike', value: valid.replace('i', CYR.i).replace('e', CYR.e) },
    { kind: 'lookalike', value: fullwidth(valid) },
    { kind: 'lookalike', value: valid.toUpperCase() },
    { kind: 'traversal', value: '../../etc/passwd' },
    { kind: 'overlong', value: long(4000) },
  ];
}

const op = { as: 'operator' } as const;

/**
 * The hand-written API cases. Path segments are percent-encoded as a client would send them;
 * a few are sent raw (`%2e%2e%2f`) to test the server's own decoding.
 */
export function apiCorpus(): ApiCase[] {
  const cases: ApiCase[] = [];
  const add = (c: ApiCase) => cases.push(c);
  const lite = DATA_TENANTS.lite;
  const pg = DATA_TENANTS.pg;

  // Routes without parameters: their path, their credentials.
  for (const path of [
    '/health',
    '/openapi.json',
    '/templates',
    '/tenants',
    '/drift',
    '/status',
    '/upgrades',
    '/users',
  ]) {
    const route = `GET ${path}`;
    add({ route, kind: 'nul', auth: op, method: 'GET', path: `${path}%00`, status: 404 });
    add({ route, kind: 'traversal', auth: op, method: 'GET', path: `${path}/..%2f..%2fetc%2fpasswd` });
    add({
      route,
      kind: 'sql-meta',
      auth: op,
      method: 'GET',
      path: `${path};DROP%20TABLE%20tenants`,
      status: 404,
    });
    add({
      route,
      kind: 'bad-credential',
      auth: { header: "Bearer x';DROP TABLE tenants;--" },
      method: 'GET',
      path,
      status: 401,
    });
  }
  add({
    route: 'GET /health',
    kind: 'bad-credential',
    auth: { header: 'Basic YWRtaW46YWRtaW4=' },
    method: 'GET',
    path: '/health',
    status: 401,
  });
  add({
    route: 'GET /health',
    kind: 'bad-credential',
    auth: { header: "Bearer ' OR '1'='1" },
    method: 'GET',
    path: '/health',
    status: 401,
  });
  add({
    route: 'GET /openapi.json',
    kind: 'bad-credential',
    auth: { header: 'Bearer %00' },
    method: 'GET',
    path: '/openapi.json',
    status: 401,
  });
  add({
    route: 'GET /templates',
    kind: 'wrong-principal',
    auth: { as: 'lite' },
    method: 'GET',
    path: '/templates',
    status: 403,
  });

  // GET /templates/:engine/:version/:industry
  {
    const route = 'GET /templates/:engine/:version/:industry';
    const t = (engine: string, version: string, industry: string, kind: Kind, message?: RegExp) =>
      add({
        route,
        kind,
        auth: op,
        method: 'GET',
        path: `/templates/${engine}/${version}/${industry}`,
        status: 400,
        message,
      });
    t(enc("sqlite'--"), 'v1.1', 'technology', 'sql-meta', /unknown engine/);
    t('%25', 'v1.1', 'technology', 'like-wildcard', /unknown engine/);
    t(enc(`${CYR.s}qlite`), 'v1.1', 'technology', 'lookalike', /unknown engine/);
    t('SQLITE', 'v1.1', 'technology', 'lookalike', /unknown engine/);
    t('__proto__', 'v1.1', 'technology', 'system-object', /unknown engine/);
    t('sqlite', enc('v1.1;DROP DATABASE postgres'), 'technology', 'sql-meta', /unknown version/);
    t('sqlite', 'v1.1%00', 'technology', 'nul', /unknown version/);
    t('sqlite', 'v1%25', 'technology', 'like-wildcard', /unknown version/);
    t('sqlite', 'constructor', 'technology', 'system-object', /unknown version/);
    t('sqlite', 'v1.1', '..%2F..%2F..%2Fetc%2Fpasswd', 'traversal', /unknown industry/);
    t('sqlite', 'v1.1', '%2e%2e%2f%2e%2e%2froot_schemas', 'traversal', /unknown industry/);
    t('sqlite', 'v1.1', 'technology%00', 'nul', /unknown industry/);
    t('sqlite', 'v1.1', '%', 'like-wildcard', /unknown industry/);
    t('sqlite', 'v1.1', enc(fullwidth('technology')), 'lookalike', /unknown industry/);
    t('sqlite', 'v1.1', long(5000), 'overlong', /unknown industry/);
  }

  // Tenant ids in paths.
  const idRoutes: [string, 'GET' | 'DELETE' | 'POST', (id: string) => string, string | undefined][] = [
    ['GET /tenants/:id', 'GET', (id) => `/tenants/${id}`, undefined],
    ['DELETE /tenants/:id', 'DELETE', (id) => `/tenants/${id}`, undefined],
    ['POST /tenants/:id/move', 'POST', (id) => `/tenants/${id}/move`, json({ placement: 'dedicated' })],
    ['POST /tenants/:id/upgrade', 'POST', (id) => `/tenants/${id}/upgrade`, json({ to: 'v1.1' })],
    ['POST /tenants/:id/branch', 'POST', (id) => `/tenants/${id}/branch`, json({ tenantId: 'bi-branch' })],
    [
      'POST /tenants/:id/users',
      'POST',
      (id) => `/tenants/${id}/users`,
      json({ email: 'new@bi.example', appRole: 'admin' }),
    ],
    ['GET /tenants/:id/users', 'GET', (id) => `/tenants/${id}/users`, undefined],
  ];
  for (const [route, method, path, body] of idRoutes) {
    for (const { kind, value } of hostileIds(lite))
      add({
        route,
        kind,
        auth: op,
        method,
        path: path(enc(value)),
        body,
        status: 400,
        message: /tenant ?id/i,
      });
    add({
      route,
      kind: 'traversal',
      auth: op,
      method,
      path: path('%2e%2e%2f%2e%2e%2fsecrets'),
      body,
      status: 400,
    });
    add({
      route,
      kind: 'reserved-name',
      auth: op,
      method,
      path: path('admin'),
      body,
      status: 400,
      message: /reserved/,
    });
  }
  add({
    route: 'DELETE /tenants/:id',
    kind: 'lookalike',
    auth: op,
    method: 'DELETE',
    path: `/tenants/${enc(`${lite} `)}`,
    status: 400,
  });
  // A newline in the path: the gateway's policy (like API Gateway's) matches no resource and denies it.
  add({
    route: 'DELETE /tenants/:id',
    kind: 'lookalike',
    auth: op,
    method: 'DELETE',
    path: `/tenants/${enc(`${lite}\n`)}`,
    status: 403,
  });
  add({
    route: 'DELETE /tenants/:id',
    kind: 'like-wildcard',
    auth: op,
    method: 'DELETE',
    path: '/tenants/*',
    status: 400,
  });
  add({
    route: 'GET /tenants/:id',
    kind: 'system-object',
    auth: op,
    method: 'GET',
    path: '/tenants/__proto__',
    status: 400,
  });
  add({
    route: 'GET /tenants/:id',
    kind: 'system-object',
    auth: op,
    method: 'GET',
    path: '/tenants/constructor',
    status: 404,
  });

  // POST /tenants
  {
    const route = 'POST /tenants';
    const ok = { tenantId: 'bi-new', engine: 'sqlite', industry: 'technology', version: 'v1.1' };
    const p = (kind: Kind, body: string, message?: RegExp, status = 400) =>
      add({ route, kind, auth: op, method: 'POST', path: '/tenants', body, status, message });
    for (const { kind, value } of hostileIds('bi-new'))
      p(kind, json({ ...ok, tenantId: value }), /tenant ?id|tenantId/i);
    p('reserved-name', json({ ...ok, tenantId: 'postgres' }), /reserved/);
    p('reserved-name', json({ ...ok, tenantId: 'information_schema' }), /tenant id/);
    p('sql-meta', json({ ...ok, engine: "sqlite'; --" }), /engine/);
    p('lookalike', json({ ...ok, engine: `${CYR.s}qlite` }), /engine/);
    p('sql-meta', json({ ...ok, industry: "technology'; DROP TABLE users; --" }), /industry/);
    p('traversal', json({ ...ok, industry: '../../etc' }), /industry/);
    p('like-wildcard', json({ ...ok, industry: 'tech%' }), /industry/);
    p('sql-meta', json({ ...ok, version: 'v1.1; DROP DATABASE postgres' }), /version/);
    p('nul', json({ ...ok, version: 'v1.1\u0000' }), /version/);
    p('out-of-range', json({ ...ok, version: 'v1.9' }), /version/);
    p('wrong-type', json({ ...ok, tenantId: 42 }), /tenantId/);
    p('wrong-type', json({ ...ok, tenantId: ['bi-new'] }), /tenantId/);
    p('wrong-type', json({ ...ok, tenantId: { $ne: null } }), /tenantId/);
    p('wrong-type', json({ ...ok, tenantId: null }), /tenantId/);
    p('wrong-type', json({ ...ok, engine: ['sqlite'] }), /engine/);
    p('wrong-type', json({ ...ok, sampleSize: '20' }), /sampleSize/);
    p('wrong-type', json({ ...ok, placement: true }), /placement/);
    p('wrong-type', '[]', /invalid request/);
    p('wrong-type', 'null', /invalid request/);
    p('wrong-type', '"bi-new"', /invalid request/);
    p('wrong-type', '42', /invalid request/);
    p('out-of-range', json({ ...ok, sampleSize: -1 }), /sampleSize/);
    p('out-of-range', json({ ...ok, sampleSize: 1.5 }), /sampleSize/);
    p(
      'out-of-range',
      '{"tenantId":"bi-new","engine":"sqlite","industry":"technology","version":"v1.1","sampleSize":1e400}',
      /sampleSize/,
    );
    p('out-of-range', json({ ...ok, sampleSize: 100_001 }), /sampleSize/);
    p('bad-choice', json({ ...ok, placement: 'everywhere' }), /placement/);
    p('bad-choice', json({ ...ok, engine: 'oracle' }), /engine/);
    p('unknown-field', json({ ...ok, isAdmin: true }), /isAdmin/);
    p('unknown-field', json({ ...ok, cloneId: '000000000000' }), /cloneId/);
    p('unknown-field', json({ ...ok, state: 'READY' }), /state/);
    p(
      'unknown-field',
      '{"__proto__":{"isAdmin":true},"tenantId":"bi-new","engine":"sqlite","industry":"technology","version":"v1.1"}',
      /__proto__/,
    );
    p('sql-meta', json({ ...ok, branchOf: "bi-lite'--" }), /tenant id/);
    p('missing', json({ tenantId: 'bi-new' }), /engine/);
    p('missing', '{}', /tenantId/);
    p('malformed-json', '{"tenantId": "bi-new",', /JSON/);
    p('malformed-json', "{'tenantId': 'bi-new'}", /JSON/);
    p('malformed-json', '', /JSON/);
    p('malformed-json', '{"tenantId":"bi-new" /* a comment */}', /JSON/);
    p(
      'malformed-json',
      '{"tenantId":"bi-new","engine":"sqlite","industry":"technology","version":"v1.1","sampleSize":NaN}',
      /JSON/,
    );
    p('malformed-json', `${'['.repeat(20_000)}${']'.repeat(20_000)}`, /invalid request|JSON/);
    p('overlong', json({ ...ok, industry: long(60_000) }), /industry/);
  }

  // POST /tenants/:id/move (the PostgreSQL tenant: a valid move would really move it)
  {
    const route = 'POST /tenants/:id/move';
    const m = (kind: Kind, body: string, message?: RegExp) =>
      add({ route, kind, auth: op, method: 'POST', path: `/tenants/${pg}/move`, body, status: 400, message });
    m('lookalike', json({ placement: 'Dedicated' }), /placement/);
    m('lookalike', json({ placement: `d${CYR.e}dicated` }), /placement/);
    m('nul', json({ placement: 'dedicated\u0000' }), /placement/);
    m('sql-meta', json({ placement: "dedicated'; --" }), /placement/);
    m('wrong-type', json({ placement: ['dedicated'] }), /placement/);
    m('wrong-type', json({ placement: { $ne: 'shared' } }), /placement/);
    m('wrong-type', json({ placement: null }), /placement/);
    m('wrong-type', '[]', /JSON object/);
    m('wrong-type', 'null', /JSON object/);
    m('wrong-type', '"dedicated"', /JSON object/);
    m('missing', '{}', /placement/);
    m('unknown-field', json({ placement: 'shared', force: true }), /unknown field "force"/);
    m('unknown-field', json({ placement: 'shared', engine: 'mysql' }), /unknown field "engine"/);
    m('malformed-json', '{"placement":', /JSON/);
    m('overlong', json({ placement: long(60_000) }), /placement/);
  }

  // POST /tenants/:id/upgrade
  {
    const route = 'POST /tenants/:id/upgrade';
    const u = (kind: Kind, body: string, message?: RegExp, tenant: string = lite) =>
      add({
        route,
        kind,
        auth: op,
        method: 'POST',
        path: `/tenants/${tenant}/upgrade`,
        body,
        status: 400,
        message,
      });
    u('sql-meta', json({ to: 'v1.1; DROP TABLE products' }), /version/);
    u('nul', json({ to: 'v1.1\u0000' }), /version/);
    u('traversal', json({ to: '../v1.1' }), /version/);
    u('like-wildcard', json({ to: 'v1.%' }), /version/);
    u('lookalike', json({ to: fullwidth('v1.1') }), /version/);
    u('wrong-type', json({ to: 1.1 }), /to:/);
    u('wrong-type', json({ to: ['v1.1'] }), /to:/);
    u('wrong-type', json({ to: null }), /to:/);
    u('wrong-type', '[]', /JSON object/);
    u('missing', '{}', /to:/);
    u('unknown-field', json({ to: 'v1.1', force: true }), /unknown field "force"/);
    u('malformed-json', '{to: v1.1}', /JSON/);
    // A downgrade: refused before its root image is built (that created a database).
    u('out-of-range', json({ to: 'v1.0' }), /newer than v1\.0/);
    u('out-of-range', json({ to: 'v1.0' }), /newer than v1\.0/, pg);
    u('out-of-range', json({ to: 'v9.9' }), /unknown version/);
  }

  // POST /tenants/:id/branch
  {
    const route = 'POST /tenants/:id/branch';
    const b = (kind: Kind, body: string, message?: RegExp) =>
      add({
        route,
        kind,
        auth: op,
        method: 'POST',
        path: `/tenants/${lite}/branch`,
        body,
        status: 400,
        message,
      });
    for (const { kind, value } of hostileIds('bi-branch'))
      b(kind, json({ tenantId: value }), /tenant ?id|tenantId/i);
    b('reserved-name', json({ tenantId: 'admin' }), /reserved/);
    b('conflict', json({ tenantId: lite }), /itself/);
    b('wrong-type', json({ tenantId: 7 }), /tenantId/);
    b('wrong-type', json({ tenantId: null }), /tenantId/);
    b('wrong-type', '[]', /JSON object/);
    b('missing', '{}', /tenantId/);
    b('unknown-field', json({ tenantId: 'bi-branch', engine: 'mysql' }), /unknown field "engine"/);
    b('unknown-field', json({ tenantId: 'bi-branch', sampleSize: 5 }), /unknown field "sampleSize"/);
    b('malformed-json', '{"tenantId":"bi-branch"', /JSON/);
  }

  // POST /reconcile (a dry run reports, `apply: true` removes: a misspelt field must not pass)
  {
    const route = 'POST /reconcile';
    const r = (kind: Kind, body: string, message?: RegExp) =>
      add({ route, kind, auth: op, method: 'POST', path: '/reconcile', body, status: 400, message });
    r('wrong-type', '[]', /JSON object/);
    r('wrong-type', 'null', /JSON object/);
    r('wrong-type', '"apply"', /JSON object/);
    r('wrong-type', '42', /JSON object/);
    r('wrong-type', json({ apply: 'true' }), /apply/);
    r('wrong-type', json({ apply: 1 }), /apply/);
    r('wrong-type', json({ graceMs: '0' }), /graceMs/);
    r('out-of-range', json({ graceMs: -1 }), /graceMs/);
    r('out-of-range', '{"graceMs":1e400}', /graceMs/);
    r('unknown-field', json({ aply: true }), /unknown field "aply"/);
    r('unknown-field', json({ apply: false, graceMs: 0, force: true }), /unknown field "force"/);
    r('malformed-json', '{"apply":tru}', /JSON/);
    r('malformed-json', '', /JSON/);
  }

  // POST /upgrades
  {
    const route = 'POST /upgrades';
    const u = (kind: Kind, body: unknown, message?: RegExp) =>
      add({
        route,
        kind,
        auth: op,
        method: 'POST',
        path: '/upgrades',
        body: typeof body === 'string' ? body : json(body),
        status: 400,
        message,
      });
    u('sql-meta', { to: "v1.1'; DROP TABLE runs; --" }, /to/);
    u('out-of-range', { to: 'v9.9' }, /unknown version/);
    u('like-wildcard', { to: 'v1.1', selection: { tenants: [`${lite}%`] } }, /tenant id/);
    u('like-wildcard', { to: 'v1.1', selection: { tenants: ['bi_lite'] } }, /tenant id/);
    u('lookalike', { to: 'v1.1', selection: { tenants: [`b${CYR.i}-lite`] } }, /tenant id/);
    u('nul', { to: 'v1.1', selection: { tenants: [`${lite}\u0000`] } }, /tenant id/);
    u('traversal', { to: 'v1.1', selection: { tenants: ['../../etc'] } }, /tenant id/);
    u('sql-meta', { to: 'v1.1', selection: { tenants: [lite, `${lite}'; --`] } }, /tenant id/);
    u('missing', { to: 'v1.1', selection: { tenants: ['bi-gone'] } }, /does not exist/);
    u('out-of-range', { to: 'v1.1', selection: { tenants: [] } }, /tenants/);
    u('out-of-range', { to: 'v1.1', selection: { tenants: Array(10_001).fill('a') } }, /tenants/);
    u('wrong-type', { to: 'v1.1', selection: { tenants: lite } }, /tenants/);
    u('wrong-type', { to: 'v1.1', selection: { tenants: [null] } }, /tenants/);
    u('wrong-type', { to: 11 }, /to/);
    u('wrong-type', { to: 'v1.1', dryRun: 'yes' }, /dryRun/);
    u('wrong-type', '[]', /invalid upgrade request/);
    u('wrong-type', 'null', /invalid upgrade request/);
    u('bad-choice', { to: 'v1.1', selection: { engine: 'oracle' } }, /engine/);
    u('bad-choice', { to: 'v1.1', selection: { placement: 'everywhere' } }, /placement/);
    u('like-wildcard', { to: 'v1.1', selection: { industry: 'tech%' } }, /industry/);
    u('sql-meta', { to: 'v1.1', selection: { version: 'v1.0;' } }, /version/);
    u('out-of-range', { to: 'v1.1', policy: { canary: -1 } }, /canary/);
    u('out-of-range', '{"to":"v1.1","policy":{"maxConcurrency":1e400}}', /maxConcurrency/);
    u('out-of-range', { to: 'v1.1', policy: { maxFailurePercent: 0 } }, /maxFailurePercent/);
    u('conflict', { to: 'v1.1', policy: { continueOnError: true, maxFailures: 1 } }, /exclude each other/);
    u('unknown-field', { to: 'v1.1', force: true }, /force/);
    u('unknown-field', { to: 'v1.1', selection: { tenant: [lite] } }, /tenant/);
    u('unknown-field', { to: 'v1.1', policy: { canaries: 2 } }, /canaries/);
    u('malformed-json', '{"to":"v1.1",}', /JSON/);
    u('missing', '{}', /to/);
  }

  // Upgrade run ids.
  for (const [route, method, suffix] of [
    ['GET /upgrades/:runId', 'GET', ''],
    ['POST /upgrades/:runId/stop', 'POST', '/stop'],
    ['POST /upgrades/:runId/resume', 'POST', '/resume'],
  ] as const) {
    const r = (kind: Kind, id: string, message: RegExp = /upgrade run/) =>
      add({ route, kind, auth: op, method, path: `/upgrades/${id}${suffix}`, status: 400, message });
    r('like-wildcard', 'upg-%25');
    r('like-wildcard', 'upg-________t______-______');
    r('sql-meta', enc("upg-20260101t000000-abcdef'; DROP TABLE runs; --"));
    r('nul', 'upg-20260101t000000-abcdef%00');
    r('traversal', '..%2F..%2Fetc%2Fpasswd');
    r('lookalike', 'UPG-20260101T000000-ABCDEF');
    r('overlong', `upg-${long(3000, '1')}`);
    r('missing', 'upg-20260101t000000-abcdef', /no upgrade run/);
  }

  // POST /tenants/:id/users (on the READY SQLite tenant: a valid body would map a user)
  {
    const route = 'POST /tenants/:id/users';
    const ok = { email: 'new@bi.example', appRole: 'user' };
    const m = (kind: Kind, body: unknown, message?: RegExp, status = 400) =>
      add({
        route,
        kind,
        auth: op,
        method: 'POST',
        path: `/tenants/${lite}/users`,
        body: typeof body === 'string' ? body : json(body),
        status,
        message,
      });
    m('sql-meta', { ...ok, email: "new@bi.example'; DROP TABLE users; --" }, /email/);
    m('sql-meta', { ...ok, email: 'a;b@bi.example' }, /email/);
    m('like-wildcard', { ...ok, email: '%@%' }, /email/);
    m('nul', { ...ok, email: 'new@bi.example\u0000' }, /email/);
    m('lookalike', { ...ok, email: `${CYR.a}dmin@bi-lite.example` }, /email/);
    m('lookalike', { ...ok, email: fullwidth('admin@bi-lite.example') }, /email/);
    m('overlong', { ...ok, email: `${long(300)}@bi.example` }, /email/);
    m('bad-choice', { ...ok, appRole: 'superadmin' }, /appRole/);
    m('lookalike', { ...ok, appRole: 'ADMIN' }, /appRole/);
    m('wrong-type', { ...ok, appRole: ['admin'] }, /appRole/);
    m('wrong-type', { ...ok, email: 42 }, /email/);
    m('wrong-type', { ...ok, email: ['new@bi.example'] }, /email/);
    m('wrong-type', { ...ok, remap: 'yes' }, /remap/);
    m('traversal', { ...ok, userId: '../../root' }, /userId/);
    m('sql-meta', { ...ok, userId: "x' OR '1'='1" }, /userId/);
    m('nul', { ...ok, userId: 'idp|1\u0000' }, /userId/);
    m('overlong', { ...ok, userId: long(255) }, /userId/);
    m('lookalike', { ...ok, userId: `${CYR.a}dmin@bi-lite.example` }, /userId/);
    m('unknown-field', { ...ok, permissions: ['admin'] }, /permissions/);
    m('unknown-field', { ...ok, isOperator: true }, /isOperator/);
    m('wrong-type', '[]', /JSON object/);
    m('wrong-type', 'null', /JSON object/);
    m('malformed-json', '{"email":', /JSON/);
    m('missing', {}, /email/);
    // Taking another user's email, or moving a user of another tenant without asking.
    m(
      'conflict',
      { email: adminEmail('lite'), appRole: 'admin', userId: 'idp|intruder' },
      /already mapped/,
      409,
    );
    m('conflict', { email: adminEmail('pg'), appRole: 'admin' }, /already mapped to tenant/, 409);
  }

  // DELETE /users/:user: ids with LIKE wildcards are plain ids here (no mapping has them: 404).
  {
    const route = 'DELETE /users/:user';
    const d = (kind: Kind, user: string, status: number, message?: RegExp) =>
      add({ route, kind, auth: op, method: 'DELETE', path: `/users/${user}`, status, message });
    d('like-wildcard', '%25', 404, /no mapping/);
    d('like-wildcard', '%25%40%25', 404, /no mapping/);
    d('like-wildcard', '_', 404, /no mapping/);
    d('like-wildcard', '*', 404, /no mapping/);
    d('sql-meta', enc("admin@bi-lite.example'--"), 404, /no mapping/);
    d('sql-meta', enc("' OR '1'='1"), 400, /user/);
    d('nul', `${enc(adminEmail('lite'))}%00`, 400, /user/);
    d('lookalike', enc(`${CYR.a}dmin@bi-lite.example`), 400, /user/);
    d('lookalike', enc(fullwidth(adminEmail('lite'))), 400, /user/);
    d('traversal', '..%2F..%2Fetc%2Fpasswd', 400, /user/);
    d('traversal', '%2e%2e%2f%2e%2e%2fsecrets', 400, /user/);
    d('overlong', long(300), 400, /user/);
  }

  // GET /executions/:name
  {
    const route = 'GET /executions/:name';
    const e = (kind: Kind, name: string, status = 400, message: RegExp = /execution name|no execution/) =>
      add({ route, kind, auth: op, method: 'GET', path: `/executions/${name}`, status, message });
    e('traversal', '..%2F..%2Fetc%2Fpasswd');
    e('traversal', '%2e%2e%2f%2e%2e%2fsecrets%2f');
    e('traversal', '..%5C..%5Cregistry');
    e('nul', `${lite}--000000000000%00`);
    e('like-wildcard', '%25');
    e('like-wildcard', '*');
    e('sql-meta', enc(`${lite}--x'; --`));
    e('lookalike', enc(`b${CYR.i}-lite`));
    e('overlong', long(81));
    e('missing', `${lite}--ffffffffffff`, 404);
  }

  // GET /me: tokens signed by the issuer whose claims are hostile.
  {
    const route = 'GET /me';
    const claims = (tenant: unknown, email = adminEmail('lite')) => ({
      email,
      email_verified: true,
      sub: email,
      tenant_id: tenant,
    });
    const me = (kind: Kind, auth: ApiAuth, status: number) =>
      add({ route, kind, auth, method: 'GET', path: '/me', status });
    me('sql-meta', { claims: claims(`${lite}' OR '1'='1`) }, 403);
    me('like-wildcard', { claims: claims('%') }, 403);
    me('like-wildcard', { claims: claims('bi-%') }, 403);
    me('lookalike', { claims: claims(`b${CYR.i}-lite`) }, 403);
    me('lookalike', { claims: claims(lite.toUpperCase()) }, 403);
    me('nul', { claims: claims(`${lite}\u0000`) }, 403);
    me('traversal', { claims: claims('../bi-pg') }, 403);
    me('overlong', { claims: claims(long(2000)) }, 403);
    me('wrong-type', { claims: claims([lite]) }, 401);
    me('wrong-type', { claims: claims({ $ne: null }) }, 401);
    me('wrong-type', { claims: claims(null) }, 401);
    me('sql-meta', { claims: claims(lite, "admin'--@bi-lite.example") }, 403);
    me('like-wildcard', { claims: claims(lite, '%@bi-lite.example') }, 403);
    me('lookalike', { claims: claims(lite, `${CYR.a}dmin@bi-lite.example`) }, 403);
    me('wrong-principal', op, 403);
    add({
      route,
      kind: 'traversal',
      auth: { as: 'lite' },
      method: 'GET',
      path: '/me/..%2f..%2ftenants',
      status: 404,
    });
  }

  for (const t of ['lite', 'pg', 'my'] as const) cases.push(...dataCases(t));
  // The read-only analyst may not write, update or delete.
  const analyst = { as: 'analyst' } as const;
  add({
    route: 'POST /data/:table',
    kind: 'wrong-principal',
    auth: analyst,
    method: 'POST',
    path: '/data/products',
    body: json({ sku: 'BI-A', name: 'a', category: 'c', price: 1 }),
    status: 403,
  });
  add({
    route: 'PATCH /data/:table/:id',
    kind: 'wrong-principal',
    auth: analyst,
    method: 'PATCH',
    path: '/data/products/1',
    body: json({ name: 'pwned' }),
    status: 403,
  });
  add({
    route: 'DELETE /data/:table/:id',
    kind: 'wrong-principal',
    auth: analyst,
    method: 'DELETE',
    path: '/data/products/2',
    status: 403,
  });
  add({
    route: 'GET /data/:table',
    kind: 'wrong-principal',
    auth: op,
    method: 'GET',
    path: '/data/products',
    status: 403,
  });
  add({
    route: 'DELETE /users/:user',
    kind: 'wrong-principal',
    auth: { as: 'lite' },
    method: 'DELETE',
    path: `/users/${enc(adminEmail('lite'))}`,
    status: 403,
  });
  return cases;
}

/** Hostile table names: none is a table of the tenant's template. */
function hostileTables(): { kind: Kind; value: string }[] {
  return [
    { kind: 'sql-meta', value: enc('products; DROP TABLE products') },
    { kind: 'sql-meta', value: enc("products'--") },
    { kind: 'sql-meta', value: enc('products"') },
    { kind: 'sql-meta', value: enc('products`') },
    { kind: 'like-wildcard', value: '%25' },
    { kind: 'like-wildcard', value: '_' },
    { kind: 'like-wildcard', value: 'prod%25' },
    { kind: 'nul', value: 'products%00' },
    { kind: 'lookalike', value: enc(`pr${CYR.o}ducts`) },
    { kind: 'lookalike', value: enc(fullwidth('products')) },
    { kind: 'lookalike', value: 'PRODUCTS' },
    { kind: 'traversal', value: '..%2F..%2Fetc%2Fpasswd' },
    { kind: 'traversal', value: '%2e%2e%2f%2e%2e%2fsqlite' },
    { kind: 'system-object', value: 'pg_catalog.pg_authid' },
    { kind: 'system-object', value: 'pg_user' },
    { kind: 'system-object', value: 'information_schema.tables' },
    { kind: 'system-object', value: 'sqlite_master' },
    { kind: 'system-object', value: 'mysql.user' },
    { kind: 'system-object', value: '_clonefactory_marker' },
    { kind: 'system-object', value: '_clonefactory_access' },
    { kind: 'overlong', value: long(5000) },
  ];
}

/** Hostile row ids: a row id is an integer of at most 15 digits. */
function hostileRowIds(): { kind: Kind; value: string }[] {
  return [
    { kind: 'sql-meta', value: enc('1; DROP TABLE products') },
    { kind: 'sql-meta', value: enc("1'") },
    { kind: 'sql-meta', value: enc('1 OR 1=1') },
    { kind: 'like-wildcard', value: '%25' },
    { kind: 'like-wildcard', value: '_' },
    { kind: 'nul', value: '1%00' },
    { kind: 'lookalike', value: enc(fullwidth('1')) },
    { kind: 'lookalike', value: enc('\u0663') },
    { kind: 'out-of-range', value: '1e3' },
    { kind: 'out-of-range', value: '0x1' },
    { kind: 'out-of-range', value: '1.0' },
    { kind: 'overlong', value: long(16, '9') },
    { kind: 'overlong', value: long(5000, '9') },
    { kind: 'traversal', value: '1%2F..%2F2' },
    { kind: 'traversal', value: '..%2F..%2Fetc%2Fpasswd' },
  ];
}

/** The data routes, as the admin of one tenant (every permission: only the input is wrong). */
function dataCases(t: DataTenant): ApiCase[] {
  const cases: ApiCase[] = [];
  const auth = { as: t } as const;
  const engine = ENGINE_OF[t];
  const add = (c: Omit<ApiCase, 'auth'>) => cases.push({ ...c, auth });
  const row = { sku: `BI-${t.toUpperCase()}-1`, name: 'bad input', category: 'test', price: 1 };

  // GET /data/:table
  {
    const route = 'GET /data/:table';
    for (const { kind, value } of hostileTables())
      add({ route, kind, method: 'GET', path: `/data/${value}`, status: 400, message: /unknown table/ });
    const q = (query: string, message: RegExp, kind: Kind = 'hostile-query') =>
      add({ route, kind, method: 'GET', path: `/data/products?${query}`, status: 400, message });
    q('limit=0', /limit/);
    q('limit=-1', /limit/);
    q('limit=201', /limit/);
    q('limit=abc', /limit/);
    q('limit=1.5', /limit/);
    q('limit=1e400', /limit/, 'out-of-range');
    q('limit=', /limit/);
    q(`limit=${enc("10'; --")}`, /limit/, 'sql-meta');
    q('after=abc', /row id/);
    q(`after=${enc("1' OR '1'='1")}`, /row id/, 'sql-meta');
    q('after=%25', /row id/, 'like-wildcard');
    q('after=99999999999999999999', /row id/, 'overlong');
    q('after=1%00', /row id/, 'nul');
    q('offset=10', /unknown column/);
    q(`${enc("name'; DROP TABLE products; --")}=x`, /unknown column/, 'sql-meta');
    q(`${enc('id OR 1=1')}=1`, /unknown column/, 'sql-meta');
    q('%25=x', /unknown column/, 'like-wildcard');
    q('_=x', /unknown column/, 'like-wildcard');
    q('__proto__=x', /unknown column/, 'system-object');
    q('constructor=x', /unknown column/, 'system-object');
    q(`${enc(`n${CYR.a}me`)}=x`, /unknown column/, 'lookalike');
    q('NAME=x', /unknown column/, 'lookalike');
    q('name%00=x', /unknown column/, 'nul');
    q(`${long(3000)}=1`, /unknown column/, 'overlong');
    q(`${enc('price>')}=0`, /unknown column/, 'sql-meta');
  }

  // GET /data/:table/:id
  {
    const route = 'GET /data/:table/:id';
    for (const { kind, value } of hostileRowIds())
      add({ route, kind, method: 'GET', path: `/data/products/${value}`, status: 400, message: /row id/ });
    for (const { kind, value } of hostileTables().slice(0, 3))
      add({ route, kind, method: 'GET', path: `/data/${value}/1`, status: 400, message: /unknown table/ });
    add({
      route,
      kind: 'missing',
      method: 'GET',
      path: '/data/products/999999999',
      status: 404,
      message: /no row/,
    });
  }

  // POST /data/:table
  {
    const route = 'POST /data/:table';
    const p = (kind: Kind, body: string, message?: RegExp, status = 400, table = 'products') =>
      add({ route, kind, method: 'POST', path: `/data/${table}`, body, status, message });
    for (const { kind, value } of hostileTables().slice(0, 12))
      p(kind, json(row), /unknown table/, 400, value);
    p('wrong-type', '[]', /JSON object/);
    p('wrong-type', 'null', /JSON object/);
    p('wrong-type', '"row"', /JSON object/);
    p('wrong-type', '42', /JSON object/);
    p('wrong-type', json({ ...row, name: { $gt: '' } }), /name must be/);
    p('wrong-type', json({ ...row, name: ['a', 'b'] }), /name must be/);
    p('out-of-range', '{"sku":"BI-INF","name":"n","category":"c","price":1e400}', /finite/);
    p('missing', '{}', /at least one column/);
    p('missing', json({ name: 'only a name' }), /refused the values/);
    p('unknown-field', json({ ...row, is_admin: true }), /unknown column/);
    p(
      'unknown-field',
      '{"__proto__":{"is_admin":true},"sku":"BI-P","name":"n","category":"c","price":1}',
      /unknown column/,
    );
    p('unknown-field', json({ ...row, constructor: { prototype: {} } }), /unknown column/);
    p('sql-meta', json({ ...row, "sku) VALUES ('x'); DROP TABLE products; --": 'x' }), /unknown column/);
    p('nul', json({ ...row, 'name\u0000': 'x' }), /unknown column/);
    p('lookalike', json({ sku: 'BI-L', [`n${CYR.a}me`]: 'n', category: 'c', price: 1 }), /unknown column/);
    p('constraint', json({ ...row, sku: 'GEN-0001' }), /refused the values/);
    p('constraint', json({ ...row, sku: 'BI-NEG', price: -1 }), /refused the values/);
    p('constraint', json({ ...row, id: 1 }), /refused the values/);
    p(
      'wrong-type',
      json({ ...row, id: '1; DROP TABLE products' }),
      engine === 'sqlite' ? /id must be an integer/ : /refused the values/,
    );
    p('malformed-json', '{"sku":"BI-M",', /JSON/);
    p('malformed-json', "{'sku': 'BI-M'}", /JSON/);
    p('malformed-json', '', /JSON/);
    // SQLite would store these as given (type affinity): the data API checks the declared
    // types there, as PostgreSQL and MariaDB do themselves.
    const lite = engine === 'sqlite';
    p('wrong-type', json({ ...row, price: 'abc' }), lite ? /price must be a number/ : /refused the values/);
    p(
      'overlong',
      json({ ...row, name: long(1000) }),
      lite ? /name must be at most 255/ : /refused the values/,
    );
    p(
      'wrong-type',
      json({ ...row, created_at: 'not a date' }),
      lite ? /created_at must be a date/ : /refused the values/,
    );
    if (engine === 'postgresql') p('nul', json({ ...row, name: 'bad\u0000input' }), /refused the values/);
    if (engine !== 'mysql')
      p('wrong-type', json({ ...row, stock: 1.5 }), lite ? /stock must be an integer/ : /refused the values/);
    if (engine === 'mysql') p('out-of-range', json({ ...row, stock: 1e20 }), /refused the values/);
  }

  // PATCH /data/:table/:id (row 1 exists in every template)
  {
    const route = 'PATCH /data/:table/:id';
    const u = (kind: Kind, body: string, message?: RegExp, id = '1', table = 'products', status = 400) =>
      add({ route, kind, method: 'PATCH', path: `/data/${table}/${id}`, body, status, message });
    for (const { kind, value } of hostileRowIds().slice(0, 8))
      u(kind, json({ name: 'pwned' }), /row id/, value);
    for (const { kind, value } of hostileTables().slice(0, 4))
      u(kind, json({ name: 'pwned' }), /unknown table/, '1', value);
    u('constraint', json({ id: 999 }), /cannot be changed/);
    u('constraint', json({ price: -5 }), /refused the values/);
    u('constraint', json({ sku: 'GEN-0002' }), /refused the values/);
    u('constraint', json({ name: null }), /refused the values/);
    u('missing', '{}', /nothing to update/);
    u('wrong-type', '[]', /JSON object/);
    u('wrong-type', 'null', /JSON object/);
    u('wrong-type', json({ price: { $inc: 1 } }), /price must be/);
    u('unknown-field', json({ name: 'x', owner: 'intruder' }), /unknown column/);
    u('sql-meta', json({ "name = 'pwned', price": 0 }), /unknown column/);
    u('malformed-json', '{"name":"x"', /JSON/);
    u('missing', json({ name: 'x' }), /no row/, '999999999', 'products', 404);
    u(
      'wrong-type',
      json({ price: 'abc' }),
      engine === 'sqlite' ? /price must be a number/ : /refused the values/,
    );
    if (engine === 'sqlite') u('wrong-type', json({ stock: true }), /stock must be an integer/);
  }

  // DELETE /data/:table/:id
  {
    const route = 'DELETE /data/:table/:id';
    const d = (kind: Kind, table: string, id: string, message?: RegExp, status = 400) =>
      add({ route, kind, method: 'DELETE', path: `/data/${table}/${id}`, status, message });
    for (const { kind, value } of hostileRowIds()) d(kind, 'products', value, /row id/);
    for (const { kind, value } of hostileTables().slice(0, 6)) d(kind, value, '1', /unknown table/);
    d('system-object', '_clonefactory_marker', '1', /unknown table/);
    // Product 1 has orders: the foreign key refuses its deletion.
    d('constraint', 'products', '1', /refused the values/);
    d('missing', 'products', '', undefined, 404);
  }
  return cases;
}

/** A valid set of options for `tenants create`, to vary one at a time. */
const CREATE = ['--engine', 'sqlite', '--industry', 'technology', '--version', 'v1.1'];

/**
 * The hand-written CLI cases. Those that reach the control plane start it in-process (as a
 * user's `clonectl` does with no server running), against a state directory of their own;
 * argv cannot carry NUL, so NUL cases run in-process only.
 */
export function cliCorpus(): CliCase[] {
  const c = (command: string, kind: Kind, args: string[], extra: Partial<CliCase> = {}): CliCase => ({
    command: `clonectl${command ? ` ${command}` : ''}`,
    kind,
    args,
    ...extra,
  });
  const invalid = (message: RegExp, spawn = false): Partial<CliCase> => ({ exit: 2, message, spawn });
  const tenantId = /invalid tenant id/;
  return [
    c('', 'sql-meta', ['tenants;rm -rf /'], invalid(/unknown command/)),
    c('', 'traversal', ['../../etc/passwd'], invalid(/unknown command/)),
    c('', 'unknown-option', ['--engine', 'oracle'], invalid(/unknown option/)),

    c('templates', 'sql-meta', ['templates', 'list;id'], invalid(/unknown command/)),
    c(
      'templates list',
      'sql-meta',
      ['templates', 'list', '--engine', "sqlite'; --"],
      invalid(/Allowed choices/),
    ),
    c(
      'templates list',
      'lookalike',
      ['templates', 'list', '--engine', `${CYR.s}qlite`],
      invalid(/Allowed choices/),
    ),
    c(
      'templates list',
      'like-wildcard',
      ['templates', 'list', '--version', 'v1.1%'],
      invalid(/unknown version/),
    ),
    c(
      'templates list',
      'traversal',
      ['templates', 'list', '--industry', '../finance'],
      invalid(/unknown industry/),
    ),
    c(
      'templates show',
      'traversal',
      ['templates', 'show', 'sqlite', 'v1.1', '../../../etc/passwd'],
      invalid(/unknown industry/, true),
    ),
    c(
      'templates show',
      'sql-meta',
      ['templates', 'show', 'sqlite', 'v1.1;DROP TABLE x', 'finance'],
      invalid(/unknown version/),
    ),
    c(
      'templates show',
      'lookalike',
      ['templates', 'show', fullwidth('sqlite'), 'v1.1', 'finance'],
      invalid(/unknown engine/),
    ),
    c(
      'templates show',
      'nul',
      ['templates', 'show', 'sqlite', 'v1.1', 'technology\u0000'],
      invalid(/unknown industry/),
    ),
    c(
      'templates show',
      'overlong',
      ['templates', 'show', 'sqlite', 'v1.1', long(5000)],
      invalid(/unknown industry/),
    ),
    c(
      'templates show',
      'missing',
      ['templates', 'show', 'sqlite', 'v1.1'],
      invalid(/missing required argument/),
    ),
    c(
      'templates validate',
      'bad-choice',
      ['templates', 'validate', '--engine', 'oracle'],
      invalid(/Allowed choices/),
    ),
    c(
      'templates validate',
      'sql-meta',
      ['templates', 'validate', '--engine', 'mysql;drop'],
      invalid(/Allowed choices/),
    ),
    c(
      'templates build',
      'like-wildcard',
      ['templates', 'build', '--engine', '%'],
      invalid(/Allowed choices/),
    ),
    c(
      'templates build',
      'traversal',
      ['templates', 'build', '--engine', 'sqlite', '--version', '../v1.1'],
      invalid(/unknown version/),
    ),
    c(
      'templates build',
      'sql-meta',
      [
        'templates',
        'build',
        '--force',
        '--engine',
        'postgresql',
        '--industry',
        "finance'; DROP DATABASE postgres; --",
      ],
      invalid(/unknown industry/),
    ),
    c(
      'templates rehash',
      'excess-args',
      ['templates', 'rehash', '../../root_schemas/manifest.json'],
      invalid(/too many arguments/),
    ),
    c('templates rehash', 'unknown-option', ['templates', 'rehash', '--force'], invalid(/unknown option/)),

    c('tenants', 'sql-meta', ['tenants', "list'; --"], invalid(/unknown command/)),
    c(
      'tenants create',
      'sql-meta',
      [
        'tenants',
        'create',
        "acme'; DROP DATABASE postgres; --",
        '--engine',
        'postgresql',
        '--industry',
        'technology',
        '--version',
        'v1.1',
      ],
      invalid(tenantId, true),
    ),
    c('tenants create', 'lookalike', ['tenants', 'create', `${CYR.a}cme`, ...CREATE], invalid(tenantId)),
    c('tenants create', 'like-wildcard', ['tenants', 'create', 'acme%', ...CREATE], invalid(tenantId)),
    c('tenants create', 'like-wildcard', ['tenants', 'create', 'acme_x', ...CREATE], invalid(tenantId)),
    c('tenants create', 'traversal', ['tenants', 'create', '../../etc', ...CREATE], invalid(tenantId)),
    c('tenants create', 'overlong', ['tenants', 'create', long(5000), ...CREATE], invalid(/tenantId/)),
    c('tenants create', 'nul', ['tenants', 'create', 'acme\u0000', ...CREATE], invalid(tenantId)),
    c('tenants create', 'reserved-name', ['tenants', 'create', 'admin', ...CREATE], invalid(/reserved/)),
    c(
      'tenants create',
      'like-wildcard',
      [
        'tenants',
        'create',
        'acme-ok',
        '--engine',
        'sqlite',
        '--industry',
        'technology%',
        '--version',
        'v1.1',
      ],
      invalid(/industry/),
    ),
    c(
      'tenants create',
      'sql-meta',
      [
        'tenants',
        'create',
        'acme-ok',
        '--engine',
        'sqlite',
        '--industry',
        'technology',
        '--version',
        "v1.1'--",
      ],
      invalid(/version/),
    ),
    c(
      'tenants create',
      'bad-choice',
      ['tenants', 'create', 'acme-ok', '--engine', 'oracle', '--industry', 'technology', '--version', 'v1.1'],
      invalid(/Allowed choices/),
    ),
    c(
      'tenants create',
      'sql-meta',
      ['tenants', 'create', 'acme-ok', ...CREATE, '--placement', 'shared;'],
      invalid(/Allowed choices/),
    ),
    c(
      'tenants create',
      'out-of-range',
      ['tenants', 'create', 'acme-ok', ...CREATE, '--sample-size', '-1'],
      invalid(/whole number/),
    ),
    c(
      'tenants create',
      'out-of-range',
      ['tenants', 'create', 'acme-ok', ...CREATE, '--sample-size', '1e9'],
      invalid(/whole number/),
    ),
    c(
      'tenants create',
      'missing',
      ['tenants', 'create', 'acme-ok', '--industry', 'technology', '--version', 'v1.1'],
      invalid(/required option/),
    ),
    c(
      'tenants list',
      'unknown-option',
      ['tenants', 'list', '--state', "READY'--"],
      invalid(/unknown option/),
    ),
    c('tenants list', 'excess-args', ['tenants', 'list', '%'], invalid(/too many arguments/)),
    c('tenants show', 'sql-meta', ['tenants', 'show', "bi'; --"], invalid(tenantId)),
    c('tenants show', 'like-wildcard', ['tenants', 'show', '%'], invalid(tenantId)),
    c('tenants delete', 'lookalike', ['tenants', 'delete', `b${CYR.i}-lite`], invalid(tenantId)),
    c('tenants delete', 'like-wildcard', ['tenants', 'delete', '*'], invalid(tenantId)),
    c(
      'tenants move',
      'sql-meta',
      ['tenants', 'move', 'acme-ok', '--placement', 'dedicated; rm -rf /'],
      invalid(/Allowed choices/, true),
    ),
    c(
      'tenants move',
      'sql-meta',
      ['tenants', 'move', "acme'--", '--placement', 'dedicated'],
      invalid(tenantId),
    ),
    c('tenants upgrade', 'like-wildcard', ['tenants', 'upgrade', 'acme%', '--to', 'v1.1'], invalid(tenantId)),
    c('tenants upgrade', 'missing', ['tenants', 'upgrade', 'acme-ok'], invalid(/required option/)),
    c('tenants branch', 'sql-meta', ['tenants', 'branch', "src'--", 'new-one'], invalid(tenantId)),
    c('tenants branch', 'missing', ['tenants', 'branch', 'src-ok'], invalid(/missing required argument/)),

    c(
      'upgrade',
      'sql-meta',
      ['upgrade', '--to', 'v1.1; DROP TABLE runs'],
      invalid(/invalid upgrade request/),
    ),
    c('upgrade', 'like-wildcard', ['upgrade', '--to', 'v1.1', '--tenants', 'acme%,acme_'], invalid(tenantId)),
    // An empty filter must not widen the run to every tenant.
    c('upgrade', 'missing', ['upgrade', '--to', 'v1.1', '--tenants', ''], invalid(tenantId)),
    c('upgrade', 'missing', ['upgrade', '--to', 'v1.1', '--from', ''], invalid(/version/)),
    c(
      'upgrade',
      'conflict',
      ['upgrade', '--to', 'v1.1', '--continue-on-error', '--max-failures', '1'],
      invalid(/exclude each other/),
    ),
    c('upgrade', 'bad-choice', ['upgrade', '--to', 'v1.1', '--engine', 'oracle'], invalid(/Allowed choices/)),
    c('upgrade', 'out-of-range', ['upgrade', '--to', 'v1.1', '--canary', '-1'], invalid(/whole number/)),
    c(
      'upgrade',
      'out-of-range',
      ['upgrade', '--to', 'v1.1', '--max-concurrency', '0'],
      invalid(/whole number/),
    ),
    c(
      'upgrade',
      'out-of-range',
      ['upgrade', '--to', 'v1.1', '--max-failure-percent', '0'],
      invalid(/above 0/),
    ),
    c('upgrades', 'bad-choice', ['upgrades', 'rm', '--all'], invalid(/unknown command/)),
    c('upgrades list', 'unknown-option', ['upgrades', 'list', '--all'], invalid(/unknown option/)),
    c('upgrades show', 'traversal', ['upgrades', 'show', 'upg-../../x'], invalid(/upgrade run id/)),
    c('upgrades stop', 'sql-meta', ['upgrades', 'stop', "'; DROP TABLE runs; --"], invalid(/upgrade run id/)),
    c(
      'upgrades resume',
      'lookalike',
      ['upgrades', 'resume', 'UPG-20260101T000000-ABCDEF'],
      invalid(/upgrade run id/),
    ),

    c('drift', 'unknown-option', ['drift', '--tenant', 'x'], invalid(/unknown option/)),
    c('drift', 'excess-args', ['drift', 'all'], invalid(/too many arguments/)),
    c('reconcile', 'out-of-range', ['reconcile', '--grace', '-5'], invalid(/minutes/)),
    c('reconcile', 'wrong-type', ['reconcile', '--grace', 'abc'], invalid(/minutes/)),
    c('reconcile', 'out-of-range', ['reconcile', '--grace', 'Infinity'], invalid(/minutes/)),
    // 1e308 minutes is Infinity in milliseconds: it used to run (and record) a reconcile.
    c('reconcile', 'out-of-range', ['reconcile', '--grace', '1e308'], invalid(/minutes/, true)),
    c('reconcile', 'excess-args', ['reconcile', '--apply', 'yes'], invalid(/too many arguments/)),
    c('status', 'unknown-option', ['status', '--watch'], invalid(/unknown option/)),
    c('status', 'excess-args', ['status', '%'], invalid(/too many arguments/)),
    c('console', 'traversal', ['console', '../../etc'], invalid(/too many arguments/)),
    c('console', 'unknown-option', ['console', '--token', 'x'], invalid(/unknown option/)),
    c('executions', 'sql-meta', ['executions', "show'; --"], invalid(/unknown command/)),
    c('executions show', 'traversal', ['executions', 'show', '../../etc/passwd'], invalid(tenantId)),
    c('executions show', 'overlong', ['executions', 'show', long(300)], invalid(tenantId)),

    c('users', 'sql-meta', ['users', "grant'; --"], invalid(/unknown command/)),
    c(
      'users map',
      'wrong-type',
      ['users', 'map', '--email', 'not-an-email', '--tenant', 'acme-ok', '--role', 'admin'],
      invalid(/email/),
    ),
    c(
      'users map',
      'lookalike',
      ['users', 'map', '--email', `${CYR.a}dmin@example.com`, '--tenant', 'acme-ok', '--role', 'admin'],
      invalid(/email/),
    ),
    c(
      'users map',
      'sql-meta',
      ['users', 'map', '--email', 'x@example.com', '--tenant', "acme'; --", '--role', 'admin'],
      invalid(tenantId),
    ),
    c(
      'users map',
      'traversal',
      [
        'users',
        'map',
        '--email',
        'x@example.com',
        '--tenant',
        'acme-ok',
        '--role',
        'admin',
        '--user-id',
        '../../root',
      ],
      invalid(/userId/),
    ),
    c(
      'users map',
      'bad-choice',
      ['users', 'map', '--email', 'x@example.com', '--tenant', 'acme-ok', '--role', 'root'],
      invalid(/Allowed choices/),
    ),
    c('users unmap', 'sql-meta', ['users', 'unmap', "' OR '1'='1"], invalid(/invalid user id/)),
    c('users unmap', 'like-wildcard', ['users', 'unmap', '%'], { exit: 1, message: /no mapping for user %/ }),
    c('users list', 'sql-meta', ['users', 'list', '--tenant', "acme'--"], invalid(tenantId)),

    c(
      'token',
      'out-of-range',
      ['token', '--email', 'ops@example.com', '--operator', '--ttl', '0'],
      invalid(/1 to 86400/, true),
    ),
    c(
      'token',
      'out-of-range',
      ['token', '--email', 'ops@example.com', '--operator', '--ttl', '1e9'],
      invalid(/1 to 86400/),
    ),
    c(
      'token',
      'sql-meta',
      ['token', '--email', "x'; DROP TABLE users; --", '--operator'],
      invalid(/invalid email/),
    ),
    c(
      'token',
      'lookalike',
      ['token', '--email', 'x@example.com', '--tenant', `${CYR.a}cme`],
      invalid(/tenant/),
    ),
    c('token', 'missing', ['token', '--email', 'x@example.com'], invalid(/tenant/)),
    // An operator token used to carry any tenant claim it was given.
    c(
      'token',
      'sql-meta',
      ['token', '--email', 'ops@example.com', '--operator', '--tenant', "acme'; --"],
      invalid(/tenant/),
    ),
    c(
      'token',
      'overlong',
      ['token', '--email', `${long(300)}@example.com`, '--operator'],
      invalid(/invalid email/),
    ),
    c('serve', 'out-of-range', ['serve', '--port', '99999'], invalid(/port number/)),
    c('serve', 'sql-meta', ['serve', '--port', '3000;rm -rf /'], invalid(/port number/)),
    c('serve', 'out-of-range', ['serve', '--port', '-1'], invalid(/port number/)),
    c('serve', 'missing', ['serve', '--host'], invalid(/argument missing/)),
    c('demo', 'unknown-option', ['demo', '--tenant', 'x'], invalid(/unknown option/)),
    c('demo', 'excess-args', ['demo', 'all'], invalid(/too many arguments/)),
  ];
}
