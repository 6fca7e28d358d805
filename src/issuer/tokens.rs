//! The one token format: ID tokens and RFC 9068 access tokens, built from the directory and
//! signed with the client's algorithm; verification of our own access tokens.
use crate::claims::hook::{fit, OnFailure, StoredHook, TOKEN_BUDGET_BYTES};
use crate::claims::rules::{self, RuleSet};
use crate::error_code::ErrorCode;
use crate::http::error::OAuthError;
use crate::http::AppState;
use crate::keys::{Alg, UnverifiedJws};
use crate::store::conn::{Conn, DbErr};
use crate::store::entities::{client, grant, session, tenant, tenant_domain, user};
use crate::traces::Step;
use crate::util::from_json_list;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Most groups an ID token carries. A user in more gets none in the token and a pointer to
/// userinfo instead (the overage claims), so a token stays a few KB whatever the directory:
/// 200 is Entra ID's limit for JWTs, and 200 typical names are about 6 KB of the token.
pub const MAX_GROUPS_IN_TOKEN: usize = 200;

#[derive(Debug, Serialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub sid: String,
    pub azp: String,
    pub org_id: String,
    pub org_slug: String,
    pub connection_id: String,
    pub connection_type: String,
    #[serde(flatten)]
    pub profile: ProfileClaims,
    /// The user's groups; absent past [`MAX_GROUPS_IN_TOKEN`] (overage: see `_claim_names`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Overage (OpenID Connect Core §5.6.2 distributed claims, as Entra ID does): with more
    /// groups than fit, `{"groups": "src1"}` and the groups are read from `_claim_sources`.
    #[serde(rename = "_claim_names", skip_serializing_if = "Option::is_none")]
    pub claim_names: Option<serde_json::Value>,
    /// `{"src1": {"endpoint": "<issuer>/oauth2/userinfo"}}`: userinfo, called with the access
    /// token, returns every group.
    #[serde(rename = "_claim_sources", skip_serializing_if = "Option::is_none")]
    pub claim_sources: Option<serde_json::Value>,
    /// App roles from the tenant's group -> roles mapping; present only when the tenant has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The level the login achieved (`urn:fedgate:acr:*`, docs/tokens.md#mfa).
    pub acr: String,
    /// RFC 8176 methods as the IdP's verified answer stated them (normalized).
    pub amr: Vec<String>,
}

/// Claims released by the `email` and `profile` scopes.
#[derive(Debug, Serialize, Default, Clone)]
pub struct ProfileClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    /// The client's audience: one string, or an array when it has several.
    pub aud: serde_json::Value,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: i64,
    pub sid: String,
    pub org_id: String,
    pub acr: String,
    pub amr: Vec<String>,
}

/// A machine token (`client_credentials`, RFC 9068 §2.2: `sub` is the client itself). The jti
/// starts with [`CLIENT_TOKEN_JTI_PREFIX`].
#[derive(Debug, Serialize)]
pub struct ClientAccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: serde_json::Value,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// The tenant the client is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// The jti of machine tokens starts with this (user tokens start with their grant id).
pub const CLIENT_TOKEN_JTI_PREFIX: &str = "cc.";

/// `aud` for a client's access tokens: a string for one audience, an array for several.
pub fn aud_claim(c: &client::Model) -> serde_json::Value {
    let a = super::clients::audience_of(c);
    match a.as_slice() {
        [one] => one.clone().into(),
        _ => a.into(),
    }
}

/// Everything the tokens say about the person, loaded once per issuance.
pub struct Subject {
    pub user: user::Model,
    /// The address this session's connection vouched for, when fedgate still trusts it (see
    /// [`trusted_email`]): the only email tokens call verified.
    pub verified_email: Option<String>,
    pub tenant: tenant::Model,
    pub session: session::Model,
    pub connection_type: String,
    pub groups: Vec<String>,
    /// The claim rules and token hook of the tenant and of the client the tokens are for.
    pub claims: ClaimConfig,
}

/// Loads user, session, tenant, connection type, the identity's groups, the user's SCIM groups
/// and the claim configuration for client `client_id`: ONE query
/// ([`crate::store::sessions::subject`]).
pub async fn load_subject(
    db: &impl Conn,
    user_id: &str,
    session_id: &str,
    client_id: &str,
) -> Result<Option<Subject>, DbErr> {
    use crate::store::sessions::{self, SessionJoin};
    let found = sessions::subject(db, user_id, session_id, client_id, SessionJoin::Required).await?;
    Ok(found.and_then(subject_of))
}

/// The [`Subject`] of a row [`crate::store::sessions::subject`] found (`None` without its session).
pub fn subject_of(found: crate::store::sessions::SubjectFound) -> Option<Subject> {
    let row = found.with_session()?;
    let verified_email = trusted_email(&row.tenant.id, row.vouched_email, row.vouched_domain.as_slice());
    let upstream = row.groups.map(|g| from_json_list(&g)).unwrap_or_default();
    // Upstream groups first, then SCIM groups.
    let groups = crate::directory::merge_groups(upstream, row.scim_groups);
    Some(Subject {
        user: row.user,
        verified_email,
        tenant: row.tenant,
        session: row.session,
        connection_type: row.connection_type.unwrap_or_else(|| "unknown".into()),
        groups,
        claims: ClaimConfig::from_rows(&row.claims),
    })
}

pub fn has_scope(scope: &str, s: &str) -> bool {
    scope.split(' ').any(|x| x == s)
}

/// The address a token may call verified: the one the session's connection vouched for at its
/// last login (`identities.verified_email`), if its domain is still trusted for the tenant
/// (`domains`: candidate `tenant_domains` rows).
pub fn trusted_email(tenant_id: &str, vouched: Option<String>, domains: &[tenant_domain::Model]) -> Option<String> {
    vouched.filter(|e| crate::tenant::domain_trusted_for_email(tenant_id, e, domains))
}

/// The `email` and `profile` claims. `email` + `email_verified: true` only for `verified_email`
/// (an address an IdP vouched for, in a trusted domain of the tenant); otherwise the profile
/// email (SCIM's, or what the IdP asserted without fedgate trusting it) with
/// `email_verified: false`. Names come from the profile (SCIM's for provisioned users).
pub fn profile_claims(u: &user::Model, verified_email: Option<&str>, scope: &str) -> ProfileClaims {
    let mut p = ProfileClaims::default();
    if has_scope(scope, "email") {
        match verified_email {
            Some(e) => {
                p.email = Some(e.to_string());
                p.email_verified = Some(true);
            }
            None => {
                p.email = u.email.clone();
                p.email_verified = u.email.as_ref().map(|_| false);
            }
        }
    }
    if has_scope(scope, "profile") {
        p.name = u.name.clone();
        p.given_name = u.given_name.clone();
        p.family_name = u.family_name.clone();
    }
    p
}

/// The `acr` of a session (sessions older than MFA support: `urn:fedgate:acr:basic`).
pub fn session_acr(s: &session::Model) -> &str {
    s.acr.as_deref().and_then(crate::claims::mfa::Level::from_acr).map_or(crate::claims::mfa::ACR_BASIC, |l| l.acr())
}

pub struct Issued {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: i64,
}

/// The claim configuration of one issuance: the tenant's rules (run first), the client's, and
/// the tenant's token hook.
#[derive(Debug, Default)]
pub struct ClaimConfig {
    pub tenant_rules: RuleSet,
    pub client_rules: RuleSet,
    pub hook: Option<StoredHook>,
}

fn stored_rules(json: Option<&str>) -> RuleSet {
    let Some(j) = json else { return RuleSet::default() };
    // Validated on save; a row that no longer parses (a newer binary's rule) applies no rule.
    match serde_json::from_str::<serde_json::Value>(j).ok().map(|v| crate::claims::rules::parse(&v)) {
        Some(Ok(r)) => r,
        _ => {
            tracing::warn!("stored claim rules do not parse; no rule applied");
            RuleSet::default()
        }
    }
}

/// Loads the claim configuration of a tenant and a client (one query).
pub async fn claim_config(db: &impl Conn, tenant_id: &str, client_id: &str) -> Result<ClaimConfig, DbErr> {
    let (t, c) = crate::store::claim_configs::of_pair(db, tenant_id, client_id).await?;
    Ok(ClaimConfig::from_rows(&crate::store::sessions::ClaimRows {
        tenant_rules: t.as_ref().and_then(|r| r.rules.clone()),
        tenant_hook: t.and_then(|r| r.token_hook),
        client_rules: c.and_then(|r| r.rules),
    }))
}

impl ClaimConfig {
    /// Parses the stored rows (a row that no longer parses applies nothing; see [`stored_rules`]).
    pub fn from_rows(r: &crate::store::sessions::ClaimRows) -> ClaimConfig {
        ClaimConfig {
            tenant_rules: stored_rules(r.tenant_rules.as_deref()),
            client_rules: stored_rules(r.client_rules.as_deref()),
            hook: r.tenant_hook.as_deref().and_then(|h| serde_json::from_str(h).ok()),
        }
    }
}

/// Where an issuance's steps (claim rules, token hook, size budget) are recorded.
#[derive(Debug, Clone, Copy)]
pub enum TraceOf<'a> {
    /// The trace of the login whose authorization code is being redeemed.
    Login(&'a str),
    /// A refresh: a trace of its own, written when the token hook was called.
    Refresh,
}

impl TraceOf<'_> {
    fn grant_type(self) -> &'static str {
        match self {
            TraceOf::Login(_) => "authorization_code",
            TraceOf::Refresh => "refresh_token",
        }
    }
}

fn to_map<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Adds the groups overage marker (see [`IdTokenClaims::claim_names`]).
fn overage_marker(issuer: &str) -> impl Fn(&mut Map<String, Value>) + '_ {
    move |m: &mut Map<String, Value>| {
        m.insert("_claim_names".into(), json!({"groups": "src1"}));
        m.insert(
            "_claim_sources".into(),
            json!({"src1": {"endpoint": format!("{}/oauth2/userinfo", issuer.trim_end_matches('/'))}}),
        );
    }
}

/// Builds, shapes and signs an ID token and an access token for a grant: fedgate's claims,
/// then the tenant's and the client's claim rules, then the tenant's token hook, then the size
/// budget ([`TOKEN_BUDGET_BYTES`]). The steps go to the login trace (`trace`). A hook failing
/// under `on_failure: deny` revokes the grant and answers `access_denied`.
pub async fn sign_tokens(
    st: &AppState,
    c: &client::Model,
    g: &grant::Model,
    s: &Subject,
    nonce: Option<String>,
    trace: TraceOf<'_>,
) -> Result<Issued, OAuthError> {
    let now = st.clock.now();
    let alg = Alg::parse(&c.id_token_alg).unwrap_or(Alg::ES256);
    let key = st.keys.signer(alg).map_err(|e| {
        crate::util::log_internal("no signing key", &e);
        OAuthError::server_error()
    })?;
    let iss = st.config.issuer.clone();
    let id = IdTokenClaims {
        iss: iss.clone(),
        sub: s.user.id.clone(),
        aud: c.id.clone(),
        exp: now + st.config.tokens.id_token_ttl,
        iat: now,
        auth_time: g.auth_time,
        nonce,
        sid: s.session.id.clone(),
        azp: c.id.clone(),
        org_id: s.tenant.id.clone(),
        org_slug: s.tenant.slug.clone(),
        connection_id: s.session.connection_id.clone(),
        connection_type: s.connection_type.clone(),
        profile: profile_claims(&s.user, s.verified_email.as_deref(), &g.scope),
        groups: (s.groups.len() <= MAX_GROUPS_IN_TOKEN).then(|| s.groups.clone()),
        claim_names: (s.groups.len() > MAX_GROUPS_IN_TOKEN).then(|| json!({"groups": "src1"})),
        claim_sources: (s.groups.len() > MAX_GROUPS_IN_TOKEN).then(
            || json!({"src1": {"endpoint": format!("{}/oauth2/userinfo", st.config.issuer.trim_end_matches('/'))}}),
        ),
        roles: {
            let mapping = crate::tenant::settings_of(&s.tenant).role_mapping;
            (!mapping.is_empty()).then(|| crate::claims::roles_for(&s.groups, &mapping))
        },
        acr: session_acr(&s.session).to_string(),
        amr: from_json_list(&s.session.amr),
    };
    let jti = format!("{}.{}", g.id, &crate::ids::random128(&*st.rng)[..16]);
    let ttl = super::clients::access_token_ttl_of(c, &st.config);
    let at = AccessTokenClaims {
        iss,
        sub: s.user.id.clone(),
        aud: aud_claim(c),
        exp: now + ttl,
        iat: now,
        jti,
        client_id: c.id.clone(),
        scope: g.scope.clone(),
        auth_time: g.auth_time,
        sid: s.session.id.clone(),
        org_id: s.tenant.id.clone(),
        acr: session_acr(&s.session).to_string(),
        amr: from_json_list(&s.session.amr),
    };
    let mut id_claims = to_map(&id);
    let mut at_claims = to_map(&at);
    let mut steps = Vec::new();
    let cfg = &s.claims;

    // Claim rules: the tenant's, then the client's. What they write goes in the access token too.
    let started = st.clock.now_ms();
    let applied = rules::apply(&[&cfg.tenant_rules, &cfg.client_rules], &mut id_claims, &s.groups);
    for k in &applied.written {
        if let Some(v) = id_claims.get(k) {
            at_claims.insert(k.clone(), v.clone());
        }
    }
    if applied.rules > 0 {
        steps.push(Step {
            step: "claim_rules_applied".into(),
            at_ms: st.clock.now_ms(),
            duration_ms: st.clock.now_ms() - started,
            detail: json!({
                "tenant_rules": cfg.tenant_rules.rules.len(),
                "client_rules": cfg.client_rules.rules.len(),
                "claims_written": applied.written,
                "claims_removed": applied.removed,
            }),
        });
    }

    // The token hook.
    let mut hook_claims: Vec<String> = Vec::new();
    let mut denied = None;
    if let Some(hook) = &cfg.hook {
        let data = json!({
            "grant_type": trace.grant_type(),
            "tenant": {"id": s.tenant.id, "slug": s.tenant.slug},
            "client_id": c.id,
            "user": {
                "sub": s.user.id,
                "email": id_claims.get("email"),
                "email_verified": id_claims.get("email_verified"),
                "groups": s.groups,
            },
            "connection": {"id": s.session.connection_id, "type": s.connection_type},
            "claims": id_claims,
        });
        let called = super::hook::call(st, &s.tenant.id, hook, data).await;
        steps.push(called.step);
        match called.failure {
            Some(f) if hook.on_failure == OnFailure::Deny => denied = Some(f),
            Some(_) => {}
            None => {
                for (k, v) in called.claims {
                    id_claims.insert(k.clone(), v.clone());
                    at_claims.insert(k.clone(), v);
                    hook_claims.push(k);
                }
            }
        }
    }
    if let Some(f) = denied {
        let tx = crate::store::write_tx(&st.db).await?;
        crate::store::grants::revoke(&tx, &g.id, "token_hook_denied", now).await?;
        tx.commit().await?;
        let failure = crate::traces::Failure {
            code: ErrorCode::TokenHookFailed,
            cause: format!("The app's token hook failed and the tenant's policy is to deny: {}.", f.cause),
            fix: f.fix.to_string(),
        };
        record_steps(st, c, s, trace, steps, Some(failure)).await;
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the token hook failed and the tenant's policy denies the sign-in; see the login trace",
        ));
    }

    // The size budget.
    let mark = overage_marker(&st.config.issuer);
    let id_trims = fit(&mut id_claims, TOKEN_BUDGET_BYTES, &hook_claims, &applied.written, &mark);
    let at_trims = fit(&mut at_claims, TOKEN_BUDGET_BYTES, &hook_claims, &applied.written, &mark);
    if !id_trims.is_empty() || !at_trims.is_empty() {
        steps.push(Step {
            step: "token_size_budget".into(),
            at_ms: st.clock.now_ms(),
            duration_ms: 0,
            detail: json!({"budget_bytes": TOKEN_BUDGET_BYTES, "id_token": id_trims, "access_token": at_trims}),
        });
    }
    if !steps.is_empty() {
        record_steps(st, c, s, trace, steps, None).await;
    }
    let sign_err = |e: crate::keys::signing::SigningError| {
        crate::util::log_internal("signing failed", &e);
        OAuthError::server_error()
    };
    Ok(Issued {
        id_token: key.sign_jwt("JWT", &id_claims).map_err(sign_err)?,
        access_token: key.sign_jwt("at+jwt", &at_claims).map_err(sign_err)?,
        expires_in: ttl,
    })
}

/// Writes an issuance's steps on its trace, best effort (a trace never breaks a token request).
/// A refresh, or a code answered from an existing session (no login trace), gets a trace of its
/// own when the token hook was called.
async fn record_steps(
    st: &AppState,
    c: &client::Model,
    s: &Subject,
    trace: TraceOf<'_>,
    steps: Vec<Step>,
    failure: Option<crate::traces::Failure>,
) {
    let now_ms = st.clock.now_ms();
    let hook_called = steps.iter().any(|x| x.step == "token_hook");
    let own = |prefix: &str| format!("{prefix}_{}", crate::ids::sortable(now_ms, &*st.rng));
    let r = match trace {
        // A code answered from an existing session has no login trace (`login_id` "sso").
        TraceOf::Login(id) => match crate::traces::append(&st.db, id, steps.clone(), failure.clone(), now_ms).await {
            Ok(false) if hook_called => {
                let (id, grant) = (own("tok"), trace.grant_type());
                crate::traces::record_issuance(&st.db, &id, &c.id, &s.tenant.id, grant, steps, failure, now_ms).await
            }
            other => other.map(|_| ()),
        },
        TraceOf::Refresh if hook_called => {
            let id = own("rfr");
            crate::traces::record_issuance(&st.db, &id, &c.id, &s.tenant.id, "refresh_token", steps, failure, now_ms)
                .await
        }
        TraceOf::Refresh => Ok(()),
    };
    if let Err(e) = r {
        crate::util::log_internal("recording the token issuance on the login trace", &e);
    }
}

/// Signs a machine token for `c` (`client_credentials`) with `scope`; returns it and its
/// lifetime.
pub fn sign_client_token(
    st: &AppState,
    c: &client::Model,
    scope: &str,
    org_id: Option<String>,
) -> Result<(String, i64), OAuthError> {
    let now = st.clock.now();
    let alg = Alg::parse(&c.id_token_alg).unwrap_or(Alg::ES256);
    let key = st.keys.signer(alg).map_err(|e| {
        crate::util::log_internal("no signing key", &e);
        OAuthError::server_error()
    })?;
    let ttl = super::clients::access_token_ttl_of(c, &st.config);
    let at = ClientAccessTokenClaims {
        iss: st.config.issuer.clone(),
        sub: c.id.clone(),
        aud: aud_claim(c),
        exp: now + ttl,
        iat: now,
        jti: format!("{CLIENT_TOKEN_JTI_PREFIX}{}", crate::ids::random128(&*st.rng)),
        client_id: c.id.clone(),
        scope: scope.to_string(),
        org_id,
    };
    let token = key.sign_jwt("at+jwt", &at).map_err(|e| {
        crate::util::log_internal("signing failed", &e);
        OAuthError::server_error()
    })?;
    Ok((token, ttl))
}

/// A verified, currently valid access token.
#[derive(Debug)]
pub struct ValidAccessToken {
    pub claims: serde_json::Value,
    /// The client it was issued to.
    pub client_id: String,
    pub owner: TokenOwner,
}

/// Whom an access token speaks for.
#[derive(Debug)]
pub enum TokenOwner {
    /// A person, through a grant (authorization_code, refresh_token).
    User { grant: Box<grant::Model>, user: Box<user::Model> },
    /// The client itself (client_credentials).
    Client,
}

/// Verifies one of our access tokens: signature by a published key, `typ`, issuer, expiry, its
/// jti not revoked, and what it speaks for still live: a user token's grant and user; a machine
/// token's client (enabled, still allowed `client_credentials`) and bound tenant.
pub async fn verify_access_token(st: &AppState, token: &str) -> Result<Option<ValidAccessToken>, DbErr> {
    let Some(jws) = UnverifiedJws::parse(token) else {
        return Ok(None);
    };
    if !jws.header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
        return Ok(None);
    }
    let Some(kid) = jws.header.kid.as_deref() else {
        return Ok(None);
    };
    let Some(key) = st.keys.public_key(kid).await else {
        return Ok(None);
    };
    let Some(claims) = jws.verify(&key) else {
        return Ok(None);
    };
    let now = st.clock.now();
    if claims.get("iss").and_then(|v| v.as_str()) != Some(st.config.issuer.as_str())
        || claims.get("exp").and_then(|v| v.as_i64()).is_none_or(|e| e <= now)
    {
        return Ok(None);
    }
    let Some(jti) = claims.get("jti").and_then(|v| v.as_str()) else {
        return Ok(None);
    };
    let Some(client_id) = claims.get("client_id").and_then(|v| v.as_str()).map(str::to_string) else {
        return Ok(None);
    };
    if jti.starts_with(CLIENT_TOKEN_JTI_PREFIX) {
        if crate::store::grants::access_token_revoked(&st.db, jti).await? {
            return Ok(None);
        }
        if claims.get("sub").and_then(|v| v.as_str()) != Some(client_id.as_str()) {
            return Ok(None);
        }
        let Some(c) = crate::store::clients::get(&st.db, &client_id).await? else {
            return Ok(None);
        };
        if c.disabled_at.is_some() || !super::clients::allows_grant(&c, super::clients::GrantType::ClientCredentials) {
            return Ok(None);
        }
        if let Some(org) = claims.get("org_id").and_then(|v| v.as_str()) {
            if c.tenant_id.as_deref() != Some(org) || crate::tenant::get(&st.db, org).await?.is_none() {
                return Ok(None);
            }
        }
        return Ok(Some(ValidAccessToken { claims, client_id, owner: TokenOwner::Client }));
    }
    let Some((grant_id, _)) = jti.split_once('.') else {
        return Ok(None);
    };
    // The deny list, the grant and its user in one statement.
    let Some((jti_revoked, grant, user)) = crate::store::grants::access_token_owner(&st.db, jti, grant_id).await?
    else {
        return Ok(None);
    };
    if jti_revoked || grant.revoked_at.is_some() || grant.client_id != client_id {
        return Ok(None);
    }
    if !user.active || user.deleted_at.is_some() {
        return Ok(None);
    }
    Ok(Some(ValidAccessToken {
        claims,
        client_id,
        owner: TokenOwner::User { grant: Box::new(grant), user: Box::new(user) },
    }))
}
