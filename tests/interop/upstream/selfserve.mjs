// Self-serve sign-up in a real browser (Debian's chromium, driven by playwright-core): an app
// whose default tenant has one social connection ("Google": the google_any preset pointed at an
// oidc-provider, an OpenID Certified provider, standing in for accounts.google.com) next to an
// enterprise tenant whose verified domain signs in through its own IdP (a second oidc-provider).
//
// What a person sees and does, each step screenshotted to $E2E_SCREENSHOTS:
// - the email page with its "Continue with Google" button, clicked: the app gets tokens of the
//   self-serve tenant;
// - an address at the enterprise tenant's verified domain, typed: that tenant's IdP, its org_id;
// - an address at a domain no tenant has, typed: straight to the social connection;
// - the button used with a Google account at the enterprise domain: refused on fedgate's page,
//   whose link takes the person back to the app with access_denied (self-serve never captures
//   an enterprise address).
//
// Runs against an ALREADY RUNNING fedgate (dev mode, allow_private_network), as chain.mjs:
//   FEDGATE_URL=... FEDGATE_ADMIN_KEY=... CHROMIUM=/usr/bin/chromium node --test selfserve.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { FEDGATE, ADMIN_KEY, admin, create } from '../browser.mjs';
import { startIdp } from './idp.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.E2E_SCREENSHOTS || 'e2e-screenshots';
const RUN = randomBytes(4).toString('hex');
const SPACE = `space-${RUN}`;
const ACME = `acme-${RUN}`;
const ACME_DOMAIN = `acme-${RUN}.test`;
mkdirSync(SHOTS, { recursive: true });

let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  await page.screenshot({ path: join(SHOTS, `selfserve-${String(shotNo).padStart(2, '0')}-${name}.png`), fullPage: true });
}

/** A person as the IdPs here describe them. */
function claimsOf(id) {
  return { sub: `idp-${id}`, email: id, email_verified: true, name: `${id.split('@')[0]} Person` };
}

/** The app: its redirect URI answers a plain page; the browser's URL there is the result. */
async function startApp() {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!doctype html><title>The app</title><p>Back at the app.</p>');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { redirect: `http://127.0.0.1:${server.address().port}/cb`, close: () => new Promise((r) => server.close(r)) };
}

function jwtClaims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

let googleAccount = `pat.${RUN}@gmail-e2e.test`;
const closers = [];
let browser;
let app;
let appServer;
let discovery;
const tenantIds = {};

before(async () => {
  assert.ok(FEDGATE && ADMIN_KEY, 'FEDGATE_URL and FEDGATE_ADMIN_KEY must be set');
  appServer = await startApp();
  closers.push(appServer.close);
  const googleSecret = randomBytes(16).toString('hex');
  const google = await startIdp({ clientId: 'fedgate-google', clientSecret: googleSecret, claimsOf, account: () => googleAccount });
  const acmeSecret = randomBytes(16).toString('hex');
  const acmeIdp = await startIdp({ clientId: 'fedgate-acme', clientSecret: acmeSecret, claimsOf });
  closers.push(google.close, acmeIdp.close);

  // The self-serve tenant: anyone's address, one social connection.
  const space = await create('/tenants', { name: 'Self-serve', slug: SPACE, settings: { allow_email_outside_domains: true } });
  tenantIds[SPACE] = space.id;
  const g = await create(`/tenants/${SPACE}/connections`, {
    type: 'oidc', preset: 'google_any', name: 'Google', issuer: google.issuer,
    client_id: 'fedgate-google', client_secret: googleSecret,
  });
  assert.equal(g.issuer, google.issuer);
  // The enterprise tenant: a verified domain and its own IdP.
  const acme = await create('/tenants', { name: 'Acme', slug: ACME, domains: [ACME_DOMAIN] });
  tenantIds[ACME] = acme.id;
  await create(`/tenants/${ACME}/connections`, {
    type: 'oidc', preset: 'generic', name: 'Acme IdP', issuer: acmeIdp.issuer,
    client_id: 'fedgate-acme', client_secret: acmeSecret, scopes: ['openid', 'email', 'profile'],
  });
  app = await create('/clients', { name: `self-serve ${RUN}`, type: 'confidential', redirect_uris: [appServer.redirect] });
  const patched = await admin('PATCH', `/clients/${app.id}`, { default_tenant: SPACE });
  assert.equal(patched.status, 200, patched.text);
  discovery = await (await fetch(`${FEDGATE}/.well-known/openid-configuration`)).json();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: false, args: ['--headless=new', '--no-sandbox'] });
});

after(async () => {
  if (browser) await browser.close();
  for (const c of closers) await c();
});

/** A new page at the app's authorization request (code + PKCE, no organization, no hint). */
async function startLogin() {
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('hex');
  const url = new URL(discovery.authorization_endpoint);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: app.id, redirect_uri: appServer.redirect, scope: 'openid email profile',
    state, nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  })) url.searchParams.set(k, v);
  const ctx = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(url.toString());
  return { page, ctx, verifier, state };
}

/** Waits for the app's redirect URI; returns its query. */
async function backAtApp(page) {
  await page.waitForURL((u) => u.toString().startsWith(appServer.redirect), { timeout: 15000 });
  return new URL(page.url()).searchParams;
}

async function exchange(code, verifier) {
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(app.id)}:${encodeURIComponent(app.client_secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: appServer.redirect, code_verifier: verifier }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return jwtClaims(body.id_token);
}

test('the email page offers Continue with Google; the button signs in to the self-serve tenant', async () => {
  const { page, ctx, verifier, state } = await startLogin();
  const button = page.getByRole('button', { name: 'Continue with Google' });
  await button.waitFor();
  // Only the default tenant's social connection is offered; the enterprise IdP never is.
  assert.equal(await page.getByRole('button', { name: /Acme/ }).count(), 0);
  await shot(page, 'email-page');
  await button.click();
  const q = await backAtApp(page);
  assert.equal(q.get('state'), state);
  assert.ok(q.get('code'), `no code: ${page.url()}`);
  const id = await exchange(q.get('code'), verifier);
  assert.equal(id.org_id, tenantIds[SPACE]);
  assert.equal(id.email, googleAccount);
  await shot(page, 'back-at-app-google');
  await ctx.close();
});

test('an address at an enterprise tenant\'s verified domain goes to that tenant\'s IdP', async () => {
  const { page, ctx, verifier } = await startLogin();
  await page.getByLabel(/email/i).fill(`jane@${ACME_DOMAIN}`);
  await shot(page, 'enterprise-email-typed');
  await page.getByRole('button', { name: 'Continue', exact: true }).click();
  const q = await backAtApp(page);
  const id = await exchange(q.get('code'), verifier);
  assert.equal(id.org_id, tenantIds[ACME]);
  assert.equal(id.email, `jane@${ACME_DOMAIN}`);
  await ctx.close();
});

test('an address at a domain no tenant has goes straight to the social connection', async () => {
  const { page, ctx, verifier } = await startLogin();
  const email = `sam.${RUN}@nowhere-e2e.test`;
  await page.getByLabel(/email/i).fill(email);
  await page.getByRole('button', { name: 'Continue', exact: true }).click();
  const q = await backAtApp(page);
  const id = await exchange(q.get('code'), verifier);
  assert.equal(id.org_id, tenantIds[SPACE]);
  // The hint went to the provider, which signed in that person.
  assert.equal(id.email, email);
  await ctx.close();
});

test('the button with a Google account at an enterprise domain is refused, with a way back to the app', async () => {
  googleAccount = `boss.${RUN}@${ACME_DOMAIN}`;
  try {
    const { page, ctx, state } = await startLogin();
    await page.getByRole('button', { name: 'Continue with Google' }).click();
    // fedgate's page, not the app: the person reads why and what to do.
    const heading = page.getByRole('heading', { name: "Use your organization's sign-in" });
    await heading.waitFor();
    const body = await page.textContent('body');
    assert.match(body, new RegExp(`Addresses at ${ACME_DOMAIN.replace(/\./g, '\\.')} sign in through their organization`));
    assert.match(body, /enterprise_domain_sso_required/);
    await shot(page, 'enterprise-address-refused');
    // Its link returns to the app with the OAuth error.
    await page.locator(`a[href^="${appServer.redirect}"]`).click();
    const q = await backAtApp(page);
    assert.equal(q.get('code'), null);
    assert.equal(q.get('error'), 'access_denied', page.url());
    assert.equal(q.get('state'), state);
    await ctx.close();
  } finally {
    googleAccount = `pat.${RUN}@gmail-e2e.test`;
  }
});
