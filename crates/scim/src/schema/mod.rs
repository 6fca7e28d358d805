//! The SCIM schema, said once (RFC 7643 §2, §4, §7): every attribute fedgate knows, with its
//! characteristics and, as plain data, where the server keeps it.
//!
//! The data is in [`table`]; everything else reads it:
//! * resource normalization and projection ([`crate::resource`]): canonical spelling of names
//!   and URNs, which attributes are multi-valued, which are dropped on write;
//! * PATCH ([`crate::patch`]): multi-valued and boolean attributes, mutability of the common
//!   attributes, which values compare exactly;
//! * discovery ([`crate::discovery`]): `/Schemas`, `/ResourceTypes` and
//!   `/ServiceProviderConfig` are generated from it;
//! * the server's filter -> SQL translation (`src/store/scim_sql.rs`): the indexed column an
//!   attribute maps to, and which attributes live in the membership table.
//!
//! Adding an attribute is one entry in [`table`] (see docs/scim.md, "Adding an attribute").
use std::sync::OnceLock;

use crate::path::AttrPath;

pub mod table;

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    /// The name used in schema documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

/// Whether and how a client may write an attribute (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
            Self::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute is returned (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Default => "default",
            Self::Request => "request",
        }
    }
}

/// How unique a value is (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Server => "server",
            Self::Global => "global",
        }
    }
}

/// How an indexed column compares with a filter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Case-exact text (ids).
    Exact,
    /// A lower-cased copy of the value: compared with the lower-cased filter value.
    Lowercased,
    /// A boolean column.
    Boolean,
    /// Unix seconds, compared with an RFC 3339 date-time.
    EpochSeconds,
}

/// Where the server keeps an attribute. Plain data: the server's SQL translation reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In the stored resource document (JSON), under the attribute's canonical name.
    Document,
    /// An indexed column of the resource's row; for a sub-attribute of a [`Storage::Membership`]
    /// attribute, a column of the membership row.
    Column { name: &'static str, compare: Compare },
    /// The resource type's name (`meta.resourceType`): a constant per table.
    ResourceTypeName,
    /// Not a column and not in the document: derived when the resource is rendered
    /// (`meta.location`, the display name of a member).
    Derived,
    /// The membership table (a Group's `members`, a User's `groups`), never the document.
    Membership,
    /// Never stored (the write-only `password`).
    Discarded,
}

/// One attribute or sub-attribute (RFC 7643 §7 "attributes").
#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
    pub storage: Storage,
}

impl Attribute {
    /// A single-valued, optional, case-insensitive, read-write attribute returned by default,
    /// kept in the document: what an attribute is unless the table says otherwise.
    pub const fn new(name: &'static str, ty: AttrType) -> Self {
        Self {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            storage: Storage::Document,
        }
    }
    pub const fn multi(self) -> Self {
        Self { multi_valued: true, ..self }
    }
    pub const fn mandatory(self) -> Self {
        Self { required: true, ..self }
    }
    pub const fn exact(self) -> Self {
        Self { case_exact: true, ..self }
    }
    pub const fn with_mutability(self, mutability: Mutability) -> Self {
        Self { mutability, ..self }
    }
    pub const fn with_returned(self, returned: Returned) -> Self {
        Self { returned, ..self }
    }
    pub const fn with_uniqueness(self, uniqueness: Uniqueness) -> Self {
        Self { uniqueness, ..self }
    }
    pub const fn with_canonical_values(self, canonical_values: &'static [&'static str]) -> Self {
        Self { canonical_values, ..self }
    }
    pub const fn with_reference_types(self, reference_types: &'static [&'static str]) -> Self {
        Self { reference_types, ..self }
    }
    pub const fn with_sub_attributes(self, sub_attributes: &'static [Attribute]) -> Self {
        Self { sub_attributes, ..self }
    }
    pub const fn with_storage(self, storage: Storage) -> Self {
        Self { storage, ..self }
    }
    pub const fn column(self, name: &'static str, compare: Compare) -> Self {
        self.with_storage(Storage::Column { name, compare })
    }

    /// The sub-attribute `name` (case-insensitive).
    pub fn sub(&self, name: &str) -> Option<&'static Attribute> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether the server compares values of this attribute case-exactly: when the schema says
    /// `caseExact`, when it is a reference (a URI), or when it is kept in a case-exact column
    /// (ids: `id`, a member's `value`). What PATCH value filters and duplicate checks use; the
    /// SQL translation reads [`Storage`] directly.
    pub fn compares_exactly(&self) -> bool {
        self.case_exact
            || self.ty == AttrType::Reference
            || matches!(self.storage, Storage::Column { compare: Compare::Exact, .. })
    }
}

/// A schema (RFC 7643 §7).
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The schema URN.
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

impl Schema {
    /// The attribute `name` (case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema extension of a resource type.
#[derive(Debug, Clone, Copy)]
pub struct SchemaExtension {
    pub schema: &'static Schema,
    pub required: bool,
}

/// The two resource types fedgate serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    /// Both, in the order of `/ResourceTypes`.
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

    pub fn resource_type(self) -> &'static ResourceType {
        match self {
            Self::User => &table::USER_RESOURCE,
            Self::Group => &table::GROUP_RESOURCE,
        }
    }
    /// `User` / `Group`: `meta.resourceType` and the `/ResourceTypes/{id}` id.
    pub fn name(self) -> &'static str {
        self.resource_type().name
    }
    /// `/Users` / `/Groups`.
    pub fn endpoint(self) -> &'static str {
        self.resource_type().endpoint
    }
    /// The core schema.
    pub fn schema(self) -> &'static Schema {
        self.resource_type().schema
    }
    /// The multi-valued attribute kept in the membership table (`groups` / `members`).
    pub fn relation(self) -> &'static str {
        match self {
            Self::User => "groups",
            Self::Group => "members",
        }
    }
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone, Copy)]
pub struct ResourceType {
    pub kind: ResourceKind,
    pub id: &'static str,
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    pub extensions: &'static [SchemaExtension],
}

/// Every schema, in the order of `/Schemas`.
pub fn schemas() -> &'static [Schema] {
    table::SCHEMAS
}

/// Both resource types, in the order of `/ResourceTypes`.
pub fn resource_types() -> [&'static ResourceType; 2] {
    ResourceKind::ALL.map(ResourceKind::resource_type)
}

/// The schema with URN `urn` (case-insensitive).
pub fn schema(urn: &str) -> Option<&'static Schema> {
    schemas().iter().find(|s| s.id.eq_ignore_ascii_case(urn))
}

/// The common attributes (RFC 7643 §3.1: `id`, `externalId`, `meta`, and `schemas`), part of
/// every resource and of no schema document.
pub fn common_attributes() -> &'static [Attribute] {
    table::COMMON
}

/// The common attribute `name` (case-insensitive).
pub fn common_attribute(name: &str) -> Option<&'static Attribute> {
    common_attributes().iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// A core-schema attribute by name, in the User schema and then the Group schema: what code
/// that does not know the resource type reads (PATCH, the multi-valued check of normalization).
/// Common attributes are not included.
pub fn core_attribute(name: &str) -> Option<&'static Attribute> {
    ResourceKind::ALL.iter().find_map(|k| k.schema().attribute(name))
}

/// Whether a core attribute is multi-valued.
pub fn is_multi_valued(name: &str) -> bool {
    core_attribute(name).is_some_and(|a| a.multi_valued)
}

/// The multi-valued core attributes, User's then Group's, in table order.
pub fn multi_valued_core_attributes() -> impl Iterator<Item = &'static Attribute> {
    ResourceKind::ALL.into_iter().flat_map(|k| k.schema().attributes.iter()).filter(|a| a.multi_valued)
}

/// Every attribute and sub-attribute of the table (common, then each schema's).
fn all_attributes() -> impl Iterator<Item = &'static Attribute> {
    common_attributes()
        .iter()
        .chain(schemas().iter().flat_map(|s| s.attributes.iter()))
        .flat_map(|a| std::iter::once(a).chain(a.sub_attributes.iter()))
}

/// Whether some attribute or sub-attribute named `name` is a boolean (clients send `"True"`).
pub fn is_boolean_name(name: &str) -> bool {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            let mut v: Vec<&str> = all_attributes().filter(|a| a.ty == AttrType::Boolean).map(|a| a.name).collect();
            v.dedup();
            v
        })
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// The canonical spelling of a known attribute or sub-attribute name; unknown names are returned
/// as given.
pub fn canonical_name(n: &str) -> &str {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut v: Vec<&'static str> = Vec::new();
        for a in all_attributes() {
            if !v.contains(&a.name) {
                v.push(a.name);
            }
        }
        v
    });
    names.iter().find(|k| k.eq_ignore_ascii_case(n)).copied().unwrap_or(n)
}

/// The canonical spelling of a known schema URN; unknown URNs are returned as given.
pub fn canonical_urn(u: &str) -> String {
    schema(u).map(|s| s.id.to_string()).unwrap_or_else(|| u.to_string())
}

/// What an attribute path names in a resource of `kind`: the attribute (a common attribute, one
/// of the kind's core schema, or one of a known extension) and the sub-attribute. `None` when
/// the table does not know the attribute, or knows it but not the sub-attribute.
pub fn resolve(kind: ResourceKind, path: &AttrPath) -> Option<(&'static Attribute, Option<&'static Attribute>)> {
    let attr = match path.extension_urn() {
        Some(urn) => schema(urn)?.attribute(&path.attr)?,
        None => common_attribute(&path.attr).or_else(|| kind.schema().attribute(&path.attr))?,
    };
    match &path.sub_attr {
        None => Some((attr, None)),
        Some(sub) => Some((attr, Some(attr.sub(sub)?))),
    }
}

/// Whether PATCH compares values at `path` (`attr.sub`, the element path of a value filter)
/// case-exactly: [`Attribute::compares_exactly`] of what it names, where the attribute is a core
/// one or one of a known extension. A sub-attribute named `$ref` is a reference (RFC 7643
/// §2.4) even where the table does not list it.
pub fn compares_exactly(path: &AttrPath) -> bool {
    let attr = match path.extension_urn() {
        Some(urn) => schema(urn).and_then(|s| s.attribute(&path.attr)),
        None => common_attribute(&path.attr).or_else(|| core_attribute(&path.attr)),
    };
    match &path.sub_attr {
        None => attr.is_some_and(Attribute::compares_exactly),
        Some(sub) => match attr.and_then(|a| a.sub(sub)) {
            Some(s) => s.compares_exactly(),
            None => sub.eq_ignore_ascii_case("$ref"),
        },
    }
}

#[cfg(test)]
mod tests;
