import { createHmac, createPublicKey } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { maxHeaderSize } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { APIGatewayAuthorizerResult } from 'aws-lambda';
import fc from 'fast-check';
import { CompactSign, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_AUTHORIZER_CONFIG } from '../../functions/core/auth/authorizer.js';
import { type IamPolicy, policyAllows } from '../../functions/core/auth/policy.js';
import { createAuthorizerHandler } from '../../functions/handlers/authorizer.js';
import { LOCAL_API_ARN } from '../../local/api-gateway.js';
import { DEV_ALGORITHM, DEV_AUDIENCE, DEV_ISSUER } from '../../local/dev-issuer.js';
import { LocalServer } from '../../local/server.js';
import { startTestPlane } from '../support/control-plane.js';
import { PROFILE, recordFigures } from './profile.js';

/**
 * JWT fuzzing (issue 8, part 4). Forged, random, wrongly signed, oversized and garbage
 * Authorization headers go through the authorizer as deployed: the Lambda handler's own
 * factory (createAuthorizerHandler, which the AWS `handler` export wraps around a DynamoDB-backed
 * Authorizer) around the very Authorizer the local server runs, with the local server's
 * configuration, its DynamoDB registries (dynalite) and its JWKS fetched over HTTP. A sampled
 * share also goes over the wire to the local HTTP API, byte for byte, through its emulated
 * API Gateway.
 *
 * Runs: each family (a) mutated tokens, (b) random tokens, (c) wrong keys, (d) oversized and
 * garbage is one fast-check property of PROFILE.jwtRuns runs (1,000 quick, 10,000 full) with
 * PROFILE.seed, so 4 × jwtRuns tokens reach the handler; every HTTP_EVERY-th token of each
 * family also goes over HTTP. Inside a family, fc.oneof shares the runs between its kinds.
 *
 * Every one of them must be refused as unauthenticated: a 401 (the handler throws
 * "Unauthorized"), never an Allow, never another error, never a hang. A Deny (403) would be
 * wrong too: it comes only after a signature was accepted, or from an internal error that
 * authorizeSafely turned into a refusal.
 */

const MAX_TOKEN_BYTES = DEFAULT_AUTHORIZER_CONFIG.maxTokenBytes;
const HTTP_EVERY = 10;
const HANDLER_TIMEOUT_MS = 5_000;
const HTTP_TIMEOUT_MS = 15_000;
/** The route each fuzzed token is tried on, in turn: a user route, a data route, an operator route. */
const ROUTES_TRIED = ['/me', '/data/products', '/tenants'] as const;
/** The handler refused the header itself (no "Bearer <token68>"): the authorizer never saw it. */
const NOT_BEARER = 'not a Bearer header (handler)';
const suiteStarted = Date.now();
const T0 = Math.floor(suiteStarted / 1000);

// ---------------------------------------------------------------------------------------------
// A real control plane, two READY tenants with a mapped user each, an operator, the server.

const t = await startTestPlane();
const server = await LocalServer.start({ plane: t.plane, port: 0 });
const TENANTS = ['fuzz-a', 'fuzz-b'] as const;
for (const tenantId of TENANTS)
  expect((await t.create({ tenantId, engine: 'sqlite' })).status).toBe('SUCCEEDED');
await t.plane.users.map({ email: 'ann@fuzz-a.example', tenantId: 'fuzz-a', appRole: 'analyst' });
await t.plane.users.map({ email: 'bob@fuzz-b.example', tenantId: 'fuzz-b', appRole: 'admin' });
const EMAILS = ['ann@fuzz-a.example', 'bob@fuzz-b.example', 'ops@fuzz.example'];

afterAll(async () => {
  recordFigures(figures());
  await server.close();
  await t.close();
  await rm(t.home, { recursive: true, force: true });
});

type Segments = readonly [string, string, string];
interface Base {
  readonly name: string;
  readonly token: string;
  readonly route: string;
  readonly segments: Segments;
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}
const decode = (segment: string) =>
  JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
function base(name: string, token: string, route: string): Base {
  const segments = token.split('.') as unknown as Segments;
  return { name, token, route, segments, header: decode(segments[0]), claims: decode(segments[1]) };
}
/** Real tokens of the dev issuer: unmutated, each is allowed (the positive control proves it). */
const BASES: readonly Base[] = [
  base('analyst', await server.issuer.mint({ email: 'ann@fuzz-a.example', tenant: 'fuzz-a' }), '/me'),
  base(
    'admin',
    await server.issuer.mint({ email: 'bob@fuzz-b.example', tenant: 'fuzz-b' }),
    '/data/products',
  ),
  base('operator', await server.issuer.mint({ email: 'ops@fuzz.example', operator: true }), '/tenants'),
];
const otherTenant = (b: Base) => (b.claims.tenant_id === 'fuzz-a' ? 'fuzz-b' : 'fuzz-a');

type SigningKey = Parameters<CompactSign['sign']>[0];
interface Signer {
  readonly alg: string;
  readonly kid: string;
  readonly privateKey: SigningKey;
  readonly publicJwk: JWK;
}
/** The dev issuer's own key, from its key file: for controls, and for oversized tokens signed right. */
const keyFile = JSON.parse(await readFile(join(t.home, 'dev-issuer', 'key.json'), 'utf8')) as {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
};
const PUBLIC_JWK = server.issuer.jwks().keys[0] as JWK;
const REAL: Signer = {
  alg: DEV_ALGORITHM,
  kid: keyFile.kid,
  privateKey: (await importJWK(keyFile.privateJwk, DEV_ALGORITHM)) as SigningKey,
  publicJwk: PUBLIC_JWK,
};
/** Fresh keys nobody trusts, made once (an RSA key takes a while): the wrong-key family picks among them. */
const WRONG_KEYS: readonly Signer[] = await Promise.all(
  ['ES256', 'ES256', 'ES256', 'RS256', 'RS256', 'PS256', 'ES384', 'EdDSA'].map(async (alg, i) => {
    const pair = await generateKeyPair(alg, { extractable: true });
    const kid = `attacker-${i}`;
    return {
      alg,
      kid,
      privateKey: pair.privateKey as SigningKey,
      publicJwk: { ...(await exportJWK(pair.publicKey)), kid, alg },
    };
  }),
);
/** The issuer's public key in every shape an HS256 confusion attack would use as the secret. */
const publicKey = createPublicKey({ key: PUBLIC_JWK as never, format: 'jwk' });
const spkiPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
const HMAC_SECRETS: readonly (string | Buffer)[] = [
  JSON.stringify(PUBLIC_JWK),
  JSON.stringify(server.issuer.jwks()),
  spkiPem,
  spkiPem.trim(),
  publicKey.export({ type: 'spki', format: 'der' }),
  Buffer.concat([
    Buffer.from([4]),
    Buffer.from(PUBLIC_JWK.x as string, 'base64url'),
    Buffer.from(PUBLIC_JWK.y as string, 'base64url'),
  ]),
  PUBLIC_JWK.x as string,
];

const b64 = (value: string | Uint8Array) => Buffer.from(value).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);
function signJws(header: Record<string, unknown>, payload: string, key: SigningKey): Promise<string> {
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader(header as never).sign(key);
}
function hmac(alg: unknown, secret: string | Buffer, input: string): string {
  const hash = alg === 'HS384' ? 'sha384' : alg === 'HS512' ? 'sha512' : 'sha256';
  return createHmac(hash, secret).update(input).digest('base64url');
}
/** `unit` repeated to at least `bytes` UTF-8 bytes (at most one unit more). */
const repeatTo = (unit: string, bytes: number) => unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit)));

// ---------------------------------------------------------------------------------------------
// The two entry points, and the figures.

type Family = 'mutated' | 'random' | 'wrongKey' | 'oversizedOrGarbage';
type Outcome =
  | { readonly kind: 'unauthorized'; readonly reason: string }
  | { readonly kind: 'deny'; readonly reason: string }
  | { readonly kind: 'allow'; readonly principalId: string }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'timeout' };

let lastReason: string | undefined;
/** The deployed handler's factory around the local server's own Authorizer. */
const handler = createAuthorizerHandler(async () => server.authorizer, {
  info: (...args: unknown[]) => {
    lastReason = (args[1] as { reason?: string } | undefined)?.reason;
  },
});

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One API Gateway TOKEN-authorizer invocation, as API Gateway reads its answer. */
async function authorizeDirect(authorization: string, route: string): Promise<Outcome> {
  const methodArn = `${LOCAL_API_ARN}/GET${route}`;
  lastReason = undefined;
  let result: APIGatewayAuthorizerResult | 'timeout';
  try {
    result = await withTimeout(
      handler({ type: 'TOKEN', authorizationToken: authorization, methodArn }),
      HANDLER_TIMEOUT_MS,
    );
  } catch (error) {
    if (error instanceof Error && error.message === 'Unauthorized')
      return { kind: 'unauthorized', reason: lastReason ?? NOT_BEARER };
    return { kind: 'error', message: String((error as Error)?.message ?? error) };
  }
  if (result === 'timeout') return { kind: 'timeout' };
  const policy = result.policyDocument as unknown as IamPolicy;
  const denies =
    result.principalId === 'denied' &&
    policy.Statement.every((s) => s.Effect === 'Deny') &&
    !policyAllows(policy, methodArn);
  return denies
    ? { kind: 'deny', reason: String(result.context?.reason ?? '') }
    : { kind: 'allow', principalId: result.principalId };
}

const { hostname: HOST, port: PORT } = new URL(server.url);
/**
 * One request on a fresh connection, written byte for byte (the header value as UTF-8): no
 * client library normalises or refuses what is sent. Answers the status line's code.
 */
function wire(
  route: string,
  authorization: string,
): Promise<{ status: number | 'timeout' | 'no answer'; headBytes: number }> {
  const head = Buffer.concat([
    Buffer.from(`GET ${route} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nConnection: close\r\nAuthorization: `),
    Buffer.from(authorization, 'utf8'),
    Buffer.from('\r\n\r\n'),
  ]);
  return new Promise((resolve) => {
    let received = '';
    let timedOut = false;
    const socket = connect({ host: HOST, port: Number(PORT) });
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, HTTP_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      if (received.length < 1024) received += chunk.toString('latin1');
    });
    // The server answers an oversized head early and closes: writing the rest may then fail.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const code = /^HTTP\/1\.1 (\d{3}) /.exec(received)?.[1];
      resolve({ status: timedOut ? 'timeout' : code ? Number(code) : 'no answer', headBytes: head.length });
    });
    socket.write(head);
  });
}

/**
 * What the wire must answer for a refused credential. Node's HTTP parser answers before any
 * application code in two cases: a control character in a header value (400) and a request
 * head over `http.maxHeaderSize` (431). Everything else reaches the emulated API Gateway: 401.
 * Where exactly Node counts the limit depends on framing, so heads within 1 KiB above it are
 * not generated (and would fail here).
 */
function expectedWireStatus(authorization: string, headBytes: number): 400 | 401 | 431 {
  const control = [...authorization].some((ch) => {
    const c = ch.codePointAt(0) as number;
    return (c < 0x20 && c !== 0x09) || c === 0x7f;
  });
  if (control) {
    if (headBytes > maxHeaderSize) throw new Error('generator bug: a control character in an oversized head');
    return 400;
  }
  if (headBytes <= maxHeaderSize) return 401;
  if (headBytes > maxHeaderSize + 1024) return 431;
  throw new Error(`generator bug: a head of ${headBytes} bytes, at Node's header limit`);
}
/** A CR or LF cannot be inside a header value on the wire: the bytes would be another request. */
const wireCanCarry = (authorization: string) => !/[\r\n]/.test(authorization);

interface FamilyStats {
  runs: number;
  durationMs: number;
  kinds: Record<string, number>;
  handler: Record<string, number>;
  reasons: Record<string, number>;
  httpCalls: number;
  httpNotSendable: number;
  http: Record<string, number>;
}
const FAMILIES: readonly Family[] = ['mutated', 'random', 'wrongKey', 'oversizedOrGarbage'];
const stats = Object.fromEntries(
  FAMILIES.map((f) => [
    f,
    {
      runs: 0,
      durationMs: 0,
      kinds: {},
      handler: {},
      reasons: {},
      httpCalls: 0,
      httpNotSendable: 0,
      http: {},
    },
  ]),
) as Record<Family, FamilyStats>;
let allows = 0;
let unexpected = 0;
const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1;
};
const show = (token: string) =>
  `${token.length} chars: ${JSON.stringify(token.slice(0, 120))}${token.length > 120 ? '…' : ''}`;

/**
 * One fuzzed Authorization header: through the handler, and every HTTP_EVERY-th over HTTP.
 * `reason`, when given, is the refusal the authorizer must log (why it was refused).
 */
async function attempt(family: Family, kind: string, authorization: string, reason?: string): Promise<void> {
  const s = stats[family];
  const n = s.runs++;
  bump(s.kinds, kind);
  const route = ROUTES_TRIED[n % ROUTES_TRIED.length] as string;
  const direct = await authorizeDirect(authorization, route);
  const label = direct.kind === 'unauthorized' ? '401' : direct.kind === 'deny' ? '403' : direct.kind;
  bump(s.handler, label);
  if (direct.kind === 'unauthorized') bump(s.reasons, direct.reason);
  if (direct.kind === 'allow') allows++;
  if (direct.kind !== 'unauthorized') unexpected++;
  expect(direct, `${family}/${kind} on GET ${route}: ${show(authorization)}`).toMatchObject({
    kind: 'unauthorized',
  });
  if (reason !== undefined)
    expect(direct, `${family}/${kind}: ${show(authorization)}`).toEqual({ kind: 'unauthorized', reason });
  if (n % HTTP_EVERY !== 0) return;
  if (!wireCanCarry(authorization)) {
    s.httpNotSendable++;
    return;
  }
  const answer = await wire(route, authorization);
  s.httpCalls++;
  bump(s.http, String(answer.status));
  if (typeof answer.status === 'number' && answer.status >= 200 && answer.status < 300) allows++;
  const expected = expectedWireStatus(authorization, answer.headBytes);
  if (answer.status !== expected) unexpected++;
  expect(answer.status, `HTTP ${family}/${kind} on GET ${route}: ${show(authorization)}`).toBe(expected);
}

async function runFamily<T>(family: Family, arbitrary: fc.Arbitrary<T>, run: (value: T) => Promise<void>) {
  const started = Date.now();
  try {
    await fc.assert(fc.asyncProperty(arbitrary, run), { numRuns: PROFILE.jwtRuns, seed: PROFILE.seed });
  } finally {
    stats[family].durationMs += Date.now() - started;
  }
  // Every run went through the authorizer (no run skipped or cut short).
  expect(stats[family].runs).toBe(PROFILE.jwtRuns);
  expect(stats[family].httpCalls + stats[family].httpNotSendable).toBe(
    Math.ceil(PROFILE.jwtRuns / HTTP_EVERY),
  );
  expect(stats[family].httpCalls).toBeGreaterThan(0);
}

const notRefusals = (counts: Record<string, number>) =>
  Object.entries(counts).reduce(
    (n, [status, count]) => (status === '401' || status === '403' ? n : n + count),
    0,
  );

function figures() {
  const sum = (pick: (s: FamilyStats) => Record<string, number>) => {
    const total: Record<string, number> = {};
    for (const f of FAMILIES)
      for (const [k, v] of Object.entries(pick(stats[f]))) total[k] = (total[k] ?? 0) + v;
    return total;
  };
  const top = (counts: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(counts)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8),
    );
  return {
    suite: 'jwt-fuzz',
    runs: FAMILIES.reduce((n, f) => n + stats[f].runs, 0),
    jwtAllows: allows,
    details: {
      perCategory: Object.fromEntries(
        FAMILIES.map((f) => {
          const s = stats[f];
          return [
            f,
            {
              runs: s.runs,
              durationMs: s.durationMs,
              kinds: s.kinds,
              handler: s.handler,
              http: s.http,
              httpCalls: s.httpCalls,
              topReasons: top(s.reasons),
            },
          ];
        }),
      ),
      httpSampled: {
        every: HTTP_EVERY,
        calls: FAMILIES.reduce((n, f) => n + stats[f].httpCalls, 0),
        notSendable: FAMILIES.reduce((n, f) => n + stats[f].httpNotSendable, 0),
      },
      statuses: { handler: sum((s) => s.handler), http: sum((s) => s.http) },
      // Outcomes other than 401 or 403. Over the wire these are only Node's parser's own 400 and
      // 431 (predicted exactly by expectedWireStatus); unexpectedOutcomes counts any other.
      non401or403: {
        handler: notRefusals(sum((s) => s.handler)),
        http: notRefusals(sum((s) => s.http)),
      },
      unexpectedOutcomes: unexpected,
      durationMs: Date.now() - suiteStarted,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// (a) Mutated valid tokens.

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/**
 * No whitespace: around a header value it is not part of it (HTTP trims it), so a valid token
 * with a space appended is the same credential. Whitespace is in the garbage family instead.
 */
const MUTATION_CHARS = [...B64URL, '.', '=', '+', '/', '~', '%', '"', '\\', '\u0000', 'é', '☃', '😀'];

const charEdit = fc.record({
  op: fc.constantFrom('flip', 'insert', 'delete'),
  segment: fc.constantFrom(0, 1, 2),
  // -1: the segment's last character, whose low bits base64url leaves unused.
  at: fc.oneof(fc.nat(), fc.constant(-1)),
  char: fc.constantFrom(...MUTATION_CHARS),
});
type CharEdit = typeof charEdit extends fc.Arbitrary<infer T> ? T : never;

function applyEdit(segments: string[], edit: CharEdit): void {
  const seg = segments[edit.segment] as string;
  if (edit.op === 'insert' || seg.length === 0) {
    const i = edit.at < 0 ? seg.length : edit.at % (seg.length + 1);
    segments[edit.segment] = seg.slice(0, i) + edit.char + seg.slice(i);
    return;
  }
  const i = edit.at < 0 ? seg.length - 1 : edit.at % seg.length;
  if (edit.op === 'delete') {
    segments[edit.segment] = seg.slice(0, i) + seg.slice(i + 1);
    return;
  }
  const char = edit.char === seg[i] ? (seg[i] === 'A' ? 'B' : 'A') : edit.char;
  segments[edit.segment] = seg.slice(0, i) + char + seg.slice(i + 1);
}

const OTHER_TENANT = '<the other fuzz tenant>';
const claimChange = fc.oneof(
  fc.record({ kind: fc.constant('exp-past'), by: fc.integer({ min: 0, max: 30 * 86_400 }) }),
  fc.record({ kind: fc.constant('exp-later'), by: fc.integer({ min: 1, max: 10 * 365 * 86_400 }) }),
  fc.record({ kind: fc.constant('nbf-future'), by: fc.integer({ min: 1, max: 365 * 86_400 }) }),
  fc.record({ kind: fc.constant('iat'), by: fc.integer({ min: -30 * 86_400, max: 86_400 }) }),
  fc.record({
    kind: fc.constant('iss'),
    value: fc.oneof(
      fc.constantFrom(`${DEV_ISSUER} `, DEV_ISSUER.toUpperCase(), '', 'https://evil.example', null),
      fc.jsonValue(),
    ),
  }),
  fc.record({
    kind: fc.constant('aud'),
    value: fc.oneof(
      fc.constantFrom('other-api', [DEV_AUDIENCE, 'other-api'], [], '', DEV_AUDIENCE.toUpperCase()),
      fc.jsonValue(),
    ),
  }),
  fc.record({
    kind: fc.constant('drop'),
    claims: fc.subarray(
      ['sub', 'email', 'tenant_id', 'exp', 'iat', 'iss', 'aud', 'email_verified', 'scope'],
      {
        minLength: 1,
      },
    ),
  }),
  fc.record({
    kind: fc.constant('tenant'),
    value: fc.oneof(
      { weight: 3, arbitrary: fc.constant(OTHER_TENANT) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('fuzz-a', 'fuzz-b', 'FUZZ-A', 'fuzz-a ', '', null, ['fuzz-a']),
      },
      { weight: 1, arbitrary: fc.jsonValue() },
    ),
  }),
  fc.record({ kind: fc.constant('operator') }),
  fc.record({
    kind: fc.constant('identity'),
    claim: fc.constantFrom('sub', 'email'),
    value: fc.oneof(fc.constantFrom(...EMAILS, 'ANN@FUZZ-A.EXAMPLE'), fc.jsonValue()),
  }),
  fc.record({ kind: fc.constant('email_verified'), value: fc.constantFrom(false, 'true', 'false', 1, null) }),
  fc.record({ kind: fc.constant('extra'), key: fc.string(), value: fc.jsonValue() }),
  // A repeated member, added to the JSON text: JSON.parse would keep the last one.
  fc.record({
    kind: fc.constant('duplicate'),
    claim: fc.constantFrom('tenant_id', 'sub', 'email', 'scope', 'exp'),
    value: fc.jsonValue(),
  }),
);
type ClaimChange = typeof claimChange extends fc.Arbitrary<infer T> ? T : never;

const INJECTED: Record<string, unknown> = {
  jwk: WRONG_KEYS[0]?.publicJwk,
  jku: 'http://127.0.0.1:9/jwks.json',
  x5u: 'http://127.0.0.1:9/cert.pem',
  x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'],
  crit: ['exp'],
  b64: false,
  zip: 'DEF',
  enc: 'A256GCM',
  cty: 'JWT',
};
const headerChange = fc.oneof(
  fc.record({
    kind: fc.constant('alg'),
    alg: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('none', 'None', 'NONE', 'nOnE', 'HS256', 'HS384', 'HS512') },
      { weight: 2, arbitrary: fc.constantFrom('RS256', 'ES384', 'ES512', 'PS256', 'EdDSA', '', 'es256') },
      { weight: 1, arbitrary: fc.jsonValue() },
    ),
  }),
  fc.record({
    kind: fc.constant('kid'),
    // undefined: the kid is removed.
    kid: fc.oneof(
      fc.constantFrom(undefined, 'attacker-0', '../../dev-issuer/key.json', 'x'.repeat(129), '', 0, null),
      fc.string(),
      fc.jsonValue(),
    ),
  }),
  fc.record({ kind: fc.constant('inject'), name: fc.constantFrom(...Object.keys(INJECTED)) }),
  fc.record({ kind: fc.constant('typ'), value: fc.jsonValue() }),
);
type HeaderChange = typeof headerChange extends fc.Arbitrary<infer T> ? T : never;

const baseIndex = fc.nat({ max: BASES.length - 1 });
const mutatedArb = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('chars' as const),
      base: baseIndex,
      edits: fc.array(charEdit, { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('reencoded' as const),
      base: baseIndex,
      header: fc.option(headerChange, { nil: undefined, freq: 2 }),
      claims: fc.array(claimChange, { maxLength: 3 }),
      // hmac: HS256/384/512 over the new header and payload with the issuer's public key as the secret.
      signature: fc.constantFrom('keep', 'keep', 'keep', 'empty', 'hmac', 'random'),
      secret: fc.nat({ max: HMAC_SECRETS.length - 1 }),
      random: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    }),
  },
);
type Mutation = typeof mutatedArb extends fc.Arbitrary<infer T> ? T : never;

function claimsText(b: Base, changes: readonly ClaimChange[]): string {
  let claims: Record<string, unknown> = { ...b.claims };
  const duplicates: [string, unknown][] = [];
  for (const c of changes) {
    if (c.kind === 'exp-past') claims.exp = nowSeconds() - c.by;
    else if (c.kind === 'exp-later') claims.exp = Number(claims.exp) + c.by;
    else if (c.kind === 'nbf-future') claims.nbf = nowSeconds() + c.by;
    else if (c.kind === 'iat') claims.iat = Number(claims.iat) + c.by;
    else if (c.kind === 'iss') claims.iss = c.value;
    else if (c.kind === 'aud') claims.aud = c.value;
    else if (c.kind === 'drop')
      claims = Object.fromEntries(Object.entries(claims).filter(([k]) => !c.claims.includes(k)));
    else if (c.kind === 'tenant') claims.tenant_id = c.value === OTHER_TENANT ? otherTenant(b) : c.value;
    else if (c.kind === 'operator') claims.scope = 'clonefactory/operator';
    else if (c.kind === 'identity') claims[c.claim] = c.value;
    else if (c.kind === 'email_verified') claims.email_verified = c.value;
    else if (c.kind === 'extra') claims = { ...claims, [c.key]: c.value };
    else duplicates.push([c.claim, c.value]);
  }
  let text = JSON.stringify(claims);
  for (const [k, v] of duplicates)
    text = `${text.slice(0, -1)}${text.length > 2 ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}}`;
  return text;
}

function headerText(b: Base, change: HeaderChange | undefined): { text: string; alg: unknown } {
  let header: Record<string, unknown> = { ...b.header };
  if (change?.kind === 'alg') header.alg = change.alg;
  else if (change?.kind === 'kid')
    header =
      change.kid === undefined
        ? Object.fromEntries(Object.entries(header).filter(([k]) => k !== 'kid'))
        : { ...header, kid: change.kid };
  else if (change?.kind === 'inject') header[change.name] = INJECTED[change.name];
  else if (change?.kind === 'typ') header.typ = change.value;
  return { text: JSON.stringify(header), alg: header.alg };
}

/** The token a mutation makes of its base token; never the base token itself (unless `identity`). */
function mutate(m: Mutation, identity = false): string {
  const b = BASES[m.base] as Base;
  if (m.kind === 'chars') {
    const segments = [...b.segments];
    for (const edit of m.edits) applyEdit(segments, edit);
    let token = segments.join('.');
    // Edits that undo each other: one more, that cannot.
    if (token === b.token) token = `${token}A`;
    return token;
  }
  const header = headerText(b, m.header);
  const h = b64(header.text);
  let p = b64(claimsText(b, m.claims));
  if (!identity && h === b.segments[0] && p === b.segments[1] && m.signature === 'keep')
    p = b64(claimsText(b, [...m.claims, { kind: 'extra', key: 'fuzz', value: 1 }]));
  const signature =
    m.signature === 'keep'
      ? b.segments[2]
      : m.signature === 'empty'
        ? ''
        : m.signature === 'hmac'
          ? hmac(header.alg, HMAC_SECRETS[m.secret] as string | Buffer, `${h}.${p}`)
          : b64(m.random);
  return `${h}.${p}.${signature}`;
}
const mutationKind = (m: Mutation) =>
  m.kind === 'chars'
    ? 'chars'
    : `${m.header ? `header:${m.header.kind}` : 'claims'}${m.header && m.claims.length > 0 ? '+claims' : ''}/sig:${m.signature}`;

// ---------------------------------------------------------------------------------------------
// (b) Random headers and payloads.

const plausibleHeader = fc
  .tuple(
    fc.record(
      {
        alg: fc.oneof(
          fc.constantFrom('ES256', 'RS256', 'none', 'HS256', 'ES384', 'PS256', 'EdDSA'),
          fc.string(),
          fc.jsonValue(),
        ),
        kid: fc.oneof(fc.constant(REAL.kid), fc.string(), fc.jsonValue()),
        typ: fc.constantFrom('JWT', 'jwt', 'at+jwt'),
        crit: fc.array(fc.string(), { maxLength: 2 }),
        jku: fc.constant('http://127.0.0.1:9/jwks.json'),
      },
      { requiredKeys: ['alg'] },
    ),
    fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
  )
  .map(([known, extra]) => ({ ...extra, ...known }));
const plausibleClaims = fc.record(
  {
    iss: fc.oneof(fc.constant(DEV_ISSUER), fc.string()),
    aud: fc.oneof(fc.constant(DEV_AUDIENCE), fc.string(), fc.array(fc.string(), { maxLength: 3 })),
    sub: fc.oneof(fc.constantFrom(...EMAILS), fc.string()),
    email: fc.oneof(fc.constantFrom(...EMAILS), fc.string()),
    email_verified: fc.oneof(fc.boolean(), fc.constant('true')),
    tenant_id: fc.oneof(fc.constantFrom(...TENANTS), fc.string()),
    scope: fc.constantFrom('clonefactory/operator', 'openid clonefactory/operator', ''),
    iat: fc.integer({ min: T0 - 7200, max: T0 + 600 }),
    exp: fc.integer({ min: T0 - 600, max: T0 + 7200 }),
    nbf: fc.integer({ min: T0 - 600, max: T0 + 600 }),
  },
  { requiredKeys: [] },
);
const segmentOf = (json: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 4, arbitrary: json.map((v) => b64(JSON.stringify(v) ?? '')) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map(b64) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }).map(b64) },
    // Not base64url at all.
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 100 }) },
  );
const randomArb = fc.record({
  header: segmentOf(fc.oneof(plausibleHeader, fc.jsonValue())),
  payload: segmentOf(fc.oneof(plausibleClaims, fc.jsonValue())),
  signature: fc.oneof(
    fc.constant(''),
    fc.uint8Array({ minLength: 64, maxLength: 64 }).map(b64),
    fc.uint8Array({ maxLength: 600 }).map(b64),
    fc.constantFrom(...BASES.map((b) => b.segments[2])),
    fc.string({ unit: 'binary', maxLength: 100 }),
  ),
  extra: fc.array(fc.uint8Array({ maxLength: 40 }).map(b64), { minLength: 2, maxLength: 2 }),
  segments: fc.constantFrom(3, 3, 3, 3, 3, 3, 1, 2, 4, 5),
});
type RandomToken = typeof randomArb extends fc.Arbitrary<infer T> ? T : never;
const randomToken = (r: RandomToken) =>
  [r.header, r.payload, r.signature, ...r.extra].slice(0, r.segments).join('.');

// ---------------------------------------------------------------------------------------------
// (c) Correctly signed, with keys nobody trusts.

const wrongKeyArb = fc.record({
  base: baseIndex,
  key: fc.nat({ max: WRONG_KEYS.length - 1 }),
  // real: the issuer's kid, so the verifier picks the issuer's key; own: the attacker's.
  kid: fc.constantFrom('real', 'real', 'own', 'none', 'random'),
  randomKid: fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/),
  typ: fc.boolean(),
  embed: fc.constantFrom('none', 'none', 'none', 'jwk', 'jku'),
  claims: fc.constantFrom('same', 'same', 'same', 'fresh', 'other-tenant', 'operator'),
});
type WrongKey = typeof wrongKeyArb extends fc.Arbitrary<infer T> ? T : never;

function wrongKeyToken(r: WrongKey, signer: Signer = WRONG_KEYS[r.key] as Signer): Promise<string> {
  const b = BASES[r.base] as Base;
  const claims: Record<string, unknown> = { ...b.claims };
  if (r.claims === 'fresh') Object.assign(claims, { iat: nowSeconds(), exp: nowSeconds() + 3600 });
  if (r.claims === 'other-tenant') claims.tenant_id = otherTenant(b);
  if (r.claims === 'operator') claims.scope = 'clonefactory/operator';
  const header: Record<string, unknown> = { alg: signer.alg };
  if (r.kid === 'real') header.kid = REAL.kid;
  if (r.kid === 'own') header.kid = signer.kid;
  if (r.kid === 'random') header.kid = r.randomKid;
  if (r.typ) header.typ = 'JWT';
  if (r.embed === 'jwk') header.jwk = { ...signer.publicJwk, kid: undefined };
  if (r.embed === 'jku') header.jku = `http://127.0.0.1:9/${signer.kid}.json`;
  return signJws(header, JSON.stringify(claims), signer.privateKey);
}

// ---------------------------------------------------------------------------------------------
// (d) Oversized tokens and garbage headers.

const fill = fc.string({ unit: fc.constantFrom(...B64URL), minLength: 1, maxLength: 16 });
const oversizedArb = fc.record({
  kind: fc.constant('oversized' as const),
  // signed: a real token of the issuer, claims padded and signed with its key: only its size is wrong.
  shape: fc.constantFrom('signed', 'padded', 'segments', 'one-segment', 'dots', 'huge-kid', 'multibyte'),
  base: baseIndex,
  // Bytes of the token: just over the cap, up to 1 MiB; none within 1 KiB over Node's 16 KiB head limit.
  bytes: fc.oneof(
    fc.constantFrom(MAX_TOKEN_BYTES + 1, MAX_TOKEN_BYTES + 2, MAX_TOKEN_BYTES + 100),
    fc.integer({ min: MAX_TOKEN_BYTES + 1, max: 15_000 }),
    fc.integer({ min: 18_000, max: 1_048_576 }),
  ),
  fill,
  wide: fc.constantFrom('é', '☃', '😀', 'ÿ'),
});
type Oversized = typeof oversizedArb extends fc.Arbitrary<infer T> ? T : never;

async function oversizedToken(r: Oversized): Promise<string> {
  const b = BASES[r.base] as Base;
  if (r.shape === 'signed' || r.shape === 'padded') {
    // The pad that makes header.payload.signature at least r.bytes long (at most 2 more).
    const payloadChars = r.bytes - b.segments[0].length - b.segments[2].length - 2;
    const empty = Buffer.byteLength(JSON.stringify({ ...b.claims, pad: '' }));
    const padBytes = Math.max(0, Math.ceil((payloadChars * 3) / 4) - empty);
    const payload = JSON.stringify({ ...b.claims, pad: repeatTo(r.fill, padBytes).slice(0, padBytes) });
    if (r.shape === 'signed') return signJws(b.header, payload, REAL.privateKey);
    return `${b.segments[0]}.${b64(payload)}.${b.segments[2]}`;
  }
  if (r.shape === 'segments') {
    const third = repeatTo(r.fill, Math.ceil((r.bytes - 2) / 3));
    return `${third}.${third}.${third}`;
  }
  if (r.shape === 'one-segment') return repeatTo(r.fill, r.bytes);
  if (r.shape === 'dots') return repeatTo(`${r.fill}.`, r.bytes);
  if (r.shape === 'huge-kid') {
    // The kid that makes the token at least r.bytes long, once its header is encoded.
    const rest = b.segments[1].length + b.segments[2].length + 2;
    const empty = Buffer.byteLength(JSON.stringify({ ...b.header, kid: '' }));
    const kidBytes = Math.max(0, Math.ceil(((r.bytes - rest) * 3) / 4) - empty);
    const header = JSON.stringify({ ...b.header, kid: repeatTo(r.fill, kidBytes).slice(0, kidBytes) });
    return `${b64(header)}.${b.segments[1]}.${b.segments[2]}`;
  }
  return repeatTo(r.wide, r.bytes);
}

const TOKEN = BASES[0]?.token as string;
const GARBAGE_FIXED = [
  '',
  ' ',
  '   ',
  '\t',
  '\u0000',
  'Bearer',
  'Bearer ',
  'Bearer\t',
  'bearer',
  'BEARER',
  'Bearer null',
  'Bearer undefined',
  'Bearer [object Object]',
  'Bearer .',
  'Bearer ..',
  'Bearer ...',
  'Bearer a.b.c',
  'Bearer e30.e30.',
  'Bearer e30.e30.e30',
  'Bearer eyJ',
  'Bearer =',
  'Bearer ==.==.==',
  'Bearer %00',
  'Bearer \u0000',
  'Bearer x\u0000.y.z',
  'Bearer \ud800',
  'Bearer \udfff.\ud800.x',
  'Bearer é.é.é',
  'Bearer ☃.☃.☃',
  'Bearer \u202e',
  'Bearer \ufeff',
  '\ufeffBearer x.y.z',
  'Bearer x.y.z\r\nX-Injected: 1',
  'Bearer Bearer x.y.z',
  'Basic dXNlcjpwYXNz',
  'Digest username="x"',
  // The real token, but not as a Bearer credential, or with something that is not whitespace.
  TOKEN,
  `Basic ${TOKEN}`,
  `Token ${TOKEN}`,
  `Bearer=${TOKEN}`,
  `Bearer:${TOKEN}`,
  `Bearer ${TOKEN}.`,
  `Bearer .${TOKEN}`,
  `Bearer ${TOKEN},${TOKEN}`,
  `Bearer ${TOKEN} ${TOKEN}`,
  `Bearer ${TOKEN}${TOKEN}`,
  `Bearer ${TOKEN}\u0000`,
  `Bearer ${TOKEN}%20`,
  `Bearer "${TOKEN}"`,
];
const garbageArb = fc.record({
  kind: fc.constant('garbage' as const),
  value: fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...GARBAGE_FIXED) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }).map((s) => `Bearer ${s}`) },
    {
      weight: 1,
      arbitrary: fc.string({
        unit: fc.constantFrom(
          ' ',
          '\t',
          '\u000b',
          '\u000c',
          '\u00a0',
          '\u2028',
          '\u3000',
          '\ufeff',
          '\u200b',
          '\u0000',
        ),
        maxLength: 50,
      }),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            'Bearer ',
            'bearer ',
            'BEARER ',
            ' Bearer ',
            'Bearer:',
            'Basic ',
            'Token ',
            'JWT ',
            '',
          ),
          fc.string({ unit: fc.constantFrom(...B64URL, '.', '~', '+', '/', '=', ' '), maxLength: 400 }),
        )
        .map(([prefix, rest]) => prefix + rest),
    },
  ),
});

// ---------------------------------------------------------------------------------------------

describe('JWT fuzzing: every forged, random, wrongly signed, oversized or garbage token is a 401', () => {
  it('positive controls: the unmutated tokens are allowed (handler and HTTP), and so is what the generators make with the right key', async () => {
    for (const tenantId of TENANTS) expect((await t.plane.tenants.get(tenantId)).state).toBe('READY');
    expect(keyFile.publicJwk).toEqual(PUBLIC_JWK);
    for (const b of BASES) {
      expect(await authorizeDirect(`Bearer ${b.token}`, b.route), b.name).toMatchObject({ kind: 'allow' });
      expect((await wire(b.route, `Bearer ${b.token}`)).status, b.name).toBe(200);
      // The mutation machinery, changing nothing, gives back the very token: its changes alone refuse.
      expect(
        mutate(
          {
            kind: 'reencoded',
            base: BASES.indexOf(b),
            header: undefined,
            claims: [],
            signature: 'keep',
            secret: 0,
            random: new Uint8Array(64),
          },
          true,
        ),
      ).toBe(b.token);
      // The same claims signed by this file with the issuer's key are allowed: the wrong-key
      // family's tokens are refused for their key, and the oversized ones for their size.
      for (const claims of ['same', 'fresh'] as const) {
        const token = await wrongKeyToken(
          { base: BASES.indexOf(b), key: 0, kid: 'real', randomKid: 'x', typ: true, embed: 'none', claims },
          REAL,
        );
        expect(await authorizeDirect(`Bearer ${token}`, b.route), `${b.name} ${claims}`).toMatchObject({
          kind: 'allow',
        });
      }
    }
    const me = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${BASES[0]?.token}` } });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { user: object }).user).toMatchObject({
      email: 'ann@fuzz-a.example',
      tenantId: 'fuzz-a',
    });
    // And the wire client sees refusals: no header, a bad token.
    expect((await wire('/me', '')).status).toBe(401);
    expect((await wire('/me', 'Bearer a.b.c')).status).toBe(401);
  });

  it('(regression) a signature spelled with other unused bits in its last character is refused: it was allowed', async () => {
    for (const b of BASES) {
      const [h, p, s] = b.segments;
      const bytes = Buffer.from(s, 'base64url');
      const variants = [...B64URL]
        .map((c) => `${s.slice(0, -1)}${c}`)
        .filter((v) => v !== s && Buffer.from(v, 'base64url').equals(bytes));
      // An ES256 signature is 64 bytes, 86 characters: the last one has four unused bits.
      expect(variants).toHaveLength(15);
      for (const v of variants) {
        const token = `${h}.${p}.${v}`;
        expect(await authorizeDirect(`Bearer ${token}`, b.route)).toEqual({
          kind: 'unauthorized',
          reason: 'segment is not canonical base64url',
        });
        expect((await wire(b.route, `Bearer ${token}`)).status).toBe(401);
      }
    }
  });

  it('(regression) a raw control character in a header or payload string is a 401: it was a SyntaxError, answered with a Deny (403)', async () => {
    const b = BASES[0] as Base;
    for (const c of ['\u0000', '\u0001', '\t', '\n', '\u001f']) {
      // The issuer's signature kept, a control character in the kid.
      const header = JSON.stringify(b.header).replace(`"${REAL.kid}"`, `"${REAL.kid}${c}"`);
      expect(header).toContain(c);
      expect(
        await authorizeDirect(`Bearer ${b64(header)}.${b.segments[1]}.${b.segments[2]}`, b.route),
      ).toEqual({
        kind: 'unauthorized',
        reason: 'header is not JSON',
      });
      // Signed with the issuer's own key: well signed, and still not JSON.
      const payload = JSON.stringify(b.claims).replace('"ann@', `"ann${c}@`);
      expect(payload).toContain(c);
      const token = await signJws(b.header, payload, REAL.privateKey);
      expect(await authorizeDirect(`Bearer ${token}`, b.route)).toEqual({
        kind: 'unauthorized',
        reason: 'payload is not JSON',
      });
      expect((await wire(b.route, `Bearer ${token}`)).status).toBe(401);
    }
  });

  it('(a) mutated valid tokens: characters flipped, inserted, deleted; claims, alg, kid changed; HS256 with the public key', async () => {
    await runFamily('mutated', mutatedArb, async (m) => {
      const token = mutate(m);
      expect(token).not.toBe(BASES[m.base]?.token);
      await attempt('mutated', mutationKind(m), `Bearer ${token}`);
    });
  });

  it('(b) random headers and payloads, base64url-encoded, with random or empty signatures', async () => {
    await runFamily('random', randomArb, async (r) => {
      const token = randomToken(r);
      expect(BASES.map((b) => b.token)).not.toContain(token);
      await attempt('random', `segments:${r.segments}`, `Bearer ${token}`);
    });
  });

  it('(c) tokens signed correctly with fresh ES256, RS256, PS256, ES384 and EdDSA keys', async () => {
    await runFamily('wrongKey', wrongKeyArb, async (r) => {
      const token = await wrongKeyToken(r);
      const kind = `${(WRONG_KEYS[r.key] as Signer).alg}/kid:${r.kid}${r.embed === 'none' ? '' : `/${r.embed}`}`;
      await attempt('wrongKey', kind, `Bearer ${token}`);
    });
  });

  it('(d) oversized tokens (8 KiB to 1 MiB) and garbage headers (empty, whitespace, Bearer variants, unicode, NUL)', async () => {
    await runFamily('oversizedOrGarbage', fc.oneof(oversizedArb, garbageArb), async (r) => {
      if (r.kind === 'garbage') return attempt('oversizedOrGarbage', 'garbage', r.value);
      const token = await oversizedToken(r);
      expect(Buffer.byteLength(token)).toBeGreaterThan(MAX_TOKEN_BYTES);
      // The size asked for (so none falls at Node's header limit, which the sizes avoid).
      expect(Buffer.byteLength(token)).toBeGreaterThanOrEqual(r.bytes);
      expect(Buffer.byteLength(token)).toBeLessThanOrEqual(r.bytes + 64);
      // Refused for its size, before anything is parsed, when the handler lets it through.
      const reason = r.shape === 'multibyte' ? NOT_BEARER : `token over ${MAX_TOKEN_BYTES} bytes`;
      await attempt('oversizedOrGarbage', `oversized:${r.shape}`, `Bearer ${token}`, reason);
    });
  });

  it('still serves a valid token afterwards, and no fuzzed token was allowed or answered otherwise', async () => {
    const token = await server.issuer.mint({ email: 'ann@fuzz-a.example', tenant: 'fuzz-a' });
    expect(await authorizeDirect(`Bearer ${token}`, '/me')).toMatchObject({ kind: 'allow' });
    expect((await wire('/data/products', `Bearer ${token}`)).status).toBe(200);
    const me = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(me.status).toBe(200);
    const f = figures();
    expect(f.runs).toBe(FAMILIES.length * PROFILE.jwtRuns);
    expect(f.jwtAllows).toBe(0);
    expect(f.details.unexpectedOutcomes).toBe(0);
    expect(f.details.statuses.handler).toEqual({ '401': f.runs });
  });
});
