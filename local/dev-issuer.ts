import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { ValidationError } from '../functions/core/errors.js';
import { TENANT_ID } from '../functions/core/tenants.js';

/** The local issuer's identity; the local authorizer verifies against these by default. */
export const DEV_ISSUER = 'clonefactory-dev-issuer';
export const DEV_AUDIENCE = 'clonefactory-api';
export const DEV_ALGORITHM = 'ES256';

export interface MintRequest {
  readonly email: string;
  readonly tenant?: string;
  /** An operator token: the control-plane routes, no tenant. */
  readonly operator?: boolean;
  readonly ttlSeconds?: number;
  readonly subject?: string;
}

type SigningKey = Awaited<ReturnType<typeof importJWK>>;

interface KeyFile {
  readonly kid: string;
  readonly privateJwk: JWK;
  readonly publicJwk: JWK;
}

/**
 * A development JWT issuer: one ES256 key pair kept under the state directory (0600), its
 * JWKS served by the local control plane, tokens minted by `clonectl token`. It exists only
 * locally; on AWS the JWKS is the identity provider's (Cognito or any OIDC issuer).
 */
export class DevIssuer {
  private constructor(
    private readonly key: KeyFile,
    private readonly privateKey: SigningKey,
  ) {}

  static async load(home: string): Promise<DevIssuer> {
    const dir = join(home, 'dev-issuer');
    const file = join(dir, 'key.json');
    let key: KeyFile;
    try {
      key = JSON.parse(await readFile(file, 'utf8')) as KeyFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      const pair = await generateKeyPair(DEV_ALGORITHM, { extractable: true });
      const kid = randomBytes(8).toString('hex');
      key = {
        kid,
        privateJwk: { ...(await exportJWK(pair.privateKey)), kid, alg: DEV_ALGORITHM },
        publicJwk: { ...(await exportJWK(pair.publicKey)), kid, alg: DEV_ALGORITHM, use: 'sig' },
      };
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
      await writeFile(tmp, JSON.stringify(key), { mode: 0o600, flag: 'wx' });
      await rename(tmp, file);
      // Two processes racing here: the last rename wins; both read that one from now on.
      key = JSON.parse(await readFile(file, 'utf8')) as KeyFile;
    }
    return new DevIssuer(key, await importJWK(key.privateJwk, DEV_ALGORITHM));
  }

  /** The public half, as a JWKS document. */
  jwks(): { keys: JWK[] } {
    return { keys: [this.key.publicJwk] };
  }

  async mint(request: MintRequest): Promise<string> {
    const email = request.email.trim();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || email.length > 254)
      throw new ValidationError(`invalid email ${JSON.stringify(request.email)}`, 'email');
    // An operator token has no tenant; a tenant it is given must still be a valid one.
    if (
      (!request.operator || request.tenant !== undefined) &&
      (!request.tenant || !TENANT_ID.test(request.tenant))
    )
      throw new ValidationError('a user token needs --tenant with a valid tenant id', 'tenant');
    const ttl = request.ttlSeconds ?? 3600;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400)
      throw new ValidationError('ttl must be 1 to 86400 seconds', 'ttl');
    const claims: Record<string, unknown> = { email, email_verified: true };
    if (request.tenant) claims.tenant_id = request.tenant;
    if (request.operator) claims.scope = 'clonefactory/operator';
    return new SignJWT(claims)
      .setProtectedHeader({ alg: DEV_ALGORITHM, kid: this.key.kid, typ: 'JWT' })
      .setSubject(request.subject ?? email.toLowerCase())
      .setIssuer(DEV_ISSUER)
      .setAudience(DEV_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${ttl}s`)
      .sign(this.privateKey);
  }
}
