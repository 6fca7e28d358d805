//! IdP metadata refresh: connections created from a metadata URL fetch it again on a schedule
//! (guarded HTTP client), add new signing certificates beside the old ones (so a rotation at the
//! IdP causes no outage), and record a warning plus an event when a refresh fails or a trusted
//! certificate expires within 30 days. One instance refreshes at a time (a database lock).
use super::{metadata, SamlConfig};
use crate::store::conn::{DbErr, Tx};
use crate::store::entities::connection;
use crate::store::Db;
use crate::upstream::UpstreamCtx;

/// How often metadata is fetched again.
pub const REFRESH_INTERVAL_SECS: i64 = 6 * 3600;
/// After a failure, how soon to try again.
pub const RETRY_SECS: i64 = 15 * 60;
/// Certificates expiring sooner than this are announced.
pub const EXPIRY_WARNING_SECS: i64 = 30 * 86_400;

/// Fetches metadata with the guarded client (no redirects, size limit, no private addresses
/// unless allowed).
pub async fn fetch(ctx: &UpstreamCtx, url: &str) -> Result<String, String> {
    let req = openidconnect::http::Request::builder()
        .method(openidconnect::http::Method::GET)
        .uri(url)
        .header(openidconnect::http::header::ACCEPT, "application/samlmetadata+xml, application/xml, text/xml")
        .body(Vec::new())
        .map_err(|_| format!("invalid metadata URL {url}"))?;
    let resp = ctx.http.execute(req).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("the metadata URL answered HTTP {}", resp.status().as_u16()));
    }
    String::from_utf8(resp.into_body()).map_err(|_| "the metadata is not UTF-8".to_string())
}

impl Refreshed {
    /// The metric label of the outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Refreshed::Unchanged => "unchanged",
            Refreshed::Changed => "changed",
            Refreshed::Failed(_) => "failed",
            Refreshed::Superseded => "superseded",
        }
    }
}

/// What one refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Unchanged,
    Changed,
    Failed(String),
    /// The connection changed (an admin's edit) while the metadata was being fetched; nothing
    /// was written.
    Superseded,
}

/// Refreshes one connection's metadata now, records the result on the row, and emits events.
pub async fn refresh_one(
    db: &Db,
    ctx: &UpstreamCtx,
    row: &connection::Model,
) -> Result<(connection::Model, Refreshed), DbErr> {
    let Ok(crate::upstream::connections::ConnectionConfig::Saml(cfg)) =
        crate::upstream::connections::ConnectionConfig::from_row(row)
    else {
        return Ok((row.clone(), Refreshed::Unchanged));
    };
    let mut cfg: SamlConfig = *cfg;
    let Some(url) = cfg.metadata_url.clone() else {
        return Ok((row.clone(), Refreshed::Unchanged));
    };
    let now = ctx.clock.now();
    let was_failing = cfg.metadata_refresh_error.is_some();
    // The same checks as the first import: a signing certificate (parse_idp_metadata) and SSO
    // URLs that are https (http only in dev mode), with a host, of bounded length. Metadata that
    // fails them changes nothing: the connection keeps its last good settings.
    let fetched = match fetch(ctx, &url).await {
        Ok(xml) => metadata::parse_idp_metadata(&xml, Some(&cfg.idp_entity_id))
            .and_then(|md| md.check_sso_urls(ctx.dev_mode).map(|()| md)),
        Err(e) => Err(e),
    };
    let outcome = match fetched {
        Ok(md) => {
            cfg.metadata_refresh_error = None;
            if cfg.apply_metadata(md, now) {
                Refreshed::Changed
            } else {
                Refreshed::Unchanged
            }
        }
        Err(e) => {
            let e: String = e.chars().take(500).collect();
            cfg.metadata_refresh_error = Some(e.clone());
            Refreshed::Failed(e)
        }
    };
    cfg.metadata_refreshed_at = Some(now);
    let expiring = newly_expiring(&mut cfg, now);
    let tx = crate::store::write_tx(db).await?;
    let config = serde_json::to_string(&cfg).unwrap_or_else(|_| row.config.clone());
    let changed_at = (outcome == Refreshed::Changed).then_some(now);
    let Some(updated) = crate::store::connections::set_config(&tx, row, config, changed_at).await? else {
        // An admin changed the connection while the metadata was fetched: their change stands,
        // nothing is written and no event is emitted (the next round refreshes the new version).
        tracing::info!(connection = %row.id, "connection changed during its metadata refresh; this refresh is dropped");
        return Ok((row.clone(), Refreshed::Superseded));
    };
    if let Refreshed::Failed(e) = &outcome {
        tracing::warn!(connection = %row.id, error = %e, "SAML metadata refresh failed");
        if !was_failing {
            crate::events::emit(
                &tx,
                &*ctx.rng,
                now,
                Some(&row.tenant_id),
                "connection.metadata_refresh_failed",
                serde_json::json!({"connection_id": row.id, "tenant_id": row.tenant_id, "metadata_url": url, "error": e}),
            )
            .await?;
        }
    }
    if outcome == Refreshed::Changed {
        tracing::info!(connection = %row.id, "SAML metadata changed (certificates or endpoints)");
    }
    announce_expiring(&tx, ctx, row, expiring).await?;
    tx.commit().await?;
    Ok((updated, outcome))
}

/// One `connection.certificate_expiring` event per certificate.
async fn announce_expiring(
    tx: &Tx,
    ctx: &UpstreamCtx,
    row: &connection::Model,
    expiring: Vec<metadata::CertInfo>,
) -> Result<(), DbErr> {
    for info in expiring {
        tracing::warn!(connection = %row.id, fingerprint = %info.fingerprint_sha256, not_after = info.not_after, "IdP signing certificate expires soon");
        crate::events::emit(
            tx,
            &*ctx.rng,
            ctx.clock.now(),
            Some(&row.tenant_id),
            "connection.certificate_expiring",
            serde_json::json!({"connection_id": row.id, "tenant_id": row.tenant_id, "fingerprint_sha256": info.fingerprint_sha256,
                               "subject": info.subject, "not_after": crate::util::rfc3339(info.not_after)}),
        )
        .await?;
    }
    Ok(())
}

/// Trusted certificates expiring within 30 days that were not announced yet (marked announced).
fn newly_expiring(cfg: &mut SamlConfig, now: i64) -> Vec<metadata::CertInfo> {
    let mut out = Vec::new();
    for pem in &cfg.idp_certificates {
        if let Ok(info) = metadata::cert_info(pem) {
            if info.not_after - now < EXPIRY_WARNING_SECS && !cfg.expiry_warned.contains(&info.fingerprint_sha256) {
                out.push(info);
            }
        }
    }
    for i in &out {
        cfg.expiry_warned.push(i.fingerprint_sha256.clone());
    }
    out
}

/// One maintenance pass: refreshes every due metadata URL and announces expiring certificates
/// of every SAML connection. Returns how many connections were looked at.
pub async fn run_due(db: &Db, ctx: &UpstreamCtx) -> Result<Vec<(connection::Model, Refreshed)>, DbErr> {
    let now = ctx.clock.now();
    let rows = crate::store::connections::all_of_type(db, "saml").await?;
    let mut n = Vec::new();
    for row in rows {
        let Ok(crate::upstream::connections::ConnectionConfig::Saml(cfg)) =
            crate::upstream::connections::ConnectionConfig::from_row(&row)
        else {
            continue;
        };
        let last = cfg.metadata_refreshed_at.unwrap_or(0);
        let wait = if cfg.metadata_refresh_error.is_some() { RETRY_SECS } else { REFRESH_INTERVAL_SECS };
        if cfg.metadata_url.is_some() && now - last >= wait {
            n.push(refresh_one(db, ctx, &row).await?);
        } else {
            let mut cfg = *cfg;
            let expiring = newly_expiring(&mut cfg, now);
            if !expiring.is_empty() {
                let tx = crate::store::write_tx(db).await?;
                let config = serde_json::to_string(&cfg).unwrap_or_else(|_| row.config.clone());
                if crate::store::connections::set_config(&tx, &row, config, None).await?.is_some() {
                    announce_expiring(&tx, ctx, &row, expiring).await?;
                    tx.commit().await?;
                }
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn expiring_certificates_are_announced_once_and_warned() {
        let t0 = 1_767_225_600;
        let (_, cert) = metadata::generate_sp_key("idp", t0).unwrap();
        let not_after = metadata::cert_info(&cert).unwrap().not_after;
        let mut cfg: SamlConfig = serde_json::from_value(serde_json::json!({
            "idp_entity_id": "https://idp.test", "sso_url_redirect": "https://idp.test/sso",
            "idp_certificates": [cert], "request_binding": "redirect", "sp_certificate": ""
        }))
        .unwrap();
        assert!(newly_expiring(&mut cfg, t0).is_empty());
        assert!(cfg.warnings(t0).is_empty());
        let soon = not_after - 10 * 86_400;
        assert_eq!(newly_expiring(&mut cfg, soon).len(), 1);
        assert!(newly_expiring(&mut cfg, soon).is_empty(), "announced once");
        assert!(cfg.warnings(soon)[0].contains("expires at"), "{:?}", cfg.warnings(soon));
        assert!(cfg.warnings(not_after + 1)[0].contains("expired at"));
    }

    #[test]
    fn rotation_keeps_the_old_certificate_for_a_day() {
        let (_, a) = metadata::generate_sp_key("a", 0).unwrap();
        let (_, b) = metadata::generate_sp_key("b", 0).unwrap();
        let mut cfg: SamlConfig = serde_json::from_value(serde_json::json!({
            "idp_entity_id": "https://idp.test", "sso_url_redirect": "https://idp.test/sso",
            "idp_certificates": [a], "request_binding": "redirect", "sp_certificate": ""
        }))
        .unwrap();
        let md = |certs: Vec<String>| metadata::IdpMetadata {
            entity_id: "https://idp.test".into(),
            sso_url_redirect: Some("https://idp.test/sso".into()),
            sso_url_post: None,
            certificates: certs,
            valid_until: None,
        };
        assert!(cfg.apply_metadata(md(vec![b.clone()]), 1000));
        assert_eq!(cfg.trusted_certs_der(1000).len(), 2, "old one kept during the overlap");
        assert_eq!(cfg.trusted_certs_der(1000 + 86_401).len(), 1, "and dropped a day later");
        assert!(!cfg.apply_metadata(md(vec![b]), 2000), "unchanged");
    }
}
