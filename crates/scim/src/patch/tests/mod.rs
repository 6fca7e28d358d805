//! PATCH tests: request parsing, paths, value filters, path-less values, multi-valued
//! attributes, members, the enterprise manager, mutability, and properties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use serde_json::{json, Value};

use super::*;
use crate::urn::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

mod booleans_and_paths;
mod members_and_manager;
mod mutability;
mod pathless_and_multi;
mod properties;
mod request;
mod value_filters;

const ENT: &str = ENTERPRISE_USER_SCHEMA;

pub(super) fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
}

pub(super) fn patch(resource: &Value, ops: Value) -> PatchOutcome {
    apply_patch(resource, &body(ops)).unwrap_or_else(|e| panic!("patch failed: {e}"))
}

pub(super) fn patch_err(resource: &Value, ops: Value) -> PatchError {
    match apply_patch(resource, &body(ops)) {
        Err(e) => e,
        Ok(o) => panic!("expected an error, got {}", o.resource),
    }
}

pub(super) fn full_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "bjensen",
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen III"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "primary": true}],
        ENT: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
    })
}

pub(super) fn bare_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA],
        "id": "u-1",
        "userName": "alice@example.com",
        "active": true
    })
}

pub(super) fn group() -> Value {
    json!({
        "schemas": [GROUP_SCHEMA],
        "id": "g-1",
        "displayName": "Engineering",
        "members": [{"value": "u-1", "display": "Alice"}, {"value": "u-2"}],
        "meta": {"resourceType": "Group"}
    })
}
