// CORS in a real browser (Debian's chromium, driven by playwright-core): a single-page app
// served from its own origin (http://localhost:<port>) runs the authorization code flow with
// PKCE from JavaScript — authorize (top-level navigation) -> dev login -> token (fetch, CORS)
// -> userinfo (fetch with a bearer token, CORS preflight). A page from an origin no client
// registered can read discovery (public, `*`) but its token and userinfo calls are blocked.
//
// Runs against an ALREADY RUNNING fedgate in dev mode (see run.sh):
//   FEDGATE_URL=... FEDGATE_ADMIN_KEY=... CHROMIUM=/usr/bin/chromium node --test spa.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { FEDGATE, create } from '../browser.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUN = randomBytes(4).toString('hex');
const SLUG = `spa-${RUN}`;

// The SPA: one HTML page for both the start and the callback. Everything it does happens in
// the browser; the page's server only hands out this file.
function spaPage({ issuer, clientId, org }) {
  return `<!doctype html><meta charset="utf-8"><title>SPA</title><pre id="result">working</pre>
<script type="module">
const ISSUER = ${JSON.stringify(issuer)}, CLIENT_ID = ${JSON.stringify(clientId)}, ORG = ${JSON.stringify(org)};
const REDIRECT = location.origin + '/cb';
const out = (v) => { document.getElementById('result').textContent = JSON.stringify(v); };
const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
try {
  const disco = await (await fetch(ISSUER + '/.well-known/openid-configuration')).json();
  const q = new URLSearchParams(location.search);
  if (location.pathname !== '/cb') {
    const verifier = b64u(crypto.getRandomValues(new Uint8Array(32)));
    const challenge = b64u(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
    const state = b64u(crypto.getRandomValues(new Uint8Array(16)));
    sessionStorage.setItem('pkce', JSON.stringify({ verifier, state }));
    const u = new URL(disco.authorization_endpoint);
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT,
      scope: 'openid email profile', state, code_challenge: challenge, code_challenge_method: 'S256', organization: ORG })) {
      u.searchParams.set(k, v);
    }
    location.assign(u.href);
  } else {
    const { verifier, state } = JSON.parse(sessionStorage.getItem('pkce'));
    if (q.get('state') !== state) throw new Error('state mismatch');
    const res = await fetch(disco.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: q.get('code'), redirect_uri: REDIRECT,
        client_id: CLIENT_ID, code_verifier: verifier }),
    });
    const tokens = await res.json();
    if (!res.ok) throw new Error('token: ' + JSON.stringify(tokens));
    const ui = await fetch(disco.userinfo_endpoint, { headers: { authorization: 'Bearer ' + tokens.access_token } });
    out({ ok: true, token_type: tokens.token_type, has_id_token: !!tokens.id_token, userinfo: await ui.json() });
  }
} catch (e) {
  out({ ok: false, error: String(e) });
}
</script>`;
}

// A page from an origin no client registered: discovery is readable, token and userinfo are not.
function foreignPage({ issuer, clientId }) {
  return `<!doctype html><meta charset="utf-8"><title>Foreign</title><pre id="result">working</pre>
<script type="module">
const ISSUER = ${JSON.stringify(issuer)};
const r = {};
const attempt = async (name, f) => { try { const res = await f(); r[name] = 'read ' + res.status; } catch (e) { r[name] = 'blocked'; } };
await attempt('discovery', () => fetch(ISSUER + '/.well-known/openid-configuration'));
await attempt('jwks', () => fetch(ISSUER + '/oauth2/jwks'));
await attempt('token', () => fetch(ISSUER + '/oauth2/token', { method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: 'x', client_id: ${JSON.stringify(clientId)} }) }));
await attempt('userinfo', () => fetch(ISSUER + '/oauth2/userinfo', { headers: { authorization: 'Bearer x' } }));
document.getElementById('result').textContent = JSON.stringify(r);
</script>`;
}

function serve(render) {
  return new Promise((resolve) => {
    const srv = http.createServer((req, res) => {
      const path = new URL(req.url, 'http://x').pathname;
      if (path !== '/' && path !== '/cb') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(render());
    });
    srv.listen(0, '127.0.0.1', () => resolve({ srv, origin: `http://localhost:${srv.address().port}` }));
  });
}

let browser;
let spa;
let foreign;
let clientId;

before(async () => {
  assert.ok(FEDGATE, 'FEDGATE_URL is required');
  const state = {};
  spa = await serve(() => spaPage({ issuer: FEDGATE, clientId: state.clientId, org: SLUG }));
  foreign = await serve(() => foreignPage({ issuer: FEDGATE, clientId: state.clientId }));
  await create('/tenants', { name: `SPA ${RUN}`, slug: SLUG, domains: [`${SLUG}.test`] });
  await create(`/tenants/${SLUG}/connections`, {
    type: 'dev', name: 'Dev', default_email: `alice@${SLUG}.test`, default_name: 'Alice SPA',
  });
  const c = await create('/clients', {
    name: `SPA ${RUN}`, type: 'public', redirect_uris: [`${spa.origin}/cb`], web_origins: [spa.origin],
  });
  state.clientId = clientId = c.id;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: false, args: ['--headless=new', '--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  spa?.srv.close();
  foreign?.srv.close();
});

async function result(page) {
  await page.waitForFunction(() => document.getElementById('result')?.textContent !== 'working', null, { timeout: 20000 });
  return JSON.parse(await page.textContent('#result'));
}

test('SPA: code flow with PKCE from the browser, token and userinfo through CORS', async (t) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cors = [];
  page.on('console', (m) => { if (/CORS|Access-Control/i.test(m.text())) cors.push(m.text()); });
  try {
    await page.goto(`${spa.origin}/`);
    await page.waitForURL(/\/sso\/dev\//, { timeout: 20000 });
    await page.click('[name="action"][value="approve"]');
    await page.waitForURL((u) => u.href.startsWith(`${spa.origin}/cb`), { timeout: 20000 });
    const r = await result(page);
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.token_type, 'Bearer');
    assert.equal(r.has_id_token, true);
    assert.equal(r.userinfo.email, `alice@${SLUG}.test`);
    assert.deepEqual(cors, [], 'no CORS errors in the console');
  } finally {
    await context.close();
  }
});

test('a page from an unregistered origin: discovery readable, token and userinfo blocked', async (t) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(`${foreign.origin}/`);
    const r = await result(page);
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.discovery, 'read 200');
    assert.equal(r.jwks, 'read 200');
    assert.equal(r.token, 'blocked');
    assert.equal(r.userinfo, 'blocked');
  } finally {
    await context.close();
  }
});
