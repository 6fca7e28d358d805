//! PATCH paths (RFC 7644 §3.5.2): `attrPath / valuePath [subAttr]`, parsed by the filter parser.
use std::fmt;

use crate::filter::{self, Filter, FilterError};
use crate::path::AttrPath;

/// A PATCH operation path (RFC 7644 §3.5.2):
/// `attrPath / valuePath [subAttr]`, e.g. `members`, `name.givenName`,
/// `emails[type eq "work"].value`, `members[value eq "abc"]`.
///
/// Invariant (enforced by the parser): when `filter` is set, `attr.sub_attr`
/// is `None`; `sub_attr` is only set together with `filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchPath {
    /// The attribute (possibly with sub-attribute when there is no filter).
    pub attr: AttrPath,
    /// Value selection filter of a `valuePath`, evaluated against each
    /// element of the multi-valued attribute.
    pub filter: Option<Filter>,
    /// Sub-attribute after the value filter (`emails[...].value`).
    pub sub_attr: Option<String>,
}

impl PatchPath {
    /// A path to a plain attribute (no filter).
    pub fn attr(attr: AttrPath) -> Self {
        Self { attr, filter: None, sub_attr: None }
    }

    /// Parses a PATCH `path` value. Surrounding whitespace is ignored.
    pub fn parse(input: &str) -> Result<Self, FilterError> {
        let (attr, filter, sub_attr) = filter::parse_patch_path(input)?;
        Ok(Self { attr, filter, sub_attr })
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for PatchPath {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::filter::test_util::{attr, cmp, s};
    use crate::filter::CompareOp;

    #[test]
    fn patch_path_display_round_trips() {
        for s in [
            "members",
            "name.givenName",
            "emails[type eq \"work\"].value",
            "members[value eq \"abc\"]",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\" and primary eq true].value",
        ] {
            let p = PatchPath::parse(s).unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(PatchPath::parse(&p.to_string()).unwrap(), p);
        }
    }

    #[test]
    fn patch_paths() {
        let pp = |s: &str| PatchPath::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let path = pp(r#"emails[type eq "work"].value"#);
        assert_eq!(path.attr, attr("emails"));
        assert_eq!(path.filter, Some(cmp("type", CompareOp::Eq, s("work"))));
        assert_eq!(path.sub_attr.as_deref(), Some("value"));
        let path = pp("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager");
        assert_eq!(path.attr.attr, "manager");
        assert!(path.filter.is_none());
        let path = pp(r#"members[value eq "abc"]"#);
        assert!(path.sub_attr.is_none());
        assert_eq!(pp(" name.givenName ").attr, attr("name.givenName"));
        for bad in [
            "",
            "emails[",
            r#"emails[type eq "work"]."#,
            r#"emails[type eq "work"].value.x"#,
            r#"emails[type eq "work"]x"#,
            "emails x",
            r#"name.givenName[type eq "x"]"#,
            r#"emails[type eq "work"].1"#,
        ] {
            assert!(PatchPath::parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
