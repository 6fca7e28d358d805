//! SCIM 2.0 (RFC 7643/7644) provisioning per tenant: the pure filter parser, attribute paths and
//! PATCH engine, and the service on top (filters to SQL, resources, routes, tokens, request log).
pub mod auth;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod models;
pub mod patch;
pub mod path;
pub mod reqlog;
pub mod routes;
pub mod service;
pub mod sql;

pub use auth::{ScimTenant, SCIM_TOKEN_PREFIX};
pub use error::ScimError;
pub use routes::routes;
