//! One integration test binary: the real app over real HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod admin;
mod common;
mod demo_saml;
mod events;
mod keys;
mod limits;
mod oidc;
#[path = "../../idp-fixtures/oidc_idp.rs"]
mod oidc_idp;
mod saml;
mod saml_corpus;
mod scim;
mod upstream_oidc;
