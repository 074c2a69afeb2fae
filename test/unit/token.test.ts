import { createHmac, sign as cryptoSign, KeyObject } from 'node:crypto';
import {
  CompactSign,
  createLocalJWKSet,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { type TokenPolicy, verifyToken } from '../../functions/core/auth/token.js';
import { UnauthenticatedError } from '../../functions/core/errors.js';

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

const NOW = new Date('2026-06-01T12:00:00Z');
const now = Math.floor(NOW.getTime() / 1000);
const policy: TokenPolicy = {
  issuer: 'https://issuer.example',
  audience: 'clonefactory-api',
  algorithms: ['ES256', 'RS256'],
  maxTokenAgeSeconds: 3600,
  maxTokenBytes: 4096,
  clockToleranceSeconds: 0,
};

let signer: SigningKey;
let publicJwk: JWK;
let keys: JWTVerifyGetKey;
let attacker: Awaited<ReturnType<typeof generateKeyPair>>;
let es384: Awaited<ReturnType<typeof generateKeyPair>>;
const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signer = pair.privateKey as SigningKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
  keys = createLocalJWKSet({ keys: [publicJwk] });
  attacker = await generateKeyPair('ES256', { extractable: true });
  es384 = await generateKeyPair('ES384', { extractable: true });
});

const goodClaims = () => ({
  iss: policy.issuer,
  aud: policy.audience,
  sub: 'user-1',
  email: 'a@example.com',
  tenant_id: 'acme',
  iat: now - 10,
  exp: now + 600,
});

/** Signs any header and raw payload text, so that malformed payloads can be signed too. */
async function sign(
  payload: string | Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'ES256', kid: 'k1' },
  key: SigningKey | Uint8Array = signer,
): Promise<string> {
  const bytes = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return new CompactSign(bytes).setProtectedHeader(header as never).sign(key);
}

/** Signs raw header and payload text with the trusted key, for headers jose would not write. */
function rawSign(header: string, payload: unknown): string {
  const body = `${enc(header)}.${enc(payload)}`;
  const sig = cryptoSign('sha256', Buffer.from(body), {
    key: KeyObject.from(signer as never),
    dsaEncoding: 'ieee-p1363',
  });
  return `${body}.${sig.toString('base64url')}`;
}

const refused = async (token: string, reason: RegExp) => {
  const error = await verifyToken(token, keys, policy, NOW).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UnauthenticatedError);
  expect((error as UnauthenticatedError).reason).toMatch(reason);
};

describe('verifyToken', () => {
  it('accepts a well-formed token and returns its claims', async () => {
    const claims = await verifyToken(await sign(goodClaims()), keys, policy, NOW);
    expect(claims).toMatchObject({ sub: 'user-1', tenant_id: 'acme' });
  });

  it('refuses alg none in any case, signed or not', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const body = `${enc({ alg, kid: 'k1' })}.${enc(goodClaims())}`;
      await refused(`${body}.`, /base64url/);
      await refused(`${body}.${enc('sig')}`, /not allowed/);
    }
  });

  it('refuses HS256 signed with the public key as the secret', async () => {
    for (const secret of [
      JSON.stringify(publicJwk),
      await exportSPKI((await generateKeyPair('RS256', { extractable: true })).publicKey),
    ]) {
      const body = `${enc({ alg: 'HS256', kid: 'k1' })}.${enc(goodClaims())}`;
      const sig = createHmac('sha256', secret).update(body).digest('base64url');
      await refused(`${body}.${sig}`, /HS256.*not allowed/);
    }
  });

  it('refuses an algorithm that is not on the allow list', async () => {
    await refused(
      await sign(goodClaims(), { alg: 'ES384', kid: 'k1' }, es384.privateKey as SigningKey),
      /ES384.*not allowed/,
    );
  });

  it('refuses expired tokens, exp equal to now, and tokens without exp', async () => {
    await refused(await sign({ ...goodClaims(), exp: now - 1 }), /expired/);
    await refused(await sign({ ...goodClaims(), exp: now }), /expired/);
    const { exp: _exp, ...noExp } = goodClaims();
    await refused(await sign(noExp), /no exp/);
  });

  it('refuses nbf or iat in the future, and tokens older than the max age', async () => {
    await refused(await sign({ ...goodClaims(), nbf: now + 60 }), /nbf/);
    await refused(await sign({ ...goodClaims(), iat: now + 60 }), /iat is in the future/);
    await refused(await sign({ ...goodClaims(), iat: now - 3601, exp: now + 600 }), /iat/);
    const { iat: _iat, ...noIat } = goodClaims();
    await refused(await sign(noIat), /no iat/);
  });

  it('refuses a wrong or missing audience or issuer', async () => {
    await refused(await sign({ ...goodClaims(), aud: 'other-api' }), /aud/);
    const { aud: _aud, ...noAud } = goodClaims();
    await refused(await sign(noAud), /aud/);
    await refused(await sign({ ...goodClaims(), iss: 'https://evil.example' }), /iss/);
    const { iss: _iss, ...noIss } = goodClaims();
    await refused(await sign(noIss), /iss/);
  });

  it('refuses an unknown kid and a kid with a path', async () => {
    await refused(await sign(goodClaims(), { alg: 'ES256', kid: 'k2' }), /no key matches/);
    await refused(await sign(goodClaims(), { alg: 'ES256', kid: '../../keys/k1' }), /malformed kid/);
  });

  it('refuses an embedded jwk, and jku or x5u headers, without fetching anything', async () => {
    const attackerJwk = await exportJWK(attacker.publicKey);
    await refused(
      await sign(goodClaims(), { alg: 'ES256', jwk: attackerJwk }, attacker.privateKey as SigningKey),
      /header jwk/,
    );
    await refused(
      await sign(goodClaims(), { alg: 'ES256', kid: 'k1', jku: 'http://127.0.0.1:1/jwks' }),
      /header jku/,
    );
    await refused(
      await sign(goodClaims(), { alg: 'ES256', kid: 'k1', x5u: 'http://127.0.0.1:1/cert' }),
      /header x5u/,
    );
  });

  it('refuses an unknown crit header', async () => {
    const token = rawSign('{"alg":"ES256","kid":"k1","crit":["exp-policy"],"exp-policy":1}', goodClaims());
    await refused(token, /not supported/);
    // The same token without crit verifies: the refusal is about crit alone.
    await expect(
      verifyToken(rawSign('{"alg":"ES256","kid":"k1"}', goodClaims()), keys, policy, NOW),
    ).resolves.toBeTruthy();
  });

  it('refuses a tampered payload, and a stripped or truncated signature', async () => {
    const [h, , s] = (await sign(goodClaims())).split('.');
    await refused(`${h}.${enc({ ...goodClaims(), tenant_id: 'victim' })}.${s}`, /signature/);
    await refused(`${h}.${enc(goodClaims())}.`, /base64url/);
    await refused(`${h}.${enc(goodClaims())}.${s?.slice(0, 20)}`, /signature|invalid/);
  });

  it('refuses bad base64url, four segments and a payload that is not an object', async () => {
    const good = await sign(goodClaims());
    await refused(good.replace('.', '.@@'), /base64url/);
    await refused(`${good}.${enc('x')}`, /three segments/);
    await refused(await sign('"just a string"'), /not a JSON object/);
    await refused(await sign('[1,2]'), /not a JSON object/);
    await refused(await sign('{"broken": '), /not JSON/);
  });

  it('refuses a duplicated claim, the tenant claim above all', async () => {
    const claims = JSON.stringify(goodClaims());
    await refused(await sign(`${claims.slice(0, -1)},"tenant_id":"victim"}`), /repeats member "tenant_id"/);
    // A header naming alg twice, signed correctly: JSON.parse would keep the last one.
    const body = `${enc('{"alg":"ES256","kid":"k1","alg":"ES256"}')}.${enc(goodClaims())}`;
    const sig = cryptoSign('sha256', Buffer.from(body), {
      key: KeyObject.from(signer as never),
      dsaEncoding: 'ieee-p1363',
    });
    await refused(`${body}.${sig.toString('base64url')}`, /header repeats member "alg"/);
  });

  it('refuses a token over the size cap before parsing it', async () => {
    await refused(await sign({ ...goodClaims(), pad: 'x'.repeat(5000) }), /over 4096 bytes/);
    await refused('x'.repeat(10_000), /over 4096 bytes/);
  });
});
