//! One integration test binary: the real app over real HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod admin;
mod admin_keys;
mod browser_security;
mod claim_rules;
mod common;
mod console;
mod demo_saml;
mod demo_trust;
mod email_trust;
mod events;
#[path = "../../idp-fixtures/github.rs"]
mod github_fixture;
mod idp_console;
mod keys;
mod keyset_plans;
mod layers;
mod limits;
mod machine;
mod mfa;
mod oidc;
#[path = "../../idp-fixtures/oidc_idp.rs"]
mod oidc_idp;
mod openapi;
mod ops;
mod portal;
mod portal_domains;
mod portal_scim;
mod request_context;
mod saml;
mod saml_corpus;
mod saml_hostile;
mod scim;
mod scim_groups_scale;
mod scim_growth;
mod social;
mod store_admin;
mod store_issuer;
mod token_hook;
mod unavailable;
mod upstream_checks;
mod upstream_oidc;
mod verify;
