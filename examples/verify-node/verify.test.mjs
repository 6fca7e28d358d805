// Tests of verify.mjs against a live fedgate: tests/interop/verify/run.sh starts one, logs in,
// and passes the tokens in the JSON file named by FEDGATE_TOKENS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createVerifier, TokenError } from './verify.mjs';

const T = JSON.parse(readFileSync(process.env.FEDGATE_TOKENS ?? assert.fail('FEDGATE_TOKENS is not set'), 'utf8'));
const verify = createVerifier({ issuer: T.issuer, audience: T.client_id });

async function refused(promise, check) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof TokenError, `${e}`);
    assert.equal(e.check, check, e.message);
    return true;
  });
}

test('a valid access token is accepted', async () => {
  const c = await verify(T.access_token);
  assert.equal(c.iss, T.issuer);
  assert.equal(c.aud, T.client_id);
  assert.equal(c.client_id, T.client_id);
  assert.equal(c.org_id, T.org_id);
  assert.match(c.sub, /^usr_/);
  // Again, from the cached keys.
  await verify(T.access_token);
});

test('the tenant check', async () => {
  await createVerifier({ issuer: T.issuer, audience: T.client_id, orgId: T.org_id })(T.access_token);
  await refused(createVerifier({ issuer: T.issuer, audience: T.client_id, orgId: T.other_org_id })(T.access_token), 'tenant');
});

test('a token for another client (wrong audience) is refused', async () => {
  await refused(verify(T.other_client_access_token), 'aud');
});

test('a tampered signature is refused', async () => {
  const [h, p, s] = T.access_token.split('.');
  const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
  await refused(verify(`${h}.${p}.${flipped}`), 'signature');
  // A tampered payload too.
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'usr_attacker' })).toString('base64url');
  await refused(verify(`${h}.${forged}.${s}`), 'signature');
});

test('an ID token used as an access token is refused', async () => {
  await refused(verify(T.id_token), 'typ');
});

test('algorithms outside the allow-list and alg none are refused', async () => {
  await refused(createVerifier({ issuer: T.issuer, audience: T.client_id, algorithms: ['RS256'] })(T.access_token), 'alg');
  const [, p] = T.access_token.split('.');
  const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
  await refused(verify(`${none}.${p}.`), 'alg');
  assert.throws(() => createVerifier({ issuer: T.issuer, audience: T.client_id, algorithms: ['HS256'] }));
});

test('an expired token is refused', async () => {
  const { exp } = await verify(T.access_token);
  await verify(T.access_token, { currentDate: new Date((exp + 59) * 1000) });
  await refused(verify(T.access_token, { currentDate: new Date((exp + 61) * 1000) }), 'exp');
});

test('the discovery document of another issuer is refused', async () => {
  await refused(createVerifier({ issuer: `${T.issuer}/`, audience: T.client_id })(T.access_token), 'jwks');
});
