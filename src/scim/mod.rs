//! SCIM 2.0 (RFC 7643/7644): filter parser, attribute paths and the PATCH engine. Pure: no I/O.
pub mod filter;
pub mod patch;
pub mod path;
