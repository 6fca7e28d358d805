//! Tenants (the enterprise customers), their verified email domains, and lookups used by
//! home-realm discovery.
pub mod dns;
pub mod domain_claims;

use crate::error_code::ErrorCode;
use crate::ids::TenantId;
use crate::store::entities::{tenant, tenant_domain};
use crate::store::{self, conn::Conn};
use crate::util::rfc3339;
use crate::validation::Invalid;
use serde::{Deserialize, Serialize};

/// Per-tenant policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSettings {
    /// Accept logins whose email domain is not one of the tenant's domains (off by default:
    /// an IdP could otherwise assert any address). Such an address is never `email_verified`
    /// in tokens, whatever the IdP says (see [`domain_trusted_for_email`]).
    pub allow_email_outside_domains: bool,
    /// Optional mapping from upstream group names to app role names, emitted as `roles` in ID
    /// tokens (absent when empty).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub role_mapping: std::collections::BTreeMap<String, Vec<String>>,
    /// How a first SSO login finds an existing SCIM-provisioned user of this tenant.
    #[serde(default)]
    pub scim_link: ScimLinkRule,
    /// Which connections' upstream subjects a SCIM `externalId` may name (the `external_id`
    /// link rule and SCIM adoption by externalId).
    #[serde(default)]
    pub scim_link_scope: ScimLinkScope,
    /// With `scim_link_scope: connection`: the connection whose subjects SCIM externalIds name.
    /// Unset: the tenant's only connection, and no link at all while it has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_link_connection: Option<String>,
    /// What SCIM `DELETE /Users/{id}` does.
    #[serde(default)]
    pub scim_delete: ScimDeletePolicy,
    /// How the pages this tenant's people see (setup portal, ...) look; checked when shown
    /// (`templates::Branding::tenant`), so a bad value falls back to the default look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branding: Option<TenantBranding>,
    /// MFA policy: `required` makes every login show MFA in the IdP's verified answer (a
    /// connection may override it); docs/tokens.md#mfa.
    #[serde(default)]
    pub mfa: crate::claims::mfa::MfaPolicy,
}

/// A tenant's branding: display name, accent colour (`#rgb` / `#rrggbb`), logo (https URL).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TenantBranding {
    pub display_name: Option<String>,
    pub accent: Option<String>,
    pub logo_url: Option<String>,
}

/// How a first SSO login is linked to a SCIM-provisioned user of the same tenant (never across
/// tenants).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScimLinkRule {
    /// The SCIM `externalId` equals the upstream subject, of a connection admitted by
    /// `scim_link_scope`.
    ExternalId,
    /// The SCIM `userName` equals the upstream email (case-insensitive).
    UserName,
    /// The SCIM `userName` or primary email equals the upstream email (case-insensitive).
    #[default]
    Email,
    /// Never link: SSO users are always created just in time.
    None,
}

/// Where a SCIM `externalId` is compared with upstream subjects. A subject is only unique within
/// its connection: two connections of a tenant (two IdPs) may well issue the same subject string
/// for different people.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScimLinkScope {
    /// Only the subjects of one connection: `scim_link_connection`, else the tenant's only
    /// connection (none while the tenant has several and names none).
    #[default]
    Connection,
    /// The subjects of every connection of the tenant (only when all of them are the same
    /// directory, e.g. the SAML and OIDC apps of one Entra tenant, whose subjects agree).
    Tenant,
}

/// The connections whose upstream subjects may match a SCIM `externalId`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalIdScope {
    /// This connection only.
    Connection(String),
    /// Any connection of the tenant.
    Tenant,
    /// None: externalId never links (several connections and none named).
    Nowhere,
}

impl ExternalIdScope {
    /// Whether a subject of `connection_id` may match an externalId.
    pub fn admits(&self, connection_id: &str) -> bool {
        match self {
            Self::Connection(c) => c == connection_id,
            Self::Tenant => true,
            Self::Nowhere => false,
        }
    }
}

/// Resolves the tenant's `scim_link_scope` / `scim_link_connection`.
pub async fn external_id_scope(
    db: &impl Conn,
    tenant_id: &str,
    settings: &TenantSettings,
) -> Result<ExternalIdScope, crate::store::conn::DbErr> {
    if settings.scim_link_scope == ScimLinkScope::Tenant {
        return Ok(ExternalIdScope::Tenant);
    }
    if let Some(c) = &settings.scim_link_connection {
        return Ok(ExternalIdScope::Connection(c.clone()));
    }
    let ids = crate::store::connections::ids_of_tenant(db, tenant_id, 2).await?;
    Ok(match <[String; 1]>::try_from(ids) {
        Ok([only]) => ExternalIdScope::Connection(only),
        Err(_) => ExternalIdScope::Nowhere,
    })
}

/// What SCIM DELETE does to a user.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScimDeletePolicy {
    /// Mark deleted; a later POST with the same externalId restores the user.
    #[default]
    Soft,
    /// Remove the user, its identities, memberships, sessions and grants.
    Hard,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub domains: Vec<String>,
    pub settings: TenantSettings,
    pub created_at: String,
    pub updated_at: String,
}

pub fn view(t: &tenant::Model, domains: Vec<String>) -> TenantView {
    TenantView {
        id: t.id.clone(),
        name: t.name.clone(),
        slug: t.slug.clone(),
        domains,
        settings: settings_of(t),
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
    }
}

pub fn settings_of(t: &tenant::Model) -> TenantSettings {
    serde_json::from_str(&t.settings).unwrap_or_default()
}

/// `a-z0-9-`, 2 to 63 characters, starting with a letter or digit, and not shaped like an id.
pub fn validate_slug(s: &str) -> Result<String, Invalid> {
    let ok = (2..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.starts_with("org_");
    if ok {
        Ok(s.to_string())
    } else {
        Err(Invalid::field(
            "slug",
            ErrorCode::InvalidSlug,
            "slug must be 2-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ))
    }
}

/// A DNS domain name in lower case (IDNs in their `xn--` form).
pub fn validate_domain(d: &str) -> Result<String, Invalid> {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let labels: Vec<&str> = d.split('.').collect();
    if d.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) {
        Ok(d)
    } else {
        Err(Invalid::field("domains", ErrorCode::InvalidDomain, format!("{d:?} is not a domain name")))
    }
}

pub fn validate_name(field: &str, s: &str) -> Result<String, Invalid> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > 200 || t.chars().any(char::is_control) {
        return Err(Invalid::field(
            field,
            ErrorCode::InvalidName,
            format!("{field} must be 1-200 printable characters"),
        ));
    }
    Ok(t.to_string())
}

/// A tenant by id.
pub async fn get(db: &impl Conn, id: &str) -> Result<Option<tenant::Model>, crate::store::conn::DbErr> {
    store::tenants::get(db, id).await
}

/// Finds a tenant by id (`org_...`) or slug.
pub async fn find(db: &impl Conn, key: &str) -> Result<Option<tenant::Model>, crate::store::conn::DbErr> {
    let t = if TenantId::parse(key).is_ok() {
        store::tenants::get(db, key).await?
    } else {
        store::tenants::by_slug(db, &key.to_ascii_lowercase()).await?
    };
    if let Some(t) = &t {
        crate::util::record_tenant(&t.id);
    }
    Ok(t)
}

/// [`find`] with the tenant's enabled connections, in one query
/// ([`store::connections::tenant_with_enabled`]).
pub async fn find_with_connections(
    db: &impl Conn,
    key: &str,
) -> Result<Option<(tenant::Model, Vec<crate::store::entities::connection::Model>)>, crate::store::conn::DbErr> {
    use store::connections::TenantKey;
    let slug = key.to_ascii_lowercase();
    let key = if TenantId::parse(key).is_ok() { TenantKey::Id(key) } else { TenantKey::Slug(&slug) };
    let found = store::connections::tenant_with_enabled(db, key).await?;
    if let Some((t, _)) = &found {
        crate::util::record_tenant(&t.id);
    }
    Ok(found)
}

pub async fn domains_of(db: &impl Conn, tenant_id: &str) -> Result<Vec<String>, crate::store::conn::DbErr> {
    Ok(store::tenants::domains_of(db, tenant_id).await?.into_iter().map(|d| d.domain).collect())
}

/// The tenant's domain rows (for [`domain_trusted_for_email`]).
pub async fn domain_rows_of(
    db: &impl Conn,
    tenant_id: &str,
) -> Result<Vec<tenant_domain::Model>, crate::store::conn::DbErr> {
    store::tenants::domains_of(db, tenant_id).await
}

/// Whether fedgate may call `email` verified for a user of `tenant_id`: the IdP vouching for an
/// address is not enough, the address must also be in a domain of the tenant. `domains` are
/// candidate `tenant_domains` rows (all of the tenant's, or just the row of the email's domain).
///
/// The ONE place this rule lives: logins (linking by email, the user's `email_verified`), ID
/// tokens and userinfo all ask here. A domain row of a tenant is there because the operator put
/// it there (admin API, unique across tenants) or because the tenant proved it with a DNS TXT
/// record in the setup portal ([`domain_claims`]); a pending claim is never a row, so it is
/// trusted for nothing.
pub fn domain_trusted_for_email(tenant_id: &str, email: &str, domains: &[tenant_domain::Model]) -> bool {
    let Some(domain) = crate::claims::email_domain(email) else { return false };
    domains.iter().any(|d| d.tenant_id == tenant_id && d.domain == domain)
}

/// [`domain_trusted_for_email`] with the names of all of the tenant's domains (as a login reads
/// them with its tenant, [`crate::store::logins::get_routed`]).
pub fn email_in_tenant_domains(email: &str, tenant_domains: &[String]) -> bool {
    crate::claims::email_domain(email).is_some_and(|d| tenant_domains.contains(&d))
}

/// The tenant owning an email domain.
pub async fn by_domain(db: &impl Conn, domain: &str) -> Result<Option<tenant::Model>, crate::store::conn::DbErr> {
    // One statement: the domain's row and its tenant.
    store::tenants::owner_of_domain(db, &domain.to_ascii_lowercase()).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    #[test]
    fn slugs_and_domains() {
        assert!(validate_slug("acme-corp").is_ok());
        assert!(validate_slug("Acme").is_err());
        assert!(validate_slug("org_x").is_err());
        assert!(validate_slug("-a").is_err());
        assert_eq!(validate_domain("Acme.COM.").unwrap(), "acme.com");
        assert!(validate_domain("localhost").is_err());
        assert!(validate_domain("a..b").is_err());
        assert!(validate_domain("exa mple.com").is_err());
    }

    #[test]
    fn email_trust_needs_a_domain_of_the_tenant() {
        let row = |d: &str, t: &str| tenant_domain::Model { domain: d.into(), tenant_id: t.into(), created_at: 0 };
        let rows = [row("acme.com", "org_a"), row("other.com", "org_b")];
        assert!(domain_trusted_for_email("org_a", "x@Acme.COM", &rows));
        assert!(!domain_trusted_for_email("org_a", "x@sub.acme.com", &rows), "subdomains are other domains");
        assert!(!domain_trusted_for_email("org_a", "x@other.com", &rows), "another tenant's domain");
        assert!(!domain_trusted_for_email("org_b", "x@acme.com", &rows));
        assert!(!domain_trusted_for_email("org_a", "not-an-email", &rows));
        assert!(!domain_trusted_for_email("org_a", "x@acme.com", &[]));
    }

    #[test]
    fn external_id_scope_admits() {
        assert!(ExternalIdScope::Connection("c1".into()).admits("c1"));
        assert!(!ExternalIdScope::Connection("c1".into()).admits("c2"));
        assert!(ExternalIdScope::Tenant.admits("c2"));
        assert!(!ExternalIdScope::Nowhere.admits("c1"));
    }
}
