//! Helpers shared by the filter tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::{json, Value};

use super::{parse, CompValue, CompareOp, Filter};
use crate::path::AttrPath;

pub fn p(s: &str) -> Filter {
    parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}
pub fn attr(s: &str) -> AttrPath {
    AttrPath::parse(s).unwrap()
}
pub fn s(v: &str) -> CompValue {
    CompValue::Str(v.to_string())
}
pub fn cmp(path: &str, op: CompareOp, value: CompValue) -> Filter {
    Filter::compare(attr(path), op, value)
}
pub fn pr(path: &str) -> Filter {
    Filter::Present(attr(path))
}
pub fn round_trip(f: &Filter) {
    let printed = f.to_string();
    assert_eq!(&parse(&printed).unwrap(), f, "printed as {printed}");
}

/// The RFC 7643 example user, with an enterprise extension and a number.
pub fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "BJensen",
        "userName": "bjensen@example.com",
        "name": {"familyName": "Jensen", "givenName": "Barbara", "middleName": ""},
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "loginCount": 42,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "manager": {"value": "26118915", "displayName": "John Smith"}
        },
        "meta": {"lastModified": "2011-05-13T04:42:34Z", "created": "2010-01-23T04:56:22.000+02:00"}
    })
}
