//! The SCIM 2.0 (RFC 7643/7644) HTTP surface per tenant: routes (one set of handlers for Users
//! and Groups), bearer-token auth, the request log, and the mapping of errors to the SCIM error
//! schema. The SCIM engine (schema table, filters, PATCH, resources, discovery documents) is
//! the `fedgate-scim` crate (crates/scim); provisioning is `directory::provisioning`; the
//! queries, `store::scim_*`.
pub mod auth;
pub mod error;
pub mod reqlog;
pub mod routes;

pub use auth::{ScimTenant, SCIM_TOKEN_PREFIX};
pub use error::ScimError;
pub use routes::routes;
