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
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import * as client from 'openid-client';
import { FEDGATE, ADMIN_KEY, admin, create, Jar } from '../browser.mjs';

const APP_REDIRECT = 'http://127.0.0.1:9/cb';
const RUN = randomBytes(4).toString('hex');
const insecure = { execute: [client.allowInsecureRequests] };

/** Starts an oidc-provider on 127.0.0.1:0 with one client (fedgate). */
async function startIdp({ clientId, clientSecret, groups, claimsInIdToken }) {
  const server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [`${FEDGATE}/sso/oidc/callback`],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    async findAccount(ctx, id) {
      const [local] = id.split('@');
      return {
        accountId: id,
        async claims() {
          return {
            sub: `idp-${id}`, email: id.toUpperCase(), email_verified: true,
            name: `${local} Person`, given_name: local, family_name: 'Person', groups,
          };
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    conformIdTokenClaims: !claimsInIdToken,
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: [randomBytes(16).toString('hex')] },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    if (!req.url.startsWith('/interaction/')) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      const accountId = details.params.login_hint || 'nobody@example.invalid';
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
        { mergeWithLastSubmission: false });
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  });
  return { issuer, close: () => new Promise((r) => server.close(r)) };
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
    const idp = await startIdp({ clientId: `fedgate-${i}`, clientSecret: secret, ...spec });
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
