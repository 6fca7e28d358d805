// Interop test: machine-to-machine tokens from fedgate with openid-client v6 and jose.
//   - client_credentials with client_secret_basic, then introspection and revocation
//   - client_credentials with private_key_jwt (openid-client's PrivateKeyJwt, an ES256 key
//     registered inline, an EdDSA one and an RSA-PSS PS256 one), then introspection
//     authenticated the same way
//   - the access token verified independently with jose against fedgate's JWKS
//
// Runs against an ALREADY RUNNING fedgate in dev mode (see run.sh):
//   FEDGATE_URL=http://127.0.0.1:18080 FEDGATE_ADMIN_KEY=... node --test --test-reporter=tap machine.mjs

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';

const ISSUER = (process.env.FEDGATE_URL || '').replace(/\/+$/, '');
const ADMIN_KEY = process.env.FEDGATE_ADMIN_KEY || '';
const RUN = randomBytes(4).toString('hex');
const SLUG = `m2m-${RUN}`;
const AUDIENCE = `https://api-${RUN}.example`;
const insecure = { execute: [client.allowInsecureRequests] };

async function admin(method, path, body) {
  const res = await fetch(`${ISSUER}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
}

async function create(path, body) {
  const r = await admin('POST', path, body);
  assert.equal(r.status, 201, `POST ${path} -> ${r.status} ${r.text}`);
  return r.json;
}

let tenant;
let jwks;

before(async () => {
  assert.ok(ISSUER, 'FEDGATE_URL is required');
  assert.ok(ADMIN_KEY, 'FEDGATE_ADMIN_KEY is required');
  tenant = await create('/tenants', { name: `M2M ${RUN}`, slug: SLUG, domains: [`${SLUG}.test`] });
  jwks = jose.createRemoteJWKSet(new URL(`${ISSUER}/oauth2/jwks`));
});

async function verifyAccessToken(token, clientId) {
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    issuer: ISSUER,
    audience: AUDIENCE,
    typ: 'at+jwt',
  });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.equal(payload.sub, clientId, 'RFC 9068 §2.2: sub is the client for client tokens');
  assert.equal(payload.client_id, clientId);
  assert.equal(payload.org_id, tenant.id);
  return payload;
}

test('client_credentials with client_secret_basic, introspection, revocation', async (t) => {
  const c = await create('/clients', {
    name: `worker ${RUN}`,
    type: 'confidential',
    grant_types: ['client_credentials'],
    scopes: ['reports:read', 'reports:write'],
    tenant_id: SLUG,
    audience: [AUDIENCE],
    access_token_ttl: 300,
  });
  const config = await client.discovery(
    new URL(ISSUER),
    c.id,
    undefined,
    client.ClientSecretBasic(c.client_secret),
    insecure,
  );
  assert.ok(config.serverMetadata().grant_types_supported.includes('client_credentials'));
  const tokens = await client.clientCredentialsGrant(config, { scope: 'reports:read' });
  t.diagnostic(`token_type=${tokens.token_type} expires_in=${tokens.expires_in} scope=${tokens.scope}`);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(tokens.expires_in, 300);
  assert.equal(tokens.scope, 'reports:read');
  assert.equal(tokens.refresh_token, undefined);
  assert.equal(tokens.id_token, undefined);
  const payload = await verifyAccessToken(tokens.access_token, c.id);
  assert.equal(payload.scope, 'reports:read');

  const info = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(info.active, true);
  assert.equal(info.scope, 'reports:read');
  assert.equal(info.client_id, c.id);
  assert.equal(info.org_id, tenant.id);

  await assert.rejects(client.clientCredentialsGrant(config, { scope: 'admin' }), (e) => {
    assert.equal(e.error, 'invalid_scope');
    return true;
  });

  await client.tokenRevocation(config, tokens.access_token, { token_type_hint: 'access_token' });
  const after = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(after.active, false);
});

for (const alg of ['ES256', 'EdDSA', 'PS256']) {
  test(`client_credentials with private_key_jwt (${alg}), introspection`, async (t) => {
    const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    const kid = `k-${alg}-${RUN}`;
    const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
    const c = await create('/clients', {
      name: `signed worker ${RUN}`,
      type: 'confidential',
      grant_types: ['client_credentials'],
      scopes: ['reports:read'],
      tenant_id: tenant.id,
      audience: [AUDIENCE],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [jwk] },
    });
    assert.equal(c.client_secret, undefined, 'no secret for a private_key_jwt client');
    const config = await client.discovery(
      new URL(ISSUER),
      c.id,
      { token_endpoint_auth_method: 'private_key_jwt' },
      client.PrivateKeyJwt({ key: privateKey, kid }),
      insecure,
    );
    const md = config.serverMetadata();
    assert.ok(md.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.ok(md.token_endpoint_auth_signing_alg_values_supported.includes(alg));
    const tokens = await client.clientCredentialsGrant(config, { scope: 'reports:read' });
    await verifyAccessToken(tokens.access_token, c.id);
    const info = await client.tokenIntrospection(config, tokens.access_token);
    assert.equal(info.active, true);
    assert.equal(info.client_id, c.id);
    assert.equal(info.org_id, tenant.id);
    t.diagnostic(`introspection: ${JSON.stringify(info)}`);

    // A key that is not registered is refused with invalid_client.
    const other = await jose.generateKeyPair(alg, { extractable: true });
    const wrong = await client.discovery(
      new URL(ISSUER),
      c.id,
      { token_endpoint_auth_method: 'private_key_jwt' },
      client.PrivateKeyJwt({ key: other.privateKey, kid }),
      insecure,
    );
    await assert.rejects(client.clientCredentialsGrant(wrong, { scope: 'reports:read' }), (e) => {
      assert.equal(e.error, 'invalid_client');
      return true;
    });
  });
}
