//! `fedgate serve --demo`: a demo tenant with a dev connection and a tiny built-in app at
//! `/demo` that signs in through fedgate like any real app would (authorization code + PKCE,
//! back-channel token exchange) and shows the token it received.
//! The demo app keeps its own state in a cookie, as an external app would; fedgate's state is
//! all in the database.
//!
//! The demo tenant also has a `saml` connection to a demo SAML IdP that fedgate serves itself
//! ([`saml_idp`], at `/demo/saml-idp/`), so a real SAML login works on one machine. That IdP
//! signs with a key pair generated at the first demo start and kept in the data directory
//! (`demo-saml-idp.json`, the private key sealed with the master key), never with a key that
//! is published anywhere.
//!
//! The demo keeps its data apart: `serve --demo` uses `./fedgate-demo-data` unless a data
//! directory is configured, and `serve` without dev mode refuses to start on a database that
//! holds the demo ([`refuse_without_dev_mode`]).
pub use fedgate_fixtures::saml_idp as saml_fixture_idp;
pub mod saml_idp;

use crate::config::SecretString;
use crate::http::AppState;
use crate::keys::{new_token, sha256_b64url, sha256_hex};
use crate::store::connections::{self as connections, ConnectionChanges, NewConnection};
use crate::store::entities::client;
use crate::store::{clients, tenants};
use crate::upstream::connections::{seal_secrets, ConnectionConfig};
use crate::util::to_json_list;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

pub const DEMO_CLIENT_ID: &str = "demo-app";
const DEMO_COOKIE: &str = "fedgate_demo_app";
/// The name of the demo tenant's SAML connection (also shown in the connection chooser).
pub const DEMO_SAML_NAME: &str = "Demo SAML IdP";
/// The demo's data directory when none is configured: never the default `./fedgate-data`.
pub const DEMO_DATA_DIR: &str = "fedgate-demo-data";
/// The demo SAML IdP's key pair, in the data directory.
pub const DEMO_IDP_KEY_FILE: &str = "demo-saml-idp.json";
const DEMO_IDP_KEY_AAD: &str = "demo-saml-idp-key";

#[derive(Debug, Clone)]
pub struct DemoApp {
    pub client_secret: String,
    /// The demo SAML IdP's signing key (PKCS#8 PEM) and self-signed certificate.
    pub idp_key_pem: SecretString,
    pub idp_cert_pem: String,
}

/// Why the demo cannot start (or why `serve` refuses to).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("database: {0}")]
    Db(#[from] crate::store::conn::DbErr),
    #[error("demo SAML IdP key ({path}): {message}")]
    IdpKey { path: String, message: String },
    #[error(
        "this database holds the demo created by `fedgate serve --demo` (tenant acme, client demo-app, \
         connection \"Demo SAML IdP\"), whose sign-ins are for demos only, and dev mode is off. Use a separate \
         data directory for the demo (`make demo` and `serve --demo` use ./fedgate-demo-data), or delete the demo \
         (admin API: DELETE /admin/v1/tenants/acme and DELETE /admin/v1/clients/demo-app), or turn dev mode on \
         (FEDGATE_DEV_MODE=1) if this server is a demo"
    )]
    DemoInProduction,
}

/// Whether the database holds the demo (its client, or its SAML connection: older versions
/// trusted a published test key there).
pub async fn present(db: &crate::store::Db) -> Result<bool, crate::store::conn::DbErr> {
    if clients::get(db, DEMO_CLIENT_ID).await?.is_some() {
        return Ok(true);
    }
    Ok(connections::find_by_type(db, None, "saml", Some(DEMO_SAML_NAME)).await?.is_some())
}

/// `serve` without dev mode refuses to start when the database holds the demo.
pub async fn refuse_without_dev_mode(st: &AppState) -> Result<(), DemoError> {
    if !st.config.dev_mode && present(&st.db).await? {
        return Err(DemoError::DemoInProduction);
    }
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredIdpKey {
    /// The PKCS#8 PEM private key, sealed with the master key.
    key_sealed: String,
    cert_pem: String,
}

/// The demo SAML IdP's key pair: read from the data directory, or generated (first start, or
/// an unreadable file) and written there with the private key sealed by the master key.
pub fn idp_key_pair(st: &AppState) -> Result<(SecretString, String), DemoError> {
    let path = st.config.data_dir.join(DEMO_IDP_KEY_FILE);
    let err = |message: String| DemoError::IdpKey { path: path.display().to_string(), message };
    let stored = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<StoredIdpKey>(&text).ok())
        .and_then(|s| {
            let key = st.master.open(&s.key_sealed, DEMO_IDP_KEY_AAD).ok()?;
            let key = String::from_utf8(key).ok()?;
            saml_fixture_idp::FixtureIdp::from_pem("check", &key, &s.cert_pem).ok()?;
            Some((SecretString(key), s.cert_pem))
        });
    if let Some(pair) = stored {
        return Ok(pair);
    }
    let (key, cert) = crate::upstream::saml::metadata::generate_sp_key("fedgate demo SAML IdP", st.clock.now())
        .map_err(|e| err(format!("cannot generate: {e}")))?;
    let record =
        StoredIdpKey { key_sealed: st.master.seal(key.as_bytes(), DEMO_IDP_KEY_AAD, &*st.rng), cert_pem: cert };
    let text = serde_json::to_string_pretty(&record).map_err(|e| err(e.to_string()))?;
    std::fs::create_dir_all(&st.config.data_dir).map_err(|e| err(e.to_string()))?;
    write_private(&path, text.as_bytes()).map_err(|e| err(e.to_string()))?;
    tracing::info!(path = %path.display(), "generated the demo SAML IdP's key pair");
    Ok((SecretString(key), record.cert_pem))
}

fn write_private(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)?.write_all(data)
}

/// Creates (or refreshes) the demo tenant, connection and client. Returns a message for stderr.
pub async fn setup(st: &AppState) -> Result<String, DemoError> {
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    let t = match crate::tenant::find(&st.db, "acme").await? {
        Some(t) => t,
        None => {
            let new = tenants::NewTenant {
                id: crate::ids::TenantId::new(now_ms, &*st.rng).to_string(),
                slug: "acme".into(),
                name: "Acme Corporation (demo)".into(),
                settings: "{}".into(),
                now,
            };
            let t = tenants::insert(&st.db, new).await?;
            tenants::insert_domain(&st.db, &t.id, "acme.test", now).await?;
            t
        }
    };
    let has_dev = connections::find_by_type(&st.db, Some(&t.id), "dev", None).await?.is_some();
    if !has_dev {
        let new = NewConnection {
            id: crate::ids::ConnectionId::new(now_ms, &*st.rng).to_string(),
            tenant_id: t.id.clone(),
            conn_type: "dev".into(),
            name: "Demo sign-in".into(),
            enabled: true,
            config: serde_json::json!({"default_email": "alice@acme.test", "default_name": "Alice Anderson", "groups": ["engineering", "admins"]}).to_string(),
            secrets_enc: None,
            now,
        };
        connections::insert(&st.db, new).await?;
    }
    let (idp_key_pem, idp_cert_pem) = idp_key_pair(st)?;
    setup_saml(st, &t.id, &idp_key_pem, &idp_cert_pem).await?;
    let secret = new_token("fgcs_", &*st.rng);
    let redirect = format!("{}/demo/callback", st.config.issuer);
    let row = client::Model {
        id: DEMO_CLIENT_ID.into(),
        name: "Demo app".into(),
        client_type: "confidential".into(),
        secret_hash: Some(sha256_hex(&secret)),
        redirect_uris: to_json_list(&[redirect]),
        post_logout_redirect_uris: to_json_list(&[format!("{}/demo", st.config.issuer)]),
        grant_types: to_json_list(&["authorization_code".into(), "refresh_token".into()]),
        id_token_alg: "ES256".into(),
        backchannel_logout_uri: None,
        created_at: now,
        updated_at: now,
        ..crate::store::clients::no_machine_settings()
    };
    if clients::get(&st.db, DEMO_CLIENT_ID).await?.is_some() {
        clients::replace(&st.db, row).await?;
    } else {
        clients::insert(&st.db, row).await?;
    }
    *st.demo.write().unwrap_or_else(|e| e.into_inner()) =
        Some(DemoApp { client_secret: secret.clone(), idp_key_pem, idp_cert_pem });
    let i = &st.config.issuer;
    Ok(format!(
        "\n  fedgate demo is ready.\n\n  Open the demo app:     {i}/demo\n  Discovery document:    {i}/.well-known/openid-configuration\n  Demo tenant:           acme (domain acme.test), dev connection signs in alice@acme.test\n  Demo SAML IdP:         {i}/demo/saml-idp/metadata (the demo tenant's SAML connection; signs in alice@demo.example)\n  Demo client:           client_id={DEMO_CLIENT_ID} client_secret={secret}\n  Admin API key:         run `fedgate admin-key create` (same data directory)\n"
    ))
}

fn setup_error(what: &str, e: impl std::fmt::Display) -> crate::store::conn::DbErr {
    crate::store::conn::DbErr::Custom(format!("demo SAML connection: {what}: {e}"))
}

/// Creates the demo tenant's `saml` connection from the demo IdP's metadata (`metadata_xml`, as
/// the IdP is fedgate itself), or refreshes it when the issuer changed (its SP key is kept).
async fn setup_saml(
    st: &AppState,
    tenant_id: &str,
    key_pem: &SecretString,
    cert_pem: &str,
) -> Result<(), crate::store::conn::DbErr> {
    use crate::upstream::saml;
    let now_ms = st.clock.now_ms();
    let now = now_ms / 1000;
    // The demo IdP signs in alice@demo.example: the tenant owns that domain too, as a real
    // tenant owns the domains of its IdP's users.
    if tenants::domain(&st.db, saml_idp::DEMO_DOMAIN).await?.is_none() {
        tenants::insert_domain(&st.db, tenant_id, saml_idp::DEMO_DOMAIN, now).await?;
    }
    let xml =
        saml_idp::metadata_xml(&st.config.issuer, &key_pem.0, cert_pem).map_err(|e| setup_error("metadata", e))?;
    let mut fields = serde_json::Map::new();
    fields.insert("metadata_xml".into(), xml.into());
    fields.insert("preset".into(), "generic".into());
    fields.insert("request_binding".into(), "redirect".into());
    let existing = connections::find_by_type(&st.db, Some(tenant_id), "saml", Some(DEMO_SAML_NAME)).await?;
    if let Some(row) = existing {
        let Ok(ConnectionConfig::Saml(prev)) = ConnectionConfig::from_row(&row) else {
            return Err(setup_error("stored config", "unreadable"));
        };
        let cfg = saml::prepare(fields, Some(&prev), prev.sp_certificate.clone(), &st.upstream, true, now)
            .await
            .map_err(|e| setup_error("config", format!("{e:?}")))?;
        let ch = ConnectionChanges {
            config: Some(serde_json::Value::Object(ConnectionConfig::Saml(Box::new(cfg)).to_fields()).to_string()),
            enabled: Some(true),
            ..Default::default()
        };
        connections::update(&st.db, row, ch, now).await?;
        return Ok(());
    }
    let id = crate::ids::ConnectionId::new(now_ms, &*st.rng).to_string();
    let (key, cert) =
        saml::metadata::generate_sp_key(&format!("fedgate SAML SP {id}"), now).map_err(|e| setup_error("SP key", e))?;
    let cfg = saml::prepare(fields, None, cert, &st.upstream, true, now)
        .await
        .map_err(|e| setup_error("config", format!("{e:?}")))?;
    let mut secrets = serde_json::Map::new();
    secrets.insert(saml::SP_KEY_FIELD.into(), key.into());
    let new = NewConnection {
        id: id.clone(),
        tenant_id: tenant_id.to_string(),
        conn_type: "saml".into(),
        name: DEMO_SAML_NAME.into(),
        enabled: true,
        config: serde_json::Value::Object(ConnectionConfig::Saml(Box::new(cfg)).to_fields()).to_string(),
        secrets_enc: seal_secrets(&st.upstream, &id, &secrets),
        now,
    };
    connections::insert(&st.db, new).await?;
    Ok(())
}

/// The demo tenant's connection of `kind` (`dev` or `saml`).
async fn demo_connection_id(st: &AppState, kind: &str) -> Option<String> {
    let t = crate::tenant::find(&st.db, "acme").await.ok()??;
    let name = (kind == "saml").then_some(DEMO_SAML_NAME);
    connections::find_by_type(&st.db, Some(&t.id), kind, name).await.ok()?.map(|c| c.id)
}

fn demo_state(st: &AppState) -> Option<DemoApp> {
    st.demo.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn html(name: &str, ctx: serde_json::Value) -> HttpResponse {
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    crate::templates::respond(builder, name, ctx)
}

pub async fn home(st: web::Data<AppState>) -> HttpResponse {
    if demo_state(&st).is_none() {
        return HttpResponse::NotFound().finish();
    }
    html("demo_home.html", serde_json::json!({}))
}

pub async fn start(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if demo_state(&st).is_none() {
        return HttpResponse::NotFound().finish();
    }
    let q = crate::http::Params::parse(req.query_string()).unwrap_or_default();
    let conn = demo_connection_id(&st, if q.get("via") == Some("saml") { "saml" } else { "dev" }).await;
    let state = new_token("", &*st.rng);
    let nonce = new_token("", &*st.rng);
    let verifier = new_token("", &*st.rng);
    let mut url = match url::Url::parse(&format!("{}/oauth2/authorize", st.config.issuer)) {
        Ok(u) => u,
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    {
        let mut p = url.query_pairs_mut();
        p.append_pair("response_type", "code")
            .append_pair("client_id", DEMO_CLIENT_ID)
            .append_pair("redirect_uri", &format!("{}/demo/callback", st.config.issuer))
            .append_pair("scope", "openid email profile offline_access")
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &sha256_b64url(verifier.as_bytes()))
            .append_pair("code_challenge_method", "S256");
        if q.get("discover").is_none() {
            p.append_pair("organization", "acme");
            // The tenant has two connections; each button picks one (discovery shows the chooser).
            if let Some(c) = &conn {
                p.append_pair("connection", c);
            }
        }
        if let Some(h) = q.get("login_hint") {
            p.append_pair("login_hint", h);
        }
    }
    let cookie =
        crate::http::build_cookie(DEMO_COOKIE, format!("{state}.{nonce}.{verifier}"), st.config.secure_cookies(), 600);
    HttpResponse::Found().cookie(cookie).insert_header((header::LOCATION, url.to_string())).finish()
}

pub async fn callback(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let Some(demo) = demo_state(&st) else {
        return HttpResponse::NotFound().finish();
    };
    let q = crate::http::Params::parse(req.query_string()).unwrap_or_default();
    let fail = |m: String| html("demo_failed.html", serde_json::json!({ "message": m }));
    if let Some(e) = q.get("error") {
        return fail(format!("{e}: {}", q.get("error_description").unwrap_or("")));
    }
    let Some(saved) = crate::http::cookie(&req, DEMO_COOKIE, st.config.secure_cookies()) else {
        return fail("no demo cookie".into());
    };
    let parts: Vec<&str> = saved.split('.').collect();
    let [state, nonce, verifier] = parts.as_slice() else {
        return fail("bad demo cookie".into());
    };
    if q.get("state") != Some(*state) {
        return fail("state mismatch".into());
    }
    if q.get("iss") != Some(st.config.issuer.as_str()) {
        return fail("iss mismatch".into());
    }
    let Some(code) = q.get("code") else {
        return fail("no code".into());
    };
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "demo app HTTP client");
            return fail("the demo app cannot call the token endpoint".into());
        }
    };
    let resp = client
        .post(format!("{}/oauth2/token", st.config.issuer))
        .basic_auth(DEMO_CLIENT_ID, Some(&demo.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &format!("{}/demo/callback", st.config.issuer)),
            ("code_verifier", verifier),
        ])
        .send()
        .await;
    let body: serde_json::Value = match resp {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "demo app token request failed");
            return fail("the token request failed (see the server log)".into());
        }
    };
    let Some(id_token) = body["id_token"].as_str() else {
        return fail(format!("token error: {body}"));
    };
    let claims = id_token
        .split('.')
        .nth(1)
        .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .unwrap_or_default();
    if claims["nonce"].as_str() != Some(*nonce) {
        return fail("nonce mismatch".into());
    }
    let pretty = serde_json::to_string_pretty(&claims).unwrap_or_default();
    let logout = format!(
        "/oauth2/logout?id_token_hint={}&post_logout_redirect_uri={}",
        id_token,
        url::form_urlencoded::byte_serialize(format!("{}/demo", st.config.issuer).as_bytes()).collect::<String>()
    );
    html("demo_signed_in.html", serde_json::json!({ "claims": pretty, "logout_url": logout }))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo", web::get().to(home))
        .route("/demo/start", web::get().to(start))
        .route("/demo/callback", web::get().to(callback))
        .configure(saml_idp::routes);
}
