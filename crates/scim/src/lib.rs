//! fedgate's SCIM 2.0 engine (RFC 7643, RFC 7644): everything about SCIM that is not HTTP and
//! not storage. Pure functions over `serde_json` values; no I/O, no async.
#![forbid(unsafe_code)]
//!
//! * [`schema`]: the schema table — every attribute and its characteristics, said once, with
//!   the storage column it maps to as plain data — and the lookups the rest reads;
//! * [`path`]: attribute paths (`name.givenName`, `urn:...:User:manager.value`);
//! * [`filter`]: filter expressions — parse, print, evaluate;
//! * [`patch`]: PATCH requests — parse, apply;
//! * [`resource`]: normalization of what clients send, rendering, `attributes` projection;
//! * [`discovery`]: `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas` from the table.
//!
//! The server (package `fedgate`) serves it over HTTP (`src/scim/`), provisions with it
//! (`src/directory/provisioning/`) and translates filters to SQL (`src/store/scim_sql.rs`).
pub mod datetime;
pub mod discovery;
pub mod filter;
pub mod json;
pub mod patch;
pub mod path;
pub mod resource;
pub mod schema;
pub mod urn;

pub use filter::{Filter, FilterError};
pub use patch::{PatchError, PatchPath};
pub use path::AttrPath;
pub use resource::ResourceError;
pub use schema::ResourceKind;
pub use urn::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// The largest page of a list or search (`ServiceProviderConfig.filter.maxResults`).
pub const MAX_RESULTS: i64 = 1000;
