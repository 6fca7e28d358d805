//! Pure functions: the attributes of a validated SAML assertion become an [`UpstreamIdentity`],
//! following a vendor preset and the connection's attribute mapping. No I/O, no XML: the SAML
//! connector validates the Response (signature, conditions, replay...) and hands over a
//! [`SamlAssertionView`] of the one signed assertion it read.
//!
//! Rules (documented for operators in docs/connections/saml.md):
//! - Attribute names are matched exactly first, then ASCII case-insensitively. Each preset lists,
//!   per field, candidate attribute names in order; the first present one wins. A name in the
//!   connection's [`AttributeMapping`] replaces the preset's candidates for that field.
//! - Subject: the custom `subject` attribute (required to be present when configured); else, for
//!   Entra ID, `{tenantid}:{objectidentifier}`; else a persistent NameID; else a preset subject
//!   attribute (generic: SAML subject-id / pairwise-id, eduPersonUniqueId); else any other
//!   non-transient NameID. A transient NameID is never a subject.
//! - Email: the mapped/preset attribute, else the NameID when its format is emailAddress (or
//!   unspecified and it looks like an address). Google Workspace: the NameID first.
//! - `email_verified`: SAML has no such statement, and fedgate links accounts by verified email,
//!   so an IdP that lets a person choose their own email address (the nOAuth takeover) must not
//!   be believed by default. Verified only when the domain is in `trusted_email_domains`, or for
//!   Google Workspace when the email is the NameID (the primary email, in a domain the Workspace
//!   organization has verified).
use super::oidc::{Mapped, Policy, Rejected};
use super::UpstreamIdentity;
use crate::error_code::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Vendor presets: which attribute names each IdP uses for each field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SamlPreset {
    /// The union of common names (LDAP/X.500 OIDs, eduPerson, ws/2005 claim URIs, plain names).
    #[default]
    Generic,
    Okta,
    /// Microsoft Entra ID: subject `tenantid:objectidentifier`, tenant checked, groups overage noted.
    Entra,
    /// Google Workspace: no default attributes; the NameID is the primary email (verified).
    Google,
    /// Active Directory Federation Services: ws/2005 claim URIs, `claims/Group`, `role`.
    Adfs,
    Onelogin,
    /// PingFederate / PingOne.
    Ping,
    Jumpcloud,
    Keycloak,
}

impl SamlPreset {
    pub const ALL: [SamlPreset; 9] = [
        SamlPreset::Generic,
        SamlPreset::Okta,
        SamlPreset::Entra,
        SamlPreset::Google,
        SamlPreset::Adfs,
        SamlPreset::Onelogin,
        SamlPreset::Ping,
        SamlPreset::Jumpcloud,
        SamlPreset::Keycloak,
    ];

    /// The lowercase name used in the API (`"entra"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SamlPreset::Generic => "generic",
            SamlPreset::Okta => "okta",
            SamlPreset::Entra => "entra",
            SamlPreset::Google => "google",
            SamlPreset::Adfs => "adfs",
            SamlPreset::Onelogin => "onelogin",
            SamlPreset::Ping => "ping",
            SamlPreset::Jumpcloud => "jumpcloud",
            SamlPreset::Keycloak => "keycloak",
        }
    }
}

/// Attribute names that override the preset, per field (`None`: use the preset's candidates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeMapping {
    /// Attribute holding a stable, unique user id. When set it must be present in every assertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Multi-valued: every value is a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

/// Longest attribute name accepted in an [`AttributeMapping`].
pub const MAX_ATTRIBUTE_NAME: usize = 256;
/// Longest subject accepted (as in [`crate::claims::normalize`]).
const MAX_SUBJECT: usize = 512;

impl AttributeMapping {
    fn fields(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("subject", self.subject.as_deref()),
            ("email", self.email.as_deref()),
            ("name", self.name.as_deref()),
            ("given_name", self.given_name.as_deref()),
            ("family_name", self.family_name.as_deref()),
            ("groups", self.groups.as_deref()),
        ]
    }

    fn get(&self, field: Field) -> Option<&str> {
        match field {
            Field::Subject => self.subject.as_deref(),
            Field::Email => self.email.as_deref(),
            Field::Name => self.name.as_deref(),
            Field::GivenName => self.given_name.as_deref(),
            Field::FamilyName => self.family_name.as_deref(),
            Field::Groups => self.groups.as_deref(),
        }
    }

    /// Every name given must be non-empty, at most 256 characters, without control characters
    /// or surrounding whitespace. The error names the field (`attribute_mapping.email: ...`).
    pub fn validate(&self) -> Result<(), String> {
        for (field, v) in self.fields() {
            let Some(v) = v else { continue };
            let problem = if v.trim().is_empty() {
                Some("must not be empty".to_string())
            } else if v.chars().count() > MAX_ATTRIBUTE_NAME {
                Some(format!("must be at most {MAX_ATTRIBUTE_NAME} characters"))
            } else if v.chars().any(char::is_control) {
                Some("must not contain control characters".to_string())
            } else if v.trim() != v {
                Some("must not start or end with whitespace".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                return Err(format!("attribute_mapping.{field}: {p}"));
            }
        }
        Ok(())
    }
}

/// What the SAML connector read from the one validated (signed, decrypted) assertion.
#[derive(Debug, Clone, Copy)]
pub struct SamlAssertionView<'a> {
    /// The assertion's Issuer (the IdP entity ID).
    pub issuer: &'a str,
    pub name_id: Option<&'a str>,
    /// NameID `Format`; `None` means unspecified.
    pub name_id_format: Option<&'a str>,
    /// Attribute `Name` → every `AttributeValue` text, in document order.
    pub attributes: &'a BTreeMap<String, Vec<String>>,
    /// `AuthnContextClassRef` of the AuthnStatement.
    pub authn_context: Option<&'a str>,
    pub session_index: Option<&'a str>,
}

/// A field of the normalized identity that attributes can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Subject,
    Email,
    Name,
    GivenName,
    FamilyName,
    Groups,
}

impl Field {
    pub const ALL: [Field; 6] =
        [Field::Subject, Field::Email, Field::Name, Field::GivenName, Field::FamilyName, Field::Groups];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Subject => "subject",
            Field::Email => "email",
            Field::Name => "name",
            Field::GivenName => "given_name",
            Field::FamilyName => "family_name",
            Field::Groups => "groups",
        }
    }
}

pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
const NAMEID_ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

// Microsoft claim URIs (Entra ID and AD FS).
const WS_EMAIL: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
const WS_GIVEN: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname";
const WS_SURNAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname";
const WS_NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
const WS_UPN: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn";
const MS_DISPLAYNAME: &str = "http://schemas.microsoft.com/identity/claims/displayname";
const MS_GROUPS: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";
const MS_ROLE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
const ADFS_GROUP: &str = "http://schemas.xmlsoap.org/claims/Group";
pub const ENTRA_TENANT_ID: &str = "http://schemas.microsoft.com/identity/claims/tenantid";
pub const ENTRA_OBJECT_ID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
pub const ENTRA_GROUPS_LINK: &str = "http://schemas.microsoft.com/claims/groups.link";
const MS_AUTHN_METHODS: &str = "http://schemas.microsoft.com/claims/authnmethodsreferences";

// LDAP / X.500 / eduPerson / SAML subject identifier attribute names (urn:oid form).
const OID_MAIL: &str = "urn:oid:0.9.2342.19200300.100.1.3";
const OID_PKCS9_EMAIL: &str = "urn:oid:1.2.840.113549.1.9.1";
const OID_GIVEN_NAME: &str = "urn:oid:2.5.4.42";
const OID_SN: &str = "urn:oid:2.5.4.4";
const OID_CN: &str = "urn:oid:2.5.4.3";
const OID_DISPLAY_NAME: &str = "urn:oid:2.16.840.1.113730.3.1.241";
const OID_IS_MEMBER_OF: &str = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1";
const OID_EDU_UNIQUE_ID: &str = "urn:oid:1.3.6.1.4.1.5923.1.1.1.13";
const SAML_SUBJECT_ID: &str = "urn:oasis:names:tc:SAML:attribute:subject-id";
const SAML_PAIRWISE_ID: &str = "urn:oasis:names:tc:SAML:attribute:pairwise-id";

/// The candidate attribute names of a preset for a field, in order of preference. Subject
/// candidates are consulted only after a persistent NameID (see the module docs).
pub fn candidates(preset: SamlPreset, field: Field) -> &'static [&'static str] {
    use Field::*;
    use SamlPreset::*;
    match (preset, field) {
        (Generic, Subject) => &[SAML_SUBJECT_ID, SAML_PAIRWISE_ID, OID_EDU_UNIQUE_ID, "eduPersonUniqueId"],
        (Generic, Email) => {
            &["email", "mail", "emailAddress", OID_MAIL, OID_PKCS9_EMAIL, WS_EMAIL, "User.email", "email_address"]
        }
        (Generic, GivenName) => {
            &["givenName", "given_name", "firstName", "first_name", OID_GIVEN_NAME, WS_GIVEN, "User.FirstName"]
        }
        (Generic, FamilyName) => {
            &["sn", "surname", "family_name", "lastName", "last_name", OID_SN, WS_SURNAME, "User.LastName"]
        }
        (Generic, Name) => &["displayName", "display_name", "name", OID_DISPLAY_NAME, MS_DISPLAYNAME, "cn", OID_CN],
        (Generic, Groups) => {
            &["groups", "memberOf", "isMemberOf", OID_IS_MEMBER_OF, MS_GROUPS, ADFS_GROUP, MS_ROLE, "Role"]
        }

        (Okta, Subject) => &[],
        (Okta, Email) => &["email", WS_EMAIL, "mail"],
        (Okta, GivenName) => &["firstName", WS_GIVEN, "givenName"],
        (Okta, FamilyName) => &["lastName", WS_SURNAME, "surname"],
        (Okta, Name) => &["displayName", "name"],
        (Okta, Groups) => &["groups", "memberOf"],

        // Entra's subject is tenantid:objectidentifier (computed, not a candidate). `.../claims/name`
        // is the UPN: an email fallback, never a display name.
        (Entra, Subject) => &[],
        (Entra, Email) => &[WS_EMAIL, WS_NAME],
        (Entra, GivenName) => &[WS_GIVEN],
        (Entra, FamilyName) => &[WS_SURNAME],
        (Entra, Name) => &[MS_DISPLAYNAME],
        (Entra, Groups) => &[MS_GROUPS, MS_ROLE],

        // Google sends no attributes unless mapped; these are the names our guide asks for.
        (Google, Subject) => &[],
        (Google, Email) => &["email"],
        (Google, GivenName) => &["firstName"],
        (Google, FamilyName) => &["lastName"],
        (Google, Name) => &["displayName"],
        (Google, Groups) => &["groups"],

        (Adfs, Subject) => &[],
        (Adfs, Email) => &[WS_EMAIL, WS_UPN],
        (Adfs, GivenName) => &[WS_GIVEN],
        (Adfs, FamilyName) => &[WS_SURNAME],
        (Adfs, Name) => &[WS_NAME, MS_DISPLAYNAME],
        (Adfs, Groups) => &[ADFS_GROUP, MS_ROLE, MS_GROUPS],

        (Onelogin, Subject) => &[],
        (Onelogin, Email) => &["User.email", "email"],
        (Onelogin, GivenName) => &["User.FirstName", "firstName"],
        (Onelogin, FamilyName) => &["User.LastName", "lastName"],
        (Onelogin, Name) => &["displayName", "name"],
        (Onelogin, Groups) => &["memberOf", "groups"],

        (Ping, Subject) => &[],
        (Ping, Email) => &["email", "mail", WS_EMAIL],
        (Ping, GivenName) => &["firstName", "givenName", "given_name"],
        (Ping, FamilyName) => &["lastName", "sn", "surname", "family_name"],
        (Ping, Name) => &["displayName", "name", "cn"],
        (Ping, Groups) => &["memberOf", "groups", "isMemberOf"],

        (Jumpcloud, Subject) => &[],
        (Jumpcloud, Email) => &["email"],
        (Jumpcloud, GivenName) => &["firstname"],
        (Jumpcloud, FamilyName) => &["lastname"],
        (Jumpcloud, Name) => &["displayname", "name"],
        (Jumpcloud, Groups) => &["memberOf", "groups"],

        (Keycloak, Subject) => &[],
        (Keycloak, Email) => &["email", OID_PKCS9_EMAIL],
        (Keycloak, GivenName) => &["firstName", "givenName", OID_GIVEN_NAME],
        (Keycloak, FamilyName) => &["lastName", "surname", OID_SN],
        (Keycloak, Name) => &["displayName", "name"],
        (Keycloak, Groups) => &["groups", "Role"],
    }
}

/// The first attribute among `names` for which `pick` accepts the values: an exact name match
/// anywhere in the list first, then an ASCII case-insensitive one (in list order, then in
/// attribute-name order).
fn find_map<'a, T>(
    attrs: &'a BTreeMap<String, Vec<String>>,
    names: &[&str],
    pick: impl Fn(&'a [String]) -> Option<T>,
) -> Option<(&'a str, T)> {
    for n in names {
        if let Some(t) = attrs.get_key_value(*n).and_then(|(k, v)| pick(v).map(|t| (k.as_str(), t))) {
            return Some(t);
        }
    }
    for n in names {
        let hit =
            attrs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(n)).find_map(|(k, v)| pick(v).map(|t| (k.as_str(), t)));
        if hit.is_some() {
            return hit;
        }
    }
    None
}

/// Values of the first attribute among `names` with at least one non-blank value.
fn find<'a>(attrs: &'a BTreeMap<String, Vec<String>>, names: &[&str]) -> Option<(&'a str, &'a [String])> {
    find_map(attrs, names, |v| v.iter().any(|s| !s.trim().is_empty()).then_some(v))
}

fn first_value(values: &[String]) -> Option<String> {
    values.iter().map(|s| s.trim()).find(|s| !s.is_empty()).map(str::to_string)
}

/// The attribute names consulted for a field: the custom name alone, else the preset's list.
fn names_for(preset: SamlPreset, custom: &AttributeMapping, field: Field) -> Vec<&str> {
    match custom.get(field) {
        Some(n) => vec![n],
        None => candidates(preset, field).to_vec(),
    }
}

fn single(a: &SamlAssertionView, preset: SamlPreset, custom: &AttributeMapping, field: Field) -> Option<String> {
    find(a.attributes, &names_for(preset, custom, field)).and_then(|(_, v)| first_value(v))
}

fn is_format(format: Option<&str>, want: &str) -> bool {
    format.is_some_and(|f| f.trim() == want)
}

fn is_unspecified(format: Option<&str>) -> bool {
    match format.map(str::trim) {
        None | Some("") => true,
        Some(f) => f == NAMEID_UNSPECIFIED || f == "urn:oasis:names:tc:SAML:2.0:nameid-format:unspecified",
    }
}

fn is_email_format(format: Option<&str>) -> bool {
    is_format(format, NAMEID_EMAIL) || is_format(format, "urn:oasis:names:tc:SAML:2.0:nameid-format:emailAddress")
}

fn subject_missing(detail: String, fix: &str) -> Rejected {
    Rejected { code: ErrorCode::SamlSubjectMissing, detail, fix: fix.to_string() }
}

const SUBJECT_FIX: &str = "Configure the IdP to send a persistent (or emailAddress) NameID, or send a stable, \
unique user id as an attribute and set attribute_mapping.subject to its name";

/// The subject and where it came from (`"name_id"`, `"attribute:<name>"`, `"entra:tid:oid"`).
fn subject(
    a: &SamlAssertionView,
    preset: SamlPreset,
    custom: &AttributeMapping,
    tid: Option<&str>,
) -> Result<(String, String), Rejected> {
    let name_id = a.name_id.map(str::trim).filter(|s| !s.is_empty());
    let transient = is_format(a.name_id_format, NAMEID_TRANSIENT);
    let found = if let Some(attr) = custom.subject.as_deref() {
        match find(a.attributes, &[attr]).and_then(|(_, v)| first_value(v)) {
            Some(v) => (v, format!("attribute:{attr}")),
            None => {
                return Err(subject_missing(
                    format!(
                    "the attribute {attr}, configured as the subject (attribute_mapping.subject), is missing or empty"
                ),
                    "Make the IdP send this attribute for every user, or change attribute_mapping.subject",
                ))
            }
        }
    } else if let (SamlPreset::Entra, Some(t), Some(o)) =
        (preset, tid, find(a.attributes, &[ENTRA_OBJECT_ID]).and_then(|(_, v)| first_value(v)))
    {
        (format!("{t}:{o}"), "entra:tid:oid".to_string())
    } else if let (Some(n), true) = (name_id, is_format(a.name_id_format, NAMEID_PERSISTENT)) {
        (n.to_string(), "name_id".to_string())
    } else if let Some((k, v)) = find(a.attributes, candidates(preset, Field::Subject)) {
        match first_value(v) {
            Some(v) => (v, format!("attribute:{k}")),
            None => return Err(subject_missing(format!("the attribute {k} is empty"), SUBJECT_FIX)),
        }
    } else if let (Some(n), false, false) = (name_id, transient, is_format(a.name_id_format, NAMEID_ENTITY)) {
        (n.to_string(), "name_id".to_string())
    } else if transient {
        return Err(subject_missing(
            format!(
                "the NameID is transient ({NAMEID_TRANSIENT}): it changes at every login, so it cannot identify a \
                 person, and no subject attribute was sent"
            ),
            SUBJECT_FIX,
        ));
    } else {
        return Err(subject_missing("the assertion has no usable NameID and no subject attribute".into(), SUBJECT_FIX));
    };
    if found.0.len() > MAX_SUBJECT {
        return Err(subject_missing(
            format!("the subject (from {}) is longer than {MAX_SUBJECT} characters", found.1),
            SUBJECT_FIX,
        ));
    }
    Ok(found)
}

/// RFC 8176 `amr` values from the AuthnContextClassRef and Microsoft's authnmethodsreferences.
pub fn amr(a: &SamlAssertionView) -> Vec<String> {
    let mut refs: Vec<&str> = a.authn_context.into_iter().collect();
    if let Some((_, v)) = find(a.attributes, &[MS_AUTHN_METHODS]) {
        refs.extend(v.iter().map(String::as_str));
    }
    let mut out: Vec<String> = Vec::new();
    for r in refs {
        let l = r.trim().to_ascii_lowercase();
        let m = if l.contains("multipleauthn") || l.contains("refeds.org/profile/mfa") || l.ends_with(":multifactor") {
            "mfa"
        } else if l.ends_with(":passwordprotectedtransport") || l.ends_with(":password") || l.ends_with("/password") {
            "pwd"
        } else if l.ends_with(":timesynctoken") || l.ends_with("/otp") {
            "otp"
        } else if l.ends_with(":smartcard") || l.ends_with(":smartcardpki") {
            "sc"
        } else {
            continue;
        };
        if !out.iter().any(|x| x == m) {
            out.push(m.to_string());
        }
    }
    if out.is_empty() {
        out.push("fed".into());
    }
    out
}

/// Maps a validated assertion to an upstream identity.
pub fn map(
    a: &SamlAssertionView,
    preset: SamlPreset,
    custom: &AttributeMapping,
    policy: &Policy,
) -> Result<Mapped, Rejected> {
    let mut notes = Vec::new();

    // Entra directory (tenant) id: recorded, and checked against the allow-list.
    let tid = if preset == SamlPreset::Entra {
        find(a.attributes, &[ENTRA_TENANT_ID]).and_then(|(_, v)| first_value(v))
    } else {
        None
    };
    if preset == SamlPreset::Entra
        && !policy.allowed_tenant_ids.is_empty()
        && !tid.as_deref().is_some_and(|t| policy.allowed_tenant_ids.iter().any(|x| x.trim().eq_ignore_ascii_case(t)))
    {
        return Err(Rejected {
            code: ErrorCode::SamlTenantNotAllowed,
            detail: match &tid {
                Some(t) => format!("the assertion comes from Entra directory {t}, which is not in allowed_tenant_ids"),
                None => format!("the assertion has no {ENTRA_TENANT_ID} attribute, and allowed_tenant_ids is set"),
            },
            fix: "Add the directory (tenant) id to allowed_tenant_ids on the connection if this directory is trusted"
                .into(),
        });
    }

    let (subject, subject_source) = subject(a, preset, custom, tid.as_deref())?;

    // Email: the NameID when it is an address (Google: first, since it is the primary email).
    let name_id_email = a
        .name_id
        .filter(|_| {
            let f = a.name_id_format;
            is_email_format(f) || is_unspecified(f) || (preset == SamlPreset::Google && !is_format(f, NAMEID_TRANSIENT))
        })
        .and_then(crate::claims::normalize_email);
    // The first valid address of the first candidate that has one.
    let attr_email = || {
        find_map(a.attributes, &names_for(preset, custom, Field::Email), |v| {
            v.iter().find_map(|e| crate::claims::normalize_email(e))
        })
        .map(|(_, e)| e)
    };
    let (email, from_name_id) = if preset == SamlPreset::Google && custom.email.is_none() {
        match name_id_email.clone() {
            Some(e) => (Some(e), true),
            None => (attr_email(), false),
        }
    } else {
        match attr_email() {
            Some(e) => (Some(e), false),
            None => (name_id_email.clone(), name_id_email.is_some()),
        }
    };
    let domain = email.as_deref().and_then(crate::claims::email_domain);
    let trusted = domain.as_ref().is_some_and(|d| {
        policy.trusted_email_domains.iter().any(|t| t.trim().trim_start_matches('@').eq_ignore_ascii_case(d))
    });
    let email_verified = email.is_some() && (trusted || (preset == SamlPreset::Google && from_name_id));
    if let (Some(e), false) = (&email, email_verified) {
        notes.push(format!(
            "email_unverified: SAML does not say whether {e} is verified, and its domain is not in \
             trusted_email_domains; email_verified is false, so it is not used to link accounts"
        ));
    }

    let given_name = single(a, preset, custom, Field::GivenName);
    let family_name = single(a, preset, custom, Field::FamilyName);
    let name = single(a, preset, custom, Field::Name).or_else(|| {
        let joined =
            [given_name.as_deref(), family_name.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        Some(joined).filter(|s| !s.is_empty())
    });

    // Groups: every value of the first matching attribute, never split (LDAP DNs contain commas).
    let mut groups: Vec<String> = match find(a.attributes, &names_for(preset, custom, Field::Groups)) {
        Some((_, v)) => v.iter().map(|g| g.trim()).filter(|g| !g.is_empty()).map(str::to_string).collect(),
        None => Vec::new(),
    };
    if preset == SamlPreset::Keycloak {
        // Keycloak's group list mapper with "Full group path" on sends "/parent/child".
        groups = groups.into_iter().map(|g| g.trim_start_matches('/').to_string()).filter(|g| !g.is_empty()).collect();
    }
    if find(a.attributes, &[ENTRA_GROUPS_LINK]).is_some() {
        notes.push(
            "groups_overage: Entra ID sent a Microsoft Graph link (groups.link) instead of the groups (more than 150 \
             groups in a SAML token); groups were not imported. In the enterprise application, edit the group claim \
             and choose \"Groups assigned to the application\""
                .into(),
        );
    }

    let mut attributes = Map::new();
    attributes.insert("issuer".into(), Value::String(a.issuer.to_string()));
    attributes.insert("subject_source".into(), Value::String(subject_source));
    let opt = |v: Option<&str>| v.map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_string()));
    for (k, v) in [
        ("name_id_format", opt(a.name_id_format)),
        ("authn_context", opt(a.authn_context)),
        ("session_index", opt(a.session_index)),
        ("tid", opt(tid.as_deref())),
    ] {
        if let Some(v) = v {
            attributes.insert(k.into(), v);
        }
    }

    Ok(Mapped {
        identity: UpstreamIdentity {
            subject,
            email,
            email_verified,
            name,
            given_name,
            family_name,
            groups,
            amr: amr(a),
            attributes: Value::Object(attributes),
            // Set by the connector from the validated AuthnInstant.
            auth_time: None,
        },
        notes,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attrs(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    fn view<'a>(
        name_id: Option<&'a str>,
        format: Option<&'a str>,
        attributes: &'a BTreeMap<String, Vec<String>>,
    ) -> SamlAssertionView<'a> {
        SamlAssertionView {
            issuer: "https://idp.example/metadata",
            name_id,
            name_id_format: format,
            attributes,
            authn_context: Some("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"),
            session_index: Some("_sess1"),
        }
    }

    fn run(v: &SamlAssertionView, preset: SamlPreset) -> Mapped {
        map(v, preset, &AttributeMapping::default(), &Policy::default()).unwrap()
    }

    #[test]
    fn okta_realistic() {
        let a = attrs(&[
            ("email", &["Alice@Acme.com"]),
            ("firstName", &["Alice"]),
            ("lastName", &["Anderson"]),
            ("groups", &["Everyone", "Engineering", "CN=Admins,OU=Groups,DC=acme,DC=com"]),
        ]);
        let m = run(&view(Some("alice@acme.com"), Some(NAMEID_EMAIL), &a), SamlPreset::Okta);
        let i = &m.identity;
        assert_eq!(i.subject, "alice@acme.com");
        assert_eq!(i.email.as_deref(), Some("alice@acme.com"));
        assert!(!i.email_verified);
        assert!(m.notes.iter().any(|n| n.starts_with("email_unverified")));
        assert_eq!(i.given_name.as_deref(), Some("Alice"));
        assert_eq!(i.family_name.as_deref(), Some("Anderson"));
        assert_eq!(i.name.as_deref(), Some("Alice Anderson"));
        assert_eq!(i.groups, vec!["Everyone", "Engineering", "CN=Admins,OU=Groups,DC=acme,DC=com"]);
        assert_eq!(i.amr, vec!["pwd"]);
        assert_eq!(i.attributes["subject_source"], "name_id");
        assert_eq!(i.attributes["session_index"], "_sess1");
        assert_eq!(i.attributes["issuer"], "https://idp.example/metadata");
    }

    #[test]
    fn okta_ws2005_uris_and_trusted_domain() {
        let a = attrs(&[(WS_EMAIL, &["bob@acme.com"]), (WS_GIVEN, &["Bob"]), (WS_SURNAME, &["Brown"])]);
        let p = Policy { trusted_email_domains: vec!["ACME.com".into()], ..Policy::default() };
        let m = map(
            &view(Some("00u1abcd"), Some(NAMEID_PERSISTENT), &a),
            SamlPreset::Okta,
            &AttributeMapping::default(),
            &p,
        )
        .unwrap();
        assert_eq!(m.identity.subject, "00u1abcd");
        assert_eq!(m.identity.email.as_deref(), Some("bob@acme.com"));
        assert!(m.identity.email_verified);
        assert!(m.notes.is_empty());
        assert_eq!(m.identity.name.as_deref(), Some("Bob Brown"));
    }

    fn entra_attrs() -> BTreeMap<String, Vec<String>> {
        attrs(&[
            (ENTRA_TENANT_ID, &["72f988bf-86f1-41af-91ab-2d7cd011db47"]),
            (ENTRA_OBJECT_ID, &["a1b2c3d4-0000-1111-2222-333344445555"]),
            (MS_DISPLAYNAME, &["Carol Chen"]),
            ("http://schemas.microsoft.com/identity/claims/identityprovider", &["https://sts.windows.net/72f9/"]),
            (
                MS_AUTHN_METHODS,
                &[
                    "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password",
                    "http://schemas.microsoft.com/claims/multipleauthn",
                ],
            ),
            (WS_EMAIL, &["carol@contoso.com"]),
            (WS_GIVEN, &["Carol"]),
            (WS_SURNAME, &["Chen"]),
            (WS_NAME, &["carol@contoso.onmicrosoft.com"]),
            (MS_GROUPS, &["07dd8a60-bf6d-4e17-8844-230b77145381", "5e3a2b1c-0000-4000-8000-000000000001"]),
        ])
    }

    #[test]
    fn entra_realistic() {
        let a = entra_attrs();
        let m = run(&view(Some("carol@contoso.onmicrosoft.com"), Some(NAMEID_EMAIL), &a), SamlPreset::Entra);
        let i = &m.identity;
        assert_eq!(i.subject, "72f988bf-86f1-41af-91ab-2d7cd011db47:a1b2c3d4-0000-1111-2222-333344445555");
        assert_eq!(i.email.as_deref(), Some("carol@contoso.com"));
        assert!(!i.email_verified);
        assert_eq!(i.name.as_deref(), Some("Carol Chen"));
        assert_eq!(i.groups.len(), 2);
        assert_eq!(i.amr, vec!["pwd", "mfa"]);
        assert_eq!(i.attributes["tid"], "72f988bf-86f1-41af-91ab-2d7cd011db47");
        assert_eq!(i.attributes["subject_source"], "entra:tid:oid");
    }

    #[test]
    fn entra_upn_fallback_overage_and_transient_nameid() {
        let mut a = entra_attrs();
        a.remove(WS_EMAIL);
        a.remove(MS_GROUPS);
        a.insert(ENTRA_GROUPS_LINK.into(), vec!["https://graph.windows.net/72f9/users/a1b2/getMemberObjects".into()]);
        // Entra's subject does not depend on the NameID, so even a transient one is fine.
        let m = run(&view(Some("_d1f8a0"), Some(NAMEID_TRANSIENT), &a), SamlPreset::Entra);
        assert_eq!(m.identity.email.as_deref(), Some("carol@contoso.onmicrosoft.com"));
        assert!(m.identity.groups.is_empty());
        assert!(m.notes.iter().any(|n| n.starts_with("groups_overage")));
    }

    #[test]
    fn entra_tenant_check() {
        let a = entra_attrs();
        let v = view(Some("carol@contoso.com"), Some(NAMEID_EMAIL), &a);
        let p = Policy { allowed_tenant_ids: vec!["00000000-0000-0000-0000-000000000000".into()], ..Policy::default() };
        let e = map(&v, SamlPreset::Entra, &AttributeMapping::default(), &p).unwrap_err();
        assert_eq!(e.code, "saml_tenant_not_allowed");
        assert!(e.detail.contains("72f988bf"));
        let p = Policy { allowed_tenant_ids: vec!["72F988BF-86f1-41af-91ab-2d7cd011db47".into()], ..Policy::default() };
        assert!(map(&v, SamlPreset::Entra, &AttributeMapping::default(), &p).is_ok());
        // No tenantid at all while an allow-list is set: refused (fail closed).
        let mut a2 = entra_attrs();
        a2.remove(ENTRA_TENANT_ID);
        let v2 = view(Some("carol@contoso.com"), Some(NAMEID_EMAIL), &a2);
        assert_eq!(
            map(&v2, SamlPreset::Entra, &AttributeMapping::default(), &p).unwrap_err().code,
            "saml_tenant_not_allowed"
        );
        // ...and without an allow-list it falls back to the NameID.
        assert_eq!(run(&v2, SamlPreset::Entra).identity.subject, "carol@contoso.com");
    }

    #[test]
    fn google_nameid_email_is_verified() {
        let a = attrs(&[("firstName", &["Dan"]), ("lastName", &["Diaz"]), ("groups", &["eng@acme.com"])]);
        let m = run(&view(Some("Dan@Acme.com"), Some(NAMEID_EMAIL), &a), SamlPreset::Google);
        let i = &m.identity;
        assert_eq!(i.subject, "Dan@Acme.com");
        assert_eq!(i.email.as_deref(), Some("dan@acme.com"));
        assert!(i.email_verified);
        assert_eq!(i.name.as_deref(), Some("Dan Diaz"));
        assert_eq!(i.groups, vec!["eng@acme.com"]);
        assert!(m.notes.is_empty());
        // Google sends no attributes by default at all.
        let empty = BTreeMap::new();
        let m = run(&view(Some("dan@acme.com"), Some(NAMEID_UNSPECIFIED), &empty), SamlPreset::Google);
        assert!(m.identity.email_verified);
        assert_eq!(m.identity.name, None);
        // An email from an attribute is not the primary email: not verified.
        let a = attrs(&[("email", &["dan@other.com"])]);
        let m = run(&view(Some("E12345"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Google);
        assert_eq!(m.identity.email.as_deref(), Some("dan@other.com"));
        assert!(!m.identity.email_verified);
        // The same NameID under another preset is not verified.
        let m = run(&view(Some("dan@acme.com"), Some(NAMEID_EMAIL), &empty), SamlPreset::Generic);
        assert!(!m.identity.email_verified);
    }

    #[test]
    fn adfs_realistic() {
        let a = attrs(&[
            (WS_EMAIL, &["erin@fabrikam.com"]),
            (WS_GIVEN, &["Erin"]),
            (WS_SURNAME, &["Evans"]),
            (WS_NAME, &["Erin Evans"]),
            (WS_UPN, &["erin@corp.fabrikam.com"]),
            (ADFS_GROUP, &["Domain Users", "Finance"]),
            (MS_ROLE, &["ignored-because-Group-comes-first"]),
        ]);
        let v = SamlAssertionView {
            authn_context: Some("urn:federation:authentication:windows"),
            ..view(Some("erin@fabrikam.com"), Some(NAMEID_EMAIL), &a)
        };
        let m = run(&v, SamlPreset::Adfs);
        let i = &m.identity;
        assert_eq!(i.subject, "erin@fabrikam.com");
        assert_eq!(i.name.as_deref(), Some("Erin Evans"));
        assert_eq!(i.groups, vec!["Domain Users", "Finance"]);
        assert_eq!(i.amr, vec!["fed"]);
        // Roles when no Group claim is sent.
        let a = attrs(&[(MS_ROLE, &["Approver"]), (WS_UPN, &["erin@corp.fabrikam.com"])]);
        let m = run(&view(Some("S-1-5-21-1"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Adfs);
        assert_eq!(m.identity.groups, vec!["Approver"]);
        assert_eq!(m.identity.email.as_deref(), Some("erin@corp.fabrikam.com"));
    }

    #[test]
    fn onelogin_realistic() {
        let a = attrs(&[
            ("User.email", &["frank@acme.io"]),
            ("User.FirstName", &["Frank"]),
            ("User.LastName", &["Fischer"]),
            ("memberOf", &["Sales;Support"]),
        ]);
        let m = run(&view(Some("frank@acme.io"), Some(NAMEID_EMAIL), &a), SamlPreset::Onelogin);
        assert_eq!(m.identity.email.as_deref(), Some("frank@acme.io"));
        assert_eq!(m.identity.name.as_deref(), Some("Frank Fischer"));
        assert_eq!(m.identity.groups, vec!["Sales;Support"]);
    }

    #[test]
    fn ping_realistic() {
        let a = attrs(&[
            ("mail", &["gina@acme.com"]),
            ("givenName", &["Gina"]),
            ("sn", &["Gomez"]),
            ("memberOf", &["cn=dev,ou=groups,dc=acme,dc=com", "cn=ops,ou=groups,dc=acme,dc=com"]),
        ]);
        let m = run(&view(Some("gina"), None, &a), SamlPreset::Ping);
        assert_eq!(m.identity.subject, "gina");
        assert_eq!(m.identity.email.as_deref(), Some("gina@acme.com"));
        assert_eq!(m.identity.name.as_deref(), Some("Gina Gomez"));
        assert_eq!(m.identity.groups, vec!["cn=dev,ou=groups,dc=acme,dc=com", "cn=ops,ou=groups,dc=acme,dc=com"]);
    }

    #[test]
    fn jumpcloud_realistic() {
        let a = attrs(&[
            ("email", &["hank@acme.com"]),
            ("firstname", &["Hank"]),
            ("lastname", &["Hill"]),
            ("memberOf", &["All Users", "Developers"]),
        ]);
        let m = run(&view(Some("hank@acme.com"), Some(NAMEID_EMAIL), &a), SamlPreset::Jumpcloud);
        assert_eq!(m.identity.given_name.as_deref(), Some("Hank"));
        assert_eq!(m.identity.family_name.as_deref(), Some("Hill"));
        assert_eq!(m.identity.groups, vec!["All Users", "Developers"]);
    }

    #[test]
    fn keycloak_realistic() {
        let a = attrs(&[
            ("email", &["ivy@acme.org"]),
            ("firstName", &["Ivy"]),
            ("lastName", &["Ito"]),
            ("Role", &["manage-account", "offline_access"]),
        ]);
        let v = view(Some("G-5f0c1b7a-2c55-4b4e-9b0e-6b5b1f0d1a2e"), Some(NAMEID_PERSISTENT), &a);
        let m = run(&v, SamlPreset::Keycloak);
        assert_eq!(m.identity.subject, "G-5f0c1b7a-2c55-4b4e-9b0e-6b5b1f0d1a2e");
        assert_eq!(m.identity.groups, vec!["manage-account", "offline_access"]);
        let a = attrs(&[("groups", &["/eng/backend", "/ops"]), ("Role", &["x"])]);
        let m = run(&view(Some("u1"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Keycloak);
        assert_eq!(m.identity.groups, vec!["eng/backend", "ops"]);
    }

    #[test]
    fn generic_oids_and_subject_id() {
        let a = attrs(&[
            (SAML_SUBJECT_ID, &["jdoe@example.edu"]),
            (OID_MAIL, &["John.Doe@Example.edu"]),
            (OID_GIVEN_NAME, &["John"]),
            (OID_SN, &["Doe"]),
            (OID_DISPLAY_NAME, &["Dr. John Doe"]),
            (OID_IS_MEMBER_OF, &["urn:mace:example.edu:groups:staff"]),
        ]);
        let m = run(&view(Some("_transient123"), Some(NAMEID_TRANSIENT), &a), SamlPreset::Generic);
        let i = &m.identity;
        assert_eq!(i.subject, "jdoe@example.edu");
        assert_eq!(i.attributes["subject_source"], format!("attribute:{SAML_SUBJECT_ID}"));
        assert_eq!(i.email.as_deref(), Some("john.doe@example.edu"));
        assert_eq!(i.name.as_deref(), Some("Dr. John Doe"));
        assert_eq!(i.groups, vec!["urn:mace:example.edu:groups:staff"]);
        // A persistent NameID beats the subject-id attribute.
        let m = run(&view(Some("pid-42"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Generic);
        assert_eq!(m.identity.subject, "pid-42");
    }

    #[test]
    fn transient_nameid_is_never_the_subject() {
        let a = attrs(&[("email", &["kim@acme.com"])]);
        for preset in SamlPreset::ALL {
            let e = map(
                &view(Some("_a8c6f2e1"), Some(NAMEID_TRANSIENT), &a),
                preset,
                &AttributeMapping::default(),
                &Policy::default(),
            )
            .unwrap_err();
            assert_eq!(e.code, "saml_subject_missing", "{preset:?}");
            assert!(e.detail.contains("transient"));
            assert!(e.fix.contains("attribute_mapping.subject"));
        }
        // No NameID at all.
        let e =
            map(&view(None, None, &a), SamlPreset::Okta, &AttributeMapping::default(), &Policy::default()).unwrap_err();
        assert_eq!(e.code, "saml_subject_missing");
        // Transient plus a custom subject attribute works.
        let a = attrs(&[("employeeId", &["E-77"]), ("email", &["kim@acme.com"])]);
        let custom = AttributeMapping { subject: Some("employeeId".into()), ..AttributeMapping::default() };
        let m =
            map(&view(Some("_x"), Some(NAMEID_TRANSIENT), &a), SamlPreset::Okta, &custom, &Policy::default()).unwrap();
        assert_eq!(m.identity.subject, "E-77");
        // An entity NameID is not a person either.
        let e = map(
            &view(Some("https://idp"), Some(NAMEID_ENTITY), &a),
            SamlPreset::Okta,
            &AttributeMapping::default(),
            &Policy::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "saml_subject_missing");
    }

    #[test]
    fn custom_subject_must_be_present() {
        let a = attrs(&[("email", &["kim@acme.com"])]);
        let custom = AttributeMapping { subject: Some("employeeId".into()), ..AttributeMapping::default() };
        let e = map(&view(Some("p1"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Generic, &custom, &Policy::default())
            .unwrap_err();
        assert_eq!(e.code, "saml_subject_missing");
        assert!(e.detail.contains("employeeId"));
    }

    #[test]
    fn custom_mapping_overrides_preset() {
        let a = attrs(&[
            ("email", &["preset@acme.com"]),
            ("workEmail", &["custom@acme.com"]),
            ("firstName", &["Pre"]),
            ("fn", &["Cus"]),
            ("groups", &["preset-group"]),
            ("teams", &["t1", "t2"]),
            ("oid", &["immutable-1"]),
            ("full", &["Custom Full"]),
        ]);
        let custom = AttributeMapping {
            subject: Some("oid".into()),
            email: Some("workEmail".into()),
            given_name: Some("fn".into()),
            groups: Some("teams".into()),
            name: Some("full".into()),
            family_name: Some("nothing-here".into()),
        };
        let m = map(&view(Some("n@acme.com"), Some(NAMEID_EMAIL), &a), SamlPreset::Okta, &custom, &Policy::default())
            .unwrap();
        let i = &m.identity;
        assert_eq!(i.subject, "immutable-1");
        assert_eq!(i.email.as_deref(), Some("custom@acme.com"));
        assert_eq!(i.given_name.as_deref(), Some("Cus"));
        assert_eq!(i.family_name, None);
        assert_eq!(i.name.as_deref(), Some("Custom Full"));
        assert_eq!(i.groups, vec!["t1", "t2"]);
        // A custom email attribute that is absent falls back to the NameID address.
        let custom = AttributeMapping { email: Some("absent".into()), ..AttributeMapping::default() };
        let m = map(&view(Some("n@acme.com"), Some(NAMEID_EMAIL), &a), SamlPreset::Okta, &custom, &Policy::default())
            .unwrap();
        assert_eq!(m.identity.email.as_deref(), Some("n@acme.com"));
    }

    #[test]
    fn exact_match_beats_case_insensitive() {
        let a = attrs(&[("EMAIL", &["upper@acme.com"]), ("mail", &["exact@acme.com"])]);
        let m = run(&view(Some("p"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Generic);
        assert_eq!(m.identity.email.as_deref(), Some("exact@acme.com"));
        let a = attrs(&[("EMAIL", &["upper@acme.com"]), ("FIRSTNAME", &["Lee"]), ("GROUPS", &["g"])]);
        let m = run(&view(Some("p"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Okta);
        assert_eq!(m.identity.email.as_deref(), Some("upper@acme.com"));
        assert_eq!(m.identity.given_name.as_deref(), Some("Lee"));
        assert_eq!(m.identity.groups, vec!["g"]);
        // Custom names too.
        let custom = AttributeMapping { email: Some("Work_Email".into()), ..AttributeMapping::default() };
        let a = attrs(&[("work_email", &["w@acme.com"])]);
        let m =
            map(&view(Some("p"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Okta, &custom, &Policy::default()).unwrap();
        assert_eq!(m.identity.email.as_deref(), Some("w@acme.com"));
    }

    #[test]
    fn email_from_nameid_rules() {
        let empty = BTreeMap::new();
        let get = |nid: &str, f: Option<&str>| run(&view(Some(nid), f, &empty), SamlPreset::Generic).identity.email;
        assert_eq!(get("A@x.com", Some(NAMEID_EMAIL)), Some("a@x.com".into()));
        assert_eq!(get("a@x.com", Some(NAMEID_UNSPECIFIED)), Some("a@x.com".into()));
        assert_eq!(get("a@x.com", None), Some("a@x.com".into()));
        assert_eq!(get("jdoe", None), None);
        assert_eq!(get("a@x.com", Some(NAMEID_PERSISTENT)), None);
        // Blank and invalid attribute values are skipped for the next candidate.
        let a = attrs(&[("email", &["  ", "not-an-email"]), ("mail", &["m@x.com"])]);
        let m = run(&view(Some("p"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Generic);
        assert_eq!(m.identity.email.as_deref(), Some("m@x.com"));
    }

    #[test]
    fn multi_valued_and_blank_values() {
        let a = attrs(&[("email", &["first@x.com", "second@x.com"]), ("groups", &["a", " ", "b, c", "a"])]);
        let m = run(&view(Some("p"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Generic);
        assert_eq!(m.identity.email.as_deref(), Some("first@x.com"));
        // Kept whole (no comma splitting); de-duplication happens in claims::normalize.
        assert_eq!(m.identity.groups, vec!["a", "b, c", "a"]);
        let a = attrs(&[("firstName", &[""]), ("givenName", &["Real"])]);
        let m = run(&view(Some("p"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Generic);
        assert_eq!(m.identity.given_name.as_deref(), Some("Real"));
    }

    #[test]
    fn name_falls_back_to_given_family() {
        let a = attrs(&[("lastName", &["Solo"])]);
        let m = run(&view(Some("p"), Some(NAMEID_PERSISTENT), &a), SamlPreset::Okta);
        assert_eq!(m.identity.name.as_deref(), Some("Solo"));
        let m = run(&view(Some("p"), Some(NAMEID_PERSISTENT), &BTreeMap::new()), SamlPreset::Okta);
        assert_eq!(m.identity.name, None);
    }

    #[test]
    fn subject_too_long_rejected() {
        let long = "x".repeat(600);
        let e = map(
            &view(Some(&long), Some(NAMEID_PERSISTENT), &BTreeMap::new()),
            SamlPreset::Generic,
            &AttributeMapping::default(),
            &Policy::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "saml_subject_missing");
    }

    #[test]
    fn attribute_mapping_validation() {
        assert!(AttributeMapping::default().validate().is_ok());
        let ok = AttributeMapping { email: Some(WS_EMAIL.into()), ..AttributeMapping::default() };
        assert!(ok.validate().is_ok());
        let e = AttributeMapping { email: Some("  ".into()), ..AttributeMapping::default() }.validate().unwrap_err();
        assert!(e.starts_with("attribute_mapping.email:"), "{e}");
        let e =
            AttributeMapping { groups: Some("g".repeat(257)), ..AttributeMapping::default() }.validate().unwrap_err();
        assert!(e.starts_with("attribute_mapping.groups:"), "{e}");
        assert!(AttributeMapping { name: Some("a\nb".into()), ..AttributeMapping::default() }.validate().is_err());
        assert!(AttributeMapping { subject: Some(" id".into()), ..AttributeMapping::default() }.validate().is_err());
        assert!(AttributeMapping { subject: Some("é".repeat(256)), ..AttributeMapping::default() }.validate().is_ok());
    }

    #[test]
    fn serde_shapes() {
        let p: SamlPreset = serde_json::from_str("\"jumpcloud\"").unwrap();
        assert_eq!(p, SamlPreset::Jumpcloud);
        for p in SamlPreset::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        let m: AttributeMapping = serde_json::from_str(r#"{"email":"mail","groups":"memberOf"}"#).unwrap();
        assert_eq!(m.email.as_deref(), Some("mail"));
        assert!(serde_json::from_str::<AttributeMapping>(r#"{"mail":"x"}"#).is_err());
        assert_eq!(serde_json::to_string(&AttributeMapping::default()).unwrap(), "{}");
    }

    #[test]
    fn amr_values() {
        let a = attrs(&[]);
        let mut v = view(Some("p"), Some(NAMEID_PERSISTENT), &a);
        v.authn_context = Some("https://refeds.org/profile/mfa");
        assert_eq!(amr(&v), vec!["mfa"]);
        v.authn_context = Some("urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified");
        assert_eq!(amr(&v), vec!["fed"]);
        v.authn_context = None;
        assert_eq!(amr(&v), vec!["fed"]);
    }

    /// Every preset attribute name appears in the operator docs (keeps the table honest).
    #[test]
    fn docs_list_every_preset_attribute() {
        let doc = include_str!("../../docs/connections/saml.md");
        for p in SamlPreset::ALL {
            for f in Field::ALL {
                for n in candidates(p, f) {
                    assert!(doc.contains(&format!("`{n}`")), "docs/connections/saml.md lacks `{n}` ({p:?} {f:?})");
                }
            }
        }
    }

    fn arb_attrs() -> impl Strategy<Value = BTreeMap<String, Vec<String>>> {
        let names = prop_oneof![
            Just("email".to_string()),
            Just("EMAIL".to_string()),
            Just(ENTRA_TENANT_ID.to_string()),
            Just(ENTRA_OBJECT_ID.to_string()),
            Just(ENTRA_GROUPS_LINK.to_string()),
            Just(MS_GROUPS.to_string()),
            Just("groups".to_string()),
            Just(SAML_SUBJECT_ID.to_string()),
            Just("firstName".to_string()),
            ".{0,12}",
        ];
        proptest::collection::btree_map(names, proptest::collection::vec(".{0,40}", 0..4), 0..8)
    }

    proptest! {
        #[test]
        fn map_never_panics(
            a in arb_attrs(),
            name_id in proptest::option::of(".{0,40}"),
            format in proptest::option::of(prop_oneof![
                Just(NAMEID_PERSISTENT.to_string()), Just(NAMEID_TRANSIENT.to_string()),
                Just(NAMEID_EMAIL.to_string()), Just(NAMEID_UNSPECIFIED.to_string()), ".{0,20}"]),
            authn in proptest::option::of(".{0,40}"),
            preset_ix in 0usize..9,
            custom_subject in proptest::option::of(".{0,10}"),
            tenants in proptest::collection::vec(".{0,10}", 0..2),
            trusted in proptest::collection::vec(".{0,10}", 0..2),
        ) {
            let preset = SamlPreset::ALL[preset_ix];
            let v = SamlAssertionView {
                issuer: "i", name_id: name_id.as_deref(), name_id_format: format.as_deref(), attributes: &a,
                authn_context: authn.as_deref(), session_index: None,
            };
            let custom = AttributeMapping { subject: custom_subject, ..AttributeMapping::default() };
            let policy = Policy { allowed_tenant_ids: tenants, trusted_email_domains: trusted, ..Policy::default() };
            if let Ok(m) = map(&v, preset, &custom, &policy) {
                prop_assert!(!m.identity.subject.trim().is_empty());
                prop_assert!(m.identity.subject.len() <= MAX_SUBJECT);
                prop_assert!(!m.identity.email_verified || m.identity.email.is_some());
                prop_assert!(crate::claims::normalize(m.identity).is_ok());
            }
        }
    }
}
