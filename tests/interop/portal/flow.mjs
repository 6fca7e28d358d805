// The setup portal in a real browser (Debian's chromium, driven by playwright-core): the
// operator creates a setup link through the admin API, the customer's IT admin opens it, sets up
// SCIM (token revealed once, an Entra-style provisioning sequence sent from here, the live check
// narrating it) and proves a domain against a real DNS server (dnsmasq, started here with the
// record the page asks for). Screenshots of every step go to $E2E_SCREENSHOTS; each flow's time
// is printed and written to timings.json there.
//
// SSO: Okta SAML picked in the wizard, the SP values copied, the pysaml2 IdP's metadata
// (tests/interop/saml/idp.py) uploaded as a file, a test sign-in in a new tab with its claims.
//
// Console: a customer's real SAML login through the connection just activated fails (the IdP
// asserts an address outside the tenant's domains); the operator (bootstrapped by run.sh with
// `fedgate console bootstrap`) signs in to /console through the dev connection, searches the
// traces by that email and reads the failure's cause and fix.
//
// Env: FEDGATE_URL, FEDGATE_ADMIN_KEY (lib.sh), SAML_IDP_URL (the pysaml2 IdP), DNS_PORT
// (fedgate's [dns] resolver port), CONSOLE_OPERATOR (the bootstrapped operator's email),
// CHROMIUM (default /usr/bin/chromium), E2E_SCREENSHOTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { FEDGATE, admin, create } from '../browser.mjs';

const SHOTS = process.env.E2E_SCREENSHOTS || 'e2e-screenshots';
const DNS_PORT = Number(process.env.DNS_PORT || 0);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const IDP = (process.env.SAML_IDP_URL || '').replace(/\/+$/, '');
const SLUG = 'contoso';
const SSO_DOMAIN = 'contoso.com';
const DOMAIN = 'contoso-e2e.test';
const OPERATOR = process.env.CONSOLE_OPERATOR || '';
const OUTSIDER = 'mallory@fabrikam-e2e.test';
const timings = {};
mkdirSync(SHOTS, { recursive: true });

let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  const file = join(SHOTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function timed(name, fn) {
  const t0 = performance.now();
  await fn();
  timings[name] = Math.round(performance.now() - t0);
  console.log(`# flow ${name}: ${timings[name]} ms`);
}

/** dnsmasq on 127.0.0.1:DNS_PORT answering only `records` ([name, value] TXT pairs). */
async function dnsmasq(records) {
  const dir = mkdtempSync(join(tmpdir(), 'fedgate-e2e-dns-'));
  const conf = join(dir, 'dnsmasq.conf');
  writeFileSync(conf, 'local=/test/\n' + records.map(([n, v]) => `txt-record=${n},"${v}"\n`).join(''));
  const child = spawn('dnsmasq', ['--port', String(DNS_PORT), '--listen-address', '127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', '--no-daemon', '--pid-file=', '--cache-size=0', `--conf-file=${conf}`],
  { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(child.exitCode, null, 'dnsmasq is running');
  return { stop: () => new Promise((r) => { child.once('exit', r); child.kill(); }) };
}

/** A new browser context whose pages fail the test on a page error and record CSP violations. */
async function watchedContext(browser, cspViolations) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  ctx.on('page', (p) => {
    p.on('pageerror', (e) => { throw e; });
    p.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });
  });
  return ctx;
}

/** An app's authorization request (code + PKCE) straight to `connection`. */
function authorizeUrl(clientId, redirectUri, connection) {
  const verifier = randomBytes(32).toString('base64url');
  const u = new URL(`${FEDGATE}/oauth2/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid email profile',
    state: randomBytes(8).toString('hex'), nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    connection,
  })) u.searchParams.set(k, v);
  return u.toString();
}

/** An Entra-style provisioning sequence against the SCIM base URL, as Entra ID sends it. */
async function entraSequence(base, token) {
  const call = async (method, path, body) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
  const flag = 'aadOptscim062020';
  const upn = 'adele.vance@contoso-e2e.test';
  // "Test Connection": a user that cannot exist.
  let r = await call('GET', `/Users?${flag}&filter=${encodeURIComponent('userName eq "5e2f0c1a-8d3b-4c6e-9f1a-2b3c4d5e6f70"')}`);
  assert.equal(r.status, 200);
  // Provision on demand: look the user up, create, update.
  r = await call('GET', `/Users?${flag}&filter=${encodeURIComponent(`userName eq "${upn}"`)}`);
  assert.equal(r.json.totalResults, 0);
  r = await call('POST', `/Users?${flag}`, {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
    externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef', userName: upn, active: true,
    emails: [{ primary: true, type: 'work', value: upn }], name: { givenName: 'Adele', familyName: 'Vance' },
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const uid = r.json.id;
  r = await call('PATCH', `/Users/${uid}?${flag}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'Replace', path: 'displayName', value: 'Adele Vance' }],
  });
  assert.equal(r.status, 200);
  // A group with the user, then a push naming someone never provisioned (fails, with its fix).
  r = await call('POST', `/Groups?${flag}`, {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], externalId: '8aa1a0c0', displayName: 'Sales', members: [],
  });
  assert.equal(r.status, 201);
  const gid = r.json.id;
  r = await call('PATCH', `/Groups/${gid}?${flag}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'Add', path: 'members', value: [{ value: uid }] }],
  });
  assert.equal(r.status, 200);
  r = await call('PATCH', `/Groups/${gid}?${flag}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'Add', path: 'members', value: [{ value: 'usr_never_provisioned' }] }],
  });
  assert.equal(r.status, 400);
  // Disable (Entra's soft delete).
  r = await call('PATCH', `/Users/${uid}?${flag}`, {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
  });
  assert.equal(r.status, 200);
  return 8;
}

test('setup portal: link, SCIM with the live check, domain verification', async () => {
  assert.ok(FEDGATE, 'FEDGATE_URL');
  assert.ok(DNS_PORT > 0, 'DNS_PORT');
  assert.ok(IDP, 'SAML_IDP_URL');
  await create('/tenants', { name: 'Contoso', slug: SLUG, domains: [SSO_DOMAIN] });
  // The IdP's test user, in the tenant's domain.
  const mode = await fetch(`${IDP}/mode`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ attributes: { email: [`alice@${SSO_DOMAIN}`], givenName: ['Alice'], sn: ['Anderson'],
      displayName: ['Alice Anderson'], groups: ['engineering', 'admins'] } }),
  });
  assert.equal(mode.status, 200);
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: false, args: ['--headless=new', '--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => { throw e; });
  const cspViolations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });
  try {
    let linkUrl;
    await timed('operator_creates_link', async () => {
      const link = await create(`/tenants/${SLUG}/setup-links`, { intents: ['sso', 'scim', 'domains'] });
      assert.match(link.url, /\/setup\/fgs_/);
      linkUrl = link.url;
    });

    await timed('open_link', async () => {
      await page.goto(linkUrl);
      await shot(page, 'landing');
      await page.getByRole('button').first().click();
      await page.waitForURL(`${FEDGATE}/setup`);
      assert.ok(!page.url().includes('fgs_'), 'the token left the address bar');
      await page.getByTestId('portal-tasks').waitFor();
      await shot(page, 'home');
    });

    await timed('sso', async () => {
      await page.getByTestId('nav-sso').click();
      await page.waitForURL(`${FEDGATE}/setup/sso`);
      await shot(page, 'sso-pick-vendor');
      await page.getByTestId('vendor-okta').click();
      await page.getByTestId('acs-url').waitFor();
      const acs = await page.getByTestId('acs-url').inputValue();
      const entity = await page.getByTestId('sp-entity-id').inputValue();
      assert.ok(acs.startsWith(`${FEDGATE}/`), acs);
      // The copy buttons copy the SP values the Okta console asks for.
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: FEDGATE });
      await page.locator('button[data-copy="acs-url"]').click();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), acs);
      await page.locator('button[data-copy="sp-entity-id"]').click();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), entity);
      await shot(page, 'sso-okta-sp-values');
      // Upload the IdP's metadata file.
      const xml = await (await fetch(`${IDP}/metadata`)).text();
      await page.getByTestId('metadata-file').setInputFiles({ name: 'idp-metadata.xml', mimeType: 'application/xml', buffer: Buffer.from(xml) });
      if (!(await page.getByTestId('metadata-xml').inputValue())) await page.getByTestId('metadata-xml').fill(xml);
      await page.getByTestId('metadata-xml-save').click();
      await page.getByTestId('idp-summary').waitFor();
      assert.equal(await page.getByTestId('idp-entity-id').innerText(), `${IDP}/metadata`);
      await shot(page, 'sso-idp-metadata');
      // Test sign-in in a new tab: the pysaml2 IdP answers at once (no login page).
      const [tab] = await Promise.all([context.waitForEvent('page'), page.getByTestId('test-sign-in').click()]);
      await tab.getByTestId('test-result').waitFor({ timeout: 20000 });
      await tab.locator('[data-testid=test-result][data-result=passed]').waitFor({ timeout: 20000 });
      const claims = await tab.getByTestId('test-claims').innerText();
      assert.match(claims, new RegExp(`"email": "alice@${SSO_DOMAIN.replace('.', '\\.')}"`));
      await shot(tab, 'sso-test-sign-in-passed');
      await tab.close();
      await page.reload();
      await page.getByTestId('activate').click();
      await page.getByTestId('activated').waitFor();
      await shot(page, 'sso-activated');
    });

    await timed('scim', async () => {
      await page.getByTestId('nav-scim').click();
      await page.getByTestId('scim-vendors').waitFor();
      await shot(page, 'scim-pick-vendor');
      await page.getByTestId('scim-vendor-entra').click();
      await page.waitForURL(/vendor=entra/);
      const base = await page.getByTestId('scim-base-url').inputValue();
      assert.equal(base, `${FEDGATE}/scim/v2/${SLUG}?aadOptscim062020`);
      await shot(page, 'scim-entra-steps');
      await page.getByTestId('scim-mint').click();
      const token = await page.getByTestId('scim-token').inputValue();
      assert.match(token, /^fgscim_/);
      // The copy button copies the token.
      await page.locator('button[data-copy="scim-token"]').click();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
      await shot(page, 'scim-token-revealed');
      await page.getByTestId('scim-live-state').filter({ hasText: 'Listening' }).waitFor();
      const sent = await entraSequence(base.split('?')[0], token);
      await page.getByTestId('scim-line').nth(sent - 1).waitFor({ timeout: 15000 });
      const feed = await page.getByTestId('scim-feed').innerText();
      assert.match(feed, /Entra ID's connection test succeeded\./);
      assert.match(feed, /Entra ID checked whether adele\.vance@contoso-e2e\.test exists\./);
      assert.match(feed, /Entra ID created a user\./);
      assert.match(feed, /A group push from Entra ID failed\./);
      assert.match(feed, /names a member who was never provisioned here/);
      for (const m of ['first_request', 'test_passed', 'first_user', 'first_group']) {
        assert.equal(await page.getByTestId(`milestone-${m}`).getAttribute('class'), 'done', m);
      }
      await page.getByTestId('scim-feed').scrollIntoViewIfNeeded();
      await shot(page, 'scim-live-check');
    });

    await timed('domains', async () => {
      await page.getByTestId('nav-domains').click();
      await page.getByTestId('domain-input').fill('gmail.com');
      await page.getByTestId('domain-claim').click();
      await page.getByTestId('domain-error').waitFor();
      await shot(page, 'domains-consumer-refused');
      await page.getByTestId('domain-input').fill(DOMAIN);
      await page.getByTestId('domain-claim').click();
      const name = await page.getByTestId('record-name').inputValue();
      const value = await page.getByTestId('record-value').inputValue();
      assert.equal(name, `_fedgate-challenge.${DOMAIN}`);
      await shot(page, 'domains-record');
      // A wrong record first: the page says what DNS returned.
      let dns = await dnsmasq([[name, 'fedgate-verification=from-an-old-attempt'], [name, 'v=spf1 -all']]);
      await page.getByTestId('check-now').click();
      await page.getByTestId('check-result').filter({ hasText: '2 TXT records were found' }).waitFor();
      await shot(page, 'domains-check-mismatch');
      await dns.stop();
      dns = await dnsmasq([[name, 'v=spf1 -all'], [name, value]]);
      await page.getByTestId('check-now').click();
      await page.locator(`[data-testid=claim][data-domain="${DOMAIN}"][data-state=verified]`).waitFor();
      await shot(page, 'domains-verified');
      // The overview shows every part done.
      await page.getByTestId('nav-home').click();
      for (const part of ['sso', 'scim', 'domains']) {
        assert.match(await page.getByTestId(`task-${part}`).innerText(), /Live|Done|live|done/, part);
      }
      await shot(page, 'home-all-done');
      await dns.stop();
      const t = await admin('GET', `/tenants/${SLUG}`);
      assert.ok(t.json.domains.includes(DOMAIN), 'the verified domain is a domain of the tenant');
    });

    await timed('console_failed_login', async () => {
      assert.ok(OPERATOR, 'CONSOLE_OPERATOR');
      // A customer signs in to an app through Contoso's SAML connection; the IdP asserts an
      // address outside Contoso's domains, so the login fails (email_domain_not_allowed).
      const r = await fetch(`${IDP}/mode`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ attributes: { email: [OUTSIDER], givenName: ['Mallory'], sn: ['Moss'], displayName: ['Mallory Moss'] } }),
      });
      assert.equal(r.status, 200);
      const redirect = 'http://127.0.0.1:9/cb';
      const app = await create('/clients', { name: 'Contoso app (e2e)', type: 'confidential', redirect_uris: [redirect] });
      const conns = await admin('GET', `/tenants/${SLUG}/connections`);
      assert.equal(conns.status, 200, conns.text);
      const saml = conns.json.data.filter((c) => c.type === 'saml');
      assert.equal(saml.length, 1, conns.text);
      const customer = await watchedContext(browser, cspViolations);
      const cpage = await customer.newPage();
      await cpage.goto(authorizeUrl(app.client_id || app.id, redirect, saml[0].id));
      await cpage.getByText('email_domain_not_allowed').waitFor({ timeout: 20000 });
      const errorText = await cpage.locator('body').innerText();
      const traceId = (errorText.match(/Trace (lgn_[A-Za-z0-9_-]+)/) || [])[1];
      assert.ok(traceId, `the error page names the trace: ${errorText}`);
      await customer.close();

      // The operator signs in to the console (dev connection of the operators' tenant).
      const ops = await watchedContext(browser, cspViolations);
      const op = await ops.newPage();
      await op.goto(`${FEDGATE}/console/login?email=${encodeURIComponent(OPERATOR)}`);
      await op.locator('button[value=approve]').click();
      await op.waitForURL(`${FEDGATE}/console`);
      assert.match(await op.getByTestId('operator').innerText(), new RegExp(OPERATOR.replace(/\./g, '\\.')));
      // Searches the login traces by the customer's email.
      await op.getByTestId('nav-logins').click();
      await op.waitForURL(`${FEDGATE}/console/logins`);
      await op.getByTestId('search-email').fill(OUTSIDER);
      await op.getByTestId('search-submit').click();
      const row = op.locator(`[data-testid=trace-row][data-trace-id="${traceId}"]`);
      await row.waitFor();
      assert.equal(await op.getByTestId('trace-row').count(), 1, 'only the failed login matches');
      const rowText = await row.innerText();
      assert.match(rowText, /failed/);
      assert.match(rowText, /email_domain_not_allowed/);
      assert.match(await row.getByTestId('trace-why').innerText(), /Email outside the tenant's domains/);
      await shot(op, 'console-trace-search');
      // Opens the trace and reads its cause and fix.
      await row.getByTestId('trace-link').click();
      await op.waitForURL(`${FEDGATE}/console/logins/${traceId}`);
      assert.equal(await op.getByTestId('trace-id').innerText(), traceId);
      assert.equal(await op.getByTestId('trace-status').innerText(), 'failed');
      assert.equal(await op.getByTestId('trace-code').innerText(), 'email_domain_not_allowed');
      const cause = await op.getByTestId('trace-cause').innerText();
      assert.match(cause, /outside the organization's domains/);
      assert.match(cause, /The address is at fabrikam-e2e\.test/);
      assert.match(cause, new RegExp(SSO_DOMAIN.replace('.', '\\.')));
      assert.match(await op.getByTestId('trace-fix').innerText(), /Add the domain to the organization/);
      await shot(op, 'console-trace-cause');
      await ops.close();
    });
    assert.deepEqual(cspViolations, [], 'no CSP violation');
  } finally {
    writeFileSync(join(SHOTS, 'timings.json'), JSON.stringify(timings, null, 2) + '\n');
    await browser.close();
  }
});
