//! Claims the app defines: claim rules per tenant and per client (with a preview against a
//! sample identity), and a tenant's token hook. docs/tokens.md describes the language and the
//! hook's contract.
use super::{tenant_or_404, Admin};
use crate::claims::hook::{self, OnFailure, StoredHook};
use crate::claims::rules::{self, RuleError, RuleSet};
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::claim_configs::{self as store, Changes};
use crate::store::entities::{client, tenant};
use crate::store::{audited, clients};
use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

fn rule_error(e: RuleError) -> ApiError {
    let field = match e.rule_index {
        Some(i) => format!("rules[{i}]"),
        None => "rules".to_string(),
    };
    ApiError::invalid(&field, ErrorCode::InvalidClaimRules, e.to_string())
}

async fn client_or_404(st: &AppState, id: &str) -> Result<client::Model, ApiError> {
    clients::get(&st.db, id).await?.ok_or_else(|| ApiError::not_found("client"))
}

async fn stored_rules(st: &AppState, owner: &str) -> Result<RuleSet, ApiError> {
    let row = store::get(&st.db, owner).await?;
    let Some(json) = row.and_then(|r| r.rules) else { return Ok(RuleSet::default()) };
    let v: Value = serde_json::from_str(&json).unwrap_or(Value::Null);
    Ok(rules::parse(&v).unwrap_or_default())
}

/// Validates and stores an owner's rule set (an empty one clears it), audited.
async fn put_rules(
    st: &AppState,
    a: &Admin,
    owner: &str,
    tenant_id: Option<&str>,
    target: &str,
    body: &Value,
) -> Result<RuleSet, ApiError> {
    let set = rules::parse(body).map_err(rule_error)?;
    let now = st.clock.now();
    let json = (!set.rules.is_empty()).then(|| serde_json::to_string(&set).unwrap_or_default());
    let tx = audited::begin(&st.db).await?;
    store::put(&*tx, owner, Changes { rules: Some(json), token_hook: None }, now).await?;
    let entry = a.actor().entry(
        now,
        &format!("{target}.claim_rules.update"),
        target,
        Some(owner),
        tenant_id,
        json!({"rules": set.rules.len()}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(set)
}

/// Get a tenant's claim rules.
#[utoipa::path(get, path = "/tenants/{tenant}/claim-rules", operation_id = "getTenantClaimRules", tag = "claims",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = RuleSet), (status = 404, description = "Unknown tenant")))]
#[get("/tenants/{tenant}/claim-rules")]
pub async fn get_tenant_rules(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let t = tenant_or_404(&st, &path).await?;
    Ok(HttpResponse::Ok().json(stored_rules(&st, &t.id).await?))
}

/// Replace a tenant's claim rules (validated; `{"rules": []}` removes them). They run on every
/// token of the tenant's users, before the client's rules.
#[utoipa::path(put, path = "/tenants/{tenant}/claim-rules", operation_id = "putTenantClaimRules", tag = "claims",
    params(("tenant" = String, Path, description = "Tenant id or slug")), request_body = RuleSet,
    responses((status = 200, body = RuleSet), (status = 400, description = "invalid_claim_rules; `field` names the rule (`rules[2]`)"), (status = 404, description = "Unknown tenant")))]
#[put("/tenants/{tenant}/claim-rules")]
pub async fn put_tenant_rules(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let t = tenant_or_404(&st, &path).await?;
    let set = put_rules(&st, &a, &t.id, Some(&t.id), "tenant", &body).await?;
    Ok(HttpResponse::Ok().json(set))
}

/// Get a client's claim rules.
#[utoipa::path(get, path = "/clients/{id}/claim-rules", operation_id = "getClientClaimRules", tag = "claims",
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = RuleSet), (status = 404, description = "Unknown client")))]
#[get("/clients/{id}/claim-rules")]
pub async fn get_client_rules(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = client_or_404(&st, &path).await?;
    Ok(HttpResponse::Ok().json(stored_rules(&st, &c.id).await?))
}

/// Replace a client's claim rules (validated; `{"rules": []}` removes them). They run on every
/// token issued to this client, whatever the tenant, after the tenant's rules.
#[utoipa::path(put, path = "/clients/{id}/claim-rules", operation_id = "putClientClaimRules", tag = "claims",
    params(("id" = String, Path, description = "Client id")), request_body = RuleSet,
    responses((status = 200, body = RuleSet), (status = 400, description = "invalid_claim_rules; `field` names the rule (`rules[2]`)"), (status = 404, description = "Unknown client")))]
#[put("/clients/{id}/claim-rules")]
pub async fn put_client_rules(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let c = client_or_404(&st, &path).await?;
    let set = put_rules(&st, &a, &c.id, None, "client", &body).await?;
    Ok(HttpResponse::Ok().json(set))
}

/// A sample person for a preview.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SampleIdentity {
    pub sub: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    /// `oidc`, `saml` or `dev` (default `saml`).
    pub connection_type: Option<String>,
}

/// A preview: rules (absent: the stored ones) against a sample identity.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The rule set to try (`{"rules": [...]}`); absent: the stored one.
    #[schema(value_type = Option<RuleSet>)]
    pub rules: Option<Value>,
    #[serde(default)]
    pub identity: SampleIdentity,
    /// Tenant previews: a client whose stored rules run after these. Client previews: a
    /// tenant (id or slug) whose stored rules run before these.
    pub other: Option<String>,
}

/// The ID token claims fedgate would build for a sample identity (scopes `openid email
/// profile`), before any rule.
fn sample_claims(st: &AppState, t: Option<&tenant::Model>, client_id: &str, s: &SampleIdentity) -> Map<String, Value> {
    let now = st.clock.now();
    let mut m = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_string(), v);
        }
    };
    put(&mut m, "iss", st.config.issuer.clone().into());
    put(&mut m, "sub", s.sub.clone().unwrap_or_else(|| "usr_preview".into()).into());
    put(&mut m, "aud", client_id.into());
    put(&mut m, "exp", (now + st.config.tokens.id_token_ttl).into());
    put(&mut m, "iat", now.into());
    put(&mut m, "auth_time", now.into());
    put(&mut m, "sid", "ses_preview".into());
    put(&mut m, "azp", client_id.into());
    put(&mut m, "org_id", t.map(|t| t.id.clone()).unwrap_or_else(|| "org_preview".into()).into());
    put(&mut m, "org_slug", t.map(|t| t.slug.clone()).unwrap_or_else(|| "preview".into()).into());
    put(&mut m, "connection_id", "conn_preview".into());
    put(&mut m, "connection_type", s.connection_type.clone().unwrap_or_else(|| "saml".into()).into());
    let email = s.email.as_deref().and_then(crate::claims::normalize_email);
    put(&mut m, "email_verified", email.as_ref().map(|_| s.email_verified).into());
    put(&mut m, "email", email.into());
    put(&mut m, "name", s.name.clone().into());
    put(&mut m, "given_name", s.given_name.clone().into());
    put(&mut m, "family_name", s.family_name.clone().into());
    if s.groups.len() <= crate::issuer::tokens::MAX_GROUPS_IN_TOKEN {
        put(&mut m, "groups", s.groups.clone().into());
    } else {
        put(&mut m, "_claim_names", json!({"groups": "src1"}));
    }
    if let Some(t) = t {
        let mapping = crate::tenant::settings_of(t).role_mapping;
        if !mapping.is_empty() {
            put(&mut m, "roles", crate::claims::roles_for(&s.groups, &mapping).into());
        }
    }
    put(&mut m, "amr", s.amr.clone().into());
    m
}

fn preview_answer(
    st: &AppState,
    t: Option<&tenant::Model>,
    client_id: &str,
    sets: &[&RuleSet],
    s: &SampleIdentity,
) -> Value {
    let mut claims = sample_claims(st, t, client_id, s);
    let applied = rules::apply(sets, &mut claims, &s.groups);
    let size = serde_json::to_string(&claims).map(|x| x.len()).unwrap_or(0);
    json!({
        "id_token": claims,
        "access_token_claims": applied.written,
        "rules_applied": applied.rules,
        "claims_removed": applied.removed,
        "id_token_payload_bytes": size,
        "budget_bytes": hook::TOKEN_BUDGET_BYTES,
    })
}

fn requested_rules(body: &PreviewRequest) -> Result<Option<RuleSet>, ApiError> {
    body.rules.as_ref().map(|v| rules::parse(v).map_err(rule_error)).transpose()
}

/// Preview a tenant's claim rules against a sample identity: the ID token claims they produce,
/// or the validation error naming the rule. Nothing is stored.
#[utoipa::path(post, path = "/tenants/{tenant}/claim-rules/preview", operation_id = "previewTenantClaimRules", tag = "claims",
    params(("tenant" = String, Path, description = "Tenant id or slug")), request_body = PreviewRequest,
    responses((status = 200, description = "`id_token` (the claims), `access_token_claims` (the names also in the access token), `rules_applied`", body = Object),
        (status = 400, description = "invalid_claim_rules; `field` names the rule (`rules[2]`)"), (status = 404, description = "Unknown tenant or client")))]
#[post("/tenants/{tenant}/claim-rules/preview")]
pub async fn preview_tenant(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let t = tenant_or_404(&st, &path).await?;
    let mine = match requested_rules(&body)? {
        Some(r) => r,
        None => stored_rules(&st, &t.id).await?,
    };
    let (client_id, theirs) = match &body.other {
        Some(c) => {
            let c = client_or_404(&st, c).await?;
            let r = stored_rules(&st, &c.id).await?;
            (c.id, r)
        }
        None => ("cli_preview".to_string(), RuleSet::default()),
    };
    Ok(HttpResponse::Ok().json(preview_answer(&st, Some(&t), &client_id, &[&mine, &theirs], &body.identity)))
}

/// Preview a client's claim rules against a sample identity (after the stored rules of the
/// tenant named by `other`, if any). Nothing is stored.
#[utoipa::path(post, path = "/clients/{id}/claim-rules/preview", operation_id = "previewClientClaimRules", tag = "claims",
    params(("id" = String, Path, description = "Client id")), request_body = PreviewRequest,
    responses((status = 200, description = "`id_token` (the claims), `access_token_claims` (the names also in the access token), `rules_applied`", body = Object),
        (status = 400, description = "invalid_claim_rules; `field` names the rule (`rules[2]`)"), (status = 404, description = "Unknown client or tenant")))]
#[post("/clients/{id}/claim-rules/preview")]
pub async fn preview_client(
    _a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let c = client_or_404(&st, &path).await?;
    let mine = match requested_rules(&body)? {
        Some(r) => r,
        None => stored_rules(&st, &c.id).await?,
    };
    let (t, theirs) = match &body.other {
        Some(k) => {
            let t = tenant_or_404(&st, k).await?;
            let r = stored_rules(&st, &t.id).await?;
            (Some(t), r)
        }
        None => (None, RuleSet::default()),
    };
    Ok(HttpResponse::Ok().json(preview_answer(&st, t.as_ref(), &c.id, &[&theirs, &mine], &body.identity)))
}

/// A tenant's token hook.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTokenHook {
    /// The app's endpoint: https (http only in dev mode or with `allow_private_network`).
    pub url: String,
    /// Time budget, 100 to 5000 ms (default 1500).
    pub timeout_ms: Option<u64>,
    /// `deny` (default): the token request fails with `access_denied`; `continue`: tokens are
    /// issued without the hook's claims.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// The claim names the hook may add start with this: an https URL ending in `/`
    /// (`https://app.example.com/`) or a prefix such as `acme_`.
    pub namespace: String,
    /// Generate a new signing secret (returned once).
    #[serde(default)]
    pub rotate_secret: bool,
}

fn hook_view(h: &StoredHook, secret: Option<String>) -> Value {
    let mut v = json!({"url": h.url, "timeout_ms": h.timeout_ms, "on_failure": h.on_failure, "namespace": h.namespace});
    if let Some(s) = secret {
        v["secret"] = s.into();
    }
    v
}

async fn stored_hook(st: &AppState, tenant_id: &str) -> Result<Option<StoredHook>, ApiError> {
    let row = store::get(&st.db, tenant_id).await?;
    Ok(row.and_then(|r| r.token_hook).and_then(|h| serde_json::from_str(&h).ok()))
}

/// Get a tenant's token hook (never its secret).
#[utoipa::path(get, path = "/tenants/{tenant}/token-hook", operation_id = "getTokenHook", tag = "claims",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, description = "url, timeout_ms, on_failure, namespace", body = Object), (status = 404, description = "Unknown tenant or no hook")))]
#[get("/tenants/{tenant}/token-hook")]
pub async fn get_hook(_a: Admin, st: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let t = tenant_or_404(&st, &path).await?;
    let h = stored_hook(&st, &t.id).await?.ok_or_else(|| ApiError::not_found("token hook"))?;
    Ok(HttpResponse::Ok().json(hook_view(&h, None)))
}

/// Set a tenant's token hook. Its signing secret (`whsec_…`, Standard Webhooks) is generated
/// when the hook is created or with `rotate_secret`, and returned only in that response.
#[utoipa::path(put, path = "/tenants/{tenant}/token-hook", operation_id = "putTokenHook", tag = "claims",
    params(("tenant" = String, Path, description = "Tenant id or slug")), request_body = PutTokenHook,
    responses((status = 200, description = "The hook; `secret` when created or rotated", body = Object), (status = 400, description = "invalid_url, invalid_token_hook"), (status = 404, description = "Unknown tenant")))]
#[put("/tenants/{tenant}/token-hook")]
pub async fn put_hook(
    a: Admin,
    st: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<PutTokenHook>,
) -> Result<HttpResponse, ApiError> {
    let t = tenant_or_404(&st, &path).await?;
    let b = body.into_inner();
    let u =
        st.outbound.check_url(&b.url).map_err(|e| ApiError::invalid("url", ErrorCode::InvalidUrl, e.to_string()))?;
    if u.scheme() != "https" && !(st.config.dev_mode || st.config.allow_private_network) {
        return Err(ApiError::invalid("url", ErrorCode::InvalidUrl, "token hook URLs must use https"));
    }
    let timeout_ms = hook::check_timeout(b.timeout_ms)
        .map_err(|m| ApiError::invalid("timeout_ms", ErrorCode::InvalidTokenHook, m))?;
    hook::check_namespace(&b.namespace).map_err(|m| ApiError::invalid("namespace", ErrorCode::InvalidTokenHook, m))?;
    let existing = stored_hook(&st, &t.id).await?;
    let (secret_enc, secret) = match existing {
        Some(h) if !b.rotate_secret => (h.secret_enc, None),
        _ => {
            let s = crate::events::webhooks::new_secret(&*st.rng);
            let aad = crate::issuer::hook::secret_aad(&t.id);
            (st.master.seal(s.as_bytes(), &aad, &*st.rng), Some(s))
        }
    };
    let h = StoredHook { url: b.url, secret_enc, timeout_ms, on_failure: b.on_failure, namespace: b.namespace };
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    let json = serde_json::to_string(&h).unwrap_or_default();
    store::put(&*tx, &t.id, Changes { rules: None, token_hook: Some(Some(json)) }, now).await?;
    let entry = a.actor().entry(
        now,
        "tenant.token_hook.update",
        "tenant",
        Some(&t.id),
        Some(&t.id),
        json!({"url": h.url, "timeout_ms": h.timeout_ms, "on_failure": h.on_failure, "namespace": h.namespace,
               "secret_rotated": secret.is_some()}),
    );
    tx.commit(&*st.rng, entry, None).await?;
    Ok(HttpResponse::Ok().json(hook_view(&h, secret)))
}

/// Remove a tenant's token hook.
#[utoipa::path(delete, path = "/tenants/{tenant}/token-hook", operation_id = "deleteTokenHook", tag = "claims",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 204, description = "Removed"), (status = 404, description = "Unknown tenant or no hook")))]
#[delete("/tenants/{tenant}/token-hook")]
pub async fn delete_hook(a: Admin, st: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let t = tenant_or_404(&st, &path).await?;
    stored_hook(&st, &t.id).await?.ok_or_else(|| ApiError::not_found("token hook"))?;
    let now = st.clock.now();
    let tx = audited::begin(&st.db).await?;
    store::put(&*tx, &t.id, Changes { rules: None, token_hook: Some(None) }, now).await?;
    let entry = a.actor().entry(now, "tenant.token_hook.delete", "tenant", Some(&t.id), Some(&t.id), json!({}));
    tx.commit(&*st.rng, entry, None).await?;
    Ok(HttpResponse::NoContent().finish())
}
