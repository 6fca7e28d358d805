//! Any body: PATCH parsing and application never panic; a successful PATCH of a User yields an
//! object that the User normalization accepts or rejects with a SCIM error (never a panic).
#![no_main]
use fedgate_scim::{patch, resource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = patch::parse_request_slice(data) else { return };
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "usr_1", "userName": "bjensen", "active": true,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
    });
    let group = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "grp_1", "displayName": "G",
        "members": [{"value": "usr_1"}, {"value": "usr_2"}]
    });
    if let Ok(out) = patch::apply(&user, &req) {
        let _ = resource::normalize_user(out.resource);
    }
    if let Ok(out) = patch::apply(&group, &req) {
        let _ = resource::normalize_group(out.resource);
    }
});
