//! Refused input as domain code reports it: the field, a stable snake_case code and a message
//! for the person who sent it. It knows nothing of HTTP: each surface maps it to its own shape
//! (the admin API's `{"error", "message", "field"}` with 400, 404 or 409).

use crate::error_code::ErrorCode;

/// What kind of refusal it is (the admin API answers 400, 409 and 404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidKind {
    /// The value itself is wrong.
    BadValue,
    /// The value clashes with existing data (a taken slug or domain).
    Conflict,
    /// The value names something that does not exist.
    NotFound,
}

/// A refused input value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Invalid {
    pub kind: InvalidKind,
    pub field: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    /// A wrong value of `field`.
    pub fn field(field: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { kind: InvalidKind::BadValue, field: Some(field.to_string()), code, message: message.into() }
    }
    /// A value of `field` that clashes with existing data.
    pub fn conflict(code: ErrorCode, field: &str, message: impl Into<String>) -> Self {
        Self { kind: InvalidKind::Conflict, field: Some(field.to_string()), code, message: message.into() }
    }
    /// `what` does not exist.
    pub fn not_found(what: &str) -> Self {
        Self {
            kind: InvalidKind::NotFound,
            field: None,
            code: ErrorCode::NotFound,
            message: format!("{what} not found"),
        }
    }
}
