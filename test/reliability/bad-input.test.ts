import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join, relative } from 'node:path';
import { format } from 'node:util';
import type { Command } from 'commander';
import { importJWK, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiDeps, createApiApp } from '../../functions/api/app.js';
import { openApiDocument } from '../../functions/api/openapi.js';
import { ROUTES, type RouteSpec } from '../../functions/core/auth/policy.js';
import { runCli } from '../../local/cli/output.js';
import { buildProgram } from '../../local/cli/program.js';
import { LocalControlPlane } from '../../local/control-plane.js';
import { DEV_ALGORITHM, DEV_AUDIENCE, DEV_ISSUER } from '../../local/dev-issuer.js';
import { LocalEnvironment } from '../../local/environment.js';
import { LocalServer } from '../../local/server.js';
import { type CliResult, clonectl } from '../support/cli.js';
import { startTestPlane, type TestPlane } from '../support/control-plane.js';
import { tempDir, testNamespace } from '../support/engines.js';
import {
  ANALYST_EMAIL,
  type ApiAuth,
  type ApiCase,
  adminEmail,
  apiCorpus,
  type CliCase,
  cliCorpus,
  DATA_TENANTS,
  type DataTenant,
  ENGINE_OF,
  HUGE_BODY,
  KINDS,
  type Kind,
} from './bad-input-corpus.js';
import { recordFigures } from './profile.js';

// The bad input corpus (issue 8, part 5): every API route and every clonectl command gets
// hostile and malformed input; each must be refused clearly (a JSON 4xx with a message, or a
// non-zero exit with a message on stderr and no stack trace), create nothing, and leave the
// server serving. See bad-input-corpus.ts for the cases.

const DATA: readonly DataTenant[] = ['lite', 'pg', 'my'];
/** A stack trace, or a path into the code, in what a client or a user sees. */
const STACK = /\n\s+at\s|\bat .+:\d+:\d+\)|node_modules|file:\/\/|\/work\/|unexpected error/;
/** A "clear" message: said in one breath, not a dump of the input. */
const MAX_MESSAGE = 1024;

const started = performance.now();
const routeKey = (r: Pick<RouteSpec, 'method' | 'path'>) => `${r.method} ${r.path}`;

interface Outcome {
  readonly name: string;
  readonly kind: Kind;
  readonly problem: string | null;
}
const figures = {
  api: { tried: 0, rejected: 0, handWritten: 0, generated: 0, statuses: {} as Record<string, number>, ms: 0 },
  cli: {
    tried: 0,
    rejected: 0,
    inProcess: 0,
    spawned: 0,
    exits: {} as Record<string, number>,
    ms: 0,
    slowest: [] as { name: string; ms: number }[],
  },
  byKind: Object.fromEntries(KINDS.map((k) => [k, { tried: 0, rejected: 0 }])) as Record<
    Kind,
    { tried: number; rejected: number }
  >,
};
function count(side: 'api' | 'cli', outcome: Outcome): void {
  figures[side].tried++;
  figures.byKind[outcome.kind].tried++;
  if (outcome.problem === null) {
    figures[side].rejected++;
    figures.byKind[outcome.kind].rejected++;
  }
}

let t: TestPlane;
let server: LocalServer;
const tokens = {} as Record<'operator' | 'analyst' | DataTenant, string>;
let signClaims: (claims: Readonly<Record<string, unknown>>) => Promise<string>;
const cliHome = tempDir('bad-input-cli');
const cliNamespace = testNamespace();

beforeAll(async () => {
  t = await startTestPlane();
  server = await LocalServer.start({ plane: t.plane, port: 0 });
  // One READY tenant per engine, each with an admin; an analyst (read only) on the SQLite one.
  const created = await Promise.all(
    DATA.map((d) => t.create({ tenantId: DATA_TENANTS[d], engine: ENGINE_OF[d] })),
  );
  expect(created.map((e) => e.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
  for (const d of DATA) {
    await t.plane.users.map({ email: adminEmail(d), tenantId: DATA_TENANTS[d], appRole: 'admin' });
    tokens[d] = await server.issuer.mint({ email: adminEmail(d), tenant: DATA_TENANTS[d] });
  }
  await t.plane.users.map({ email: ANALYST_EMAIL, tenantId: DATA_TENANTS.lite, appRole: 'analyst' });
  tokens.analyst = await server.issuer.mint({ email: ANALYST_EMAIL, tenant: DATA_TENANTS.lite });
  tokens.operator = await server.issuer.mint({ email: 'ops@bad-input.example', operator: true });
  // Tokens the issuer itself would sign, with hostile claims: only the claims are wrong.
  const key = JSON.parse(readFileSync(join(t.home, 'dev-issuer', 'key.json'), 'utf8')) as {
    kid: string;
    privateJwk: JWK;
  };
  const privateKey = await importJWK(key.privateJwk, DEV_ALGORITHM);
  signClaims = (claims) =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg: DEV_ALGORITHM, kid: key.kid, typ: 'JWT' })
      .setIssuer(DEV_ISSUER)
      .setAudience(DEV_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('600s')
      .sign(privateKey);
});

afterAll(async () => {
  recordFigures({
    suite: 'bad-input',
    runs: figures.api.tried + figures.cli.tried,
    badInputsTried: figures.api.tried + figures.cli.tried,
    badInputsRejected: figures.api.rejected + figures.cli.rejected,
    details: {
      api: { ...figures.api, routes: ROUTES.length },
      cli: { ...figures.cli, commands: commandPaths(buildProgram()).length },
      byKind: Object.fromEntries(Object.entries(figures.byKind).filter(([, v]) => v.tried > 0)),
      durationMs: Math.round(performance.now() - started),
    },
  });
  await server?.close();
  await t?.close();
  // Nothing should be there; a regression of the corpus must not leave databases behind.
  const env = new LocalEnvironment({ env: { ...process.env, CLONEFACTORY_HOME: cliHome } });
  for (const name of ['postgresql', 'mysql'] as const) {
    const r = await env.tryEngine(name);
    if ('engine' in r)
      for (const db of await r.engine.listDatabases(`${cliNamespace}_`)) await r.engine.dropDatabase(db);
  }
  await env.close();
  rmSync(cliHome, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// What exists: the routes of the app, of ROUTES and of the OpenAPI document; the command tree.

/** The routes the Hono app registers (its handlers are never called: no deps are needed). */
function appRoutes(): string[] {
  const authenticate: ApiDeps['authenticate'] = async (_c, next) => next();
  const app = createApiApp({ authenticate } as ApiDeps);
  return [
    ...new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`)),
  ].sort();
}

function openApiRoutes(): string[] {
  const paths = openApiDocument().paths as Record<string, Record<string, unknown>>;
  return Object.entries(paths)
    .flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{([A-Za-z]+)\}/g, ':$1')}`),
    )
    .sort();
}

function commandPaths(cmd: Command, parent = ''): string[] {
  const name = parent ? `${parent} ${cmd.name()}` : cmd.name();
  return [name, ...cmd.commands.flatMap((sub) => commandPaths(sub, name))];
}

// ---------------------------------------------------------------------------------------------
// Cases every route gets from ROUTES: credentials, and bodies over the limit.

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const UNSIGNED = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({
  email: 'ops@bad-input.example',
  sub: 'ops@bad-input.example',
  scope: 'clonefactory/operator',
  iss: DEV_ISSUER,
  aud: DEV_AUDIENCE,
  iat: Math.floor(Date.now() / 1000),
  exp: Math.floor(Date.now() / 1000) + 600,
})}.`;

/** A route's path with valid-looking parameters (the credentials or the body are what is wrong). */
function concrete(route: RouteSpec): string {
  const data = route.path.startsWith('/data/');
  return route.path
    .replace(':engine', 'sqlite')
    .replace(':version', 'v1.1')
    .replace(':industry', 'technology')
    .replace(':table', 'products')
    .replace(':id', data ? '1' : DATA_TENANTS.lite)
    .replace(':runId', 'upg-20260101t000000-abcdef')
    .replace(':user', encodeURIComponent(adminEmail('lite')))
    .replace(':name', `${DATA_TENANTS.lite}--000000000000`);
}

function generatedCases(): ApiCase[] {
  const cases: ApiCase[] = [];
  for (const spec of ROUTES) {
    const route = routeKey(spec);
    const path = concrete(spec);
    const method = spec.method;
    const body = method === 'GET' ? undefined : '{}';
    const base = { route, method, path, body };
    cases.push(
      { ...base, kind: 'bad-credential', auth: { header: null }, status: 401 },
      { ...base, kind: 'bad-credential', auth: { header: "Bearer x';DROP TABLE tenants;--" }, status: 401 },
      { ...base, kind: 'bad-credential', auth: { header: `Bearer ${UNSIGNED}` }, status: 401 },
      { ...base, kind: 'overlong', auth: { header: `Bearer ${'A'.repeat(9000)}` }, status: 401 },
    );
    if (spec.access === 'operator')
      cases.push({ ...base, kind: 'wrong-principal', auth: { as: 'lite' }, status: 403 });
    else if (spec.access !== 'any')
      cases.push({ ...base, kind: 'wrong-principal', auth: { as: 'operator' }, status: 403 });
    if (method !== 'GET') {
      const auth: ApiAuth = spec.access === 'operator' ? { as: 'operator' } : { as: 'lite' };
      for (const chunked of [false, true])
        cases.push({
          route,
          method,
          path,
          auth,
          kind: 'huge-body',
          body: HUGE_BODY,
          chunked,
          status: 413,
          message: /64 KiB/,
        });
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// HTTP, raw: the path is sent as written, bodies may be chunked, GET and DELETE may carry one.

interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

function send(
  c: Pick<ApiCase, 'method' | 'path' | 'body' | 'chunked'>,
  authorization: string | null,
): Promise<Reply> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const headers: Record<string, string> = {};
    if (authorization !== null) headers.authorization = authorization;
    if (c.body !== undefined) {
      headers['content-type'] = 'application/json';
      if (c.chunked) headers['transfer-encoding'] = 'chunked';
      else headers['content-length'] = String(Buffer.byteLength(c.body));
    }
    const req = request(
      { host: url.hostname, port: url.port, method: c.method, path: c.path, headers, agent: false },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    // The server may answer 413 and close before a large body is all written: that is its right.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer to ${c.method} ${c.path.slice(0, 80)}`)));
    if (c.body === undefined) req.end();
    else if (c.chunked) {
      const body = Buffer.from(c.body);
      for (let i = 0; i < body.length; i += 8192) req.write(body.subarray(i, i + 8192));
      req.end();
    } else req.end(c.body);
  });
}

async function authorization(auth: ApiAuth): Promise<string | null> {
  if ('as' in auth) return `Bearer ${tokens[auth.as]}`;
  if ('header' in auth) return auth.header;
  return `Bearer ${await signClaims(auth.claims)}`;
}

/** null when the reply is a clear refusal; else what is wrong with it. */
function judgeReply(c: ApiCase, reply: Reply): string | null {
  if (reply.status < 400 || reply.status > 499) return `status ${reply.status}: ${reply.text.slice(0, 200)}`;
  if (c.status !== undefined && reply.status !== c.status)
    return `status ${reply.status}, expected ${c.status}: ${reply.text.slice(0, 200)}`;
  if (!reply.contentType.includes('application/json')) return `content type ${reply.contentType}`;
  let body: { message?: unknown };
  try {
    body = JSON.parse(reply.text) as { message?: unknown };
  } catch {
    return `body is not JSON: ${reply.text.slice(0, 200)}`;
  }
  if (typeof body?.message !== 'string' || body.message.trim() === '')
    return `no message: ${reply.text.slice(0, 200)}`;
  if (STACK.test(reply.text)) return `stack trace or code path: ${reply.text.slice(0, 300)}`;
  if (body.message.length > MAX_MESSAGE) return `message of ${body.message.length} characters`;
  if (c.message && !c.message.test(body.message))
    return `message ${JSON.stringify(body.message)} does not match ${c.message}`;
  return null;
}

const caseName = (c: ApiCase) =>
  `${c.method} ${c.path.length > 90 ? `${c.path.slice(0, 90)}…(${c.path.length})` : c.path}${
    c.body !== undefined
      ? ` ${c.body.length > 60 ? `${c.body.slice(0, 60)}…(${c.body.length})` : c.body}`
      : ''
  }${c.chunked ? ' [chunked]' : ''} as ${JSON.stringify(c.auth).slice(0, 60)} [${c.kind}]`;

// ---------------------------------------------------------------------------------------------
// "Nothing created": the plane's registry, mappings, runs, executions, databases, files, rows.

function files(root: string, skip: readonly string[]): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(root, path);
      if (skip.some((s) => rel === s || rel.startsWith(`${s}/`))) continue;
      // SQLite's journal and WAL files come and go with its sessions.
      if (/-(wal|shm|journal)$/.test(entry.name)) continue;
      // So do the temporaries of atomic writes (an ended execution's history is written behind).
      if (/\.tmp-[0-9a-f]+$/.test(entry.name)) continue;
      if (entry.isDirectory()) walk(path);
      else out.push(rel);
    }
  };
  walk(root);
  return out.sort();
}

async function databases(namespace: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const engine of ['postgresql', 'mysql', 'sqlite'] as const)
    out[engine] = await (await t.shared(engine)).listDatabases(`${namespace}_`);
  return out;
}

async function getJson(
  path: string,
  token: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every row of every table of each data tenant, hashed, read as its admin. */
async function rowsSnapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const d of DATA) {
    const me = await getJson('/me', tokens[d]);
    expect(me.status, `GET /me as ${d}`).toBe(200);
    for (const table of me.body.tables as string[]) {
      const rows: unknown[] = [];
      let after: string | undefined;
      do {
        const page = await getJson(`/data/${table}?limit=200${after ? `&after=${after}` : ''}`, tokens[d]);
        expect(page.status, `GET /data/${table} as ${d}`).toBe(200);
        rows.push(...(page.body.rows as unknown[]));
        after = page.body.next as string | undefined;
      } while (after);
      out[`${d}/${table}`] =
        `${rows.length} rows ${createHash('sha256').update(JSON.stringify(rows)).digest('hex')}`;
    }
  }
  return out;
}

async function planeSnapshot() {
  const { plane } = t;
  return {
    tenants: (await plane.tenants.list())
      .map(
        (r) => `${r.tenantId} ${r.cloneId} ${r.state} ${r.engine} ${r.version} ${r.placement} rev ${r.rev}`,
      )
      .sort(),
    users: (await plane.users.list()).map(
      (m) => `${m.userId} ${m.tenantId} ${m.cloneId} ${m.appRole} rev ${m.rev}`,
    ),
    upgradeRuns: (await plane.upgrades.list()).map((r) => r.runId),
    executions: (await plane.runner.list()).map((e) => `${e.name} ${e.status}`).sort(),
    databases: await databases(t.namespace),
    secrets: await plane.deps.secrets.list(''),
    files: files(t.home, ['registry', 'workflows']),
    rows: await rowsSnapshot(),
  };
}

// ---------------------------------------------------------------------------------------------
// The CLI in this process: runCli, as bin/clonectl.ts runs it, with its output captured.

async function runInProcess(args: readonly string[]): Promise<CliResult> {
  const program = buildProgram();
  let stdout = '';
  let stderr = '';
  const route = (cmd: Command) => {
    cmd.configureOutput({
      writeOut: (s) => {
        stdout += s;
      },
      writeErr: (s) => {
        stderr += s;
      },
    });
    for (const sub of cmd.commands) route(sub);
  };
  route(program);
  const saved = {
    out: process.stdout.write,
    err: process.stderr.write,
    log: console.log,
    info: console.info,
    warn: console.warn,
    error: console.error,
    exitCode: process.exitCode,
  };
  const capture = (append: (s: string) => void) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof process.stdout.write;
  process.stdout.write = capture((s) => {
    stdout += s;
  });
  process.stderr.write = capture((s) => {
    stderr += s;
  });
  console.log = console.info = (...a: unknown[]) => {
    stdout += `${format(...a)}\n`;
  };
  console.warn = console.error = (...a: unknown[]) => {
    stderr += `${format(...a)}\n`;
  };
  process.exitCode = undefined;
  try {
    await runCli(program, ['node', 'clonectl', ...args]);
    return { status: Number(process.exitCode ?? 0), stdout, stderr };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    console.log = saved.log;
    console.info = saved.info;
    console.warn = saved.warn;
    console.error = saved.error;
    process.exitCode = saved.exitCode;
  }
}

function judgeExit(c: CliCase, r: CliResult): string | null {
  const said = `exit ${r.status}; stderr ${JSON.stringify(r.stderr.slice(0, 300))}; stdout ${JSON.stringify(r.stdout.slice(0, 200))}`;
  if (r.status === 0 || r.status === null) return `succeeded: ${said}`;
  if (c.exit !== undefined && r.status !== c.exit) return `expected exit ${c.exit}: ${said}`;
  if (r.stderr.trim() === '') return `no message on stderr: ${said}`;
  if (!/^(clonectl: |error: )/m.test(r.stderr)) return `no clonectl or commander error line: ${said}`;
  if (STACK.test(r.stderr)) return `stack trace: ${said}`;
  if (r.stdout.trim() !== '') return `printed on stdout: ${said}`;
  if (c.message && !c.message.test(r.stderr)) return `stderr does not match ${c.message}: ${said}`;
  return null;
}

async function cliSnapshot() {
  return {
    files: files(cliHome, ['registry', 'workflows']),
    databases: await databases(cliNamespace),
  };
}

// ---------------------------------------------------------------------------------------------

describe('bad input corpus', () => {
  const api = apiCorpus();
  const cli = cliCorpus();

  it('has hand-written cases for every API route and every CLI command', () => {
    const routes = ROUTES.map(routeKey).sort();
    // The app registers exactly ROUTES, and the OpenAPI document describes exactly them.
    expect(appRoutes()).toEqual(routes);
    expect(openApiRoutes()).toEqual(routes);
    const covered = new Set(api.map((c) => c.route));
    expect(
      routes.filter((r) => !covered.has(r)),
      'routes without bad-input cases',
    ).toEqual([]);
    expect(
      [...covered].filter((r) => !routes.includes(r)),
      'cases for routes that do not exist',
    ).toEqual([]);

    const commands = commandPaths(buildProgram());
    expect(commands.length).toBeGreaterThan(30);
    const attacked = new Set(cli.map((c) => c.command));
    expect(
      commands.filter((c) => !attacked.has(c)),
      'commands without bad-input cases',
    ).toEqual([]);
    expect(
      [...attacked].filter((c) => !commands.includes(c)),
      'cases for commands that do not exist',
    ).toEqual([]);
    // Some cases go through a real process, to prove the exit code and the stderr path.
    expect(cli.filter((c) => c.spawn).length).toBeGreaterThanOrEqual(5);
  });

  it('API: every hostile input gets a clear JSON 4xx, creates nothing, and the server keeps serving', async () => {
    const t0 = performance.now();
    const generated = generatedCases();
    figures.api.handWritten = api.length;
    figures.api.generated = generated.length;
    const before = await planeSnapshot();
    const failures: string[] = [];
    for (const c of [...api, ...generated]) {
      let problem: string | null;
      try {
        const reply = await send(c, await authorization(c.auth));
        figures.api.statuses[reply.status] = (figures.api.statuses[reply.status] ?? 0) + 1;
        problem = judgeReply(c, reply);
      } catch (error) {
        problem = `request failed: ${(error as Error).message}`;
      }
      count('api', { name: caseName(c), kind: c.kind, problem });
      if (problem) failures.push(`${caseName(c)}: ${problem}`);
    }
    const after = await planeSnapshot();
    figures.api.ms = Math.round(performance.now() - t0);
    // Soft: a failing run also shows what the refused requests created.
    expect
      .soft(failures, `${failures.length} of ${figures.api.tried} API cases not refused clearly`)
      .toEqual([]);
    expect.soft(after, 'what exists after the corpus').toEqual(before);
    expect(figures.api.rejected).toBe(figures.api.tried);

    // Still serving: health, the registry, each user's data, and a valid write.
    const health = await getJson('/health', tokens.operator);
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('ok');
    const tenants = await getJson('/tenants', tokens.operator);
    expect((tenants.body.tenants as { state: string }[]).map((r) => r.state)).toEqual([
      'READY',
      'READY',
      'READY',
    ]);
    for (const d of DATA) {
      const me = await getJson('/me', tokens[d]);
      expect(me.status).toBe(200);
      expect((me.body.clone as { tenantId: string }).tenantId).toBe(DATA_TENANTS[d]);
      const insert = await fetch(`${server.url}/data/products`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens[d]}`, 'content-type': 'application/json' },
        body: JSON.stringify({ sku: `BI-OK-${d}`, name: 'after the corpus', category: 'test', price: 1 }),
      });
      expect(insert.status).toBe(201);
      const { id } = (await insert.json()) as { id: number | string };
      const removed = await fetch(`${server.url}/data/products/${id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${tokens[d]}` },
      });
      expect(removed.status).toBe(204);
    }
  });

  it('CLI: every hostile input exits non-zero with a clear message and creates nothing', async () => {
    const t0 = performance.now();
    const saved = { home: process.env.CLONEFACTORY_HOME, namespace: process.env.CLONEFACTORY_NAMESPACE };
    // No server owns this state directory: commands run the control plane in this process.
    process.env.CLONEFACTORY_HOME = cliHome;
    process.env.CLONEFACTORY_NAMESPACE = cliNamespace;
    try {
      // The state directory as a first valid use leaves it: a registry, an issuer key.
      const listed = await runInProcess(['tenants', 'list', '--json']);
      expect(listed, listed.stderr).toMatchObject({ status: 0 });
      expect(JSON.parse(listed.stdout)).toEqual([]);
      const token = await runInProcess(['token', '--email', 'warm@bad-input.example', '--operator']);
      expect(token.status, token.stderr).toBe(0);
      expect(token.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      const before = await cliSnapshot();

      const failures: string[] = [];
      for (const c of cli) {
        const t1 = performance.now();
        const r = c.spawn
          ? clonectl(c.args, { CLONEFACTORY_HOME: cliHome, CLONEFACTORY_NAMESPACE: cliNamespace })
          : await runInProcess(c.args);
        figures.cli[c.spawn ? 'spawned' : 'inProcess']++;
        figures.cli.exits[String(r.status)] = (figures.cli.exits[String(r.status)] ?? 0) + 1;
        const problem = judgeExit(c, r);
        const name = `${c.spawn ? 'spawned ' : ''}clonectl ${c.args.map((a) => JSON.stringify(a.length > 60 ? `${a.slice(0, 60)}…` : a)).join(' ')} [${c.kind}]`;
        count('cli', { name, kind: c.kind, problem });
        figures.cli.slowest.push({ name, ms: Math.round(performance.now() - t1) });
        figures.cli.slowest = figures.cli.slowest.sort((a, b) => b.ms - a.ms).slice(0, 5);
        if (problem) failures.push(`${name}: ${problem}`);
      }
      expect
        .soft(failures, `${failures.length} of ${figures.cli.tried} CLI cases not refused clearly`)
        .toEqual([]);
      expect.soft(await cliSnapshot(), 'what exists after the corpus').toEqual(before);
      expect(figures.cli.rejected).toBe(figures.cli.tried);

      // Still usable, and its registry holds nothing: no tenant, mapping, run or execution.
      const again = await runInProcess(['tenants', 'list', '--json']);
      expect(again.status, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toEqual([]);
      const env = new LocalEnvironment({ env: { ...process.env } });
      const plane = await LocalControlPlane.start({ env, namespace: cliNamespace });
      try {
        expect(await plane.tenants.list()).toEqual([]);
        expect(await plane.users.list()).toEqual([]);
        expect(await plane.upgrades.list()).toEqual([]);
        expect(await plane.runner.list()).toEqual([]);
      } finally {
        await plane.close();
        await env.close();
      }
    } finally {
      if (saved.home === undefined) delete process.env.CLONEFACTORY_HOME;
      else process.env.CLONEFACTORY_HOME = saved.home;
      if (saved.namespace === undefined) delete process.env.CLONEFACTORY_NAMESPACE;
      else process.env.CLONEFACTORY_NAMESPACE = saved.namespace;
      figures.cli.ms = Math.round(performance.now() - t0);
    }
  });

  it('refused every bad input it tried', () => {
    expect(figures.api.tried).toBeGreaterThan(300);
    expect(figures.cli.tried).toBe(cli.length);
    expect(figures.api.rejected + figures.cli.rejected).toBe(figures.api.tried + figures.cli.tried);
  });
});
