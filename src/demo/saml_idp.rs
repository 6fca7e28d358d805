//! The demo's built-in SAML identity provider, served by fedgate itself at `/demo/saml-idp/`
//! (only in `serve --demo`): IdP metadata, and an SSO endpoint (HTTP-Redirect binding) that
//! shows "Sign in as alice@demo.example" and, on a click, POSTs a signed SAMLResponse (no
//! JavaScript) to the demo SAML connection's ACS. It signs with a key pair generated at the
//! first demo start ([`super::idp_key_pair`], kept in the data directory), never with the
//! fixture IdP's published test key: whoever holds a trusted IdP key signs in as anyone. The
//! response is built by the fixture IdP's code (`crates/fixtures/src/saml_idp.rs`) with that key.
//!
//! The AuthnRequest is read minimally (inflate, parse, take its `ID`). The ACS URL and the
//! audience come from the demo connection's configuration, never from the request: a demo IdP
//! must not be a signing oracle for an arbitrary `AssertionConsumerServiceURL`.
use super::saml_fixture_idp::{post_form_fields, FixtureIdp, ResponseParams};
use crate::http::AppState;
use crate::store::entities::connection;
use crate::upstream::connections::ConnectionConfig;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;

/// The person the demo IdP signs in, and the domain the demo tenant owns for it.
pub const DEMO_EMAIL: &str = "alice@demo.example";
pub const DEMO_DOMAIN: &str = "demo.example";
const DEMO_NAME_ID: &str = "demo-alice-0001";
const DEMO_DISPLAY_NAME: &str = "Alice (demo SAML IdP)";
/// Largest inflated AuthnRequest read.
const MAX_REQUEST_XML: usize = 16 * 1024;

/// The demo IdP's entity ID (its metadata URL).
pub fn entity_id(issuer: &str) -> String {
    format!("{issuer}/demo/saml-idp/metadata")
}

/// The demo IdP's SSO URL (HTTP-Redirect binding).
pub fn sso_url(issuer: &str) -> String {
    format!("{issuer}/demo/saml-idp/sso")
}

/// The demo IdP under this server's demo entity ID, signing with the demo's generated key.
pub fn idp(issuer: &str, key_pem: &str, cert_pem: &str) -> Result<FixtureIdp, String> {
    FixtureIdp::from_pem(&entity_id(issuer), key_pem, cert_pem)
}

/// The demo IdP's metadata, as the demo connection is created from.
pub fn metadata_xml(issuer: &str, key_pem: &str, cert_pem: &str) -> Result<String, String> {
    Ok(idp(issuer, key_pem, cert_pem)?.metadata_xml(Some(&sso_url(issuer)), None))
}

fn text(status: actix_web::http::StatusCode, msg: &str) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    crate::templates::respond(builder, "demo_saml_idp_error.html", serde_json::json!({ "message": msg }))
}

fn demo(st: &AppState) -> Option<super::DemoApp> {
    st.demo.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// GET /demo/saml-idp/metadata
pub async fn metadata(st: web::Data<AppState>) -> HttpResponse {
    let Some(d) = demo(&st) else {
        return HttpResponse::NotFound().finish();
    };
    match metadata_xml(&st.config.issuer, &d.idp_key_pem.0, &d.idp_cert_pem) {
        Ok(xml) => HttpResponse::Ok().content_type("application/samlmetadata+xml; charset=utf-8").body(xml),
        Err(e) => {
            tracing::error!(error = %e, "demo SAML IdP metadata");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// The `ID` of a deflated, base64 AuthnRequest (HTTP-Redirect binding).
pub fn authn_request_id(saml_request: &str) -> Result<String, String> {
    use std::io::Read;
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(saml_request.trim())
        .map_err(|_| "SAMLRequest is not base64".to_string())?;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice())
        .take(MAX_REQUEST_XML as u64 + 1)
        .read_to_string(&mut xml)
        .map_err(|_| "SAMLRequest does not inflate to text".to_string())?;
    if xml.len() > MAX_REQUEST_XML {
        return Err("SAMLRequest is too large".into());
    }
    let doc = roxmltree::Document::parse(&xml).map_err(|e| format!("SAMLRequest is not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "AuthnRequest"
        || root.tag_name().namespace() != Some("urn:oasis:names:tc:SAML:2.0:protocol")
    {
        return Err("SAMLRequest is not an AuthnRequest".into());
    }
    let id = root.attribute("ID").unwrap_or_default();
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err("the AuthnRequest has no usable ID".into());
    }
    Ok(id.to_string())
}

/// The demo tenant's SAML connection to this IdP.
pub async fn demo_connection(st: &AppState) -> Result<Option<connection::Model>, crate::store::conn::DbErr> {
    let want = entity_id(&st.config.issuer);
    let rows = crate::store::connections::all_of_type(&st.db, "saml").await?;
    Ok(rows.into_iter().find(
        |row| matches!(ConnectionConfig::from_row(row), Ok(ConnectionConfig::Saml(c)) if c.idp_entity_id == want),
    ))
}

/// GET /demo/saml-idp/sso?SAMLRequest=…&RelayState=… — the sign-in page with the signed answer.
pub async fn sso(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(d) = demo(&st) else {
        return HttpResponse::NotFound().finish();
    };
    let q = crate::http::Params::parse(req.query_string()).unwrap_or_default();
    let request_id = match authn_request_id(q.get("SAMLRequest").unwrap_or_default()) {
        Ok(id) => id,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    let relay_state = q.get("RelayState").unwrap_or_default();
    let conn = match demo_connection(&st).await {
        Ok(Some(c)) => c,
        Ok(None) => return text(StatusCode::NOT_FOUND, "the demo SAML connection does not exist"),
        Err(e) => {
            crate::util::log_internal("demo SAML IdP", &e);
            return HttpResponse::InternalServerError().finish();
        }
    };
    let issuer = &st.config.issuer;
    let Ok(ConnectionConfig::Saml(cfg)) = ConnectionConfig::from_row(&conn) else {
        return HttpResponse::InternalServerError().finish();
    };
    let acs = cfg.acs_url(issuer, &conn.id);
    let signed = idp(issuer, &d.idp_key_pem.0, &d.idp_cert_pem).and_then(|idp| {
        let mut p = ResponseParams::new(
            &idp.entity_id,
            &cfg.sp_entity_id(issuer, &conn.id),
            &acs,
            Some(&request_id),
            DEMO_NAME_ID,
            DEMO_EMAIL,
            st.clock.now(),
        );
        p.attributes.push(("displayName".into(), vec![DEMO_DISPLAY_NAME.into()]));
        p.attributes.push(("groups".into(), vec!["engineering".into(), "saml-demo".into()]));
        idp.response(&p)
    });
    let xml = match signed {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "demo SAML IdP cannot sign");
            return HttpResponse::InternalServerError().finish();
        }
    };
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    crate::templates::respond(
        builder,
        "demo_saml_idp.html",
        serde_json::json!({
            "request_id": request_id,
            "acs": acs,
            "saml_response": post_form_fields(&xml),
            "relay_state": relay_state,
            "email": DEMO_EMAIL,
        }),
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/demo/saml-idp/metadata", web::get().to(metadata)).route("/demo/saml-idp/sso", web::get().to(sso));
}
