// Interop test, the real chain: oidc-provider (an OpenID Certified provider) as the upstream
// IdP of two tenants -> fedgate (OIDC connections) -> openid-client (an OpenID Certified
// relying party) as the app. Routed by login_hint; the app's ID token must carry the
// normalized claims and the right org_id.
//
// Runs against an ALREADY RUNNING fedgate started with dev mode (http URLs) and
// allow_private_network (the IdPs listen on 127.0.0.1):
//   FEDGATE_URL=... FEDGATE_ADMIN_KEY=... node --test --test-reporter=tap chain.mjs
//
// The two IdPs run in this process on port 0. Their interaction (login + consent) pages are
// replaced by an auto-approving handler that signs in the person named by login_hint.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { FEDGATE, ADMIN_KEY, admin, create, Jar } from '../browser.mjs';
import { startIdp } from './idp.mjs';

const APP_REDIRECT = 'http://127.0.0.1:9/cb';
const RUN = randomBytes(4).toString('hex');
const insecure = { execute: [client.allowInsecureRequests] };

/** The upstream IdP of one tenant: its people's claims, in the ID token or only in userinfo. */
function startTenantIdp({ clientId, clientSecret, groups, claimsInIdToken }) {
  return startIdp({
    clientId, clientSecret, groups: true, claimsInIdToken,
    claimsOf(id) {
      const [local] = id.split('@');
      return {
        sub: `idp-${id}`, email: id.toUpperCase(), email_verified: true,
        name: `${local} Person`, given_name: local, family_name: 'Person', groups,
      };
    },
  });
}

/** Follows redirects like a browser until the app's redirect URI; returns that URL. */
async function browse(start, trace) {
  const jar = new Jar();
  let url = start;
  for (let i = 0; i < 20; i++) {
    if (url.startsWith(APP_REDIRECT)) return url;
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header(url) } });
    jar.store(url, res);
    trace.push(`${res.status} ${new URL(url).host}${new URL(url).pathname}`);
    const loc = res.headers.get('location');
    if (!loc) throw new Error(`stopped at ${url} with ${res.status}: ${(await res.text()).slice(0, 500)}`);
    url = new URL(loc, url).toString();
  }
  throw new Error(`too many redirects: ${trace.join(' -> ')}`);
}

const tenants = [];
const idps = [];
let app;

before(async () => {
  assert.ok(FEDGATE && ADMIN_KEY, 'FEDGATE_URL and FEDGATE_ADMIN_KEY must be set');
  for (const [i, spec] of [
    { slug: `acme-${RUN}`, domain: `acme-${RUN}.test`, groups: ['engineering', 'admins'], claimsInIdToken: true },
    { slug: `globex-${RUN}`, domain: `globex-${RUN}.test`, groups: ['sales'], claimsInIdToken: false },
  ].entries()) {
    const secret = randomBytes(16).toString('hex');
    const idp = await startTenantIdp({ clientId: `fedgate-${i}`, clientSecret: secret, ...spec });
    idps.push(idp);
    const t = await create('/tenants', { name: spec.slug, slug: spec.slug, domains: [spec.domain] });
    const c = await create(`/tenants/${spec.slug}/connections`, {
      type: 'oidc', name: `oidc-provider ${i}`, issuer: idp.issuer, client_id: `fedgate-${i}`, client_secret: secret,
      scopes: ['openid', 'email', 'profile', 'groups'], preset: 'generic',
      // The second IdP puts scope claims in userinfo only (conformIdTokenClaims).
      fetch_userinfo: !spec.claimsInIdToken,
    });
    assert.equal(c.has_client_secret, true);
    assert.equal(c.client_secret, undefined);
    tenants.push({ ...spec, tenant: t, connection: c });
  }
  const created = await create('/clients', { name: `chain ${RUN}`, type: 'confidential', redirect_uris: [APP_REDIRECT] });
  app = await client.discovery(new URL(FEDGATE), created.id, created.client_secret, undefined, insecure);
});

after(async () => {
  for (const i of idps) await i.close();
});

for (const which of [0, 1]) {
  test(`login_hint routes to tenant ${which}'s IdP and the app gets normalized claims`, async (t) => {
    const spec = tenants[which];
    const email = `Person.${which}@${spec.domain}`;
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
      login_hint: email,
    });
    const hops = [];
    const back = await browse(url.toString(), hops);
    t.diagnostic(hops.join(' -> '));
    assert.ok(hops.some((h) => h.includes(new URL(idps[which].issuer).host)), 'went through the right IdP');
    assert.ok(!hops.some((h) => h.includes(new URL(idps[1 - which].issuer).host)), 'not through the other IdP');
    const tokens = await client.authorizationCodeGrant(app, new URL(back), {
      pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
    }, undefined);
    const c = tokens.claims();
    assert.equal(c.iss, FEDGATE);
    assert.equal(c.org_id, spec.tenant.id);
    assert.equal(c.org_slug, spec.slug);
    assert.equal(c.connection_id, spec.connection.id);
    assert.equal(c.connection_type, 'oidc');
    assert.equal(c.email, email.toLowerCase(), 'emails are case-folded');
    assert.equal(c.email_verified, true);
    assert.equal(c.given_name, `person.${which}`.replace(/^p/, 'P'));
    assert.deepEqual(c.groups, spec.groups);
    assert.match(c.sub, /^usr_/);
    // The trace of this login: completed, every step.
    const traces = await admin('GET', `/tenants/${spec.slug}/logins?status=completed`);
    assert.equal(traces.status, 200);
    const steps = traces.json.data[0].steps.map((s) => s.step);
    assert.ok(steps.includes('id_token_verified') && steps.includes('code_issued'), steps.join(','));
  });
}
