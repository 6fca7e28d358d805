//! Domain claims: a tenant (through the setup portal) claims an email domain and proves it with
//! a DNS TXT record.
//!
//! The rule (docs/portal.md#domains):
//! - the tenant's domains are the `tenant_domains` rows; home-realm discovery and
//!   [`super::domain_trusted_for_email`] read only those;
//! - a row gets there in one of two ways: the operator adds it through the admin API (the
//!   operator vouches for it, as before), or a claim's TXT record is found (DNS-verified);
//! - a pending claim is trusted for nothing, and several tenants may hold pending claims on one
//!   domain; the first to prove it gets it, and a domain that is already a domain of another
//!   tenant cannot be claimed (nor verified: the check reports it as taken);
//! - consumer mail domains (gmail.com, outlook.com, ...) cannot be claimed.
use super::dns::{self, CheckResult, DnsChecker};
use crate::clock::Rng;
use crate::error_code::ErrorCode;
use crate::events::audit::Actor;
use crate::store::conn::DbErr;
use crate::store::entities::domain_claim::Model;
use crate::store::{self, audited, Db};
use crate::validation::Invalid;
use serde::Serialize;

/// Mail domains anybody can get an address in: nobody proves them for an organization.
pub const CONSUMER_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "qq.com",
    "163.com",
    "126.com",
    "comcast.net",
];

/// Whether `domain` (lower case) is a consumer mail domain.
pub fn is_consumer(domain: &str) -> bool {
    CONSUMER_DOMAINS.contains(&domain)
}

/// When the background job checks a pending claim next: every minute in its first hour, every
/// 10 minutes in its first day, hourly for a week, then never (the page's "Check now" still
/// works).
pub fn next_check(created_at: i64, now: i64) -> Option<i64> {
    let age = now - created_at;
    match age {
        a if a < 3600 => Some(now + 60),
        a if a < 86_400 => Some(now + 600),
        a if a < 7 * 86_400 => Some(now + 3600),
        _ => None,
    }
}

/// A claim as the portal shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimView {
    pub id: String,
    pub domain: String,
    pub record_name: String,
    pub record_value: String,
    /// `pending`, `verified`, or `removed` (verified, then taken off the tenant's domains by the
    /// operator).
    pub state: &'static str,
    pub checks: i32,
    pub last_checked_at: Option<i64>,
    pub last_result: Option<CheckResult>,
    pub verified_at: Option<i64>,
    pub next_check_at: Option<i64>,
}

/// `domains`: the tenant's current domains.
pub fn view(c: &Model, domains: &[String]) -> ClaimView {
    let state = match c.verified_at {
        None => "pending",
        Some(_) if domains.contains(&c.domain) => "verified",
        Some(_) => "removed",
    };
    ClaimView {
        id: c.id.clone(),
        domain: c.domain.clone(),
        record_name: dns::record_name(&c.domain),
        record_value: dns::record_value(&c.challenge),
        state,
        checks: c.checks,
        last_checked_at: c.last_checked_at,
        last_result: c.last_result.as_deref().and_then(|j| serde_json::from_str(j).ok()),
        verified_at: c.verified_at,
        next_check_at: c.next_check_at,
    }
}

/// A refused claim, or the database.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Claims `raw` for the tenant: a new pending claim with a fresh challenge, or the tenant's
/// existing claim on that domain.
pub async fn claim(
    db: &Db,
    rng: &dyn Rng,
    now: i64,
    tenant_id: &str,
    raw: &str,
    actor: &Actor<'_>,
) -> Result<Model, ClaimError> {
    let domain = super::validate_domain(raw).map_err(|mut e| {
        e.field = Some("domain".into());
        e
    })?;
    if is_consumer(&domain) {
        return Err(Invalid::field(
            "domain",
            ErrorCode::ConsumerDomain,
            format!("{domain} is a public mail service: anyone can have an address there, so it cannot be your organization's domain"),
        )
        .into());
    }
    if let Some(d) = store::tenants::domain(db, &domain).await? {
        if d.tenant_id != tenant_id {
            return Err(Invalid::conflict(
                ErrorCode::DomainTaken,
                "domain",
                format!(
                    "{domain} already belongs to another organization; if it is yours, contact the vendor's support"
                ),
            )
            .into());
        }
    }
    if let Some(c) = store::domain_claims::of_tenant_domain(db, tenant_id, &domain).await? {
        return Ok(c);
    }
    let w = audited::begin(db).await?;
    let row = store::domain_claims::insert(
        &*w,
        store::domain_claims::NewClaim {
            id: format!("dcl_{}", crate::ids::random128(rng)),
            tenant_id: tenant_id.to_string(),
            domain: domain.clone(),
            challenge: crate::ids::random128(rng),
            created_by: actor.name.to_string(),
            now,
            next_check_at: Some(now + 60),
        },
    )
    .await?;
    let entry = actor.entry(
        now,
        "domain_claim.create",
        "domain_claim",
        Some(&row.id),
        Some(tenant_id),
        serde_json::json!({"domain": domain}),
    );
    w.commit(rng, entry, None).await?;
    Ok(row)
}

/// What a check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The record was found: the domain is now one of the tenant's domains.
    Verified,
    /// Not yet: what DNS returned.
    NotYet(CheckResult),
    /// The record is there, but the domain became another tenant's meanwhile.
    Taken,
}

/// Looks the claim's record up and records the result; a match adds the domain to the tenant's
/// domains (one audited transaction).
pub async fn check(
    db: &Db,
    rng: &dyn Rng,
    checker: &DnsChecker,
    now: i64,
    claim: Model,
    actor: &Actor<'_>,
) -> Result<(Model, Checked), DbErr> {
    if claim.verified_at.is_some() {
        return Ok((claim, Checked::Verified));
    }
    let result = checker.check(&claim.domain, &dns::record_value(&claim.challenge)).await;
    let json = serde_json::to_string(&result).unwrap_or_default();
    if !result.is_verified() {
        let next = next_check(claim.created_at, now);
        let row = store::domain_claims::record_check(db, claim, now, json, next, None).await?;
        return Ok((row, Checked::NotYet(result)));
    }
    let w = audited::begin(db).await?;
    match store::tenants::domain(&*w, &claim.domain).await? {
        Some(d) if d.tenant_id != claim.tenant_id => {
            drop(w);
            let json = serde_json::to_string(&CheckResult::Taken).unwrap_or_default();
            let row = store::domain_claims::record_check(db, claim, now, json, None, None).await?;
            return Ok((row, Checked::Taken));
        }
        Some(_) => {}
        None => store::tenants::insert_domain(&*w, &claim.tenant_id, &claim.domain, now).await?,
    }
    let (tenant_id, domain, id) = (claim.tenant_id.clone(), claim.domain.clone(), claim.id.clone());
    let row = store::domain_claims::record_check(&*w, claim, now, json, None, Some(now)).await?;
    let entry = actor.entry(
        now,
        "domain_claim.verify",
        "domain_claim",
        Some(&id),
        Some(&tenant_id),
        serde_json::json!({"domain": domain}),
    );
    w.commit(rng, entry, None).await?;
    tracing::info!(tenant = %tenant_id, %domain, "domain verified by DNS");
    Ok((row, Checked::Verified))
}

/// The background job: checks the pending claims that are due (at most `limit`). Returns how
/// many were verified.
pub async fn check_due(db: &Db, rng: &dyn Rng, checker: &DnsChecker, now: i64, limit: u64) -> Result<usize, DbErr> {
    let actor = Actor { name: "system:dns-check", ip: "" };
    let mut verified = 0;
    for c in store::domain_claims::due(db, now, limit).await? {
        if let (_, Checked::Verified) = check(db, rng, checker, now, c, &actor).await? {
            verified += 1;
        }
    }
    Ok(verified)
}

/// Removes a pending claim (a verified one stays: the operator removes the domain itself).
pub async fn withdraw(
    db: &Db,
    rng: &dyn Rng,
    now: i64,
    tenant_id: &str,
    id: &str,
    actor: &Actor<'_>,
) -> Result<bool, DbErr> {
    let w = audited::begin(db).await?;
    if !store::domain_claims::delete_pending(&*w, tenant_id, id).await? {
        return Ok(false);
    }
    let entry =
        actor.entry(now, "domain_claim.withdraw", "domain_claim", Some(id), Some(tenant_id), serde_json::json!({}));
    w.commit(rng, entry, None).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_domains_are_refused() {
        assert!(is_consumer("gmail.com"));
        assert!(is_consumer("outlook.com"));
        assert!(!is_consumer("acme.com"));
    }

    #[test]
    fn background_checks_back_off_then_stop() {
        assert_eq!(next_check(0, 10), Some(70));
        assert_eq!(next_check(0, 7200), Some(7800));
        assert_eq!(next_check(0, 2 * 86_400), Some(2 * 86_400 + 3600));
        assert_eq!(next_check(0, 8 * 86_400), None);
    }
}
