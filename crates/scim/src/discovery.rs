//! `ServiceProviderConfig`, `ResourceTypes` and `Schemas` (RFC 7643 §5-§7), generated from the
//! schema table: what fedgate actually implements.
use serde_json::{json, Map, Value};

use crate::schema::{self, AttrType, Attribute, ResourceType, Schema};
use crate::urn::{LIST_RESPONSE, RESOURCE_TYPE_SCHEMA, SCHEMA_SCHEMA, SERVICE_PROVIDER_CONFIG_SCHEMA};
use crate::MAX_RESULTS;

/// `GET /ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
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

fn resource_type(base: &str, rt: &ResourceType) -> Value {
    let extensions: Vec<Value> =
        rt.extensions.iter().map(|e| json!({"schema": e.schema.id, "required": e.required})).collect();
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA], "id": rt.id, "name": rt.name, "endpoint": rt.endpoint,
        "description": rt.description, "schema": rt.schema.id, "schemaExtensions": extensions,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", rt.id)}
    })
}

/// `GET /ResourceTypes` (each one is also `GET /ResourceTypes/{id}`).
pub fn resource_types(base: &str) -> Vec<Value> {
    schema::resource_types().iter().map(|rt| resource_type(base, rt)).collect()
}

/// An attribute as a schema document lists it (RFC 7643 §7).
fn attribute(a: &Attribute) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), a.name.into());
    m.insert("type".into(), a.ty.as_str().into());
    m.insert("multiValued".into(), a.multi_valued.into());
    m.insert("description".into(), a.name.into());
    m.insert("required".into(), a.required.into());
    m.insert("caseExact".into(), a.case_exact.into());
    m.insert("mutability".into(), a.mutability.as_str().into());
    m.insert("returned".into(), a.returned.as_str().into());
    m.insert("uniqueness".into(), a.uniqueness.as_str().into());
    if a.ty == AttrType::Complex {
        m.insert("subAttributes".into(), a.sub_attributes.iter().map(attribute).collect());
    }
    if a.ty == AttrType::Reference {
        m.insert("referenceTypes".into(), json!(a.reference_types));
    }
    if !a.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), json!(a.canonical_values));
    }
    Value::Object(m)
}

fn schema_document(base: &str, s: &Schema) -> Value {
    let attributes: Vec<Value> = s.attributes.iter().map(attribute).collect();
    json!({"schemas": [SCHEMA_SCHEMA], "id": s.id, "name": s.name, "description": s.description,
           "attributes": attributes,
           "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{}", s.id)}})
}

/// `GET /Schemas` (each one is also `GET /Schemas/{id}`).
pub fn schemas(base: &str) -> Vec<Value> {
    schema::schemas().iter().map(|s| schema_document(base, s)).collect()
}

/// A ListResponse holding every item on one page (the discovery lists).
pub fn list(items: Vec<Value>) -> Value {
    json!({"schemas": [LIST_RESPONSE], "totalResults": items.len(), "startIndex": 1, "itemsPerPage": items.len(), "Resources": items})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::urn::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

    fn attr<'v>(schema: &'v Value, name: &str) -> &'v Value {
        schema["attributes"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap()
    }

    #[test]
    fn documents_follow_the_table() {
        let docs = schemas("https://x/scim/v2/t");
        let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]);
        let user = &docs[0];
        assert_eq!(attr(user, "userName")["uniqueness"], "server");
        assert_eq!(attr(user, "userName")["required"], true);
        assert_eq!(attr(user, "password")["returned"], "never");
        assert_eq!(attr(user, "groups")["mutability"], "readOnly");
        assert_eq!(attr(user, "profileUrl")["referenceTypes"], json!(["external"]));
        assert!(attr(user, "emails").get("referenceTypes").is_none());
        let members = attr(&docs[1], "members");
        assert_eq!(members["subAttributes"][3]["canonicalValues"], json!(["User", "Group"]));
        assert_eq!(docs[2]["meta"]["location"], format!("https://x/scim/v2/t/Schemas/{ENTERPRISE_USER_SCHEMA}"));
        // Common attributes are in no schema document.
        for d in &docs {
            for common in ["id", "externalId", "meta", "schemas"] {
                assert!(d["attributes"].as_array().unwrap().iter().all(|a| a["name"] != common));
            }
        }
        let rts = resource_types("b");
        assert_eq!(rts[0]["schemaExtensions"], json!([{"schema": ENTERPRISE_USER_SCHEMA, "required": false}]));
        assert_eq!(rts[1]["endpoint"], "/Groups");
        assert_eq!(list(rts)["totalResults"], 2);
        assert_eq!(service_provider_config("b")["filter"]["maxResults"], MAX_RESULTS);
    }
}
