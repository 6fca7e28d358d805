//! The table's invariants, and the lists that the code said before the table (kept here to show
//! the table says the same).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use crate::urn::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

fn p(s: &str) -> AttrPath {
    AttrPath::parse(s).unwrap()
}

#[test]
fn table_is_well_formed() {
    fn check(level: &[Attribute], depth: usize) {
        for (i, a) in level.iter().enumerate() {
            assert!(
                level[..i].iter().all(|b| !b.name.eq_ignore_ascii_case(a.name)),
                "{} is listed twice on one level",
                a.name
            );
            assert_eq!(
                a.ty == AttrType::Complex,
                !a.sub_attributes.is_empty(),
                "{}: only complex attributes have sub-attributes",
                a.name
            );
            assert!(a.ty == AttrType::Reference || a.reference_types.is_empty(), "{}", a.name);
            assert!(depth == 0 || a.sub_attributes.is_empty(), "{}: one sub-attribute level only", a.name);
            if a.storage == Storage::Membership {
                assert!(a.multi_valued && a.sub("value").is_some(), "{}", a.name);
            }
            check(a.sub_attributes, depth + 1);
        }
    }
    check(common_attributes(), 0);
    for s in schemas() {
        check(s.attributes, 0);
        assert!(s.attributes.iter().all(|a| common_attribute(a.name).is_none()), "{} repeats a common attribute", s.id);
    }
    for k in ResourceKind::ALL {
        let rel = k.schema().attribute(k.relation()).unwrap();
        assert_eq!(rel.storage, Storage::Membership);
    }
}

/// The names `models.rs` listed for canonical spelling before the table.
const OLD_NAMES: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "meta",
    "userName",
    "name",
    "formatted",
    "familyName",
    "givenName",
    "middleName",
    "honorificPrefix",
    "honorificSuffix",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "value",
    "display",
    "type",
    "primary",
    "$ref",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
    "members",
    "resourceType",
    "created",
    "lastModified",
    "location",
    "version",
];

#[test]
fn canonical_names_are_the_table_names() {
    for n in OLD_NAMES {
        assert_eq!(canonical_name(&n.to_uppercase()), *n);
        assert_eq!(canonical_name(n), *n);
    }
    assert_eq!(canonical_name("shoeSize"), "shoeSize");
    let mut all: Vec<&str> = all_attributes().map(|a| a.name).collect();
    all.sort_unstable();
    all.dedup();
    let mut old = OLD_NAMES.to_vec();
    old.sort_unstable();
    assert_eq!(all, old);
    assert_eq!(canonical_urn("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"), USER_SCHEMA);
    assert_eq!(canonical_urn("urn:x:y"), "urn:x:y");
}

#[test]
fn multi_valued_and_boolean_attributes() {
    let multi: Vec<&str> = multi_valued_core_attributes().map(|a| a.name).collect();
    assert_eq!(
        multi,
        [
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
            "members"
        ]
    );
    assert!(is_multi_valued("MEMBERS") && is_multi_valued("groups") && !is_multi_valued("schemas"));
    assert!(!is_multi_valued("name") && !is_multi_valued("manager"));
    for b in ["active", "primary", "Active", "PRIMARY"] {
        assert!(is_boolean_name(b), "{b}");
    }
    for n in ["value", "type", "userName", "x"] {
        assert!(!is_boolean_name(n), "{n}");
    }
}

/// Before the table, PATCH compared exactly: `id`, `externalId`, any `$ref`, and `value` of
/// `members` / `groups`.
#[test]
fn exact_comparison_follows_the_table() {
    for exact in [
        "id",
        "externalId",
        "members.value",
        "groups.value",
        "members.$ref",
        "groups.$ref",
        "emails.$ref",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.$ref",
        "urn:example:ext:1.0:User:thing.$ref",
    ] {
        assert!(compares_exactly(&p(exact)), "{exact}");
    }
    for not in [
        "userName",
        "emails.value",
        "emails.type",
        "members.display",
        "members.type",
        "groups.display",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        "name.givenName",
        "x.value",
        "displayName",
    ] {
        assert!(!compares_exactly(&p(not)), "{not}");
    }
}

#[test]
fn resolve_by_resource_kind() {
    let col = |k, s: &str| match resolve(k, &p(s)) {
        Some((_, Some(sub))) => sub.storage,
        Some((a, None)) => a.storage,
        None => Storage::Document,
    };
    use Compare::*;
    assert_eq!(col(ResourceKind::User, "userName"), Storage::Column { name: "user_name_lower", compare: Lowercased });
    assert_eq!(col(ResourceKind::Group, "userName"), Storage::Document);
    assert_eq!(
        col(ResourceKind::Group, "DisplayName"),
        Storage::Column { name: "display_name_lower", compare: Lowercased }
    );
    assert_eq!(col(ResourceKind::User, "displayName"), Storage::Document);
    assert_eq!(col(ResourceKind::Group, "meta.created"), Storage::Column { name: "created_at", compare: EpochSeconds });
    assert_eq!(col(ResourceKind::User, "meta.resourceType"), Storage::ResourceTypeName);
    assert_eq!(
        col(ResourceKind::User, "urn:ietf:params:scim:schemas:core:2.0:User:id"),
        Storage::Column { name: "id", compare: Exact }
    );
    assert_eq!(col(ResourceKind::User, "groups"), Storage::Membership);
    assert_eq!(col(ResourceKind::Group, "members.value"), Storage::Column { name: "user_id", compare: Exact });
    assert!(resolve(ResourceKind::User, &p("userName.x")).is_none());
    assert!(resolve(ResourceKind::User, &p("urn:x:y:1.0:User:id")).is_none());
    assert!(resolve(ResourceKind::User, &p(&format!("{ENTERPRISE_USER_SCHEMA}:manager.value"))).is_some());
    assert_eq!(ResourceKind::Group.schema().id, GROUP_SCHEMA);
    assert_eq!(ResourceKind::User.endpoint(), "/Users");
}
