//! `/admin/v1/tenants/{tenant}/connections`: how a tenant's people sign in.
use super::{page_of, Admin, PageQuery};
use crate::error_code::ErrorCode;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::ids::ConnectionId;
use crate::store::audited;
use crate::store::connections::{self as store, ConnectionChanges, NewConnection};
use crate::store::entities::{connection, tenant};
use crate::store::events::NewEvent;
use crate::tenant::validate_name;
use crate::upstream::connections::{open_secrets, seal_secrets, take_secrets, view, ConnectionConfig, ConnectionType};
use actix_web::{delete, get, patch, post, web, HttpResponse};
use serde_json::{Map, Value};

/// A connection. `type` selects the remaining fields: for `dev`, `default_email`,
/// `default_name` and `groups`; for `oidc`, `issuer`, `client_id`, `client_secret` (write-only;
/// reads show `has_client_secret`), `scopes`, `preset`, `claim_mapping` and the rest documented
/// in docs/connections/oidc.md. (`saml` arrives in a later version.)
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ConnectionBody {
    #[schema(value_type = String, example = "dev")]
    r#type: ConnectionType,
    name: String,
    enabled: Option<bool>,
    default_email: Option<String>,
    default_name: Option<String>,
    groups: Option<Vec<String>>,
    /// oidc: the IdP's issuer (discovery).
    issuer: Option<String>,
    /// github: the authorization endpoint (default https://github.com/login/oauth/authorize).
    authorization_endpoint: Option<String>,
    /// github: the token endpoint (default https://github.com/login/oauth/access_token).
    token_endpoint: Option<String>,
    /// github: the REST API base (default https://api.github.com).
    api_base: Option<String>,
    /// oidc, github: fedgate's client id at the IdP.
    client_id: Option<String>,
    /// oidc: write-only; encrypted at rest.
    client_secret: Option<String>,
    /// oidc: scopes requested upstream (default openid email profile).
    scopes: Option<Vec<String>>,
    /// oidc: vendor preset: generic, okta, entra, google, keycloak, auth0, and for social sign-in
    /// microsoft (any Microsoft account) and google_any (any Google account), whose issuer is
    /// filled in when omitted; saml: generic, okta, entra, google,
    /// adfs, onelogin, ping, jumpcloud, keycloak.
    #[schema(value_type = Option<String>)]
    preset: Option<crate::claims::oidc::Preset>,
    /// oidc: our field -> upstream claim (dotted path).
    claim_mapping: Option<std::collections::BTreeMap<String, String>>,
    /// saml: IdP metadata XML (read once; exactly one of metadata_xml, metadata_url or the
    /// manual fields idp_entity_id + sso_url_redirect/sso_url_post + idp_certificates).
    metadata_xml: Option<String>,
    /// saml: IdP metadata URL, fetched now and refreshed every 6 hours.
    metadata_url: Option<String>,
    idp_entity_id: Option<String>,
    sso_url_redirect: Option<String>,
    sso_url_post: Option<String>,
    /// saml: IdP signing certificates (PEM).
    idp_certificates: Option<Vec<String>>,
    /// saml: attribute names overriding the preset (subject, email, name, given_name, family_name, groups).
    attribute_mapping: Option<crate::claims::saml::AttributeMapping>,
    /// saml: `redirect` or `post`.
    request_binding: Option<String>,
    sign_requests: Option<bool>,
    allow_sha1: Option<bool>,
    clock_skew_secs: Option<i64>,
    require_encrypted_assertions: Option<bool>,
    /// saml: accept AES-GCM encrypted assertions only (refuse AES-CBC).
    require_aes_gcm: Option<bool>,
    trusted_email_domains: Option<Vec<String>>,
    allowed_tenant_ids: Option<Vec<String>>,
    /// saml: `{enabled, client_id, initiate_login_uri}`; off by default.
    idp_initiated: Option<crate::upstream::saml::IdpInitiated>,
    /// saml: `hyphen` (new connections: `/sso/saml/conn-…/acs`) or `underscore` (connections set
    /// up before: `/sso/saml/conn_…/acs`). Changing it changes the ACS URL and SP entity ID the
    /// IdP must have.
    #[schema(value_type = Option<String>)]
    sp_url_form: Option<crate::upstream::saml::SpUrlForm>,
    /// every type: MFA for this connection: `inherit` (the tenant's `settings.mfa`), `off`,
    /// `required` (docs/tokens.md#mfa).
    mfa: Option<crate::claims::mfa::MfaOverride>,
    /// oidc, saml: the operator vouches that the IdP enforces MFA for this app although its answer
    /// does not show it (Google); such logins get acr `urn:fedgate:acr:mfa-idp-enforced`.
    mfa_enforced_by_idp: Option<bool>,
    /// oidc: `acr_values` asked for when MFA is required, replacing the preset's (and read as MFA).
    mfa_acr_values: Option<Vec<String>>,
    /// saml: `AuthnContextClassRef`s requested when MFA is required, replacing the preset's (and
    /// read as MFA).
    mfa_authn_contexts: Option<Vec<String>>,
    /// dev: the `amr` values the confirmation page asserts (default `["user"]`).
    amr: Option<Vec<String>>,
}

/// A connection as shown: with the values to paste into the IdP's console (SAML: `acs_url`,
/// `sp_entity_id`, `sp_metadata_url`; OIDC: `redirect_uri`), and a warning for each console rule
/// one of them breaks ([`crate::upstream::console_rules`]; only with an https issuer: an http
/// issuer is a local setup whose URLs no production IdP console takes anyway).
fn show(state: &AppState, row: &connection::Model) -> Value {
    use crate::upstream::console_rules::{describe, Value as Kind};
    let mut v = view(row, &state.config.issuer, state.clock.now());
    v["state"] = row.state.as_str().into();
    v["tested_version"] = row.tested_version.into();
    if row.conn_type == "oidc" {
        v["redirect_uri"] = crate::upstream::oidc::connector::callback_url(&state.config.issuer).into();
    }
    if row.conn_type == "github" {
        v["redirect_uri"] = crate::upstream::github::callback_url(&state.config.issuer).into();
    }
    let handed_out: Vec<(Kind, String)> = [
        (Kind::AcsUrl, "acs_url"),
        (Kind::SpEntityId, "sp_entity_id"),
        (Kind::SpMetadataUrl, "sp_metadata_url"),
        (Kind::OidcRedirectUri, "redirect_uri"),
    ]
    .into_iter()
    .filter_map(|(k, f)| v.get(f).and_then(Value::as_str).map(|s| (k, s.to_string())))
    .collect();
    let pairs: Vec<(Kind, &str)> = handed_out.iter().map(|(k, s)| (*k, s.as_str())).collect();
    let extra = if state.config.secure_cookies() { describe(&pairs) } else { Vec::new() };
    if !extra.is_empty() {
        let mut warnings = v.get("warnings").and_then(Value::as_array).cloned().unwrap_or_default();
        warnings.extend(extra.into_iter().map(Value::String));
        v["warnings"] = Value::Array(warnings);
    }
    v
}

/// A SAML connection's configuration from admin input (metadata parsed or fetched) and, for a new
/// connection, its SP key pair (the key sealed with the connection's secrets).
async fn saml_config(
    state: &AppState,
    id: &str,
    fields: Map<String, Value>,
    previous: Option<&crate::upstream::saml::SamlConfig>,
) -> Result<(ConnectionConfig, Option<Map<String, Value>>), ApiError> {
    use crate::upstream::saml;
    let now = state.clock.now();
    let (cert, secrets) = match previous {
        Some(p) => (p.sp_certificate.clone(), None),
        None => {
            let (key, cert) = saml::metadata::generate_sp_key(&format!("fedgate SAML SP {id}"), now).map_err(|e| {
                tracing::error!(error = %e, "SP key generation failed");
                ApiError::internal()
            })?;
            let mut m = Map::new();
            m.insert(saml::SP_KEY_FIELD.into(), Value::String(key));
            (cert, Some(m))
        }
    };
    let cfg = saml::prepare(fields, previous, cert, &state.upstream, state.config.dev_mode, now).await?;
    Ok((ConnectionConfig::Saml(Box::new(cfg)), secrets))
}

fn event(tenant: &tenant::Model, kind: &str, data: Value) -> NewEvent {
    NewEvent { tenant_id: Some(tenant.id.clone()), event_type: kind.into(), data }
}

async fn load(state: &AppState, tenant: &tenant::Model, id: &str) -> Result<connection::Model, ApiError> {
    // Another tenant's connection is simply not found here.
    store::get_of_tenant(&state.db, &tenant.id, id).await?.ok_or_else(|| ApiError::not_found("connection"))
}

/// The common fields of a connection body, and the rest (the type's own fields).
struct Common {
    fields: Map<String, Value>,
    kind: Option<String>,
    name: Option<String>,
    enabled: Option<bool>,
}

fn take_common(body: Value) -> Result<Common, ApiError> {
    let Value::Object(mut m) = body else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            ErrorCode::InvalidJson,
            "expected a JSON object",
        ));
    };
    let str_field = |m: &mut Map<String, Value>, k: &str| -> Result<Option<String>, ApiError> {
        match m.remove(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(k, ErrorCode::InvalidType, format!("{k} must be a string"))),
        }
    };
    let kind = str_field(&mut m, "type")?;
    let name = str_field(&mut m, "name")?;
    let enabled = match m.remove("enabled") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(ApiError::invalid("enabled", ErrorCode::InvalidType, "enabled must be a boolean")),
    };
    for k in ["id", "tenant_id", "version", "created_at", "updated_at"] {
        if m.contains_key(k) {
            return Err(ApiError::invalid(k, ErrorCode::ReadOnly, format!("{k} is read-only")));
        }
    }
    Ok(Common { fields: m, kind, name, enabled })
}

/// Create a connection.
#[utoipa::path(post, path = "/tenants/{tenant}/connections", operation_id = "createConnection", tag = "connections", request_body = ConnectionBody,
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 201, description = "The connection", body = Object), (status = 400, description = "Invalid input"), (status = 404, description = "Unknown tenant")))]
#[post("/tenants/{tenant}/connections")]
pub async fn create(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let tenant = super::tenant_or_404(&state, &path).await?;
    let Common { mut fields, kind, name, enabled } = take_common(body.into_inner())?;
    let kind = kind.ok_or_else(|| {
        ApiError::invalid("type", ErrorCode::MissingField, "type is required (dev, oidc, saml or github)")
    })?;
    let kind = ConnectionType::parse(&kind)
        .ok_or_else(|| ApiError::invalid("type", ErrorCode::InvalidType, "type must be dev, oidc, saml or github"))?;
    let name = validate_name("name", name.as_deref().unwrap_or(""))?;
    let now_ms = state.clock.now_ms();
    let id = ConnectionId::new(now_ms, &*state.rng).to_string();
    let (config, secrets) = if kind == ConnectionType::Saml {
        saml_config(&state, &id, fields, None).await?
    } else {
        let secrets = take_secrets(kind, &mut fields)?;
        (ConnectionConfig::from_fields(kind, fields, state.config.dev_mode)?, secrets)
    };
    let secrets_enc = secrets.as_ref().and_then(|s| seal_secrets(&state.upstream, &id, s));
    let new = NewConnection {
        id,
        tenant_id: tenant.id.clone(),
        conn_type: kind.as_str().into(),
        name,
        enabled: enabled.unwrap_or(true),
        config: Value::Object(config.to_fields()).to_string(),
        secrets_enc,
        now: now_ms / 1000,
    };
    let tx = audited::begin(&state.db).await?;
    let row = store::insert(&*tx, new).await?;
    let now = state.clock.now();
    let entry = a.actor().entry(
        now,
        "connection.create",
        "connection",
        Some(&row.id),
        Some(&tenant.id),
        serde_json::json!({"type": row.conn_type, "name": row.name}),
    );
    let event = row.enabled.then(|| event(&tenant, "connection.activated", show(&state, &row)));
    tx.commit(&*state.rng, entry, event).await?;
    tracing::info!(tenant = %tenant.id, connection = %row.id, "connection created");
    Ok(HttpResponse::Created().json(show(&state, &row)))
}

/// List a tenant's connections.
#[utoipa::path(get, path = "/tenants/{tenant}/connections", operation_id = "listConnections", tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageQuery),
    responses((status = 200, description = "A page of connections", body = Object)))]
#[get("/tenants/{tenant}/connections")]
pub async fn list(
    _a: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let tenant = super::tenant_or_404(&state, &path).await?;
    let rows = store::page_of_tenant(&state.db, &tenant.id, q.request()?).await?;
    Ok(HttpResponse::Ok().json(page_of(rows, |r| show(&state, &r))))
}

/// Get a connection.
#[utoipa::path(get, path = "/tenants/{tenant}/connections/{id}", operation_id = "getConnection", tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Connection id")),
    responses((status = 200, description = "The connection", body = Object), (status = 404, description = "Not found")))]
#[get("/tenants/{tenant}/connections/{id}")]
pub async fn get(
    _a: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let tenant = super::tenant_or_404(&state, &t).await?;
    Ok(HttpResponse::Ok().json(show(&state, &load(&state, &tenant, &id).await?)))
}

/// Update a connection: `name`, `enabled`, and the type's own fields (merged).
#[utoipa::path(patch, path = "/tenants/{tenant}/connections/{id}", operation_id = "updateConnection", tag = "connections", request_body = ConnectionBody,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Connection id")),
    responses((status = 200, description = "The connection", body = Object), (status = 404, description = "Not found")))]
#[patch("/tenants/{tenant}/connections/{id}")]
pub async fn update(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let tenant = super::tenant_or_404(&state, &t).await?;
    let row = load(&state, &tenant, &id).await?;
    let Common { mut fields, kind, name, enabled } = take_common(body.into_inner())?;
    if kind.is_some_and(|k| k != row.conn_type) {
        return Err(ApiError::invalid(
            "type",
            ErrorCode::Immutable,
            "a connection's type cannot change; create a new connection",
        ));
    }
    let current = ConnectionConfig::from_row(&row).map_err(|e| {
        tracing::error!(connection = %row.id, error = %e, "stored connection config is corrupt");
        ApiError::internal()
    })?;
    let new_secrets = take_secrets(current.kind(), &mut fields)?;
    let mut merged = match &current {
        ConnectionConfig::Saml(c) => {
            // A new IdP source replaces the old one.
            let mut m = c.input_fields();
            if ["metadata_xml", "metadata_url", "idp_certificates", "sso_url_redirect", "sso_url_post"]
                .iter()
                .any(|k| fields.contains_key(*k))
            {
                for k in ["metadata_url", "idp_entity_id", "sso_url_redirect", "sso_url_post", "idp_certificates"] {
                    m.remove(k);
                }
            }
            m
        }
        other => other.to_fields(),
    };
    for (k, v) in fields {
        if v.is_null() {
            merged.remove(&k);
        } else {
            merged.insert(k, v);
        }
    }
    let kind = current.kind();
    let config = match &current {
        ConnectionConfig::Saml(c) => saml_config(&state, &row.id, merged, Some(c)).await?.0,
        _ => ConnectionConfig::from_fields(kind, merged, state.config.dev_mode)?,
    };
    let mut ch = ConnectionChanges { bump_version: true, ..Default::default() };
    if let Some(n) = name {
        ch.name = Some(validate_name("name", &n)?);
    }
    if enabled == Some(true) && row.state == connection::ConnectionState::Draft {
        return Err(ApiError::invalid(
            "enabled",
            ErrorCode::ConnectionNotTested,
            "this connection is a draft of the setup portal: it goes live after a passing test sign-in, or with POST .../activate and force",
        ));
    }
    ch.enabled = enabled;
    ch.config = Some(Value::Object(config.to_fields()).to_string());
    if let Some(new) = new_secrets {
        let mut all = open_secrets(&state.upstream, &row).map_err(|_| ApiError::internal())?;
        for (k, v) in new {
            all.insert(k, v);
        }
        ch.secrets_enc = Some(seal_secrets(&state.upstream, &row.id, &all));
    }
    let was_enabled = row.enabled;
    let now = state.clock.now();
    let tx = audited::begin(&state.db).await?;
    let row = store::update(&*tx, row, ch, now).await?;
    let entry = a.actor().entry(
        now,
        "connection.update",
        "connection",
        Some(&row.id),
        Some(&tenant.id),
        serde_json::json!({"enabled": row.enabled, "version": row.version}),
    );
    let event = (was_enabled != row.enabled).then(|| {
        let kind = if row.enabled { "connection.activated" } else { "connection.deactivated" };
        event(&tenant, kind, show(&state, &row))
    });
    tx.commit(&*state.rng, entry, event).await?;
    Ok(HttpResponse::Ok().json(show(&state, &row)))
}

/// Delete a connection. People who signed in through it keep their user record.
#[utoipa::path(delete, path = "/tenants/{tenant}/connections/{id}", operation_id = "deleteConnection", tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Connection id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found")))]
#[delete("/tenants/{tenant}/connections/{id}")]
pub async fn remove(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let tenant = super::tenant_or_404(&state, &t).await?;
    let row = load(&state, &tenant, &id).await?;
    let now = state.clock.now();
    let tx = audited::begin(&state.db).await?;
    store::delete(&*tx, &row.id).await?;
    let entry =
        a.actor().entry(now, "connection.delete", "connection", Some(&row.id), Some(&tenant.id), serde_json::json!({}));
    let event = row.enabled.then(|| event(&tenant, "connection.deactivated", show(&state, &row)));
    tx.commit(&*state.rng, entry, event).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Fetch a SAML connection's metadata URL now (as the 6-hourly refresh does): new signing
/// certificates are added beside the old ones, and failures are recorded as a warning.
#[utoipa::path(post, path = "/tenants/{tenant}/connections/{id}/refresh-metadata", operation_id = "refreshConnectionMetadata", tag = "connections",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Connection id")),
    responses((status = 200, description = "The connection after the refresh", body = Object),
              (status = 400, description = "Not a SAML connection with a metadata URL"),
              (status = 502, description = "The metadata could not be fetched or parsed (the connection keeps its settings)"),
              (status = 404, description = "Not found")))]
#[post("/tenants/{tenant}/connections/{id}/refresh-metadata")]
pub async fn refresh_metadata(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    use crate::upstream::saml::refresh::{refresh_one, Refreshed};
    let (t, id) = path.into_inner();
    let tenant = super::tenant_or_404(&state, &t).await?;
    let row = load(&state, &tenant, &id).await?;
    let has_url = matches!(ConnectionConfig::from_row(&row), Ok(ConnectionConfig::Saml(c)) if c.metadata_url.is_some());
    if !has_url {
        return Err(ApiError::invalid(
            "id",
            ErrorCode::NotRefreshable,
            "only SAML connections created from a metadata URL can be refreshed",
        ));
    }
    let (row, outcome) = refresh_one(&state.db, &state.upstream, &row).await?;
    state.metrics.inc(
        "fedgate_saml_metadata_refreshes_total",
        &[("tenant", &row.tenant_id), ("connection", &row.id), ("result", outcome.label())],
    );
    crate::events::audit::record(
        &state.db,
        state.clock.now(),
        &a.actor(),
        "connection.refresh_metadata",
        "connection",
        Some(&row.id),
        Some(&tenant.id),
        serde_json::json!({"outcome": format!("{outcome:?}").chars().take(200).collect::<String>()}),
    )
    .await?;
    match outcome {
        Refreshed::Failed(e) => Err(ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            ErrorCode::MetadataRefreshFailed,
            format!("the metadata could not be refreshed: {e}"),
        )),
        Refreshed::Superseded => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            ErrorCode::EditConflict,
            "the connection changed while its metadata was fetched; nothing was written, try again",
        )),
        _ => Ok(HttpResponse::Ok().json(show(&state, &row))),
    }
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    /// Activate even though no test sign-in passed with the current configuration.
    #[serde(default)]
    pub force: bool,
}

/// Make a draft connection (setup portal) live: allowed when a test sign-in passed with its
/// current configuration, or with `force`. Enables it; an active connection is answered as is.
#[utoipa::path(post, path = "/tenants/{tenant}/connections/{id}/activate", operation_id = "activateConnection", tag = "connections", request_body = ActivateBody,
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("id" = String, Path, description = "Connection id")),
    responses((status = 200, description = "The connection, active", body = Object),
              (status = 409, description = "No passing test sign-in of the current configuration (use force)"),
              (status = 404, description = "Not found")))]
#[post("/tenants/{tenant}/connections/{id}/activate")]
pub async fn activate(
    a: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Option<web::Json<ActivateBody>>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let force = body.map(|b| b.force).unwrap_or(false);
    let tenant = super::tenant_or_404(&state, &t).await?;
    let row = load(&state, &tenant, &id).await?;
    if row.state == connection::ConnectionState::Active {
        return Ok(HttpResponse::Ok().json(show(&state, &row)));
    }
    let tested = row.tested_version == Some(row.version);
    if !tested && !force {
        return Err(ApiError::conflict(
            ErrorCode::ConnectionNotTested,
            "force",
            "no test sign-in passed with this connection's current configuration; run one in the setup portal, or send {\"force\": true}",
        ));
    }
    let now = state.clock.now();
    let tx = audited::begin(&state.db).await?;
    let row = store::set_state(&*tx, row, connection::ConnectionState::Active, true, now).await?;
    let entry = a.actor().entry(
        now,
        "connection.activate",
        "connection",
        Some(&row.id),
        Some(&tenant.id),
        serde_json::json!({"forced": !tested, "version": row.version}),
    );
    let ev = event(&tenant, "connection.activated", show(&state, &row));
    tx.commit(&*state.rng, entry, Some(ev)).await?;
    Ok(HttpResponse::Ok().json(show(&state, &row)))
}
