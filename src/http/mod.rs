//! actix wiring shared by every surface: request ids, access logs, security headers, body
//! limits and parameter parsing.
pub mod limits;

pub mod error;
pub mod state;
pub mod ui_session;

pub use state::AppState;

use crate::clock::{Rng, SystemRng};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::collections::HashMap;
use tracing::Instrument;

pub use crate::util::{current_request_id, REQUEST_ID};

/// How long a request that met an unreachable database may still take to answer.
const UNAVAILABLE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

fn incoming_request_id(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    (!v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| v.to_string())
}

/// One root span per request with a request id (taken from `X-Request-Id` when well-formed),
/// the method, the route pattern (never the raw path: ids and junk stay out of the logs and
/// the metrics), the status and, once known, the tenant ([`record_tenant`]); an access log
/// line; the request metrics; the id echoed back, and security headers on every response.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = incoming_request_id(&req).unwrap_or_else(|| crate::ids::random128(&SystemRng as &dyn Rng));
    let metrics = req.app_data::<actix_web::web::Data<crate::http::AppState>>().map(|s| s.metrics.clone());
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        status = tracing::field::Empty,
        tenant = tracing::field::Empty,
        connection = tracing::field::Empty,
        otel.kind = "server",
        otel.name = %format_args!("{method} {route}")
    );
    let started = std::time::Instant::now();
    let db_down = std::sync::Arc::new(crate::util::DbUnavailable::default());
    let path = req.path().to_string();
    let handler = crate::util::REQUEST_SPAN
        .scope(
            span.clone(),
            REQUEST_ID.scope(id.clone(), crate::util::DB_UNAVAILABLE.scope(db_down.clone(), next.call(req))),
        )
        .instrument(span.clone());
    // Once the request met an unreachable database, it has UNAVAILABLE_GRACE to answer (its own
    // 503); past that (it went on to another statement that waits for a connection) it is
    // dropped — its transaction rolls back — and answered 503 here.
    let gave_up = async {
        db_down.wait().await;
        tokio::time::sleep(UNAVAILABLE_GRACE).await;
    };
    let res = tokio::select! {
        r = handler => r?,
        () = gave_up => {
            span.in_scope(|| tracing::warn!("database unavailable: request given up"));
            return Err(error::UnavailableAt(path).into());
        }
    };
    // A 500 of a request that met an unreachable database (wherever the error was turned into
    // an opaque 500) is a 503 in the surface's shape, with Retry-After.
    let mut res = if res.status() == actix_web::http::StatusCode::INTERNAL_SERVER_ERROR && db_down.is_set() {
        let unavailable = REQUEST_ID.sync_scope(id.clone(), || error::unavailable_response(&path));
        res.into_response(unavailable).map_into_right_body()
    } else {
        res.map_into_left_body()
    };
    let status = res.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    span.record("status", status);
    span.in_scope(|| tracing::info!(status, elapsed_ms = format!("{:.2}", elapsed * 1000.0), "request"));
    if let Some(m) = metrics {
        m.http_request(route, method.as_str(), status, elapsed);
    }
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(HeaderName::from_static("x-request-id"), v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    Ok(res)
}

pub use crate::util::record_tenant;

/// Parameters of a query string or urlencoded form, refusing repeated names
/// (RFC 6749 §3.1: parameters MUST NOT be included more than once).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("parameter {0} is repeated")]
    Repeated(String),
    #[error("too many parameters")]
    TooMany,
}

impl Params {
    pub fn parse(raw: &str) -> Result<Self, ParamsError> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if map.len() >= 64 {
                return Err(ParamsError::TooMany);
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ParamsError::Repeated(k.to_string()));
            }
        }
        Ok(Self(map))
    }
    /// A parameter's value; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    pub fn contains(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
}

/// Reads a urlencoded form body after checking the content type.
pub fn form_params(req: &actix_web::HttpRequest, body: &[u8]) -> Result<Params, String> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err("the request body must be application/x-www-form-urlencoded".into());
    }
    let text = std::str::from_utf8(body).map_err(|_| "the request body is not UTF-8".to_string())?;
    Params::parse(text).map_err(|e| e.to_string())
}

/// Builds `redirect_uri` + query parameters (the registered URI may carry its own query).
pub fn client_redirect_url(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            u.to_string()
        }
        Err(_) => redirect_uri.to_string(),
    }
}

/// A redirect that is never cached.
pub fn redirect(status: actix_web::http::StatusCode, location: &str) -> actix_web::HttpResponse {
    actix_web::HttpResponse::build(status)
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The name a cookie has on the wire. With an https issuer (`secure`), fedgate's cookies carry
/// the `__Host-` prefix: browsers then accept them only with `Secure`, `Path=/` and no `Domain`,
/// so neither a sibling subdomain nor a plain-http page of the same host can set or overwrite
/// them (session fixation, login CSRF through a forced binding cookie).
pub fn cookie_name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A cookie value by its base name, read under the name in use ([`cookie_name`]): with an https
/// issuer only the `__Host-` cookie counts, never a plain one of the same base name.
pub fn cookie(req: &actix_web::HttpRequest, base: &str, secure: bool) -> Option<String> {
    req.cookie(&cookie_name(base, secure)).map(|c| c.value().to_string()).filter(|v| !v.is_empty() && v.len() <= 256)
}

/// One of fedgate's cookies: HttpOnly, SameSite=Lax, `Path=/`, no `Domain`; with `secure`
/// (https issuer) also `Secure` and named `__Host-{base}`.
pub fn build_cookie(base: &str, value: String, secure: bool, max_age_secs: i64) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(cookie_name(base, secure), value)
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_secs))
        .finish()
}

/// The client's address as seen by this process (no proxy headers are trusted).
pub fn peer(req: &actix_web::HttpRequest) -> String {
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn params_parse_never_panics_and_roundtrips(pairs in proptest::collection::btree_map("[a-z_]{1,12}", ".{0,40}", 0..10)) {
            let raw: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter()).finish();
            let p = Params::parse(&raw).unwrap();
            for (k, v) in &pairs {
                prop_assert_eq!(p.get(k), (!v.is_empty()).then_some(v.as_str()));
            }
        }
        #[test]
        fn params_arbitrary_input(s in ".{0,200}") {
            let _ = Params::parse(&s);
        }
    }
    #[test]
    fn host_prefix_only_with_https() {
        let c = build_cookie("fedgate_session", "v".into(), true, 60);
        assert_eq!(c.name(), "__Host-fedgate_session");
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.domain(), None);
        let header = c.to_string();
        assert!(header.starts_with("__Host-fedgate_session=v;") && header.contains("Secure"), "{header}");
        let plain = build_cookie("fedgate_session", "v".into(), false, 60);
        assert_eq!(plain.name(), "fedgate_session");
        assert_eq!(plain.secure(), Some(false));
    }

    #[test]
    fn params_refuse_repeats_and_treat_empty_as_absent() {
        assert_eq!(Params::parse("a=1&a=2").unwrap_err(), ParamsError::Repeated("a".into()));
        let p = Params::parse("a=&b=x%20y").unwrap();
        assert!(p.get("a").is_none());
        assert_eq!(p.get("b"), Some("x y"));
    }
}
