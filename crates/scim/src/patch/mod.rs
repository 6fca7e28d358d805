//! SCIM 2.0 PATCH (RFC 7644 §3.5.2): request parsing and application to a
//! resource held as a JSON object, tolerant of what Okta and Entra ID send.
//!
//! ```text
//! let request = parse_request(&body)?;          // PatchError -> 400 + scimType
//! let outcome = apply(&stored_resource, &request)?;
//! // outcome.resource, outcome.members_added / members_removed, outcome.changed
//! ```
//!
//! Behaviour beyond the letter of the RFC (all deliberate):
//! * `op` names are case-insensitive; an empty `path` counts as absent.
//! * Attribute names match existing keys case-insensitively; the existing
//!   spelling is kept, new keys use the spelling sent.
//! * `active`/`primary` given as `"true"`/`"False"` become JSON booleans.
//! * Path-less `add`/`replace` values may use paths as keys
//!   (`"name.givenName"`, `"urn:...:User:department"`) and extension URNs
//!   as keys holding objects; `schemas` and `meta` keys are ignored and `id`
//!   is ignored when unchanged.
//! * A value filter with no matching element (or no attribute yet) creates an
//!   element from the filter's `eq` conditions on `add` and `replace`; on
//!   `remove` it is a no-op, as is removing an absent attribute.
//! * Multi-valued `add` skips values already present (members by `value`,
//!   other values when all sent sub-attributes already match).
//! * `remove` of a multi-valued attribute with a `value` removes only the
//!   listed values (Entra's member removal form).
//! * The enterprise `manager` may be sent as the manager's id string; it is
//!   stored as `{"value": id}`; `""`/`null` clears it.
//! * Writing `null` removes an attribute; attributes left as `[]`/`{}` are
//!   removed (unassigned), as are empty extension objects (and their URN in
//!   `schemas`). Creating an extension object adds its URN to `schemas`.
//! * At most one element of a multi-valued attribute keeps `primary: true`:
//!   the one this operation set.
//!
//! Everything is applied to a copy; any failing operation fails the whole
//! request.
//!
//! Files: `request` (parsing), `apply` (the operations: add / replace), `remove`, `members`
//! (which member ids a request names), `target`
//! (where a path points, mutability, extension objects), `values` (coercion, duplicates,
//! `primary`), [`PatchPath`] in `path`, [`PatchError`] in `error`; tests in `tests/`.

use serde_json::Value;

mod apply;
mod error;
mod members;
mod path;
mod remove;
mod request;
mod target;
mod values;

#[cfg(test)]
mod tests;

pub use apply::{apply, apply_patch};
pub use error::PatchError;
pub use members::{listed_members, member_values};
pub use path::PatchPath;
pub use request::{parse_request, parse_request_slice};

/// The PatchOp message schema URN that requests must declare.
pub const PATCH_OP_SCHEMA: &str = crate::urn::PATCH_OP;
/// Maximum number of operations in one request.
pub const MAX_OPERATIONS: usize = 1000;
/// Maximum JSON nesting depth of an operation's `value` (a SCIM value is at
/// most 4 levels deep: extension / attribute / element / sub-attribute).
pub const MAX_VALUE_DEPTH: usize = 16;

/// A PATCH operation kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchOpKind {
    /// `add`
    Add,
    /// `replace`
    Replace,
    /// `remove`
    Remove,
}

impl PatchOpKind {
    /// Parses an op name case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Add, Self::Replace, Self::Remove].into_iter().find(|k| k.as_str().eq_ignore_ascii_case(name))
    }

    /// Lower-case op name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Replace => "replace",
            Self::Remove => "remove",
        }
    }
}

/// One parsed PATCH operation.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// add / replace / remove.
    pub op: PatchOpKind,
    /// Target path; `None` means the resource itself.
    pub path: Option<PatchPath>,
    /// Operation value (required for add/replace).
    pub value: Option<Value>,
}

/// A parsed PatchOp request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// Operations, applied in order.
    pub operations: Vec<PatchOperation>,
}

/// Result of applying a PATCH request.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The patched resource.
    pub resource: Value,
    /// Ids (`members[].value`) present after the patch but not before, in order.
    pub members_added: Vec<String>,
    /// Ids present before the patch but not after, in order.
    pub members_removed: Vec<String>,
    /// Whether `resource` differs from the input.
    pub changed: bool,
}
