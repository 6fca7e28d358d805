// An oidc-provider (an OpenID Certified provider) on 127.0.0.1:0 with one client, fedgate: the
// upstream IdP of chain.mjs and selfserve.mjs. Its login and consent pages are replaced by an
// auto-approving handler that signs in the person named by login_hint, else `account()`.
//
//   startIdp({ clientId, clientSecret, claimsOf, groups, claimsInIdToken, account })
//     claimsOf(accountId)  the account's claims (sub, email, ...)
//     groups               also offer the `groups` scope and claim
//     claimsInIdToken      false: scope claims only from userinfo (conformIdTokenClaims)
//   -> { issuer, close() }

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import { FEDGATE } from '../browser.mjs';

export async function startIdp({
  clientId, clientSecret, claimsOf, groups = false, claimsInIdToken = true,
  account = () => 'nobody@example.invalid',
}) {
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
      return { accountId: id, async claims() { return claimsOf(id); } };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      ...(groups ? { groups: ['groups'] } : {}),
    },
    scopes: ['openid', 'email', 'profile', ...(groups ? ['groups'] : [])],
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
      const accountId = details.params.login_hint || account();
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
