//! SCIM error responses (RFC 7644 §3.12): `{"schemas": [Error], "status": "400", "scimType": ..., "detail": ...}`,
//! and the mapping of provisioning errors to them.
use crate::directory::provisioning::ProvisioningError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

/// The SCIM error message schema URN.
pub const ERROR_SCHEMA: &str = fedgate_scim::urn::ERROR;
/// SCIM media type.
pub const SCIM_JSON: &str = "application/scim+json";

/// The error code recorded in the request log (set on error responses as an extension).
#[derive(Debug, Clone)]
pub struct LoggedErrorCode(pub String);

/// A SCIM error.
#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self { status, scim_type, detail: detail.into() }
    }
    /// 400 with a scimType.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad("invalidValue", detail)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, format!("{what} not found"))
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, "a valid SCIM bearer token for this tenant is required")
    }
    pub fn precondition() -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, None, "the resource was modified (If-Match does not match its ETag)")
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error; see the server log for this request id")
    }
    /// 503 with `Retry-After`: the database is unreachable for the moment.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "the service is unavailable for the moment; retry after Retry-After seconds",
        )
    }
    /// The code shown in the request log.
    pub fn code(&self) -> String {
        match self.scim_type {
            Some(t) => t.to_string(),
            None => self.status.as_u16().to_string(),
        }
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}: {}", self.status.as_u16(), self.scim_type, self.detail)
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = t.into();
        }
        let mut r = HttpResponse::build(self.status);
        r.content_type(SCIM_JSON);
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"fedgate-scim\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.insert_header((header::RETRY_AFTER, crate::http::error::RETRY_AFTER_SECS.to_string()));
        }
        let mut resp = r.body(body.to_string());
        resp.extensions_mut().insert(LoggedErrorCode(self.code()));
        resp
    }
}

impl From<crate::store::conn::DbErr> for ScimError {
    fn from(e: crate::store::conn::DbErr) -> Self {
        crate::store::note_error(&e);
        if crate::store::is_unavailable(&e) {
            crate::util::note_db_unavailable();
            tracing::warn!(error = %e, "database unavailable");
            return ScimError::unavailable();
        }
        crate::util::log_internal("database error", &e);
        ScimError::internal()
    }
}

impl From<ProvisioningError> for ScimError {
    fn from(e: ProvisioningError) -> Self {
        match e {
            ProvisioningError::Db(e) => e.into(),
            ProvisioningError::NotFound(what) => ScimError::not_found(what),
            ProvisioningError::VersionMismatch => ScimError::precondition(),
            ProvisioningError::UserNameTaken(_) => ScimError::uniqueness(e.to_string()),
            e => match e.scim_type() {
                Some(t) => ScimError::bad(t, e.to_string()),
                None => ScimError::internal(),
            },
        }
    }
}

impl From<fedgate_scim::ResourceError> for ScimError {
    fn from(e: fedgate_scim::ResourceError) -> Self {
        ScimError::bad(e.scim_type(), e.to_string())
    }
}
