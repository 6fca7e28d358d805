//! The OpenID Connect connector: authorization code flow with PKCE S256, `state` (our LoginId)
//! and `nonce`; RFC 9207 `iss` check; ID token verification by `openidconnect` with an
//! allow-list of asymmetric algorithms, our clock and a bounded skew; optional userinfo merge;
//! claims mapped by the connection's preset and rules.
use super::metadata::Metadata;
use super::OidcConfig;
use crate::claims::oidc::{map_claims, Policy, Preset};
use crate::clock::{Clock, Rng};
use crate::net::upstream::HttpError;
use crate::upstream::{
    CallbackPayload, Completed, Connector, ConnectorState, LoginAction, LoginContext, LoginStart, UpstreamCtx,
    UpstreamError,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreAuthPrompt, CoreJwsSigningAlgorithm, CoreResponseType};
use openidconnect::{
    AuthType, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse,
};
use serde_json::{json, Value};
use std::sync::Arc;

/// An opened `oidc` connection.
pub struct OidcConnector {
    pub config: OidcConfig,
    pub client_secret: Option<String>,
    pub connection_id: String,
    pub version: i64,
    pub ctx: Arc<UpstreamCtx>,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
}

/// `/sso/oidc/callback` on fedgate's issuer.
pub fn callback_url(issuer: &str) -> String {
    format!("{}/sso/oidc/callback", issuer.trim_end_matches('/'))
}

fn alg_of(name: &str) -> Option<CoreJwsSigningAlgorithm> {
    serde_json::from_value(Value::String(name.to_string())).ok()
}

/// Decodes a JWT's header and payload without verifying anything (for diagnostics and for
/// reading the claims after `openidconnect` verified them).
pub fn decode_unverified(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let mut next = || {
        parts
            .next()
            .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or(Value::Null)
    };
    let h = next();
    let p = next();
    (h, p)
}

fn show(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "),
        Some(other) => other.to_string(),
        None => "(missing)".into(),
    }
}

impl OidcConnector {
    fn client(&self, meta: &Metadata, issuer: &str) -> Result<CoreClientFor, UpstreamError> {
        let redirect =
            RedirectUrl::new(callback_url(issuer)).map_err(|e| UpstreamError::Misconfigured(e.to_string()))?;
        let apple = self.config.preset == Preset::Apple;
        let secret = if apple { Some(self.apple_client_secret()?) } else { self.client_secret.clone() };
        let mut c = CoreClientFor::from_provider_metadata(
            meta.clone(),
            ClientId::new(self.config.client_id.clone()),
            secret.map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        if apple || self.config.token_endpoint_auth_method == super::TokenAuth::ClientSecretPost {
            c = c.set_auth_type(AuthType::RequestBody);
        }
        Ok(c)
    }

    /// Apple's client secret: a JWT fedgate signs with the team's Sign in with Apple key (ES256,
    /// `kid` = the key id; `iss` = the team id, `sub` = the client (Services) id, `aud` =
    /// `https://appleid.apple.com`). Apple accepts up to six months of validity; fedgate makes a
    /// fresh one for each token request, valid five minutes. The key (the `.p8` file) is the
    /// connection's sealed `client_secret`.
    fn apple_client_secret(&self) -> Result<String, UpstreamError> {
        let bad = |m: &str| UpstreamError::Misconfigured(format!("apple preset: {m}"));
        let pem = self.client_secret.as_deref().ok_or_else(|| bad("the client_secret (the .p8 key) is missing"))?;
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad("the client_secret is not a PEM private key (.p8)"))?;
        let kid = self.config.apple_key_id.clone().unwrap_or_default();
        let key = crate::keys::SigningKey::from_pkcs8(crate::keys::Alg::ES256, kid, &der)
            .map_err(|_| bad("the client_secret is not a P-256 private key in PKCS#8 (.p8)"))?;
        let now = self.clock.now();
        key.sign_jwt(
            "JWT",
            &json!({ "iss": self.config.apple_team_id, "iat": now, "exp": now + 300,
                     "aud": "https://appleid.apple.com", "sub": self.config.client_id }),
        )
        .map_err(|_| bad("signing the client secret failed"))
    }

    async fn metadata(&self) -> Result<Arc<Metadata>, UpstreamError> {
        self.ctx.oidc.get(&self.ctx.http, &self.connection_id, self.version, &self.config, self.clock.now()).await
    }

    fn token(&self) -> String {
        format!("{}{}", crate::ids::random128(&*self.rng), crate::ids::random128(&*self.rng))
    }

    /// Verifies the ID token's signature and claims. `Ok(Err(kid))` asks for a JWKS refresh.
    fn verify(
        &self,
        meta: &Metadata,
        issuer: &str,
        id_token: &openidconnect::core::CoreIdToken,
        nonce: &str,
        payload: &Value,
    ) -> Result<Result<(), ()>, UpstreamError> {
        let client = self.client(meta, issuer)?;
        let now = self.clock.now();
        let skew = self.config.clock_skew;
        let algs: Vec<CoreJwsSigningAlgorithm> = self.config.algs().iter().filter_map(|a| alg_of(a)).collect();
        let mut verifier = client
            .id_token_verifier()
            .set_allowed_algs(algs)
            .set_time_fn(move || chrono::DateTime::from_timestamp(now - skew, 0).unwrap_or_default())
            .set_issue_time_verifier_fn(move |iat| {
                if iat.timestamp() > now + skew {
                    Err(format!("issued in the future (iat {})", iat.timestamp()))
                } else {
                    Ok(())
                }
            });
        if self.config.issuer_checked_by_us() {
            // Checked by `check_issuer` after the signature.
            verifier = verifier.require_issuer_match(false);
        }
        let nonce = Nonce::new(nonce.to_string());
        match id_token.claims(&verifier, &nonce) {
            Ok(_) => Ok(Ok(())),
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                Ok(Err(()))
            }
            Err(e) => Err(self.claims_error(e, payload)),
        }
    }

    fn claims_error(&self, e: ClaimsVerificationError, payload: &Value) -> UpstreamError {
        use ClaimsVerificationError as C;
        use SignatureVerificationError as S;
        match e {
            C::Expired(m) => UpstreamError::Expired(m),
            C::InvalidAudience(_) => {
                UpstreamError::WrongAudience { got: show(payload.get("aud")), expected: self.config.client_id.clone() }
            }
            C::InvalidIssuer(_) => {
                UpstreamError::WrongIssuer { got: show(payload.get("iss")), expected: self.config.issuer.clone() }
            }
            C::InvalidNonce(_) => UpstreamError::NonceMismatch,
            C::SignatureVerification(S::DisallowedAlg(a) | S::UnsupportedAlg(a)) => UpstreamError::AlgNotAllowed(a),
            C::SignatureVerification(S::NoSignature) => UpstreamError::AlgNotAllowed("none".into()),
            C::SignatureVerification(S::NoMatchingKey) => UpstreamError::UnknownKey("(no kid)".into()),
            C::SignatureVerification(other) => UpstreamError::BadSignature(other.to_string()),
            other => UpstreamError::InvalidIdToken(other.to_string()),
        }
    }

    async fn userinfo(&self, meta: &Metadata, access_token: &str, claims: &mut Value) -> Result<(), UpstreamError> {
        let Some(url) = meta.userinfo_endpoint() else {
            return Ok(());
        };
        let req = openidconnect::http::Request::builder()
            .method("GET")
            .uri(url.as_str())
            .header("accept", "application/json")
            .header("authorization", format!("Bearer {access_token}"))
            .body(Vec::new())
            .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?;
        let resp =
            self.ctx.http.execute(req).await.map_err(|e| UpstreamError::Unreachable(format!("userinfo: {e}")))?;
        if !resp.status().is_success() {
            return Err(UpstreamError::InvalidResponse(format!("userinfo answered HTTP {}", resp.status().as_u16())));
        }
        let info: Value = serde_json::from_slice(resp.body()).map_err(|_| {
            UpstreamError::InvalidResponse("userinfo is not JSON (signed userinfo is not supported)".into())
        })?;
        if info.get("sub") != claims.get("sub") {
            return Err(UpstreamError::InvalidResponse("userinfo is about another subject than the ID token".into()));
        }
        if let (Value::Object(c), Value::Object(i)) = (claims, info) {
            for (k, v) in i {
                c.entry(k).or_insert(v);
            }
        }
        Ok(())
    }
}

/// The `iss` checks openidconnect cannot do. Microsoft's multi-tenant endpoints publish a
/// template (`https://login.microsoftonline.com/{tenantid}/v2.0`): the token's `iss` must be the
/// template with the token's own `tid` (a token of one directory cannot claim another's issuer),
/// and `consumers` / `organizations` admit only personal / only work accounts.
pub fn check_issuer(cfg: &OidcConfig, published: &str, claims: &Value) -> Result<(), UpstreamError> {
    let got = show(claims.get("iss"));
    if cfg.microsoft_multi_tenant() {
        let tid = claims.get("tid").and_then(Value::as_str).unwrap_or_default();
        if tid.is_empty() || !tid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(UpstreamError::ClaimsRejected {
                code: crate::error_code::ErrorCode::EntraTidMissing,
                detail: "the Microsoft ID token has no usable tid claim".into(),
                fix: "Use the v2.0 endpoint (issuer https://login.microsoftonline.com/common/v2.0)".into(),
            });
        }
        let personal = tid == crate::claims::oidc::MICROSOFT_PERSONAL_TID;
        if let Some(personal_only) = cfg.microsoft_personal_only() {
            if personal != personal_only {
                let (kind, endpoint) =
                    if personal { ("a personal", "organizations") } else { ("a work or school", "consumers") };
                return Err(UpstreamError::ClaimsRejected {
                    code: crate::error_code::ErrorCode::EntraTenantNotAllowed,
                    detail: format!("the token is for {kind} Microsoft account, which the {endpoint} endpoint does not admit"),
                    fix: "Use the issuer https://login.microsoftonline.com/common/v2.0 on the connection to admit both kinds of account".into(),
                });
            }
        }
        let want = published.replace("{tenantid}", tid);
        if got != want {
            return Err(UpstreamError::WrongIssuer { got, expected: want });
        }
        return Ok(());
    }
    if got != cfg.issuer {
        return Err(UpstreamError::WrongIssuer { got, expected: cfg.issuer.clone() });
    }
    Ok(())
}

type CoreClientFor = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    super::jwk::IdpKey,
    CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

#[async_trait::async_trait]
impl Connector for OidcConnector {
    async fn begin(&self, login: &LoginContext) -> Result<LoginStart, UpstreamError> {
        let t0 = self.clock.now_ms();
        let meta = self.metadata().await?;
        let client = self.client(&meta, &login.issuer)?;
        let verifier = self.token();
        let nonce = self.token();
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
        let state = login.login_id.to_string();
        let n2 = nonce.clone();
        let mut req = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(n2),
            )
            .set_pkce_challenge(challenge);
        for s in self.config.scopes.iter().filter(|s| s.as_str() != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if let Some(h) = &login.login_hint {
            req = req.set_login_hint(LoginHint::new(h.clone()));
        }
        // The app's demand for a fresh sign-in goes upstream as is; the answer's auth_time is
        // checked against it when the login finishes (crate::claims::check_reauthentication).
        if login.prompt_login {
            req = req.add_prompt(CoreAuthPrompt::Login);
        } else if let Some(p) = &self.config.prompt {
            req = req.add_extra_param("prompt", p.clone());
        }
        if let Some(m) = login.max_age {
            req = req.add_extra_param("max_age", m.to_string());
        }
        // MFA required (tenant or connection policy, or the app's acr_values): asked for in the
        // preset's terms; the answer is checked when the login finishes (login::complete).
        let mut mfa_asked = Value::Null;
        if login.require_mfa {
            let vendor = crate::claims::mfa::oidc_vendor(self.config.preset, &self.config.mfa_acr_values);
            if !vendor.acr_values.is_empty() {
                req = req.add_extra_param("acr_values", vendor.acr_values.join(" "));
            }
            if vendor.claims_amr {
                req = req.add_extra_param("claims", json!({"id_token": {"amr": {"essential": true}}}).to_string());
            }
            mfa_asked = json!({ "acr_values": vendor.acr_values, "claims_amr": vendor.claims_amr });
        }
        if self.config.preset == Preset::Apple {
            // Apple answers with a cross-site POST when scopes are asked for.
            req = req.add_extra_param("response_mode", "form_post");
        }
        for (k, v) in &self.config.extra_auth_params {
            if login.require_mfa && (k == "acr_values" || k == "claims") {
                continue;
            }
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let (url, _, _) = req.url();
        login.steps.push(
            "redirected_upstream",
            self.clock.now_ms(),
            self.clock.now_ms() - t0,
            json!({ "authorization_endpoint": meta.authorization_endpoint().as_str(), "scopes": self.config.scopes, "pkce": "S256", "mfa_requested": mfa_asked }),
        );
        Ok(LoginStart {
            action: LoginAction::Redirect(url.to_string()),
            state: ConnectorState::Oidc { nonce, verifier, version: self.version },
        })
    }

    async fn complete(
        &self,
        login: &LoginContext,
        state: &ConnectorState,
        payload: CallbackPayload,
    ) -> Result<Completed, UpstreamError> {
        let p = &payload.params;
        if p.get("state").map(String::as_str) != Some(login.login_id.as_str()) {
            return Err(UpstreamError::StateMismatch);
        }
        let ConnectorState::Oidc { nonce, verifier, .. } = state.clone() else {
            return Err(UpstreamError::InvalidResponse("no pending OIDC state for this sign-in".into()));
        };
        let mut meta = self.metadata().await?;
        // RFC 9207: when the IdP sends (or promises) `iss`, it must be the connection's issuer.
        let expected_iss = meta.issuer().as_str().to_string();
        match p.get("iss") {
            Some(i) if *i != expected_iss && !self.config.microsoft_multi_tenant() => {
                return Err(UpstreamError::IssuerParamMismatch { got: i.clone(), expected: expected_iss })
            }
            None if meta.additional_metadata().authorization_response_iss_parameter_supported => {
                return Err(UpstreamError::IssuerParamMismatch { got: "(missing)".into(), expected: expected_iss })
            }
            _ => {}
        }
        if let Some(err) = p.get("error") {
            let description = p.get("error_description").cloned();
            return Err(if err == "access_denied" {
                UpstreamError::Denied(description)
            } else {
                UpstreamError::ProviderError { error: err.chars().take(64).collect(), description }
            });
        }
        let code = p.get("code").ok_or_else(|| UpstreamError::InvalidResponse("the callback has no code".into()))?;
        let client = self.client(&meta, &login.issuer)?;
        let t0 = self.clock.now_ms();
        let http = self.ctx.http.clone();
        let resp = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&http)
            .await
            .map_err(|e| match e {
                RequestTokenError::Request(HttpError::Blocked(h)) => {
                    UpstreamError::Misconfigured(HttpError::Blocked(h).to_string())
                }
                RequestTokenError::Request(e) => UpstreamError::Unreachable(format!("token endpoint: {e}")),
                RequestTokenError::ServerResponse(r) => UpstreamError::TokenExchange(format!(
                    "{}{}",
                    r.error().as_ref(),
                    r.error_description().map(|d| format!(": {d}")).unwrap_or_default()
                )),
                RequestTokenError::Parse(e, _) => {
                    UpstreamError::TokenExchange(format!("unreadable token response: {e}"))
                }
                RequestTokenError::Other(m) => UpstreamError::TokenExchange(m),
            })?;
        let id_token = resp.id_token().ok_or(UpstreamError::NoIdToken)?;
        let raw = id_token.to_string();
        let (header, mut claims) = decode_unverified(&raw);
        login.steps.push(
            "token_exchanged",
            self.clock.now_ms(),
            self.clock.now_ms() - t0,
            json!({ "token_endpoint": meta.token_endpoint().map(|u| u.as_str().to_string()), "token_type": resp.token_type().as_ref(), "has_refresh_token": resp.refresh_token().is_some() }),
        );
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("none").to_string();
        if !self.config.algs().contains(&alg) {
            return Err(UpstreamError::AlgNotAllowed(alg));
        }
        let t1 = self.clock.now_ms();
        if self.verify(&meta, &login.issuer, id_token, &nonce, &claims)?.is_err() {
            let kid = show(header.get("kid"));
            match self.ctx.oidc.refresh_jwks(&self.ctx.http, &self.connection_id, self.clock.now()).await? {
                Some(m) => {
                    meta = m;
                    if self.verify(&meta, &login.issuer, id_token, &nonce, &claims)?.is_err() {
                        return Err(UpstreamError::UnknownKey(kid));
                    }
                }
                None => return Err(UpstreamError::UnknownKey(kid)),
            }
        }
        let now = self.clock.now();
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
            if nbf > now + self.config.clock_skew {
                return Err(UpstreamError::NotYetValid(nbf));
            }
        }
        if self.config.issuer_checked_by_us() {
            check_issuer(&self.config, meta.issuer().as_str(), &claims)?;
        }
        let names: Vec<&String> = claims.as_object().map(|m| m.keys().collect()).unwrap_or_default();
        login.steps.push(
            "id_token_verified",
            self.clock.now_ms(),
            self.clock.now_ms() - t1,
            json!({ "alg": alg, "kid": header.get("kid"), "iss": claims.get("iss"), "aud": claims.get("aud"), "claims": names }),
        );
        // The ID token's auth_time, read before userinfo is merged in: only the verified token
        // may say when the person authenticated.
        let auth_time = claims.get("auth_time").and_then(Value::as_i64);
        // Likewise amr and acr: only the verified ID token may say how the person authenticated.
        let id_amr = claims.get("amr").cloned();
        let id_acr = claims.get("acr").cloned();
        if self.config.fetch_userinfo {
            let t2 = self.clock.now_ms();
            self.userinfo(&meta, resp.access_token().secret(), &mut claims).await?;
            login.steps.push("userinfo_merged", self.clock.now_ms(), self.clock.now_ms() - t2, Value::Null);
        }
        let policy = Policy {
            trusted_email_domains: self.config.trusted_email_domains.clone(),
            hosted_domains: self.config.hosted_domains.clone(),
            allowed_tenant_ids: self.config.allowed_tenant_ids.clone(),
        };
        let mapped = map_claims(self.config.preset, &self.config.claim_mapping, &claims, &policy)
            .map_err(|r| UpstreamError::ClaimsRejected { code: r.code, detail: r.detail, fix: r.fix })?;
        login.steps.push(
            "claims_mapped",
            self.clock.now_ms(),
            0,
            json!({ "preset": self.config.preset, "email_domain": mapped.identity.email.as_deref().and_then(crate::claims::email_domain), "email_verified": mapped.identity.email_verified, "groups": mapped.identity.groups.len(), "notes": mapped.notes, "auth_time": auth_time }),
        );
        let mut identity = mapped.identity;
        identity.auth_time = auth_time;
        identity.amr = match id_amr {
            Some(Value::Array(a)) => {
                let mut out: Vec<String> = Vec::new();
                for m in a.iter().filter_map(Value::as_str).map(|m| m.trim().chars().take(64).collect::<String>()) {
                    if !m.is_empty() && !out.contains(&m) && out.len() < 20 {
                        out.push(m);
                    }
                }
                out
            }
            _ => Vec::new(),
        };
        if identity.amr.is_empty() {
            identity.amr = vec!["fed".into()];
        }
        if let Value::Object(attrs) = &mut identity.attributes {
            match id_acr {
                Some(a @ Value::String(_)) => {
                    attrs.insert("acr".into(), a);
                }
                _ => {
                    attrs.remove("acr");
                }
            }
            attrs.remove("amr");
            attrs.insert("amr".into(), json!(identity.amr));
        }
        if self.config.preset == Preset::Apple {
            crate::claims::social::apple_user(&mut identity, p.get("user").map(String::as_str));
        }
        Ok(Completed { identity, one_time: None, notes: mapped.notes })
    }
}
