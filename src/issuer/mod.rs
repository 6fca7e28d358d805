//! fedgate's OpenID Provider: one issuer for every tenant.
pub mod authorize;
pub mod client_keys;
pub mod clients;
pub mod cors;
pub mod discovery;
pub mod endpoints;
pub mod hook;
pub mod token;
pub mod tokens;

use crate::http::AppState;
use actix_web::{web, HttpResponse};

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Readiness: the database answers a ping within `database.acquire_timeout` (a load balancer's
/// health check; 503 with `Retry-After` while the database is unreachable).
async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    let limit = std::time::Duration::from_secs(st.config.database.acquire_timeout.max(1));
    let err = match tokio::time::timeout(limit, st.db.ping()).await {
        Ok(Ok(())) => return HttpResponse::Ok().content_type("text/plain").body("ready"),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "ping timed out".to_string(),
    };
    tracing::warn!(error = %err, "readiness check failed");
    HttpResponse::ServiceUnavailable()
        .insert_header((actix_web::http::header::RETRY_AFTER, crate::http::error::RETRY_AFTER_SECS.to_string()))
        .content_type("text/plain")
        .body("database unreachable")
}

/// `/metrics` (Prometheus text). Needs `Authorization: Bearer <metrics.token>` on the main
/// listener; not served there at all without a token. The optional separate metrics listener
/// serves it without a token.
pub async fn metrics(req: actix_web::HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let on_metrics_listener = req.app_data::<web::Data<MetricsListener>>().is_some();
    if !on_metrics_listener {
        let Some(token) = &st.config.metrics.token else { return HttpResponse::NotFound().finish() };
        let given = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::keys::constant_time_eq(given, &token.0) {
            return HttpResponse::Unauthorized().insert_header(("www-authenticate", "Bearer")).finish();
        }
    }
    metrics_text(&st).await
}

/// Marker app data for the separate metrics listener.
pub struct MetricsListener;

pub async fn metrics_text(st: &AppState) -> HttpResponse {
    use crate::metrics::Sample;
    let now = st.clock.now();
    let (count, oldest) = crate::store::delivery_stats::pending(&st.db).await;
    let count = count.unwrap_or(0) as f64;
    let lag = oldest.ok().flatten().map(|created_at| (now - created_at).max(0) as f64).unwrap_or(0.0);
    let (statements, transactions) = crate::store::db_counters();
    let (size, idle, max) = crate::store::pool_stats(&st.db);
    let timeouts = crate::store::ACQUIRE_TIMEOUTS.load(std::sync::atomic::Ordering::Relaxed);
    let (checkpoints, checkpoint_frames) = crate::store::checkpoint::counters();
    let mut samples: Vec<Sample> = crate::upstream::saml::certificate_expiry_days(&st.db, now)
        .await
        .into_iter()
        .map(|(tenant, connection, days)| Sample {
            name: crate::metrics::CERT_EXPIRY,
            labels: vec![("tenant", tenant), ("connection", connection)],
            value: days,
        })
        .collect();
    // Per endpoint: as many series as administrators created endpoints with pending deliveries.
    match crate::store::delivery_stats::pending_by_webhook(&st.db).await {
        Ok(rows) => {
            for (endpoint, n, oldest) in rows {
                samples.push(Sample {
                    name: crate::metrics::WEBHOOK_PENDING,
                    labels: vec![("endpoint", endpoint.clone())],
                    value: n as f64,
                });
                samples.push(Sample {
                    name: crate::metrics::WEBHOOK_LAG,
                    labels: vec![("endpoint", endpoint)],
                    value: (now - oldest).max(0) as f64,
                });
            }
        }
        Err(e) => crate::util::log_internal("reading the webhook backlog for /metrics", &e),
    }
    let body = st.metrics.render_samples(
        &[
            ("fedgate_deliveries_pending", count),
            ("fedgate_deliveries_lag_seconds", lag),
            ("fedgate_db_statements", statements as f64),
            ("fedgate_db_transactions", transactions as f64),
            ("fedgate_db_pool_connections", f64::from(size)),
            ("fedgate_db_pool_idle_connections", f64::from(idle)),
            ("fedgate_db_pool_in_use_connections", f64::from(size.saturating_sub(idle))),
            ("fedgate_db_pool_max_connections", f64::from(max)),
            ("fedgate_db_pool_acquire_timeouts", timeouts as f64),
            ("fedgate_sqlite_checkpoints", checkpoints as f64),
            ("fedgate_sqlite_checkpoint_frames", checkpoint_frames as f64),
        ],
        &samples,
    );
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    use actix_web::middleware::from_fn;
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics))
        .route("/readyz", web::get().to(readyz))
        .service(
            web::resource("/.well-known/openid-configuration")
                .wrap(from_fn(cors::public))
                .route(web::get().to(discovery::openid_configuration)),
        )
        .service(web::resource("/oauth2/jwks").wrap(from_fn(cors::public)).route(web::get().to(discovery::jwks)))
        .route("/oauth2/authorize", web::get().to(authorize::authorize))
        .route("/oauth2/authorize", web::post().to(authorize::authorize))
        .service(web::resource("/oauth2/token").wrap(from_fn(cors::registered)).route(web::post().to(token::token)))
        .service(
            web::resource("/oauth2/userinfo")
                .wrap(from_fn(cors::registered))
                .route(web::get().to(endpoints::userinfo))
                .route(web::post().to(endpoints::userinfo)),
        )
        .service(
            web::resource("/oauth2/revoke").wrap(from_fn(cors::registered)).route(web::post().to(endpoints::revoke)),
        )
        .route("/oauth2/introspect", web::post().to(endpoints::introspect))
        .route("/oauth2/logout", web::get().to(endpoints::logout))
        .route("/oauth2/logout", web::post().to(endpoints::logout));
}
