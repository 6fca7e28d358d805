//! The table: every schema, attribute and resource type fedgate serves, and where the server
//! keeps each attribute. The one place the SCIM schema is said; see [`super`] for who reads it.
//!
//! Defaults ([`Attribute::new`]): single-valued, optional, `caseExact: false`, `readWrite`,
//! returned by default, not unique, kept in the stored document. Descriptions in the schema
//! documents are the attribute names.
//!
//! `caseExact` is what the schema documents advertise (RFC 7643's values); the server also
//! compares exactly what it keeps in case-exact columns and references
//! ([`Attribute::compares_exactly`]).
use super::Compare::{Boolean as BooleanColumn, EpochSeconds, Exact, Lowercased};
use super::Mutability::{Immutable, ReadOnly, WriteOnly};
use super::{AttrType, Attribute, ResourceKind, ResourceType, Returned, Schema, SchemaExtension, Storage, Uniqueness};
use crate::urn::{ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

const fn string(name: &'static str) -> Attribute {
    Attribute::new(name, AttrType::String)
}
const fn boolean(name: &'static str) -> Attribute {
    Attribute::new(name, AttrType::Boolean)
}
const fn date_time(name: &'static str) -> Attribute {
    Attribute::new(name, AttrType::DateTime)
}
const fn reference(name: &'static str, types: &'static [&'static str]) -> Attribute {
    Attribute::new(name, AttrType::Reference).with_reference_types(types)
}
const fn complex(name: &'static str, subs: &'static [Attribute]) -> Attribute {
    Attribute::new(name, AttrType::Complex).with_sub_attributes(subs)
}

// --- common attributes (RFC 7643 §3.1) ---------------------------------------------------------

const META: &[Attribute] = &[
    string("resourceType").exact().with_mutability(ReadOnly).with_storage(Storage::ResourceTypeName),
    date_time("created").with_mutability(ReadOnly).column("created_at", EpochSeconds),
    date_time("lastModified").with_mutability(ReadOnly).column("updated_at", EpochSeconds),
    reference("location", &["uri"]).with_mutability(ReadOnly).with_storage(Storage::Derived),
    string("version").exact().with_mutability(ReadOnly).with_storage(Storage::Derived),
];

/// `id`, `externalId`, `meta` and `schemas`: in every resource, in no schema document.
pub const COMMON: &[Attribute] = &[
    // RFC 7643 says readOnly; fedgate accepts the resource's own id in a path-less PATCH value
    // and refuses any other with `mutability` ("immutable").
    string("id").exact().with_mutability(Immutable).with_returned(Returned::Always).column("id", Exact),
    string("externalId").exact().column("external_id", Exact),
    complex("meta", META).with_mutability(ReadOnly).with_storage(Storage::Derived),
    // Multi-valued in the RFC; fedgate rebuilds it on every write (the core schema and the
    // extensions present) and never treats it as a multi-valued attribute.
    reference("schemas", &["uri"]).with_mutability(ReadOnly),
];

// --- urn:ietf:params:scim:schemas:core:2.0:User (RFC 7643 §4.1) --------------------------------

const NAME: &[Attribute] = &[
    string("formatted"),
    string("familyName"),
    string("givenName"),
    string("middleName"),
    string("honorificPrefix"),
    string("honorificSuffix"),
];

/// The sub-attributes of the plain multi-valued attributes (RFC 7643 §2.4).
const MULTI_VALUED: &[Attribute] = &[string("value"), string("display"), string("type"), boolean("primary")];

const ADDRESS: &[Attribute] = &[
    string("formatted"),
    string("streetAddress"),
    string("locality"),
    string("region"),
    string("postalCode"),
    string("country"),
    string("type"),
    boolean("primary"),
];

/// A user's groups: rows of the membership table (`value` is its `group_id`).
const USER_GROUPS: &[Attribute] = &[
    string("value").with_mutability(ReadOnly).column("group_id", Exact),
    reference("$ref", &["User", "Group"]).with_mutability(ReadOnly).with_storage(Storage::Derived),
    string("display").with_mutability(ReadOnly).with_storage(Storage::Derived),
    string("type").with_mutability(ReadOnly).with_storage(Storage::Derived),
];

const USER: &[Attribute] = &[
    string("userName").mandatory().with_uniqueness(Uniqueness::Server).column("user_name_lower", Lowercased),
    complex("name", NAME),
    string("displayName"),
    string("nickName"),
    reference("profileUrl", &["external"]),
    string("title"),
    string("userType"),
    string("preferredLanguage"),
    string("locale"),
    string("timezone"),
    boolean("active").column("active", BooleanColumn),
    string("password").with_mutability(WriteOnly).with_returned(Returned::Never).with_storage(Storage::Discarded),
    complex("emails", MULTI_VALUED).multi(),
    complex("phoneNumbers", MULTI_VALUED).multi(),
    complex("ims", MULTI_VALUED).multi(),
    complex("photos", MULTI_VALUED).multi(),
    complex("addresses", ADDRESS).multi(),
    complex("groups", USER_GROUPS).multi().with_mutability(ReadOnly).with_storage(Storage::Membership),
    complex("entitlements", MULTI_VALUED).multi(),
    complex("roles", MULTI_VALUED).multi(),
    complex("x509Certificates", MULTI_VALUED).multi(),
];

// --- urn:ietf:params:scim:schemas:core:2.0:Group (RFC 7643 §4.2) -------------------------------

/// A group's members: rows of the membership table (`value` is its `user_id`).
const MEMBERS: &[Attribute] = &[
    string("value").with_mutability(Immutable).column("user_id", Exact),
    reference("$ref", &["User", "Group"]).with_mutability(Immutable).with_storage(Storage::Derived),
    string("display").with_mutability(ReadOnly).with_storage(Storage::Derived),
    string("type").with_mutability(Immutable).with_canonical_values(&["User", "Group"]).with_storage(Storage::Derived),
];

const GROUP: &[Attribute] = &[
    string("displayName").mandatory().column("display_name_lower", Lowercased),
    complex("members", MEMBERS).multi().with_storage(Storage::Membership),
];

// --- urn:ietf:params:scim:schemas:extension:enterprise:2.0:User (RFC 7643 §4.3) ----------------

const MANAGER: &[Attribute] =
    &[string("value"), reference("$ref", &["User"]), string("displayName").with_mutability(ReadOnly)];

const ENTERPRISE_USER: &[Attribute] = &[
    string("employeeNumber"),
    string("costCenter"),
    string("organization"),
    string("division"),
    string("department"),
    complex("manager", MANAGER),
];

// --- schemas and resource types -----------------------------------------------------------------

pub const USER_SCHEMA_DEF: Schema = Schema { id: USER_SCHEMA, name: "User", description: "User", attributes: USER };
pub const GROUP_SCHEMA_DEF: Schema =
    Schema { id: GROUP_SCHEMA, name: "Group", description: "Group", attributes: GROUP };
pub const ENTERPRISE_USER_SCHEMA_DEF: Schema = Schema {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "EnterpriseUser",
    attributes: ENTERPRISE_USER,
};

/// In the order of `/Schemas`.
pub const SCHEMAS: &[Schema] = &[USER_SCHEMA_DEF, GROUP_SCHEMA_DEF, ENTERPRISE_USER_SCHEMA_DEF];

pub const USER_RESOURCE: ResourceType = ResourceType {
    kind: ResourceKind::User,
    id: "User",
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER_SCHEMA_DEF,
    extensions: &[SchemaExtension { schema: &ENTERPRISE_USER_SCHEMA_DEF, required: false }],
};

pub const GROUP_RESOURCE: ResourceType = ResourceType {
    kind: ResourceKind::Group,
    id: "Group",
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP_SCHEMA_DEF,
    extensions: &[],
};
