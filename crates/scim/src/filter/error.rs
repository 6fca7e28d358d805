//! Why a filter, an attribute path or a PATCH path could not be parsed.

/// Why a filter (or PATCH path) could not be parsed. Byte positions are
/// 0-based offsets into the input. `Display` gives a message suitable as the
/// `detail` of a SCIM `invalidFilter` (or `invalidPath`) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The input is empty or only whitespace.
    #[error("filter is empty")]
    Empty,
    /// The input exceeds [`MAX_FILTER_LEN`].
    #[error("filter is too long ({len} bytes; the maximum is {max})")]
    TooLong {
        /// Input length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nesting exceeds [`MAX_DEPTH`].
    #[error("filter is nested too deeply at position {pos} (the maximum depth is {max})")]
    TooDeep {
        /// Where the limit was crossed.
        pos: usize,
        /// The limit.
        max: usize,
    },
    /// Input ended while more was expected.
    #[error("unexpected end of filter: expected {expected}")]
    UnexpectedEnd {
        /// What the parser was looking for.
        expected: &'static str,
    },
    /// An unexpected token.
    #[error("unexpected {found} at position {pos}: expected {expected}")]
    Unexpected {
        /// Position of the token.
        pos: usize,
        /// The token (quoted, truncated).
        found: String,
        /// What the parser was looking for.
        expected: &'static str,
    },
    /// A malformed attribute path.
    #[error("invalid attribute path \"{path}\" at position {pos}: {reason}")]
    InvalidAttrPath {
        /// Position of the path.
        pos: usize,
        /// The path as written.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An unknown comparison operator.
    #[error("unknown operator \"{op}\" at position {pos}: expected eq, ne, co, sw, ew, gt, ge, lt, le or pr")]
    UnknownOperator {
        /// Position of the operator.
        pos: usize,
        /// The operator as written.
        op: String,
    },
    /// A malformed comparison value.
    #[error("invalid comparison value at position {pos}: {reason}")]
    InvalidValue {
        /// Position of the value.
        pos: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string literal without closing quote.
    #[error("unterminated string starting at position {pos}")]
    UnterminatedString {
        /// Position of the opening quote.
        pos: usize,
    },
    /// A value filter inside another value filter.
    #[error("nested value filter at position {pos}: a value filter cannot contain another value filter")]
    NestedValuePath {
        /// Position of the inner `[`.
        pos: usize,
    },
    /// `attr[...].sub` used in a filter (only PATCH paths allow it), or a
    /// value filter after a sub-attribute.
    #[error("invalid value filter at position {pos}: {reason}")]
    InvalidValuePath {
        /// Position of the offending token.
        pos: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl FilterError {
    /// The SCIM `scimType` for this error when it comes from a `filter`
    /// query parameter.
    pub fn scim_type(&self) -> &'static str {
        "invalidFilter"
    }
}
