// Verify a fedgate access token (RFC 9068) in a Node.js API, with jose.
//
//   import { createVerifier } from './verify.mjs';
//   const verify = createVerifier({ issuer: 'https://auth.example.com', audience: 'cli_...' });
//   const claims = await verify(token);   // throws TokenError { check } when refused
//
// Checks: the signature with a key from the issuer's JWKS (found through discovery; jose caches
// the keys and refetches on an unknown kid at most once a minute), `alg` in the allow-list
// (never `none` or HS*), `typ: at+jwt` (so an ID token is not accepted as an access token),
// `iss`, `aud`, `exp`/`nbf`/`iat` with a bounded clock tolerance, the claims every fedgate access
// token carries, and optionally the tenant (`org_id`).
import { createRemoteJWKSet, jwtVerify, errors } from 'jose';

/** What fedgate signs with (docs/tokens.md). Narrow it to your client's algorithm. */
export const FEDGATE_ALGORITHMS = ['ES256', 'EdDSA', 'RS256'];

/** A refused token; `check` names the failed check (alg, typ, kid, signature, iss, aud, exp, nbf, tenant, claims, malformed, jwks). */
export class TokenError extends Error {
  constructor(check, message, options) {
    super(`${check} check failed: ${message}`, options);
    this.name = 'TokenError';
    this.check = check;
  }
}

function checkOf(err) {
  if (err instanceof errors.JWTExpired) return 'exp';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' || err.claim === 'iat') return 'nbf';
    return ['iss', 'aud', 'typ'].includes(err.claim) ? err.claim : 'claims';
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg';
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return 'kid';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'jwks';
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return 'malformed';
  return 'jwks';
}

/**
 * @param {object} o
 * @param {string} o.issuer        fedgate's issuer URL, exactly as in `iss`
 * @param {string|string[]} o.audience   your client_id(s)
 * @param {string} [o.orgId]       require this tenant (`org_…`)
 * @param {string[]} [o.algorithms]
 * @param {number} [o.clockTolerance]  seconds, default 60, at most 300
 * @returns {(token: string, opts?: {currentDate?: Date}) => Promise<object>}
 */
export function createVerifier({ issuer, audience, orgId, algorithms = FEDGATE_ALGORITHMS, clockTolerance = 60 }) {
  if (!issuer || !audience) throw new Error('issuer and audience are required');
  if (algorithms.some((a) => a === 'none' || a.startsWith('HS'))) throw new Error('none and HS* are never acceptable');
  if (clockTolerance > 300) throw new Error('clockTolerance is at most 300 s');
  let jwks; // a promise of jose's remote JWK set, created once from discovery

  async function discover() {
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const res = await fetch(url, { signal: AbortSignal.timeout(5000), redirect: 'error' });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    const meta = await res.json();
    if (meta.issuer !== issuer) throw new Error(`${url}: issuer is ${meta.issuer}, expected ${issuer}`);
    return createRemoteJWKSet(new URL(meta.jwks_uri), {
      timeoutDuration: 5000,
      cooldownDuration: 60_000, // an unknown kid refetches at most once a minute
      cacheMaxAge: 300_000, // keys are refetched after 5 minutes
    });
  }

  return async function verifyAccessToken(token, { currentDate } = {}) {
    if (!jwks) jwks = discover().catch((e) => { jwks = undefined; throw e; });
    let keys;
    try {
      keys = await jwks;
    } catch (e) {
      throw new TokenError('jwks', e.message, { cause: e });
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer,
        audience,
        algorithms,
        typ: 'at+jwt', // RFC 9068: an ID token (typ JWT) is not an access token
        clockTolerance,
        requiredClaims: ['exp', 'iat', 'sub', 'client_id'],
        currentDate,
      }));
    } catch (e) {
      throw new TokenError(checkOf(e), e.message, { cause: e });
    }
    if (orgId !== undefined && payload.org_id !== orgId) {
      throw new TokenError('tenant', `the token is for ${payload.org_id}, expected ${orgId}`);
    }
    return payload;
  };
}
