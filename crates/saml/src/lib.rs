//! fedgate's SAML 2.0 protocol core, the parts with no HTTP, no database and no application
//! state: the XML gate in front of roxmltree and libxml2 ([`xml`]), the SAMLResponse checks
//! ([`validate`]), assertion decryption ([`decrypt`]) and IdP metadata ([`metadata`]).
//! The server re-exports these modules as `fedgate::upstream::saml::{xml, validate, decrypt,
//! metadata}`; the fuzz targets `saml_acs` and `xml_differential` build on this crate alone.
pub mod decrypt;
pub mod metadata;
pub mod text;
pub mod validate;
pub mod xml;
