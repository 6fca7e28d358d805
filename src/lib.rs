//! fedgate: a federation broker (SAML and OpenID Connect upstreams, one OpenID Connect issuer
//! downstream) and SCIM provisioning gateway.
pub mod admin;
pub mod app;
pub mod blocking;
pub mod claims;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directory;
pub mod error_code;
pub mod events;
pub mod html;
pub mod http;
pub mod ids;
pub mod issuer;
pub mod keys;
pub mod login;
pub mod metrics;
pub mod net;
pub mod scim;
pub mod store;
pub mod templates;
pub mod tenant;
pub mod traces;
pub mod upstream;
pub mod util;
pub mod validation;
