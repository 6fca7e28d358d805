//! The one token format: ID tokens and RFC 9068 access tokens, built from the directory and
//! signed with the client's algorithm; verification of our own access tokens.
use crate::http::error::OAuthError;
use crate::http::AppState;
use crate::keys::{Alg, UnverifiedJws};
use crate::store::conn::{Conn, DbErr};
use crate::store::entities::{client, grant, identity, session, tenant, tenant_domain, user};
use crate::util::from_json_list;
use serde::Serialize;

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
}

/// Loads user, session, tenant, connection type and the identity's groups (one query, see
/// [`crate::store::sessions::subject`]), then the user's SCIM groups.
pub async fn load_subject(db: &impl Conn, user_id: &str, session_id: &str) -> Result<Option<Subject>, DbErr> {
    let Some(row) = crate::store::sessions::subject(db, user_id, session_id).await? else { return Ok(None) };
    let verified_email = trusted_email(&row.tenant.id, row.vouched_email, row.vouched_domain.as_slice());
    let upstream = row.groups.map(|g| from_json_list(&g)).unwrap_or_default();
    // Upstream groups first, then SCIM groups (one more query, only when the tenant uses SCIM).
    let groups = crate::directory::merge_groups(upstream, crate::directory::scim_groups_of(db, &row.user.id).await?);
    Ok(Some(Subject {
        user: row.user,
        verified_email,
        tenant: row.tenant,
        session: row.session,
        connection_type: row.connection_type.unwrap_or_else(|| "unknown".into()),
        groups,
    }))
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

/// [`trusted_email`] for an identity row (userinfo), with its one domain lookup.
pub async fn trusted_email_of(
    db: &impl Conn,
    tenant_id: &str,
    idn: Option<&identity::Model>,
) -> Result<Option<String>, DbErr> {
    let Some(i) = idn else { return Ok(None) };
    let (Some(email), Some(domain)) = (&i.verified_email, &i.verified_email_domain) else { return Ok(None) };
    let row = crate::store::tenants::domain(db, domain).await?;
    Ok(trusted_email(tenant_id, Some(email.clone()), row.as_slice()))
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

pub struct Issued {
    pub access_token: String,
    pub id_token: String,
    pub expires_in: i64,
}

/// Signs an ID token and an access token for a grant.
pub fn sign_tokens(
    st: &AppState,
    c: &client::Model,
    g: &grant::Model,
    s: &Subject,
    nonce: Option<String>,
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
        claim_names: (s.groups.len() > MAX_GROUPS_IN_TOKEN).then(|| serde_json::json!({"groups": "src1"})),
        claim_sources: (s.groups.len() > MAX_GROUPS_IN_TOKEN).then(|| {
            serde_json::json!({"src1": {"endpoint": format!("{}/oauth2/userinfo", st.config.issuer.trim_end_matches('/'))}})
        }),
        roles: {
            let mapping = crate::tenant::settings_of(&s.tenant).role_mapping;
            (!mapping.is_empty()).then(|| crate::claims::roles_for(&s.groups, &mapping))
        },
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
    };
    let sign_err = |e: crate::keys::signing::SigningError| {
        crate::util::log_internal("signing failed", &e);
        OAuthError::server_error()
    };
    Ok(Issued {
        id_token: key.sign_jwt("JWT", &id).map_err(sign_err)?,
        access_token: key.sign_jwt("at+jwt", &at).map_err(sign_err)?,
        expires_in: ttl,
    })
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
    if crate::store::grants::access_token_revoked(&st.db, jti).await? {
        return Ok(None);
    }
    if jti.starts_with(CLIENT_TOKEN_JTI_PREFIX) {
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
    let Some(grant) = crate::store::grants::get(&st.db, grant_id).await? else {
        return Ok(None);
    };
    if grant.revoked_at.is_some() || grant.client_id != client_id {
        return Ok(None);
    }
    let Some(user) = crate::store::users::get(&st.db, &grant.user_id).await? else {
        return Ok(None);
    };
    if !user.active || user.deleted_at.is_some() {
        return Ok(None);
    }
    Ok(Some(ValidAccessToken {
        claims,
        client_id,
        owner: TokenOwner::User { grant: Box::new(grant), user: Box::new(user) },
    }))
}
