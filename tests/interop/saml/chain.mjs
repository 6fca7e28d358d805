// Interop test, the real SAML chain: pysaml2 (idp.py, the tenant's IdP; signatures and encryption by
// Debian's xmlsec1) -> fedgate (type "saml" connections) -> openid-client (an OpenID Certified
// relying party) as the app, which must receive the normalized ID token.
//
// Runs against an ALREADY RUNNING fedgate (dev mode for http URLs, allow_private_network since the
// IdP listens on 127.0.0.1) and an already running idp.py:
//   FEDGATE_URL=... FEDGATE_ADMIN_KEY=... SAML_IDP_URL=http://127.0.0.1:PORT \
//     node --test --test-reporter=tap chain.mjs
//
// The browser is simulated: cookie jar per host, redirects followed by hand, and every HTML form
// (fedgate's POST-binding page has no JavaScript, pysaml2's auto-POST page neither needs it) is
// submitted by parsing its action and inputs. The app's redirect URI and initiate_login_uri are on
// 127.0.0.1:9 where nothing listens: the driver reads them from the Location header.
// Cases share one IdP process; each sets the IdP's behaviour first with POST {IDP}/mode.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { FEDGATE, ADMIN_KEY, admin, create, Jar } from '../browser.mjs';

const IDP = (process.env.SAML_IDP_URL || '').replace(/\/+$/, '');
const APP_REDIRECT = 'http://127.0.0.1:9/cb';
const INITIATE_URI = 'http://127.0.0.1:9/initiate';
const RUN = randomBytes(4).toString('hex');
const SLUG = `saml-${RUN}`;
const DOMAIN = `saml-${RUN}.test`;
const EMAIL = `Alice@${DOMAIN}`;
const USER = {
  email: [EMAIL],
  givenName: ['Alice'],
  sn: ['Anderson'],
  displayName: ['Alice Anderson'],
  groups: ['engineering', 'admins', 'saml-users'],
};
const insecure = { execute: [client.allowInsecureRequests] };

// ---------------------------------------------------------------- helpers

async function patch(path, body) {
  const r = await admin('PATCH', path, body);
  assert.equal(r.status, 200, `PATCH ${path} -> ${r.status} ${r.text}`);
  return r.json;
}

/** Sets the IdP's knobs for the next responses (unknown keys are refused by idp.py). */
async function idpMode(mode) {
  const reset = await fetch(`${IDP}/reset`, { method: 'POST', body: '{}' });
  assert.equal(reset.status, 200);
  const res = await fetch(`${IDP}/mode`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attributes: USER, ...mode }),
  });
  assert.equal(res.status, 200, await res.text());
}

async function idpLast() {
  return (await fetch(`${IDP}/last`)).json();
}

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos|#39);/gi, (m, e) => {
    const l = e.toLowerCase();
    if (l.startsWith('#x')) return String.fromCodePoint(parseInt(l.slice(2), 16));
    if (l.startsWith('#')) return String.fromCodePoint(parseInt(l.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[l] ?? m;
  });
}

function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s>]+))/g)) {
    out[m[1].toLowerCase()] = decodeEntities(m[3] ?? m[4] ?? m[5] ?? '');
  }
  return out;
}

/** The first <form> of an HTML page: { action, method, fields } (inputs with a name). */
function parseForm(html, base) {
  const open = html.match(/<form\b[^>]*>/i);
  if (!open) return null;
  const body = html.slice(open.index, html.indexOf('</form', open.index) >>> 0 || undefined);
  const a = attrs(open[0]);
  const fields = {};
  for (const m of body.matchAll(/<input\b[^>]*>/gi)) {
    const i = attrs(m[0]);
    if (!i.name || ['submit', 'button', 'image', 'reset'].includes((i.type || '').toLowerCase())) continue;
    fields[i.name] = i.value ?? '';
  }
  return { action: new URL(a.action || base, base).toString(), method: (a.method || 'get').toLowerCase(), fields };
}

/**
 * Acts as the browser from `start` (a URL, or { url, form } to POST) until a URL under one of
 * `stopAt` is reached ({ url, hops, acsPosts }), or a page that is neither a redirect nor a form
 * ({ url, status, page, hops, acsPosts }). acsPosts: every form posted to an ACS (for replays).
 */
async function browse(start, { jar = new Jar(), stopAt = [APP_REDIRECT, INITIATE_URI] } = {}) {
  const hops = [];
  const acsPosts = [];
  let req = typeof start === 'string' ? { url: start } : start;
  for (let i = 0; i < 25; i++) {
    if (stopAt.some((p) => req.url.startsWith(p))) return { url: req.url, hops, acsPosts, jar };
    const init = { redirect: 'manual', headers: { cookie: jar.header(req.url) } };
    if (req.form) {
      init.method = 'POST';
      init.headers['content-type'] = 'application/x-www-form-urlencoded';
      init.body = new URLSearchParams(req.form).toString();
      if (/\/sso\/saml\/[^/]+\/acs$/.test(new URL(req.url).pathname)) acsPosts.push({ url: req.url, form: req.form });
    }
    const res = await fetch(req.url, init);
    jar.store(req.url, res);
    const u = new URL(req.url);
    hops.push(`${init.method || 'GET'} ${u.host}${u.pathname} ${res.status}`);
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      req = { url: new URL(loc, req.url).toString(), redirected: req.url };
      continue;
    }
    const page = await res.text();
    const form = res.status === 200 ? parseForm(page, req.url) : null;
    // A form that posts back to where it came from is a page that wants a person (e.g. an email
    // prompt): stop there rather than loop.
    if (!form || (req.form && form.action === req.url)) return { url: req.url, status: res.status, page, hops, acsPosts, jar };
    req = form.method === 'post' ? { url: form.action, form: form.fields } : {
      url: `${form.action.split('?')[0]}?${new URLSearchParams(form.fields)}`,
    };
  }
  throw new Error(`too many hops: ${hops.join(' -> ')}`);
}

function lastHop(r) {
  return `${r.hops.join(' -> ')}\n${r.status ?? ''} ${(r.page || '').replace(/\s+/g, ' ').slice(0, 800)}`;
}

/** The login trace of a failed attempt: the failed one among the login ids on the error page (the
 * page may also quote the InResponseTo it refused), else the tenant's newest failure. */
async function failedTrace(r, connectionId) {
  for (const id of new Set((r.page || '').match(/lgn_[0-9a-z]{10,}/gi) || [])) {
    const t = await admin('GET', `/logins/${id}`);
    if (t.status === 200 && t.json.status === 'failed') return t.json;
  }
  const list = await admin('GET', `/tenants/${SLUG}/logins?status=failed&limit=10`);
  assert.equal(list.status, 200, list.text);
  const mine = list.json.data.filter((l) => !connectionId || l.connection_id === connectionId);
  assert.ok(mine.length > 0, `no failed login trace for ${connectionId}: ${list.text.slice(0, 500)}`);
  return mine[0];
}

/**
 * The error code an error page shows. ACS answers that match no pending login (unsolicited,
 * replayed, unknown InResponseTo) are anonymous: fedgate writes no trace for them (anyone can
 * post them; docs/saml.md), so the page's code is what there is to check.
 */
function pageCode(r) {
  const m = (r.page || '').match(/Error code <code>([a-z0-9_]+)<\/code>/);
  return m ? m[1] : null;
}

/** A refused login: an error page (4xx, or 502 like every upstream failure), never a 500. */
function assertRefused(r, what) {
  assert.ok(!r.url.startsWith(APP_REDIRECT) && !r.url.startsWith(INITIATE_URI), `${what}: logged in (${r.url})`);
  assert.ok(r.status >= 400 && r.status !== 500, `${what}: ${lastHop(r)}`);
  assert.match(r.page, /<html/i, `${what}: an HTML error page`);
}

// ---------------------------------------------------------------- setup

let tenant;
let app;
let connA; // from the metadata URL, explicit attribute mapping, email domain trusted
let connB; // from the metadata XML, preset generic, request_binding post
const seen = { subs: new Map() }; // connection id -> sub

async function startLogin(connection, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(app, {
    redirect_uri: APP_REDIRECT,
    scope: 'openid email profile',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...(connection ? { connection: connection.id } : {}),
    ...extra,
  });
  return { url: url.toString(), verifier, state, nonce };
}

async function redeem(flow, back) {
  const tokens = await client.authorizationCodeGrant(app, new URL(back), {
    pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce,
  }, undefined);
  return tokens.claims();
}

function assertClaims(c, conn, { emailVerified = true, groups = USER.groups } = {}) {
  assert.match(c.sub, /^usr_/);
  assert.ok(Array.isArray(c.groups), `groups is an array: ${JSON.stringify(c.groups)}`);
  // All normalized claims in one comparison, so a failure shows every difference at once.
  const pick = (o) => ({
    iss: o.iss, org_id: o.org_id, org_slug: o.org_slug, connection_id: o.connection_id,
    connection_type: o.connection_type, email: o.email, email_verified: o.email_verified,
    given_name: o.given_name, family_name: o.family_name, name: o.name,
    groups: Array.isArray(o.groups) ? [...o.groups].sort() : o.groups,
  });
  assert.deepEqual(pick(c), {
    iss: FEDGATE, org_id: tenant.id, org_slug: SLUG, connection_id: conn.id, connection_type: 'saml',
    email: EMAIL.toLowerCase(), email_verified: emailVerified,
    given_name: 'Alice', family_name: 'Anderson', name: 'Alice Anderson', groups: [...groups].sort(),
  }, `normalized claims through ${conn.name}`);
  const prev = seen.subs.get(conn.id);
  if (prev) assert.equal(c.sub, prev, 'sub is stable for the same person through the same connection');
  else seen.subs.set(conn.id, c.sub);
}

/** A complete SP-initiated login through `conn`; returns { claims, r, last }. */
async function spLogin(t, conn, mode) {
  assert.ok(conn, 'the connection was not created (see the first tests)');
  const { expect_protection: _, ...idp } = mode;
  await idpMode(idp);
  const flow = await startLogin(conn);
  const r = await browse(flow.url);
  t.diagnostic(r.hops.join(' -> '));
  assert.ok(r.url.startsWith(APP_REDIRECT), `did not reach the app:\n${lastHop(r)}`);
  const back = new URL(r.url);
  assert.equal(back.searchParams.get('iss'), FEDGATE, 'RFC 9207 iss');
  assert.ok(r.acsPosts.length === 1, 'one POST to the ACS');
  assert.ok(r.hops.some((h) => /\/sso\/saml\/[^/]+\/acs 303$/.test(h)), 'ACS answers 303');
  assert.ok(r.hops.some((h) => /GET [^ ]+\/sso\/saml\/resume 303$/.test(h)), '/sso/saml/resume answers 303');
  const last = await idpLast();
  const claims = await redeem(flow, r.url);
  const trace = await admin('GET', `/logins/${last.id}`);
  assert.equal(trace.status, 200, trace.text);
  assert.equal(trace.json.status, 'completed');
  const validated = trace.json.steps.find((s) => s.step === 'saml_response_validated');
  assert.ok(validated, `no saml_response_validated step: ${trace.json.steps.map((s) => s.step)}`);
  if (mode.expect_protection) {
    // What fedgate says it verified must be what pysaml2 protected (the trace detail, when given).
    const got = validated.detail?.protection;
    t.diagnostic(`protection: ${JSON.stringify(got)}`);
    if (Array.isArray(got)) assert.deepEqual([...got].sort(), [...mode.expect_protection].sort(), 'protection');
  }
  return { claims, r, last, trace: trace.json };
}

before(async () => {
  assert.ok(FEDGATE && ADMIN_KEY && IDP, 'FEDGATE_URL, FEDGATE_ADMIN_KEY and SAML_IDP_URL must be set');
  tenant = await create('/tenants', { name: `SAML ${RUN}`, slug: SLUG, domains: [DOMAIN] });
  const created = await create('/clients', {
    name: `saml chain ${RUN}`, type: 'confidential', redirect_uris: [APP_REDIRECT],
  });
  app = await client.discovery(new URL(FEDGATE), created.id, created.client_secret, undefined, insecure);
});

// ---------------------------------------------------------------- connections

test('SAML connection from the pysaml2 metadata URL: SP values for the IdP admin', async () => {
  connA = await create(`/tenants/${SLUG}/connections`, {
    type: 'saml', name: 'pysaml2 (metadata URL)', metadata_url: `${IDP}/metadata`,
    attribute_mapping: {
      email: 'email', given_name: 'givenName', family_name: 'sn', name: 'displayName', groups: 'groups',
    },
    trusted_email_domains: [DOMAIN],
    idp_initiated: { enabled: false, client_id: app.clientMetadata().client_id, initiate_login_uri: INITIATE_URI },
  });
  assert.equal(connA.type, 'saml');
  assert.match(connA.id, /^conn_/);
  assert.equal(connA.idp_entity_id, `${IDP}/metadata`);
  // New connections use the hyphen form of the id in their URLs (Okta refuses underscores).
  const seg = connA.id.replace(/^conn_/, 'conn-');
  assert.equal(connA.sp_url_form, 'hyphen');
  assert.equal(connA.sp_entity_id, `${FEDGATE}/sso/saml/${seg}/metadata`);
  assert.equal(connA.sp_metadata_url, `${FEDGATE}/sso/saml/${seg}/metadata`);
  assert.equal(connA.acs_url, `${FEDGATE}/sso/saml/${seg}/acs`);
  assert.match(connA.sp_certificate, /-----BEGIN CERTIFICATE-----/);
  assert.equal(connA.idp_certificates.length, 1);
  assert.match(connA.idp_certificates[0].fingerprint_sha256 || '', /[0-9a-f]/i);
  // The SP metadata is what pysaml2 loads: entity ID, ACS (POST), signing + encryption certificate.
  const md = await fetch(connA.sp_metadata_url);
  assert.equal(md.status, 200);
  const xml = await md.text();
  assert.ok(xml.includes(`entityID="${connA.sp_entity_id}"`), xml.slice(0, 400));
  assert.ok(xml.includes(connA.acs_url));
  assert.ok(xml.includes('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST'));
  const pem = connA.sp_certificate.replace(/-----[^-]+-----|\s/g, '');
  assert.ok(xml.replace(/\s/g, '').includes(pem), 'SP metadata carries the SP certificate');
  // pysaml2 must be able to load it (parsed with its schema-aware metadata loader).
  const load = await fetch(`${IDP}/sp`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ metadata_url: connA.sp_metadata_url }),
  });
  assert.equal(load.status, 200, `pysaml2 could not load fedgate's SP metadata: ${await load.text()}`);
});

test('SAML connection from metadata XML (preset generic, POST binding); metadata without a signing certificate is refused', async () => {
  const xml = await (await fetch(`${IDP}/metadata`)).text();
  connB = await create(`/tenants/${SLUG}/connections`, {
    type: 'saml', name: 'pysaml2 (metadata XML)', metadata_xml: xml, preset: 'generic', request_binding: 'post',
    trusted_email_domains: [DOMAIN],
  });
  assert.equal(connB.idp_entity_id, `${IDP}/metadata`);
  assert.equal(connB.request_binding, 'post');
  assert.notEqual(connB.sp_entity_id, connA.sp_entity_id, 'each connection has its own SP entity ID');
  const unsigned = xml.replace(/<(\w+:)?KeyDescriptor\b[\s\S]*?<\/(\w+:)?KeyDescriptor>/g, '');
  assert.ok(!unsigned.includes('X509Certificate'));
  const r = await admin('POST', `/tenants/${SLUG}/connections`, {
    type: 'saml', name: 'no cert', metadata_xml: unsigned,
  });
  assert.equal(r.status, 400, r.text);
  assert.match(r.text, /certificate/i);
});

// ---------------------------------------------------------------- SP-initiated

test('SP-initiated, HTTP-Redirect (signed AuthnRequest), signed Response', async (t) => {
  const { claims, r, last, trace } = await spLogin(t, connA, {
    sign_response: true, sign_assertion: false, expect_protection: ['response'],
  });
  assert.ok(r.hops.some((h) => h.includes(`${new URL(IDP).host}/sso/redirect 200`)), 'went through the Redirect SSO');
  assert.equal(last.binding, 'redirect');
  assert.equal(last.issuer, connA.sp_entity_id);
  assert.equal(last.signed_query, true, 'fedgate signs Redirect AuthnRequests by default');
  assert.equal(last.raw_signature_valid, true, `Redirect signature (raw query): ${last.raw_signature_detail}`);
  t.diagnostic(`pysaml2's re-encoding signature check: ${last.pysaml2_signature_valid}`);
  assert.match(last.id, /^lgn_/, 'AuthnRequest ID is the LoginId');
  assert.equal(last.relay_state, last.id, 'RelayState is the LoginId');
  assert.equal(last.destination, `${IDP}/sso/redirect`);
  assert.equal(last.acs_url, connA.acs_url, "AssertionConsumerServiceURL");
  t.diagnostic(`steps: ${trace.steps.map((s) => s.step).join(',')}`);
  assertClaims(claims, connA);
});

test('SP-initiated, signed Assertion only (Response unsigned)', async (t) => {
  const { claims, last } = await spLogin(t, connA, {
    sign_response: false, sign_assertion: true, expect_protection: ['assertion'],
  });
  assert.equal((last.response_xml.match(/SignatureValue>/g) || []).length, 2, 'exactly one signature');
  assertClaims(claims, connA);
});

test('SP-initiated, Response and Assertion both signed', async (t) => {
  const { claims, last } = await spLogin(t, connA, {
    sign_response: true, sign_assertion: true, expect_protection: ['response', 'assertion'],
  });
  assert.equal((last.response_xml.match(/SignatureValue>/g) || []).length, 4, 'two signatures');
  assertClaims(claims, connA);
});

for (const enc of ['aes256-cbc', 'aes128-cbc', 'aes256-gcm', 'aes128-gcm']) {
  test(`SP-initiated, encrypted Assertion (${enc}, RSA-OAEP to fedgate's SP certificate), signed inside, Response signed`, async (t) => {
    const { claims, last } = await spLogin(t, connA, {
      sign_response: true, sign_assertion: true, encrypt_assertion: true, enc_alg: enc,
      expect_protection: ['response', 'encrypted', 'assertion'],
    });
    assert.ok(last.response_xml.includes('EncryptedAssertion') && !last.response_xml.includes('alice-7f3a9c2e'));
    assertClaims(claims, connA);
  });
}

test('SP-initiated, RSA-SHA512 / SHA-512 signatures on Response and Assertion', async (t) => {
  const { claims, last } = await spLogin(t, connA, {
    sign_response: true, sign_assertion: true, sign_alg: 'rsa-sha512', digest_alg: 'sha512',
    expect_protection: ['response', 'assertion'],
  });
  assert.ok(last.response_xml.includes('xmldsig-more#rsa-sha512'));
  assertClaims(claims, connA);
});

test('SP-initiated, encrypted Assertion signed inside only (Response unsigned)', async (t) => {
  // Allowed by the spec when the decrypted Assertion's own signature is verified.
  const { claims } = await spLogin(t, connA, {
    sign_response: false, sign_assertion: true, encrypt_assertion: true, enc_alg: 'aes256-gcm',
    expect_protection: ['encrypted', 'assertion'],
  });
  assertClaims(claims, connA);
});

test("pysaml2's default encryption (tripledes-cbc) ends cleanly: a login or saml_decryption_failed", async (t) => {
  await idpMode({ sign_response: true, sign_assertion: true, encrypt_assertion: true, enc_alg: 'tripledes-cbc' });
  const flow = await startLogin(connA);
  const r = await browse(flow.url);
  t.diagnostic(r.hops.join(' -> '));
  if (r.url.startsWith(APP_REDIRECT)) {
    assertClaims(await redeem(flow, r.url), connA);
    t.diagnostic('3DES-encrypted assertion accepted');
  } else {
    assertRefused(r, '3DES');
    const trace = await failedTrace(r, connA.id);
    assert.equal(trace.error?.code, 'saml_decryption_failed', JSON.stringify(trace.error));
    t.diagnostic(`3DES refused: ${trace.error.cause}`);
  }
});

test('SP-initiated, HTTP-POST binding (request_binding "post"): the form page is submitted by the browser', async (t) => {
  await patch(`/tenants/${SLUG}/connections/${connA.id}`, { request_binding: 'post' });
  try {
    const { claims, r, last } = await spLogin(t, connA, { sign_response: true });
    assert.ok(r.hops.some((h) => h.startsWith('GET') && h.includes('/authorize 200')), 'fedgate renders the POST form');
    assert.ok(r.hops.some((h) => h === `POST ${new URL(IDP).host}/sso/post 200`), 'POSTed to the IdP');
    assert.equal(last.binding, 'post');
    assert.equal(last.destination, `${IDP}/sso/post`);
    t.diagnostic(`embedded AuthnRequest signature: ${last.embedded_signature}`);
    assertClaims(claims, connA);
  } finally {
    await patch(`/tenants/${SLUG}/connections/${connA.id}`, { request_binding: 'redirect' });
  }
});

// fedgate's SP metadata says AuthnRequestsSigned="true" (sign_requests defaults to true); an IdP
// that takes it at its word (pysaml2's want_authn_requests_signed, like Shibboleth or ADFS set to
// require signed requests) must get signed AuthnRequests over both bindings.
for (const binding of ['redirect', 'post']) {
  test(`an IdP that requires signed AuthnRequests (pysaml2 want_authn_requests_signed) accepts fedgate's ${binding} binding`, async (t) => {
    const md = await (await fetch(connA.sp_metadata_url)).text();
    assert.match(md, /AuthnRequestsSigned="true"/);
    await patch(`/tenants/${SLUG}/connections/${connA.id}`, { request_binding: binding });
    try {
      await idpMode({ sign_response: true, want_authn_requests_signed: true });
      const flow = await startLogin(connA);
      const r = await browse(flow.url);
      t.diagnostic(r.hops.join(' -> '));
      const last = await idpLast();
      assert.ok(r.url.startsWith(APP_REDIRECT),
        `pysaml2 refused the ${binding} AuthnRequest (signed query: ${last.signed_query}, enveloped signature: ${last.embedded_signature}): ${last.pysaml2_refused || lastHop(r)}`);
      await redeem(flow, r.url);
    } finally {
      await patch(`/tenants/${SLUG}/connections/${connA.id}`, { request_binding: 'redirect' });
    }
  });
}

test('connection from metadata XML with preset generic: POST binding, the preset maps the attributes', async (t) => {
  const { claims, last } = await spLogin(t, connB, { sign_response: true, sign_assertion: true });
  assert.equal(last.binding, 'post');
  t.diagnostic(`same sub as through the metadata-URL connection: ${claims.sub === seen.subs.get(connA.id)}`);
  assertClaims(claims, connB);
});

/** An SP-initiated login that fedgate must refuse with `code`; returns the trace. */
async function spRefused(t, conn, mode, code) {
  await idpMode(mode);
  const flow = await startLogin(conn);
  const r = await browse(flow.url);
  t.diagnostic(r.hops.join(' -> '));
  assertRefused(r, code);
  const trace = await failedTrace(r, conn.id);
  assert.equal(trace.error?.code, code, JSON.stringify(trace.error));
  t.diagnostic(`${code}: ${trace.error.cause}`);
  return trace;
}

test('RSA-SHA1 signatures from pysaml2 are refused (allow_sha1 is off): saml_signature_algorithm_not_allowed', async (t) => {
  await spRefused(t, connA, { sign_response: true, sign_assertion: true, sign_alg: 'rsa-sha1', digest_alg: 'sha1' },
    'saml_signature_algorithm_not_allowed');
});

test('a transient NameID without a subject attribute cannot be the stable subject: saml_subject_missing', async (t) => {
  await spRefused(t, connA, { sign_response: true, name_id_format: 'transient', name_id: `tr-${RUN}` },
    'saml_subject_missing');
});

test('a failure status from pysaml2 (Responder/AuthnFailed) reaches the trace verbatim: saml_status_not_success', async (t) => {
  const trace = await spRefused(t, connA, {
    sign_response: true, error_status: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed',
    error_message: `alice could not be authenticated ${RUN}`,
  }, 'saml_status_not_success');
  const text = JSON.stringify(trace);
  assert.ok(text.includes('urn:oasis:names:tc:SAML:2.0:status:AuthnFailed'), 'second-level status code in the trace');
  assert.ok(text.includes(`alice could not be authenticated ${RUN}`), 'StatusMessage in the trace');
});

// ---------------------------------------------------------------- IdP-initiated

async function idpInitiated(conn, jar = new Jar()) {
  assert.ok(conn, 'the connection was not created (see the first tests)');
  const start = `${IDP}/idp-initiated?sp=${encodeURIComponent(conn.sp_entity_id)}`;
  return browse(start, { jar });
}

test('IdP-initiated while disabled: rejected with saml_unsolicited_response', async (t) => {
  await idpMode({ sign_response: true, sign_assertion: true });
  const r = await idpInitiated(connA);
  t.diagnostic(r.hops.join(' -> '));
  assertRefused(r, 'unsolicited while disabled');
  assert.equal(pageCode(r), 'saml_unsolicited_response', r.page);
});

let idpInitiatedPost; // the ACS form of a successful IdP-initiated login, for the replay test

test('IdP-initiated when enabled: fedgate starts a fresh OIDC flow at initiate_login_uri, without the IdP again', async (t) => {
  await patch(`/tenants/${SLUG}/connections/${connA.id}`, {
    idp_initiated: { enabled: true, client_id: app.clientMetadata().client_id, initiate_login_uri: INITIATE_URI },
  });
  await idpMode({ sign_response: true, sign_assertion: true });
  const r = await idpInitiated(connA);
  t.diagnostic(r.hops.join(' -> '));
  assert.ok(r.url.startsWith(INITIATE_URI), `expected a redirect to initiate_login_uri:\n${lastHop(r)}`);
  assert.equal(r.acsPosts.length, 1);
  idpInitiatedPost = r.acsPosts[0];
  // OIDC Core §4: iss, login_hint, and the connection.
  const init = new URL(r.url);
  assert.equal(init.searchParams.get('iss'), FEDGATE);
  // The email as the IdP sent it (the ID token's is lower-cased); compared without case.
  assert.equal(init.searchParams.get('login_hint')?.toLowerCase(), EMAIL.toLowerCase());
  t.diagnostic(`login_hint=${init.searchParams.get('login_hint')}`);
  assert.equal(init.searchParams.get('connection'), connA.id);
  // The app starts a normal flow (state, nonce, PKCE); fedgate's session answers it at once.
  const flow = await startLogin(null, {
    login_hint: init.searchParams.get('login_hint'), connection: init.searchParams.get('connection'),
  });
  const r2 = await browse(flow.url, { jar: r.jar });
  t.diagnostic(r2.hops.join(' -> '));
  assert.ok(r2.url.startsWith(APP_REDIRECT), `the app's flow did not complete:\n${lastHop(r2)}`);
  assert.ok(!r2.hops.some((h) => h.includes(new URL(IDP).host)), 'the IdP is not visited again');
  const claims = await redeem(flow, r2.url);
  assertClaims(claims, connA);
});

test('a replayed IdP-initiated SAMLResponse is rejected with saml_replay', async (t) => {
  assert.ok(idpInitiatedPost, 'needs the IdP-initiated login above');
  const r = await browse(idpInitiatedPost); // a fresh browser (no cookies), same form
  t.diagnostic(r.hops.join(' -> '));
  assertRefused(r, 'replay');
  assert.equal(pageCode(r), 'saml_replay', r.page);
});

test('a replayed SP-initiated SAMLResponse is rejected (same browser and a fresh one)', async (t) => {
  const { r } = await spLogin(t, connA, { sign_response: true, sign_assertion: true });
  const post = r.acsPosts[0];
  for (const [who, jar] of [['same browser', r.jar], ['fresh browser', new Jar()]]) {
    const again = await browse(post, { jar });
    t.diagnostic(`${who}: ${again.hops.join(' -> ')}`);
    assertRefused(again, who);
    // The first check that trips may be the consumed request (InResponseTo) or the assertion ID.
    const code = pageCode(again);
    assert.ok(['saml_replay', 'saml_in_response_to_mismatch'].includes(code), again.page);
    t.diagnostic(`${who}: ${code}`);
  }
});

test('the same SAMLResponse posted twice before the browser returns: the copy is refused with saml_replay and gets nothing; the victim still finishes', async (t) => {
  await idpMode({ sign_response: true, sign_assertion: true });
  const flow = await startLogin(connA);
  const jar = new Jar();
  const r = await browse(flow.url, { jar, stopAt: [`${FEDGATE}/sso/saml/resume`, APP_REDIRECT] });
  t.diagnostic(r.hops.join(' -> '));
  assert.ok(r.url.startsWith(`${FEDGATE}/sso/saml/resume`), lastHop(r));
  // Someone who captured the form posts it from another browser.
  const again = await browse(r.acsPosts[0], { jar: new Jar() });
  t.diagnostic(again.hops.join(' -> '));
  assertRefused(again, 'second POST');
  assert.equal(pageCode(again), 'saml_replay', again.page);
  assert.ok(!again.url.startsWith(APP_REDIRECT), 'the copy never reaches the app');
  // A refused answer does not end the victim's pending login (issue 10 §4): the browser that
  // posted first returns with its binding cookie and handle, and only it finishes.
  const back = await browse(r.url, { jar });
  t.diagnostic(`resume after the replay: ${back.hops.join(' -> ')}`);
  assert.ok(back.url.startsWith(APP_REDIRECT), lastHop(back));
  const claims = await redeem(flow, back.url);
  assertClaims(claims, connA);
  // The attacker's browser, even with the resume URL, holds no binding cookie: nothing.
  const stolen = await browse(r.url, { jar: new Jar() });
  assert.ok(!new URL(stolen.url).searchParams.get('code'), 'no authorization code for another browser');
});

test('IdP-initiated, Assertion encrypted: also accepted when enabled', async (t) => {
  await idpMode({ sign_response: true, sign_assertion: true, encrypt_assertion: true, enc_alg: 'aes256-gcm' });
  const r = await idpInitiated(connA);
  t.diagnostic(r.hops.join(' -> '));
  assert.ok(r.url.startsWith(INITIATE_URI), lastHop(r));
});
