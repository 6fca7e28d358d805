//! Error responses, one shape per HTTP surface:
//! - admin API: `{"error": "snake_case_code", "message": "...", "field": "..."}`
//! - OAuth 2.0 / OIDC endpoints: RFC 6749 `{"error", "error_description"}`
//! - pages for people: an HTML page with a short code and the request id.
//!
//! Unexpected failures are logged with their cause chain and answered with an opaque 500.
use crate::http::current_request_id;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

pub use crate::error_code::ErrorCode;

pub use crate::util::log_internal;

/// Admin API error.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }
    pub fn invalid(field: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, message: message.into(), field: Some(field.into()) }
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn conflict(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::CONFLICT, code, message: message.into(), field: Some(field.into()) }
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "a valid admin API key is required (Authorization: Bearer ...)",
        )
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "internal error; see the server log for this request id",
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({"error": self.code, "message": self.message});
        if let Some(f) = &self.field {
            body["field"] = f.clone().into();
        }
        body["request_id"] = current_request_id().into();
        let mut r = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            r.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"fedgate-admin\""));
        }
        r.json(body)
    }
}

impl From<crate::validation::Invalid> for ApiError {
    fn from(e: crate::validation::Invalid) -> Self {
        use crate::validation::InvalidKind;
        let status = match e.kind {
            InvalidKind::BadValue => StatusCode::BAD_REQUEST,
            InvalidKind::Conflict => StatusCode::CONFLICT,
            InvalidKind::NotFound => StatusCode::NOT_FOUND,
        };
        Self { status, code: e.code, message: e.message, field: e.field }
    }
}

impl From<crate::store::conn::DbErr> for ApiError {
    fn from(e: crate::store::conn::DbErr) -> Self {
        crate::store::note_error(&e);
        log_internal("database error", &e);
        ApiError::internal()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::Db(d) = &e {
            crate::store::note_error(d);
        }
        log_internal("store error", &e);
        ApiError::internal()
    }
}

/// An OAuth 2.0 error answered as JSON (token, revocation, introspection, userinfo endpoints).
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: ErrorCode,
    pub description: String,
    pub www_authenticate: Option<String>,
}

impl OAuthError {
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, error, description: description.into(), www_authenticate: None }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    /// 401 invalid_client; `basic` adds the WWW-Authenticate challenge RFC 6749 §5.2 requires
    /// when the client tried HTTP Basic.
    pub fn invalid_client(d: impl Into<String>, basic: bool) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: ErrorCode::InvalidClient,
            description: d.into(),
            www_authenticate: basic.then(|| "Basic realm=\"fedgate\"".to_string()),
        }
    }
    pub fn invalid_token(d: impl Into<String>) -> Self {
        let d = d.into();
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: ErrorCode::InvalidToken,
            www_authenticate: Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                d.replace('"', "'")
            )),
            description: d,
        }
    }
    pub fn server_error() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: ErrorCode::ServerError,
            description: "internal error".into(),
            www_authenticate: None,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header((header::CACHE_CONTROL, "no-store"));
        r.insert_header((header::PRAGMA, "no-cache"));
        if let Some(w) = &self.www_authenticate {
            r.insert_header((header::WWW_AUTHENTICATE, w.clone()));
        }
        r.json(serde_json::json!({"error": self.error, "error_description": self.description}))
    }
}

impl From<crate::store::conn::DbErr> for OAuthError {
    fn from(e: crate::store::conn::DbErr) -> Self {
        crate::store::note_error(&e);
        log_internal("database error", &e);
        OAuthError::server_error()
    }
}

/// An error shown to a person as an HTML page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub title: String,
    pub message: String,
    /// Where "Return to the application" leads (an error redirect to a validated redirect_uri).
    pub back: Option<String>,
    /// The login trace id, shown so the person can give it to support.
    pub trace: Option<String>,
}

impl PageError {
    pub fn new(status: StatusCode, code: ErrorCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code, title: title.into(), message: message.into(), back: None, trace: None }
    }
    pub fn with_trace(mut self, trace_id: String) -> Self {
        self.trace = Some(trace_id);
        self
    }
    pub fn with_back(mut self, url: String) -> Self {
        self.back = Some(url);
        self
    }
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, "Sign-in request is not valid", message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "Something went wrong",
            "An unexpected error occurred while signing you in. Please try again.",
        )
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        crate::templates::ErrorPage {
            title: &self.title,
            message: &self.message,
            code: self.code,
            request_id: &current_request_id(),
            back: self.back.as_deref(),
            trace: self.trace.as_deref(),
        }
        .respond(builder)
    }
}

impl From<crate::store::conn::DbErr> for PageError {
    fn from(e: crate::store::conn::DbErr) -> Self {
        crate::store::note_error(&e);
        log_internal("database error", &e);
        PageError::internal()
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        if let crate::store::StoreError::Db(d) = &e {
            crate::store::note_error(d);
        }
        log_internal("store error", &e);
        PageError::internal()
    }
}
