//! PATCH failures, each with its SCIM `scimType`.

/// A PATCH failure. [`PatchError::scim_type`] gives the RFC 7644 `scimType`;
/// `Display` gives the `detail` (prefixed with `Operations[i]:` when an
/// operation is at fault). All map to HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// Malformed request body (`invalidSyntax`).
    #[error("{0}")]
    InvalidSyntax(String),
    /// Malformed or unsupported path (`invalidPath`).
    #[error("{0}")]
    InvalidPath(String),
    /// Missing or unsuitable value (`invalidValue`).
    #[error("{0}")]
    InvalidValue(String),
    /// The path designates nothing and nothing can be created (`noTarget`).
    #[error("{0}")]
    NoTarget(String),
    /// Attempt to modify an immutable or read-only attribute (`mutability`).
    #[error("{0}")]
    Mutability(String),
    /// More than [`super::MAX_OPERATIONS`] operations (`invalidValue`).
    #[error("too many PATCH operations: {count} (the maximum is {max})")]
    TooManyOperations {
        /// Operations sent.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl PatchError {
    /// The SCIM `scimType` for the error response.
    pub fn scim_type(&self) -> &'static str {
        match self {
            Self::InvalidSyntax(_) => "invalidSyntax",
            Self::InvalidPath(_) => "invalidPath",
            Self::InvalidValue(_) | Self::TooManyOperations { .. } => "invalidValue",
            Self::NoTarget(_) => "noTarget",
            Self::Mutability(_) => "mutability",
        }
    }

    pub(super) fn in_operation(self, index: usize) -> Self {
        let prefix = |m: String| format!("Operations[{index}]: {m}");
        match self {
            Self::InvalidSyntax(m) => Self::InvalidSyntax(prefix(m)),
            Self::InvalidPath(m) => Self::InvalidPath(prefix(m)),
            Self::InvalidValue(m) => Self::InvalidValue(prefix(m)),
            Self::NoTarget(m) => Self::NoTarget(prefix(m)),
            Self::Mutability(m) => Self::Mutability(prefix(m)),
            e @ Self::TooManyOperations { .. } => e,
        }
    }
}
