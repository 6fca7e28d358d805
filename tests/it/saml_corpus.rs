//! The SAML attack corpus (idp-fixtures/saml/corpus): its generator and its contract test.
#[path = "../../idp-fixtures/saml_idp.rs"]
pub mod saml_idp;
