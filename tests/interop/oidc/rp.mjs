// Interop test: fedgate (OpenID Provider) vs openid-client v6 (an OpenID
// Certified relying party library) and jose (an independent JOSE/JWT verifier).
//
// Runs against an ALREADY RUNNING fedgate in dev mode:
//   FEDGATE_URL=http://127.0.0.1:18080 FEDGATE_ADMIN_KEY=... node --test --test-reporter=tap rp.mjs
//
// Everything it needs (tenant, dev connection, clients) is created through the
// admin API with a unique slug per run, so it can run against a shared server.
// Browser redirects are driven by hand (redirect: 'manual') with a small cookie
// jar; nothing listens on the redirect URI.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';

const ISSUER = (process.env.FEDGATE_URL || '').replace(/\/+$/, '');
const ADMIN_KEY = process.env.FEDGATE_ADMIN_KEY || '';
const REDIRECT_URI = 'http://127.0.0.1:9/cb';
const POST_LOGOUT_URI = 'http://127.0.0.1:9/bye';
const SCOPE = 'openid email profile offline_access';
const GROUP = 'engineering';
const RUN = randomBytes(4).toString('hex');
const SLUG = `interop-${RUN}`;
const DOMAIN = `${SLUG}.test`;
const DEFAULT_EMAIL = `alice@${DOMAIN}`;
const DEFAULT_NAME = 'Alice Example';
const insecure = { execute: [client.allowInsecureRequests] };

// ---------------------------------------------------------------- helpers

function log(t, msg) {
  // t.diagnostic shows up as "# ..." in the TAP output of this test.
  t.diagnostic(msg);
}

async function admin(method, path, body) {
  const res = await fetch(`${ISSUER}/admin/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN_KEY}`,
      'content-type': 'application/json',
      accept: 'application/json',
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function adminCreate(path, body) {
  const r = await admin('POST', path, body);
  assert.equal(
    r.status,
    201,
    `POST /admin/v1${path} ${JSON.stringify(body)} -> ${r.status} ${r.text}`,
  );
  return r.json;
}

/** Minimal cookie jar: one host, honours deletion via Max-Age<=0 / past Expires. */
class CookieJar {
  constructor() {
    this.cookies = new Map();
    this.set = []; // names of cookies ever set, in order
  }
  store(res) {
    const headers = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
    for (const line of headers) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'max-age' && Number(v.trim()) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v.trim()) < Date.now()) expired = true;
      }
      if (expired) this.cookies.delete(name);
      else {
        this.cookies.set(name, value);
        this.set.push(name);
      }
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

function decodeEntities(s) {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#([0-9]+);/g, (_, d) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function parseAttrs(tag) {
  const attrs = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  // skip the tag name
  const body = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(body))) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/** Parses the single POST form of the dev login page. */
function parseForm(html) {
  const formMatch = /<form\b[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  assert.ok(formMatch, `no <form> in dev page:\n${html.slice(0, 2000)}`);
  const formTag = /<form\b[^>]*>/i.exec(formMatch[0])[0];
  const fattrs = parseAttrs(formTag);
  const inner = formMatch[1];
  const hidden = [];
  for (const m of inner.matchAll(/<input\b[^>]*>/gi)) {
    const a = parseAttrs(m[0]);
    if ((a.type || '').toLowerCase() === 'hidden' && a.name) hidden.push([a.name, a.value ?? '']);
  }
  const buttons = [];
  for (const m of inner.matchAll(/<(?:button|input)\b[^>]*>/gi)) {
    const a = parseAttrs(m[0]);
    if (a.name === 'action') buttons.push(a.value);
  }
  return { method: (fattrs.method || 'get').toLowerCase(), action: fattrs.action, hidden, buttons };
}

function isRedirect(status) {
  return status >= 300 && status < 400;
}

function atRedirectUri(url, redirectUri) {
  const r = new URL(redirectUri);
  return url.origin === r.origin && url.pathname === r.pathname;
}

/**
 * Drives a browser through authorize -> dev page -> approve/deny, until the
 * user agent is sent back to redirectUri. Returns the callback URL and a trace.
 */
async function driveBrowser(authUrl, { redirectUri = REDIRECT_URI, decision = 'approve', jar = new CookieJar() } = {}) {
  const trace = [];
  let url = new URL(authUrl);
  let method = 'GET';
  let body;
  let posted = false;
  for (let hop = 0; hop < 12; hop++) {
    const headers = { accept: 'text/html,application/xhtml+xml' };
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    jar.store(res);
    const step = { method, url: url.href, status: res.status, location: res.headers.get('location') };
    trace.push(step);
    if (isRedirect(res.status)) {
      assert.ok(step.location, `${method} ${url} -> ${res.status} without Location`);
      const next = new URL(step.location, url);
      await res.body?.cancel();
      if (atRedirectUri(next, redirectUri)) return { callback: next, trace, jar };
      url = next;
      method = 'GET';
      body = undefined;
      continue;
    }
    const text = await res.text();
    step.body = text;
    if (res.status === 200 && !posted && /<form\b/i.test(text)) {
      const form = parseForm(text);
      step.form = form;
      assert.equal(form.method, 'post', 'dev page form must use method=post');
      assert.ok(form.action, 'dev page form has an action');
      const params = new URLSearchParams(form.hidden);
      params.set('action', decision);
      url = new URL(form.action, url);
      method = 'POST';
      body = params.toString();
      posted = true;
      continue;
    }
    throw new Error(
      `unexpected response during login: ${method} ${url} -> ${res.status}\n${text.slice(0, 1500)}`,
    );
  }
  throw new Error(`too many hops: ${JSON.stringify(trace.map(({ body: _b, ...s }) => s))}`);
}

async function startLogin(cfg, { pkce = true, loginHint, extra = {} } = {}) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    state,
    nonce,
    organization: SLUG,
    ...extra,
  };
  if (pkce) {
    params.code_challenge = await client.calculatePKCECodeChallenge(codeVerifier);
    params.code_challenge_method = 'S256';
  }
  if (loginHint) params.login_hint = loginHint;
  const authUrl = client.buildAuthorizationUrl(cfg, params);
  return { authUrl, codeVerifier, state, nonce };
}

/** Full login: returns tokens (validated by openid-client) plus the checks used. */
async function login(cfg, opts = {}) {
  const l = await startLogin(cfg, opts);
  const { callback, trace } = await driveBrowser(l.authUrl);
  const tokens = await client.authorizationCodeGrant(cfg, callback, {
    pkceCodeVerifier: l.codeVerifier,
    expectedState: l.state,
    expectedNonce: l.nonce,
    idTokenExpected: true,
  });
  return { ...l, callback, trace, tokens };
}

async function expectOAuthError(promise, codes, what) {
  const want = Array.isArray(codes) ? codes : [codes];
  try {
    const r = await promise;
    assert.fail(`${what}: expected OAuth error ${want.join('|')} but it succeeded: ${JSON.stringify(r)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    let code = err.error ?? err.cause?.error;
    if (code === undefined && err instanceof client.WWWAuthenticateChallengeError) {
      // 401 + WWW-Authenticate (RFC 6749 5.2 for invalid_client): the error code is in the body
      const body = await err.response?.clone().json().catch(() => undefined);
      code = body?.error;
      err.error = code;
    }
    assert.ok(
      want.includes(code),
      `${what}: expected error ${want.join('|')}, got ${err.name} ${code ?? ''} ${err.status ?? ''}: ${err.message} ${JSON.stringify(err.cause ?? {})}`,
    );
    return err;
  }
}

async function discover(created, { alg, auth } = {}) {
  const metadata = { client_secret: created.client_secret };
  if (alg) metadata.id_token_signed_response_alg = alg;
  return client.discovery(new URL(ISSUER), created.id, metadata, auth, insecure);
}

// ---------------------------------------------------------------- fixtures

const S = {}; // shared state

before(async () => {
  assert.ok(ISSUER, 'FEDGATE_URL must be set (the issuer of a running fedgate in dev mode)');
  assert.ok(ADMIN_KEY, 'FEDGATE_ADMIN_KEY must be set');

  S.tenant = await adminCreate('/tenants', { name: `Interop ${RUN}`, slug: SLUG, domains: [DOMAIN] });
  S.connection = await adminCreate(`/tenants/${S.tenant.id}/connections`, {
    type: 'dev',
    name: 'Dev login',
    default_email: DEFAULT_EMAIL,
    default_name: DEFAULT_NAME,
    groups: [GROUP],
  });
  const mk = (name, type, extra = {}) =>
    adminCreate('/clients', {
      name: `${name} ${RUN}`,
      type,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      post_logout_redirect_uris: [POST_LOGOUT_URI],
      ...extra,
    });
  // default client: no alg given -> ES256 is the default
  S.conf = await mk('interop confidential', 'confidential');
  S.rs256 = await mk('interop rs256', 'confidential', { id_token_signed_response_alg: 'RS256' });
  S.eddsa = await mk('interop eddsa', 'confidential', { id_token_signed_response_alg: 'EdDSA' });
  S.pub = await mk('interop public', 'public');

  S.meta = await (await fetch(`${ISSUER}/.well-known/openid-configuration`)).json();
  S.jwks = jose.createRemoteJWKSet(new URL(S.meta.jwks_uri));

  // Default (ES256) confidential client, client_secret_basic.
  S.cfg = await discover(S.conf, { alg: 'ES256', auth: client.ClientSecretBasic(S.conf.client_secret) });
  S.rsCfg = await discover(S.rs256, { alg: 'RS256', auth: client.ClientSecretPost(S.rs256.client_secret) });
  S.edCfg = await discover(S.eddsa, { alg: 'EdDSA', auth: client.ClientSecretBasic(S.eddsa.client_secret) });
  S.pubCfg = await client.discovery(
    new URL(ISSUER),
    S.pub.id,
    { id_token_signed_response_alg: 'ES256', token_endpoint_auth_method: 'none' },
    client.None(),
    insecure,
  );
});

// ---------------------------------------------------------------- tests

test('admin API created tenant, dev connection and clients', (t) => {
  log(t, 'checks: admin API 201 responses carry ids; confidential clients get a secret, public ones do not');
  assert.match(S.tenant.id, /^org_/, `tenant id ${S.tenant.id}`);
  assert.equal(S.tenant.slug, SLUG);
  assert.deepEqual(S.tenant.domains, [DOMAIN]);
  assert.match(S.connection.id, /^conn_/, `connection id ${S.connection.id}`);
  assert.equal(S.connection.tenant_id, S.tenant.id);
  assert.equal(S.connection.type, 'dev');
  for (const c of [S.conf, S.rs256, S.eddsa]) {
    assert.ok(c.id, 'client id');
    assert.equal(typeof c.client_secret, 'string', `confidential client ${c.id} has client_secret`);
    assert.ok(c.client_secret.length >= 16, 'client_secret is reasonably long');
  }
  assert.ok(S.pub.id);
  assert.ok(!S.pub.client_secret, `public client must not get a secret, got ${S.pub.client_secret}`);
  log(t, `tenant=${S.tenant.id} slug=${SLUG} connection=${S.connection.id}`);
});

test('discovery document and JWKS', async (t) => {
  log(t, 'checks: openid-client discovery accepted the metadata; required fields; JWKS has ES256/RS256/EdDSA sig keys with kid/alg/use');
  const m = S.cfg.serverMetadata();
  assert.equal(m.issuer, ISSUER);
  for (const f of [
    'authorization_endpoint',
    'token_endpoint',
    'userinfo_endpoint',
    'jwks_uri',
    'revocation_endpoint',
    'introspection_endpoint',
    'end_session_endpoint',
  ]) {
    assert.equal(typeof m[f], 'string', `metadata.${f}`);
    assert.ok(m[f].startsWith(ISSUER), `${f}=${m[f]} is under the issuer`);
  }
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  assert.equal(m.authorization_response_iss_parameter_supported, true);
  assert.ok(m.response_types_supported?.includes('code'), 'response_types_supported includes code');
  assert.ok(m.subject_types_supported?.length, 'subject_types_supported (required by OIDC Discovery)');
  for (const a of ['ES256', 'RS256', 'EdDSA']) {
    assert.ok(m.id_token_signing_alg_values_supported?.includes(a), `id_token_signing_alg_values_supported has ${a}`);
  }
  assert.equal(m.supportsPKCE?.() ?? true, true, 'supportsPKCE()');

  const res = await fetch(m.jwks_uri);
  assert.equal(res.status, 200);
  const jwks = await res.json();
  assert.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 3, 'at least 3 keys');
  const kids = new Set();
  for (const k of jwks.keys) {
    assert.ok(k.kid, `key has kid: ${JSON.stringify(k)}`);
    assert.ok(!kids.has(k.kid), `kid ${k.kid} is unique`);
    kids.add(k.kid);
    assert.equal(k.use, 'sig', `key ${k.kid} use=sig`);
    assert.ok(k.alg, `key ${k.kid} has alg`);
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
      assert.ok(!(priv in k), `JWKS must not leak private member ${priv} of ${k.kid}`);
    }
    await jose.importJWK(k, k.alg); // importable by jose
  }
  const algs = jwks.keys.map((k) => k.alg);
  for (const a of ['ES256', 'RS256', 'EdDSA']) assert.ok(algs.includes(a), `JWKS has a ${a} key (got ${algs})`);
  log(t, `JWKS algs: ${algs.join(', ')}`);
});

test('authorization code flow: confidential client, PKCE S256, client_secret_basic, ES256', async (t) => {
  log(t, 'checks: authorize -> 302/303 to /sso/dev/{id} with fedgate_login cookie; dev page form; approve -> 303 to redirect_uri with code,state,iss; openid-client authorizationCodeGrant validates ID token (sig, iss, aud, nonce) and RFC 9207 iss');
  const jar = new CookieJar();
  const l = await startLogin(S.cfg);
  assert.equal(l.authUrl.origin + l.authUrl.pathname, S.meta.authorization_endpoint);
  const { callback, trace } = await driveBrowser(l.authUrl, { jar });

  const [authz, ...rest] = trace;
  assert.ok([302, 303].includes(authz.status), `authorize -> ${authz.status}`);
  assert.match(new URL(authz.location, ISSUER).pathname, /^\/sso\/dev\/[^/]+$/, `authorize Location ${authz.location}`);
  assert.ok(jar.set.includes('fedgate_login'), `fedgate_login cookie set (got ${jar.set})`);
  const page = rest.find((s) => s.form);
  assert.ok(page, 'dev login page with a form was served');
  assert.equal(page.status, 200);
  assert.ok(page.form.buttons.includes('approve') && page.form.buttons.includes('deny'), `approve+deny buttons: ${page.form.buttons}`);
  const approve = trace[trace.length - 1];
  assert.equal(approve.method, 'POST');
  assert.equal(approve.status, 303, 'approve answers 303');

  assert.ok(callback.searchParams.get('code'), 'code in callback');
  assert.equal(callback.searchParams.get('state'), l.state);
  assert.equal(callback.searchParams.get('iss'), ISSUER, 'RFC 9207 iss parameter');

  const tokens = await client.authorizationCodeGrant(S.cfg, callback, {
    pkceCodeVerifier: l.codeVerifier,
    expectedState: l.state,
    expectedNonce: l.nonce,
    idTokenExpected: true,
  });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.expires_in > 0, 'expires_in');
  assert.ok(tokens.access_token && tokens.id_token && tokens.refresh_token, 'access, id and refresh token');
  assert.ok(tokens.scope === undefined || tokens.scope.split(' ').includes('openid'), `scope ${tokens.scope}`);
  S.main = { ...l, tokens };
  log(t, `got tokens: scope="${tokens.scope}" expires_in=${tokens.expires_in}`);
});

test('ID token claims (claims())', (t) => {
  log(t, 'checks: sub, org_id, org_slug, email, email_verified, name, groups, connection_id, connection_type, sid, amr, auth_time, nonce, iss, aud');
  assert.ok(S.main, 'login test ran');
  const c = S.main.tokens.claims();
  const now = Math.floor(Date.now() / 1000);
  assert.equal(c.iss, ISSUER);
  assert.ok([c.aud].flat().includes(S.conf.id), `aud ${c.aud}`);
  assert.equal(c.nonce, S.main.nonce);
  assert.equal(typeof c.sub, 'string');
  assert.ok(c.sub.length > 0 && c.sub.length <= 255, 'sub length 1..255 (OIDC Core 2)');
  assert.equal(c.org_id, S.tenant.id);
  assert.equal(c.org_slug, SLUG);
  assert.equal(c.email, DEFAULT_EMAIL);
  assert.equal(c.email_verified, true);
  assert.equal(c.name, DEFAULT_NAME);
  assert.ok(Array.isArray(c.groups) && c.groups.includes(GROUP), `groups ${JSON.stringify(c.groups)}`);
  assert.equal(c.connection_id, S.connection.id);
  assert.equal(c.connection_type, 'dev');
  assert.equal(typeof c.sid, 'string');
  assert.ok(c.sid.length > 0, 'sid');
  assert.ok(Array.isArray(c.amr) && c.amr.length > 0 && c.amr.every((x) => typeof x === 'string'), `amr ${JSON.stringify(c.amr)}`);
  assert.equal(typeof c.auth_time, 'number');
  assert.ok(c.auth_time <= now + 5 && c.auth_time > now - 600, `auth_time ${c.auth_time}`);
  assert.ok(c.exp > now && c.iat <= now + 5, 'exp/iat');
  if (c.given_name !== undefined) assert.equal(typeof c.given_name, 'string');
  if (c.family_name !== undefined) assert.equal(typeof c.family_name, 'string');
  log(t, `claims: ${JSON.stringify(c)}`);
});

test('ID token verified independently with jose (remote JWKS)', async (t) => {
  log(t, 'checks: jose jwtVerify of the ES256 ID token against jwks_uri with issuer+audience; kid present');
  const { payload, protectedHeader } = await jose.jwtVerify(S.main.tokens.id_token, S.jwks, {
    issuer: ISSUER,
    audience: S.conf.id,
    algorithms: ['ES256'],
    requiredClaims: ['sub', 'exp', 'iat', 'nonce'],
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.ok(protectedHeader.kid, 'ID token header has kid');
  assert.equal(payload.sub, S.main.tokens.claims().sub);
  // a tampered token must not verify
  const [h, , sig] = S.main.tokens.id_token.split('.');
  const forged = jose.base64url.encode(JSON.stringify({ ...payload, sub: 'attacker' }));
  await assert.rejects(jose.jwtVerify(`${h}.${forged}.${sig}`, S.jwks, { issuer: ISSUER }), 'tampered ID token rejected');
  log(t, `header: ${JSON.stringify(protectedHeader)}`);
});

test('access token is an RFC 9068 JWT verified with jose', async (t) => {
  log(t, 'checks: header typ=at+jwt; signature via JWKS; iss, sub, aud, exp, iat, jti, client_id, scope');
  const at = S.main.tokens.access_token;
  const header = jose.decodeProtectedHeader(at);
  assert.equal(header.typ, 'at+jwt', `access token typ header: ${header.typ}`);
  const { payload, protectedHeader } = await jose.jwtVerify(at, S.jwks, {
    issuer: ISSUER,
    typ: 'at+jwt',
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
  });
  assert.ok(protectedHeader.kid, 'kid');
  assert.notEqual(protectedHeader.alg, 'none');
  const now = Math.floor(Date.now() / 1000);
  assert.equal(payload.sub, S.main.tokens.claims().sub, 'AT sub equals ID token sub');
  assert.ok([payload.aud].flat().every((a) => typeof a === 'string' && a.length), `aud ${payload.aud}`);
  assert.ok(payload.exp > now, 'exp in the future');
  assert.ok(payload.iat <= now + 5, 'iat not in the future');
  assert.equal(typeof payload.jti, 'string');
  assert.equal(payload.client_id, S.conf.id);
  assert.equal(typeof payload.scope, 'string', 'scope claim (RFC 9068 2.2.3)');
  assert.ok(payload.scope.split(' ').includes('openid'), `scope ${payload.scope}`);
  log(t, `AT header ${JSON.stringify(protectedHeader)} payload ${JSON.stringify(payload)}`);
});

test('userinfo returns the same subject and email', async (t) => {
  log(t, 'checks: openid-client fetchUserInfo (validates sub) and claims');
  const sub = S.main.tokens.claims().sub;
  const ui = await client.fetchUserInfo(S.cfg, S.main.tokens.access_token, sub);
  assert.equal(ui.sub, sub);
  assert.equal(ui.email, DEFAULT_EMAIL);
  assert.equal(ui.email_verified, true);
  assert.equal(ui.name, DEFAULT_NAME);
  assert.equal(ui.org_id, S.tenant.id);
  assert.equal(ui.org_slug, SLUG);
  assert.ok(Array.isArray(ui.groups) && ui.groups.includes(GROUP), `groups ${JSON.stringify(ui.groups)}`);
  // without a token -> 401 with WWW-Authenticate
  const res = await fetch(S.meta.userinfo_endpoint);
  assert.equal(res.status, 401, 'userinfo without token is 401');
  assert.match(res.headers.get('www-authenticate') || '', /^Bearer/i, 'WWW-Authenticate: Bearer');
  log(t, `userinfo: ${JSON.stringify(ui)}`);
});

test('refresh token rotation and reuse detection', async (t) => {
  log(t, 'checks: refreshTokenGrant rotates the RT; reusing the old RT -> invalid_grant; afterwards the new RT is revoked too (family)');
  const { tokens } = await login(S.cfg);
  const sub = tokens.claims().sub;
  const rt1 = tokens.refresh_token;
  const r2 = await client.refreshTokenGrant(S.cfg, rt1);
  assert.ok(r2.access_token, 'new access token');
  assert.ok(r2.refresh_token, 'new refresh token');
  assert.notEqual(r2.refresh_token, rt1, 'refresh token rotated');
  if (r2.id_token) assert.equal(r2.claims().sub, sub, 'refreshed ID token has same sub');
  const { payload } = await jose.jwtVerify(r2.access_token, S.jwks, { issuer: ISSUER, typ: 'at+jwt' });
  assert.equal(payload.sub, sub);
  log(t, 'rotation ok; replaying the old refresh token');
  await expectOAuthError(client.refreshTokenGrant(S.cfg, rt1), 'invalid_grant', 'reuse of rotated RT');
  log(t, 'old RT rejected; the rotated RT must now be revoked as well');
  await expectOAuthError(client.refreshTokenGrant(S.cfg, r2.refresh_token), 'invalid_grant', 'RT after family revocation');
});

test('revocation (RFC 7009) and introspection (RFC 7662)', async (t) => {
  log(t, 'checks: introspect AT active; revoke RT; refresh with it -> invalid_grant; AT of that grant introspects inactive; unknown tokens');
  const { tokens } = await login(S.cfg);
  const sub = tokens.claims().sub;
  const before = await client.tokenIntrospection(S.cfg, tokens.access_token);
  assert.equal(before.active, true, `introspection before revoke: ${JSON.stringify(before)}`);
  if (before.client_id !== undefined) assert.equal(before.client_id, S.conf.id);
  if (before.sub !== undefined) assert.equal(before.sub, sub);
  if (before.iss !== undefined) assert.equal(before.iss, ISSUER);
  if (before.exp !== undefined) assert.ok(before.exp > Date.now() / 1000);
  log(t, `introspection (active): ${JSON.stringify(before)}`);

  await client.tokenRevocation(S.cfg, tokens.refresh_token, { token_type_hint: 'refresh_token' });
  await expectOAuthError(client.refreshTokenGrant(S.cfg, tokens.refresh_token), 'invalid_grant', 'refresh with revoked RT');
  const after = await client.tokenIntrospection(S.cfg, tokens.access_token);
  assert.equal(after.active, false, `introspection after revoking the grant: ${JSON.stringify(after)}`);
  // RFC 7662 2.2 SHOULD NOT disclose more for inactive tokens (informational)
  log(t, `introspection (inactive): ${JSON.stringify(after)}`);

  // RFC 7009 2.2: invalid tokens still get 200; RFC 7662: unknown token -> active:false
  await client.tokenRevocation(S.cfg, `bogus-${RUN}`);
  const bogus = await client.tokenIntrospection(S.cfg, `bogus-${RUN}`);
  assert.equal(bogus.active, false);
});

test('revoking an access token makes it inactive', async (t) => {
  log(t, 'checks: RFC 7009 revocation with token_type_hint=access_token, then introspection active=false');
  const { tokens } = await login(S.cfg);
  assert.equal((await client.tokenIntrospection(S.cfg, tokens.access_token)).active, true);
  await client.tokenRevocation(S.cfg, tokens.access_token, { token_type_hint: 'access_token' });
  const after = await client.tokenIntrospection(S.cfg, tokens.access_token);
  assert.equal(after.active, false, `after AT revocation: ${JSON.stringify(after)}`);
});

test('introspection and revocation require client authentication', async (t) => {
  log(t, 'checks: wrong client secret at token/introspection endpoint -> 401 invalid_client');
  const bad = await discover(S.conf, { alg: 'ES256', auth: client.ClientSecretBasic('not-the-secret') });
  const err = await expectOAuthError(
    client.tokenIntrospection(bad, S.main.tokens.access_token),
    'invalid_client',
    'introspection with wrong secret',
  );
  assert.equal(err.status, 401);
  const l = await startLogin(S.cfg);
  const { callback } = await driveBrowser(l.authUrl);
  const err2 = await expectOAuthError(
    client.authorizationCodeGrant(bad, callback, { pkceCodeVerifier: l.codeVerifier, expectedState: l.state, expectedNonce: l.nonce }),
    'invalid_client',
    'code exchange with wrong secret',
  );
  assert.equal(err2.status, 401);
});

test('public client: PKCE flow with token_endpoint_auth_method none, login_hint', async (t) => {
  log(t, 'checks: public client (client.None()) exchanges code with code_verifier; email == login_hint; refresh works');
  const hint = `bob@${DOMAIN}`;
  const { tokens } = await login(S.pubCfg, { loginHint: hint });
  const c = tokens.claims();
  assert.ok([c.aud].flat().includes(S.pub.id));
  assert.equal(c.email, hint, 'email is the login_hint');
  assert.equal(c.org_id, S.tenant.id);
  const { protectedHeader } = await jose.jwtVerify(tokens.id_token, S.jwks, { issuer: ISSUER, audience: S.pub.id });
  assert.equal(protectedHeader.alg, 'ES256');
  if (tokens.refresh_token) {
    const r = await client.refreshTokenGrant(S.pubCfg, tokens.refresh_token);
    assert.notEqual(r.refresh_token, tokens.refresh_token, 'public client RT rotated');
  }
});

test('public client: code exchange without code_verifier fails', async (t) => {
  log(t, 'checks: code issued with code_challenge, token request without code_verifier -> invalid_grant');
  const l = await startLogin(S.pubCfg);
  const { callback } = await driveBrowser(l.authUrl);
  const err = await expectOAuthError(
    client.authorizationCodeGrant(S.pubCfg, callback, { expectedState: l.state, expectedNonce: l.nonce }),
    ['invalid_grant', 'invalid_request'],
    'public client without code_verifier',
  );
  log(t, `server said: ${err.error} ${err.error_description ?? ''}`);
});

test('public client: wrong code_verifier fails', async (t) => {
  log(t, 'checks: token request with a different code_verifier -> invalid_grant');
  const l = await startLogin(S.pubCfg);
  const { callback } = await driveBrowser(l.authUrl);
  await expectOAuthError(
    client.authorizationCodeGrant(S.pubCfg, callback, {
      pkceCodeVerifier: client.randomPKCECodeVerifier(),
      expectedState: l.state,
      expectedNonce: l.nonce,
    }),
    'invalid_grant',
    'wrong code_verifier',
  );
});

test('authorize without PKCE for a public client is refused', async (t) => {
  log(t, 'checks: public client authorize without code_challenge is an error (redirect with error or 400), never a code');
  const l = await startLogin(S.pubCfg, { pkce: false });
  const res = await fetch(l.authUrl, { redirect: 'manual' });
  if (isRedirect(res.status)) {
    const loc = new URL(res.headers.get('location'), ISSUER);
    assert.ok(atRedirectUri(loc, REDIRECT_URI), `redirect goes back to the client with an error, not to login: ${loc}`);
    assert.ok(loc.searchParams.get('error'), `error param: ${loc}`);
    assert.ok(!loc.searchParams.get('code'));
    log(t, `error=${loc.searchParams.get('error')}`);
  } else {
    assert.equal(res.status, 400);
  }
});

test('wrong redirect_uri at authorize -> 400 HTML error page, not a redirect', async (t) => {
  log(t, 'checks: unregistered redirect_uri and unknown client_id answer 400 text/html without Location');
  const l = await startLogin(S.cfg, { extra: { redirect_uri: 'http://127.0.0.1:9/evil' } });
  assert.equal(l.authUrl.searchParams.get('redirect_uri'), 'http://127.0.0.1:9/evil');
  const res = await fetch(l.authUrl, { redirect: 'manual' });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('location'), null, 'no Location header');
  assert.match(res.headers.get('content-type') || '', /text\/html/);
  const body = await res.text();
  assert.ok(!body.includes('http://127.0.0.1:9/evil?'), 'page does not link back to the bad redirect_uri with params');

  const u = new URL(l.authUrl);
  u.searchParams.set('client_id', `unknown-${RUN}`);
  u.searchParams.set('redirect_uri', REDIRECT_URI);
  const res2 = await fetch(u, { redirect: 'manual' });
  assert.equal(res2.status, 400, 'unknown client_id -> 400');
  assert.equal(res2.headers.get('location'), null);
  assert.match(res2.headers.get('content-type') || '', /text\/html/);
});

test('replayed authorization code -> invalid_grant', async (t) => {
  log(t, 'checks: code is single-use; second exchange -> invalid_grant');
  const l = await startLogin(S.cfg);
  const { callback } = await driveBrowser(l.authUrl);
  const checks = { pkceCodeVerifier: l.codeVerifier, expectedState: l.state, expectedNonce: l.nonce };
  const first = await client.authorizationCodeGrant(S.cfg, callback, checks);
  assert.ok(first.access_token);
  await expectOAuthError(client.authorizationCodeGrant(S.cfg, callback, checks), 'invalid_grant', 'code replay');
  // RFC 6749 4.1.2 SHOULD: revoke tokens issued from the replayed code (informational only)
  const intro = await client.tokenIntrospection(S.cfg, first.access_token);
  log(t, `after replay, first access token introspects active=${intro.active} (RFC 6749 SHOULD revoke: informational)`);
});

test('redirect_uri at token endpoint must match the one used at authorize', async (t) => {
  log(t, 'checks: code exchange with a different (even registered-looking) redirect_uri -> invalid_grant');
  const l = await startLogin(S.cfg);
  const { callback } = await driveBrowser(l.authUrl);
  const wrong = new URL(callback);
  wrong.pathname = '/other';
  await expectOAuthError(
    client.authorizationCodeGrant(S.cfg, wrong, { pkceCodeVerifier: l.codeVerifier, expectedState: l.state, expectedNonce: l.nonce }),
    'invalid_grant',
    'mismatched redirect_uri',
  );
});

test('deny at the dev page -> access_denied with state and iss', async (t) => {
  log(t, 'checks: deny redirects with error=access_denied, state and iss; openid-client raises AuthorizationResponseError');
  const l = await startLogin(S.cfg);
  const { callback } = await driveBrowser(l.authUrl, { decision: 'deny' });
  assert.equal(callback.searchParams.get('error'), 'access_denied');
  assert.equal(callback.searchParams.get('state'), l.state);
  assert.equal(callback.searchParams.get('iss'), ISSUER);
  await assert.rejects(
    client.authorizationCodeGrant(S.cfg, callback, { pkceCodeVerifier: l.codeVerifier, expectedState: l.state }),
    (err) => err instanceof client.AuthorizationResponseError && err.error === 'access_denied',
  );
});

test('prompt=none without a session -> login_required redirect', async (t) => {
  log(t, 'checks: OIDC Core 3.1.2.6: prompt=none with no session returns an error to the client, no UI');
  const l = await startLogin(S.cfg, { extra: { prompt: 'none' } });
  const res = await fetch(l.authUrl, { redirect: 'manual' });
  assert.ok(isRedirect(res.status), `expected a redirect, got ${res.status}`);
  const loc = new URL(res.headers.get('location'), ISSUER);
  assert.ok(atRedirectUri(loc, REDIRECT_URI), `redirected to the client: ${loc}`);
  assert.ok(
    ['login_required', 'interaction_required', 'consent_required', 'account_selection_required'].includes(loc.searchParams.get('error')),
    `error=${loc.searchParams.get('error')}`,
  );
  assert.equal(loc.searchParams.get('state'), l.state);
  assert.equal(loc.searchParams.get('iss'), ISSUER);
});

for (const [alg, key, authName] of [
  ['RS256', 'rsCfg', 'client_secret_post'],
  ['EdDSA', 'edCfg', 'client_secret_basic'],
]) {
  test(`ID token signed with ${alg} (client registered with id_token_signed_response_alg=${alg}, ${authName})`, async (t) => {
    log(t, `checks: openid-client accepts only ${alg} ID tokens for this client; jose verifies it independently; AT verifies`);
    const created = alg === 'RS256' ? S.rs256 : S.eddsa;
    const { tokens, nonce } = await login(S[key]);
    const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, S.jwks, {
      issuer: ISSUER,
      audience: created.id,
      algorithms: [alg],
    });
    assert.equal(protectedHeader.alg, alg);
    assert.equal(payload.nonce, nonce);
    assert.equal(payload.org_id, S.tenant.id);
    const at = await jose.jwtVerify(tokens.access_token, S.jwks, { issuer: ISSUER, typ: 'at+jwt' });
    assert.equal(at.payload.client_id, created.id);
    const ui = await client.fetchUserInfo(S[key], tokens.access_token, payload.sub);
    assert.equal(ui.email, DEFAULT_EMAIL);
    // refreshed ID token keeps the client's alg
    const r = await client.refreshTokenGrant(S[key], tokens.refresh_token);
    if (r.id_token) assert.equal(jose.decodeProtectedHeader(r.id_token).alg, alg);
    log(t, `ID token header ${JSON.stringify(protectedHeader)}`);
  });
}

test('RP-initiated logout redirects to the registered post_logout_redirect_uri with state', async (t) => {
  log(t, 'checks: buildEndSessionUrl(id_token_hint, post_logout_redirect_uri, state) -> redirect to post_logout_redirect_uri?state=');
  const { tokens } = await login(S.cfg);
  const state = client.randomState();
  const url = client.buildEndSessionUrl(S.cfg, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: POST_LOGOUT_URI,
    state,
  });
  const res = await fetch(url, { redirect: 'manual' });
  if (isRedirect(res.status)) {
    const loc = new URL(res.headers.get('location'), ISSUER);
    assert.equal(loc.origin + loc.pathname, POST_LOGOUT_URI);
    assert.equal(loc.searchParams.get('state'), state);
  } else {
    // a confirmation page is allowed by RP-Initiated Logout 1.0
    assert.equal(res.status, 200, `logout answered ${res.status}`);
    log(t, 'logout answered with a confirmation page (200)');
  }
  // unregistered post_logout_redirect_uri must not be redirected to
  const bad = client.buildEndSessionUrl(S.cfg, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: 'http://127.0.0.1:9/evil',
  });
  const res2 = await fetch(bad, { redirect: 'manual' });
  const loc2 = res2.headers.get('location') || '';
  assert.ok(!loc2.startsWith('http://127.0.0.1:9/evil'), `must not redirect to unregistered URI (status ${res2.status}, Location ${loc2})`);
});
