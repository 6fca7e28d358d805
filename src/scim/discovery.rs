//! `ServiceProviderConfig`, `ResourceTypes` and `Schemas` (RFC 7643 §5-§7): what fedgate
//! actually implements.
use crate::scim::path::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};
use crate::scim::service::MAX_RESULTS;
use serde_json::{json, Value};

const SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RT: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "A per-tenant SCIM token created with POST /admin/v1/tenants/{tenant}/scim-tokens",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
    })
}

pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": [RT], "id": "User", "name": "User", "endpoint": "/Users", "description": "User Account",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": ENTERPRISE_USER_SCHEMA, "required": false}],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")}
        }),
        json!({
            "schemas": [RT], "id": "Group", "name": "Group", "endpoint": "/Groups", "description": "Group",
            "schema": GROUP_SCHEMA, "schemaExtensions": [],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")}
        }),
    ]
}

#[allow(clippy::too_many_arguments)]
fn attr(
    name: &str,
    ty: &str,
    multi: bool,
    required: bool,
    case_exact: bool,
    mutability: &str,
    returned: &str,
    uniqueness: &str,
) -> Value {
    json!({
        "name": name, "type": ty, "multiValued": multi, "description": name, "required": required,
        "caseExact": case_exact, "mutability": mutability, "returned": returned, "uniqueness": uniqueness
    })
}

fn s(name: &str) -> Value {
    attr(name, "string", false, false, false, "readWrite", "default", "none")
}

fn complex(name: &str, multi: bool, subs: Vec<Value>) -> Value {
    let mut a = attr(name, "complex", multi, false, false, "readWrite", "default", "none");
    a["subAttributes"] = Value::Array(subs);
    a
}

fn reference(name: &str, types: &[&str], mutability: &str) -> Value {
    let mut a = attr(name, "reference", false, false, false, mutability, "default", "none");
    a["referenceTypes"] = json!(types);
    a
}

fn multi_sub() -> Vec<Value> {
    vec![
        s("value"),
        s("display"),
        s("type"),
        attr("primary", "boolean", false, false, false, "readWrite", "default", "none"),
    ]
}

pub fn schemas(base: &str) -> Vec<Value> {
    let user_attrs = vec![
        attr("userName", "string", false, true, false, "readWrite", "default", "server"),
        complex(
            "name",
            false,
            vec![
                s("formatted"),
                s("familyName"),
                s("givenName"),
                s("middleName"),
                s("honorificPrefix"),
                s("honorificSuffix"),
            ],
        ),
        s("displayName"),
        s("nickName"),
        reference("profileUrl", &["external"], "readWrite"),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        attr("active", "boolean", false, false, false, "readWrite", "default", "none"),
        attr("password", "string", false, false, false, "writeOnly", "never", "none"),
        complex("emails", true, multi_sub()),
        complex("phoneNumbers", true, multi_sub()),
        complex("ims", true, multi_sub()),
        complex("photos", true, multi_sub()),
        complex(
            "addresses",
            true,
            vec![
                s("formatted"),
                s("streetAddress"),
                s("locality"),
                s("region"),
                s("postalCode"),
                s("country"),
                s("type"),
                attr("primary", "boolean", false, false, false, "readWrite", "default", "none"),
            ],
        ),
        {
            let mut g = complex(
                "groups",
                true,
                vec![
                    attr("value", "string", false, false, false, "readOnly", "default", "none"),
                    reference("$ref", &["User", "Group"], "readOnly"),
                    attr("display", "string", false, false, false, "readOnly", "default", "none"),
                    attr("type", "string", false, false, false, "readOnly", "default", "none"),
                ],
            );
            g["mutability"] = "readOnly".into();
            g
        },
        complex("entitlements", true, multi_sub()),
        complex("roles", true, multi_sub()),
        complex("x509Certificates", true, multi_sub()),
    ];
    let group_attrs = vec![
        attr("displayName", "string", false, true, false, "readWrite", "default", "none"),
        complex(
            "members",
            true,
            vec![
                attr("value", "string", false, false, false, "immutable", "default", "none"),
                reference("$ref", &["User", "Group"], "immutable"),
                attr("display", "string", false, false, false, "readOnly", "default", "none"),
                {
                    let mut t = attr("type", "string", false, false, false, "immutable", "default", "none");
                    t["canonicalValues"] = json!(["User", "Group"]);
                    t
                },
            ],
        ),
    ];
    let ent_attrs = vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
        complex(
            "manager",
            false,
            vec![
                s("value"),
                reference("$ref", &["User"], "readWrite"),
                attr("displayName", "string", false, false, false, "readOnly", "default", "none"),
            ],
        ),
    ];
    let mk = |id: &str, name: &str, attrs: Vec<Value>| {
        json!({"schemas": [SCHEMA], "id": id, "name": name, "description": name, "attributes": attrs,
               "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")}})
    };
    vec![
        mk(USER_SCHEMA, "User", user_attrs),
        mk(GROUP_SCHEMA, "Group", group_attrs),
        mk(ENTERPRISE_USER_SCHEMA, "EnterpriseUser", ent_attrs),
    ]
}

pub fn list(items: Vec<Value>) -> Value {
    json!({"schemas": [LIST], "totalResults": items.len(), "startIndex": 1, "itemsPerPage": items.len(), "Resources": items})
}
