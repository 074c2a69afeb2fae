import { parse as parseJson } from '@humanwhocodes/momoa';
import { type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose';
import { UnauthenticatedError } from '../errors.js';

/** What a token must satisfy. Every field is passed to jose on every call: its defaults are lax. */
export interface TokenPolicy {
  readonly issuer: string;
  readonly audience: string;
  /** Asymmetric algorithms only; `none` and HMAC are never accepted whatever this says. */
  readonly algorithms: readonly string[];
  readonly maxTokenAgeSeconds: number;
  /** Bytes of the compact token; checked before anything is parsed. */
  readonly maxTokenBytes: number;
  readonly clockToleranceSeconds: number;
}

/** The JWKS could not be fetched or read: the request is refused (fail closed). */
export class SigningKeysUnavailableError extends UnauthenticatedError {
  constructor(detail: string) {
    super(`signing keys unavailable (${detail})`);
    this.name = 'SigningKeysUnavailableError';
  }
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const KID = /^[A-Za-z0-9_.-]{1,128}$/;
/** Headers that point at or carry keys: a verifier that honours them lets the token pick its own key. */
const KEY_HEADERS = ['jwk', 'jku', 'x5u', 'x5c'];
const SYMMETRIC = /^(none|HS\d+)$/i;

/**
 * Verifies a compact JWS token against a key set. Structural checks come first and cost no
 * crypto: size, three base64url segments, JSON objects without duplicate members, an allowed
 * `alg`, a plain `kid`, no key-carrying headers. jose then checks the signature and the
 * registered claims with every option spelled out. Throws UnauthenticatedError (or
 * SigningKeysUnavailableError) with a reason safe to log: never the token itself.
 */
export async function verifyToken(
  token: string,
  keys: JWTVerifyGetKey,
  policy: TokenPolicy,
  now: Date = new Date(),
): Promise<JWTPayload> {
  if (typeof token !== 'string' || token.length === 0) throw new UnauthenticatedError('no token');
  if (Buffer.byteLength(token, 'utf8') > policy.maxTokenBytes)
    throw new UnauthenticatedError(`token over ${policy.maxTokenBytes} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new UnauthenticatedError('not a compact JWS (three segments)');
  if (!parts.every((p) => SEGMENT.test(p))) throw new UnauthenticatedError('segment is not base64url');
  // Decoders ignore the unused low bits of a last character, so a signature has up to 16
  // spellings: only the one an encoder writes is a token the issuer issued.
  if (!parts.every((p) => Buffer.from(p, 'base64url').toString('base64url') === p))
    throw new UnauthenticatedError('segment is not canonical base64url');
  const header = decodeObject(parts[0] as string, 'header');
  const payload = decodeObject(parts[1] as string, 'payload');
  const alg = header.alg;
  if (typeof alg !== 'string' || SYMMETRIC.test(alg) || !policy.algorithms.includes(alg))
    throw new UnauthenticatedError(`algorithm ${JSON.stringify(alg)} not allowed`);
  for (const h of KEY_HEADERS) if (h in header) throw new UnauthenticatedError(`header ${h} is not accepted`);
  if (header.kid !== undefined && (typeof header.kid !== 'string' || !KID.test(header.kid)))
    throw new UnauthenticatedError('malformed kid');
  if (typeof payload.exp !== 'number') throw new UnauthenticatedError('no exp claim');
  if (typeof payload.iat !== 'number') throw new UnauthenticatedError('no iat claim');
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (payload.iat > nowSeconds + policy.clockToleranceSeconds)
    throw new UnauthenticatedError('iat is in the future');
  try {
    const { payload: verified } = await jwtVerify(token, keys, {
      algorithms: [...policy.algorithms],
      issuer: policy.issuer,
      audience: policy.audience,
      maxTokenAge: policy.maxTokenAgeSeconds,
      clockTolerance: policy.clockToleranceSeconds,
      requiredClaims: ['exp', 'iat', 'iss', 'aud'],
      currentDate: now,
    });
    return verified;
  } catch (error) {
    throw classify(error);
  }
}

function decodeObject(segment: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = Buffer.from(segment, 'base64url').toString('utf8');
  } catch {
    throw new UnauthenticatedError(`${what} is not base64url`);
  }
  let ast: ReturnType<typeof parseJson>;
  let value: unknown;
  try {
    ast = parseJson(text);
    // momoa lets raw control characters into strings, JSON.parse does not: both must accept it.
    value = JSON.parse(text);
  } catch {
    throw new UnauthenticatedError(`${what} is not JSON`);
  }
  if (ast.body.type !== 'Object') throw new UnauthenticatedError(`${what} is not a JSON object`);
  assertNoDuplicateMembers(ast.body, what);
  return value as Record<string, unknown>;
}

/** JSON.parse keeps the last of two equal member names; a verifier and an app may disagree on which. */
function assertNoDuplicateMembers(node: unknown, what: string): void {
  const n = node as {
    type?: string;
    members?: { name: { value: string }; value: unknown }[];
    elements?: { value: unknown }[];
  };
  if (n.type === 'Object' && n.members) {
    const seen = new Set<string>();
    for (const m of n.members) {
      if (seen.has(m.name.value))
        throw new UnauthenticatedError(`${what} repeats member ${JSON.stringify(m.name.value)}`);
      seen.add(m.name.value);
      assertNoDuplicateMembers(m.value, what);
    }
  } else if (n.type === 'Array' && n.elements)
    for (const e of n.elements) assertNoDuplicateMembers(e.value, what);
}

function classify(error: unknown): UnauthenticatedError {
  if (error instanceof UnauthenticatedError) return error;
  if (error instanceof joseErrors.JWKSTimeout) return new SigningKeysUnavailableError('timeout');
  if (error instanceof joseErrors.JWKSInvalid) return new SigningKeysUnavailableError('invalid key set');
  if (error instanceof joseErrors.JWKSNoMatchingKey)
    return new UnauthenticatedError('no key matches the token');
  if (error instanceof joseErrors.JWTExpired)
    return new UnauthenticatedError(`token expired (${error.claim} claim)`);
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return new UnauthenticatedError(`claim ${error.claim} check failed (${error.reason})`);
  if (error instanceof joseErrors.JOSEError) {
    // A failed fetch of the key set surfaces as a generic JOSE error from jose's fetch wrapper.
    if (error.code === 'ERR_JOSE_GENERIC') return new SigningKeysUnavailableError(error.message);
    return new UnauthenticatedError(error.code.toLowerCase().replace(/^err_/, '').replace(/_/g, ' '));
  }
  // fetch() itself failing (connection refused, DNS): the keys are unavailable.
  return new SigningKeysUnavailableError((error as Error)?.name ?? 'fetch failed');
}
