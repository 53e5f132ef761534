// Bearer token verification. HS256 with MPK_JWT_SECRET, and optionally asymmetric tokens from a
// JWKS (MPK_JWKS_URL). Only listed algorithms are accepted, so `alg: none` and algorithm
// confusion (an HS256 token "signed" with a public key) are refused by construction. With an
// issuer and an audience configured (required with a JWKS, which serves other applications too),
// a token must carry both; `iat` and `nbf` may not lie in the future beyond a small clock skew.
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { MpkError } from '../core/errors.js';
import type { Identity, Role } from '../core/identity.js';
import { ROLES } from '../db/enums.js';

export type { Identity, Role };

export interface AuthenticatorOptions {
  jwtSecret: string;
  jwksUrl?: string | undefined;
  /** The `iss` every token must carry; required with `jwksUrl`. */
  issuer?: string | undefined;
  /** A value every token's `aud` must hold; required with `jwksUrl`. */
  audience?: string | undefined;
  clock?: Clock;
}

const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];
const MAX_TOKEN_LENGTH = 8192;
/** How far the issuer's clock may be ahead of this server's: `nbf` and `iat` that far ahead pass. */
export const CLOCK_SKEW_SECONDS = 60;
/** An expired token stops working promptly (the dashboard signs out): `exp` gets only this much. */
const EXPIRY_TOLERANCE_SECONDS = 5;
// Claims are stored (users) and compared in SQL: PostgreSQL refuses NUL in text, so a claim
// holding one (or any control character) is a bad token, not a database error.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Why a token was refused, as `extensions.reason`: clients tell their users ("token rejected:
 * expired") without parsing messages.
 */
export type TokenRejection =
  | 'MALFORMED'
  | 'EXPIRED'
  | 'BAD_SIGNATURE'
  | 'INVALID_CLAIMS'
  | 'ALGORITHM'
  | 'UNKNOWN_ROLE';

const unauthenticated = (message: string, reason?: TokenRejection) =>
  new MpkError('UNAUTHENTICATED', message, { reason });

/** The role claim: `mpk_role`, or `app_metadata.mpk_role` as Supabase puts custom claims. */
function roleOf(payload: JWTPayload): Role {
  const appMetadata = payload.app_metadata as { mpk_role?: unknown } | undefined;
  const claim = payload.mpk_role ?? appMetadata?.mpk_role;
  if (claim === undefined || claim === null) return 'USER';
  const role = typeof claim === 'string' ? claim.toUpperCase() : '';
  if (!(ROLES as readonly string[]).includes(role)) throw unauthenticated('Token has an unknown role', 'UNKNOWN_ROLE');
  return role as Role;
}

export function createAuthenticator(options: AuthenticatorOptions) {
  if (options.jwksUrl && (!options.issuer || !options.audience))
    throw new Error('A JWKS needs an issuer and an audience to check: set MPK_JWT_ISSUER and MPK_JWT_AUDIENCE');
  const secret = new TextEncoder().encode(options.jwtSecret);
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl), { cooldownDuration: 30_000 }) : undefined;
  const clock = options.clock ?? systemClock;

  async function verify(token: string): Promise<JWTPayload> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthenticated('Token is malformed', 'MALFORMED');
    }
    const now = clock.now();
    const common = {
      requiredClaims: ['exp', 'sub'],
      currentDate: now,
      clockTolerance: CLOCK_SKEW_SECONDS,
      issuer: options.issuer,
      audience: options.audience,
    };
    let payload: JWTPayload | undefined;
    try {
      if (alg === 'HS256') payload = (await jwtVerify(token, secret, { ...common, algorithms: ['HS256'] })).payload;
      else if (jwks && alg && ASYMMETRIC_ALGS.includes(alg)) {
        payload = (await jwtVerify(token, jwks, { ...common, algorithms: ASYMMETRIC_ALGS })).payload;
      }
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthenticated('Token has expired', 'EXPIRED');
      if (error instanceof joseErrors.JWSSignatureVerificationFailed)
        throw unauthenticated('Token signature is wrong', 'BAD_SIGNATURE');
      if (error instanceof joseErrors.JWTClaimValidationFailed)
        throw unauthenticated(`Token claim ${error.claim} is missing or invalid`, 'INVALID_CLAIMS');
      if (error instanceof joseErrors.JOSEError) throw unauthenticated('Token is malformed', 'MALFORMED');
      throw error;
    }
    if (!payload) throw unauthenticated('Token algorithm is not accepted', 'ALGORITHM');
    const seconds = now.getTime() / 1000;
    // jose allows the one tolerance (the skew) on `exp` as on `nbf`: expiry is held tighter here.
    if (typeof payload.exp === 'number' && payload.exp <= seconds - EXPIRY_TOLERANCE_SECONDS)
      throw unauthenticated('Token has expired', 'EXPIRED');
    // jose checks `iat` only for a maximum age: a token "issued" a year from now would otherwise
    // pass (and outlive any revocation by issue time).
    if (typeof payload.iat === 'number' && payload.iat > seconds + CLOCK_SKEW_SECONDS)
      throw unauthenticated('Token claim iat is in the future', 'INVALID_CLAIMS');
    return payload;
  }

  return {
    /** The caller's identity; null without credentials; UNAUTHENTICATED for a bad token. */
    async authenticate(authorization: string | null | undefined): Promise<Identity | null> {
      if (authorization === undefined || authorization === null || authorization === '') return null;
      const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
      if (!match?.[1] || match[1].length > MAX_TOKEN_LENGTH)
        throw unauthenticated('Expected "Authorization: Bearer <token>"', 'MALFORMED');
      const payload = await verify(match[1]);
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
        throw unauthenticated('Token subject is missing or too long', 'INVALID_CLAIMS');
      }
      if (CONTROL.test(payload.sub)) throw unauthenticated('Token subject holds control characters', 'INVALID_CLAIMS');
      const email = typeof payload.email === 'string' ? payload.email : undefined;
      if (email !== undefined && CONTROL.test(email))
        throw unauthenticated('Token email holds control characters', 'INVALID_CLAIMS');
      return {
        userId: payload.sub,
        email,
        role: roleOf(payload),
        expiresAt: new Date(payload.exp! * 1000),
      };
    },
  };
}
export type Authenticator = ReturnType<typeof createAuthenticator>;

/** What `mintToken` takes from a server's configuration: its secret, issuer and audience. */
export const signingConfig = (config: { jwtSecret: string; jwtIssuer?: string; jwtAudience?: string }) => ({
  secret: config.jwtSecret,
  issuer: config.jwtIssuer,
  audience: config.jwtAudience,
});

/**
 * Signs an HS256 token as the dev CLI, dev sign-in and the tests do; with the configured issuer
 * and audience, when there are, or the server would refuse it.
 */
export async function mintToken(options: {
  secret: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  sub: string;
  role?: Role;
  email?: string;
  expiresInSeconds?: number;
  now?: Date;
}): Promise<string> {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const claims: JWTPayload = {};
  if (options.role) claims.mpk_role = options.role.toLowerCase();
  if (options.email) claims.email = options.email;
  if (options.issuer) claims.iss = options.issuer;
  if (options.audience) claims.aud = options.audience;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.expiresInSeconds ?? 3600))
    .sign(new TextEncoder().encode(options.secret));
}
