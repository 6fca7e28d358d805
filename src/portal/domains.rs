//! `/setup/domains`: the IT admin claims the organization's email domains and proves each with a
//! DNS TXT record (`_fedgate-challenge.<domain>` = `fedgate-verification=<random>`). "Check now"
//! looks it up at once; a background job (app.rs) checks pending claims on a schedule
//! (`tenant::domain_claims::next_check`). A failed check shows what DNS returned. The rules
//! (consumer domains, domains of other tenants, what a verified domain is trusted for) live in
//! `tenant::domain_claims`.
use super::{form, Intent, PortalSession};
use crate::http::error::PageError;
use crate::http::{redirect, AppState};
use crate::tenant::dns::DnsChecker;
use crate::tenant::domain_claims::{self, Checked, ClaimError};
use crate::util::rfc3339;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

const SEE_OTHER: StatusCode = StatusCode::SEE_OTHER;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/setup/domains", web::get().to(index))
        .route("/setup/domains", web::post().to(claim))
        .route("/setup/domains/{id}/check", web::post().to(check_now))
        .route("/setup/domains/{id}/withdraw", web::post().to(withdraw));
}

/// The configured DNS checker (`[dns] resolver`), or the page saying the setting is wrong.
pub fn checker(st: &AppState) -> Result<DnsChecker, PageError> {
    DnsChecker::new(st.config.dns.resolver.as_deref()).map_err(|e| {
        crate::util::log_internal("dns.resolver", &e);
        PageError::internal()
    })
}

/// The page, with an error next to the claim field (`error`, `value`) when a claim was refused,
/// and the id of a claim just checked (`checked`).
async fn page(
    st: &AppState,
    ps: &PortalSession,
    builder: actix_web::HttpResponseBuilder,
    error: Option<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let domains = crate::tenant::domains_of(&st.db, &ps.tenant.id).await?;
    let claims = crate::store::domain_claims::of_tenant(&st.db, &ps.tenant.id).await?;
    let views: Vec<serde_json::Value> = claims
        .iter()
        .map(|c| {
            let v = domain_claims::view(c, &domains);
            json!({
                "id": v.id, "domain": v.domain, "record_name": v.record_name, "record_value": v.record_value,
                "state": v.state, "checks": v.checks, "last_checked_at": v.last_checked_at.map(rfc3339),
                "result": v.last_result, "next_check_at": v.next_check_at.map(rfc3339),
                "verified_at": v.verified_at.map(rfc3339),
            })
        })
        .collect();
    let claimed: Vec<&str> = claims.iter().filter(|c| c.verified_at.is_some()).map(|c| c.domain.as_str()).collect();
    let added: Vec<&String> = domains.iter().filter(|d| !claimed.contains(&d.as_str())).collect();
    let (error, value) = match error {
        Some((e, v)) => (Some(e), v),
        None => (None, String::new()),
    };
    Ok(ps.page_with(
        builder,
        Some(Intent::Domains),
        "portal_domains.html",
        json!({"claims": views, "added": added, "error": error, "value": value}),
    ))
}

/// `GET /setup/domains`.
async fn index(st: web::Data<AppState>, ps: PortalSession) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Domains)?;
    page(&st, &ps, HttpResponse::Ok(), None).await
}

/// `POST /setup/domains` (`domain`): claims it and shows its TXT record.
async fn claim(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Domains)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let raw = f.get("domain").unwrap_or("").to_string();
    let name = ps.actor_name();
    match domain_claims::claim(&st.db, &*st.rng, st.clock.now(), &ps.tenant.id, &raw, &ps.actor(&name)).await {
        Ok(c) => Ok(redirect(SEE_OTHER, &format!("/setup/domains#claim-{}", c.id))),
        Err(ClaimError::Invalid(e)) => {
            let status = match e.kind {
                crate::validation::InvalidKind::Conflict => actix_web::http::StatusCode::CONFLICT,
                _ => actix_web::http::StatusCode::BAD_REQUEST,
            };
            page(&st, &ps, HttpResponse::build(status), Some((e.message, raw))).await
        }
        Err(ClaimError::Db(e)) => Err(e.into()),
    }
}

/// `POST /setup/domains/{id}/check`: looks the record up now.
async fn check_now(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Domains)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let c = crate::store::domain_claims::get(&st.db, &ps.tenant.id, &path).await?.ok_or_else(|| {
        PageError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            crate::error_code::ErrorCode::NotFound,
            "Not found",
            "This domain is not claimed by your organization.",
        )
    })?;
    let name = ps.actor_name();
    let (row, checked) =
        domain_claims::check(&st.db, &*st.rng, &checker(&st)?, st.clock.now(), c, &ps.actor(&name)).await?;
    if checked == Checked::Taken {
        tracing::info!(tenant = %ps.tenant.id, domain = %row.domain, "domain verified by DNS but taken by another tenant");
    }
    Ok(redirect(SEE_OTHER, &format!("/setup/domains#claim-{}", row.id)))
}

/// `POST /setup/domains/{id}/withdraw`: removes a pending claim.
async fn withdraw(
    st: web::Data<AppState>,
    req: HttpRequest,
    ps: PortalSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    ps.require_intent(Intent::Domains)?;
    let f = form(&req, &body)?;
    ps.check_csrf(&f)?;
    let name = ps.actor_name();
    domain_claims::withdraw(&st.db, &*st.rng, st.clock.now(), &ps.tenant.id, &path, &ps.actor(&name)).await?;
    Ok(redirect(SEE_OTHER, "/setup/domains"))
}

/// The domains part's state on the portal's overview: `live` (a verified domain), `draft` (a claim
/// waiting for its record), `todo` (none).
pub async fn status(st: &AppState, tenant_id: &str) -> Result<&'static str, PageError> {
    let claims = crate::store::domain_claims::of_tenant(&st.db, tenant_id).await?;
    Ok(if claims.iter().any(|c| c.verified_at.is_some()) {
        "live"
    } else if claims.is_empty() {
        "todo"
    } else {
        "draft"
    })
}
