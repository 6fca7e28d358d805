//! SCIM attribute paths (RFC 7644 §3.10 and the `attrPath` rule of §3.4.2.2), shared by the
//! filter parser, the PATCH engine, projection and the schema lookups. The parser lives in
//! [`crate::filter`] (`AttrPath::parse`); this module only depends on [`crate::urn`].
//!
//! Attribute names and schema URNs are compared ASCII-case-insensitively
//! (RFC 7643 §2.1): the `PartialEq`/`Hash` impls of [`AttrPath`] ignore case,
//! while the original spelling is kept for printing.

use std::fmt;
use std::hash::{Hash, Hasher};

use crate::urn::CORE_SCHEMA_PREFIX;

/// An attribute path: `[schemaURN ":"] attr ["." subAttr]`, e.g. `userName`,
/// `name.givenName`, or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
///
/// Equality and hashing are ASCII-case-insensitive on all three parts.
#[derive(Debug, Clone)]
pub struct AttrPath {
    /// Schema URN prefix as written (without the trailing `:`), if any.
    pub schema_urn: Option<String>,
    /// Attribute name as written.
    pub attr: String,
    /// Sub-attribute name as written, if any.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// A path to a top-level attribute without schema prefix.
    pub fn new(attr: impl Into<String>) -> Self {
        Self { schema_urn: None, attr: attr.into(), sub_attr: None }
    }

    /// A path `attr.sub` without schema prefix.
    pub fn with_sub(attr: impl Into<String>, sub: impl Into<String>) -> Self {
        Self { schema_urn: None, attr: attr.into(), sub_attr: Some(sub.into()) }
    }

    /// Returns the same path qualified with `urn`.
    pub fn in_schema(mut self, urn: impl Into<String>) -> Self {
        self.schema_urn = Some(urn.into());
        self
    }

    /// True when the path has no schema prefix or a core-schema prefix, i.e.
    /// the attribute lives at the top level of the resource JSON.
    pub fn is_core(&self) -> bool {
        self.schema_urn.as_deref().is_none_or(is_core_schema)
    }

    /// The extension schema URN whose JSON object holds this attribute, if the
    /// prefix is not a core schema.
    pub fn extension_urn(&self) -> Option<&str> {
        self.schema_urn.as_deref().filter(|u| !is_core_schema(u))
    }

    /// Case-insensitive comparison of the attribute name.
    pub fn attr_is(&self, name: &str) -> bool {
        self.attr.eq_ignore_ascii_case(name)
    }

    /// Case-insensitive comparison of the sub-attribute name.
    pub fn sub_is(&self, name: &str) -> bool {
        self.sub_attr.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(name))
    }

    /// Lower-cased canonical key, e.g. `name.givenname` or
    /// `urn:...:enterprise:2.0:user:manager.value`; core-schema prefixes are
    /// dropped. Useful for mapping filter attributes to indexed columns.
    pub fn normalized_key(&self) -> String {
        let mut out = String::new();
        if let Some(urn) = self.extension_urn() {
            out.push_str(&urn.to_ascii_lowercase());
            out.push(':');
        }
        out.push_str(&self.attr.to_ascii_lowercase());
        if let Some(sub) = &self.sub_attr {
            out.push('.');
            out.push_str(&sub.to_ascii_lowercase());
        }
        out
    }
}

impl PartialEq for AttrPath {
    fn eq(&self, other: &Self) -> bool {
        fn opt_eq(a: &Option<String>, b: &Option<String>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            }
        }
        opt_eq(&self.schema_urn, &other.schema_urn)
            && self.attr.eq_ignore_ascii_case(&other.attr)
            && opt_eq(&self.sub_attr, &other.sub_attr)
    }
}

impl Eq for AttrPath {}

impl Hash for AttrPath {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.schema_urn.as_ref().map(|s| s.to_ascii_lowercase()).hash(state);
        self.attr.to_ascii_lowercase().hash(state);
        self.sub_attr.as_ref().map(|s| s.to_ascii_lowercase()).hash(state);
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.schema_urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// True when `urn` names a SCIM core schema (`urn:ietf:params:scim:schemas:core:...`).
pub fn is_core_schema(urn: &str) -> bool {
    starts_with_ignore_case(urn, CORE_SCHEMA_PREFIX)
}

/// ASCII-case-insensitive `starts_with`.
pub(crate) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// True for bytes that may appear in an attribute-path token
/// (names, sub-attributes and schema URNs).
pub(crate) fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'$' | b':' | b'.')
}

/// Validates an attribute name: `("$" / ALPHA) *(ALPHA / DIGIT / "-" / "_")`.
/// (`$` is only allowed first, for `$ref`.)
pub(crate) fn validate_name(name: &str) -> Result<(), &'static str> {
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err("empty attribute name"),
        Some(b) if b.is_ascii_alphabetic() || b == b'$' => {}
        Some(_) => return Err("attribute names must start with a letter"),
    }
    if bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(())
    } else {
        Err("attribute names may only contain letters, digits, '-' and '_'")
    }
}

/// Splits one attribute-path token (`[urn:]attr[.sub]`) into an [`AttrPath`].
/// The schema URN is everything before the last `:`; it must itself contain
/// a `:` and have no empty segments.
pub(crate) fn attr_path_from_token(token: &str) -> Result<AttrPath, &'static str> {
    if token.is_empty() {
        return Err("empty attribute path");
    }
    if !token.bytes().all(is_path_byte) {
        return Err("invalid character in attribute path");
    }
    let (schema_urn, rest) = match token.rfind(':') {
        Some(i) => {
            let urn = &token[..i];
            if !urn.contains(':') || urn.split(':').any(str::is_empty) {
                return Err("malformed schema URN prefix");
            }
            (Some(urn.to_string()), &token[i + 1..])
        }
        None => (None, token),
    };
    if rest.is_empty() {
        return Err("missing attribute name after schema URN");
    }
    let (attr, sub_attr) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    validate_name(attr)?;
    if let Some(sub) = sub_attr {
        if sub.contains('.') {
            return Err("at most one sub-attribute level is allowed");
        }
        validate_name(sub)?;
    }
    Ok(AttrPath { schema_urn, attr: attr.to_string(), sub_attr: sub_attr.map(str::to_string) })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::urn::{ENTERPRISE_USER_SCHEMA, USER_SCHEMA};
    use std::collections::HashSet;

    #[test]
    fn parses_simple_sub_and_urn_paths() {
        assert_eq!(AttrPath::parse("userName").unwrap(), AttrPath::new("userName"));
        assert_eq!(AttrPath::parse("name.givenName").unwrap(), AttrPath::with_sub("name", "givenName"));
        let p = AttrPath::parse("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert_eq!(p.schema_urn.as_deref(), Some(ENTERPRISE_USER_SCHEMA));
        assert_eq!(p.attr, "manager");
        assert_eq!(p.sub_attr.as_deref(), Some("value"));
        assert_eq!(p.extension_urn(), Some(ENTERPRISE_USER_SCHEMA));
        assert!(!p.is_core());
        let core = AttrPath::parse("urn:ietf:params:scim:schemas:core:2.0:User:userName").unwrap();
        assert!(core.is_core());
        assert_eq!(core.normalized_key(), "username");
        assert_eq!(AttrPath::parse("  members.$ref ").unwrap().sub_attr.unwrap(), "$ref");
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "",
            "1abc",
            "a.b.c",
            "urn:x",
            "urn::x:attr",
            "urn:x:",
            "a b",
            "emails[type eq \"x\"]",
            "na\u{e9}me",
            "a.",
            ".a",
        ] {
            assert!(AttrPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn equality_and_hash_ignore_case() {
        let a = AttrPath::parse("Name.GivenName").unwrap();
        let b = AttrPath::parse("name.givenname").unwrap();
        assert_eq!(a, b);
        let set: HashSet<_> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert_eq!(a.to_string(), "Name.GivenName");
        assert_ne!(AttrPath::new("name"), AttrPath::with_sub("name", "givenName"));
        assert_ne!(AttrPath::new("name"), AttrPath::new("name").in_schema(USER_SCHEMA));
    }
}
