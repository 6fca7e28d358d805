//! SCIM 2.0 filter expressions (RFC 7644 §3.4.2.2): parser, AST, printer and
//! an in-memory evaluator.
//!
//! * [`parse`] turns a filter string into a [`Filter`]; it never panics and
//!   rejects input longer than [`MAX_FILTER_LEN`] bytes or nested deeper than
//!   [`MAX_DEPTH`] levels (parentheses, `not`, value filters) with a
//!   [`FilterError`] whose message is suitable for an `invalidFilter` detail.
//! * `Display` prints a filter such that `parse(&f.to_string()) == Ok(f)`.
//! * [`matches`] evaluates a filter against a resource held as JSON.
//!
//! Grammar notes: keywords, operators and `true`/`false`/`null` are
//! case-insensitive; precedence is `not` > `and` > `or`, and `and`/`or` are
//! left-associative. `not` is normally followed by a parenthesised filter
//! (RFC form); `not <expr>` without parentheses is also accepted and binds to
//! the following single expression. Value filters cannot be nested, and a
//! sub-attribute after a value filter (`emails[...].value`) is only accepted in
//! PATCH paths ([`parse_patch_path`]), as in the RFC.
//!
//! Files: [`ast`] (the types), `parse` (the parser), `print` (`Display`), `eval` (evaluation),
//! `error` ([`FilterError`]); property tests over all of them in `proptests`.

pub mod ast;
mod error;
mod eval;
mod parse;
mod print;

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(crate) mod test_util;

pub use ast::{CompValue, CompareOp, Filter};
pub use error::FilterError;
pub use eval::{matches, matches_element};
pub use parse::{parse, parse_attr_path, parse_patch_path, PatchPathParts};

/// Maximum accepted filter (or PATCH path) length in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Maximum nesting depth: each parenthesised group, `not` and value filter
/// counts one level.
pub const MAX_DEPTH: usize = 32;
