//! Builds the application from explicit dependencies and runs it. Tests build it on port 0.
use crate::clock::{Clock, Rng};
use crate::config::Config;
use crate::error_code::ErrorCode;
pub use crate::http::state::AppState;
use crate::keys::{KeyRing, MasterKey};
use crate::store::Db;
use actix_web::{web, App, HttpServer};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] crate::store::conn::DbErr),
    #[error("master key: {0}")]
    Secret(#[from] crate::keys::secrets::SecretError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "another `fedgate serve` is already running on the SQLite database {0}. SQLite serves one \
         instance; to run several, use PostgreSQL (database_url = \"postgres://...\")"
    )]
    SqliteInUse(String),
}

/// `serve` on SQLite holds an exclusive lock on `<database file>.serve.lock` for its whole life:
/// SQLite means one instance by construction (jobs, leases and caches assume it), so a second
/// `serve` on the same file stops at once with a clear error. The operating system releases the
/// lock when the process ends, however it ends. The offline commands (`migrate`, `admin-key`,
/// `keys`) do not take it. PostgreSQL needs none.
#[derive(Debug)]
pub struct ServeLock {
    _file: Option<std::fs::File>,
}

impl ServeLock {
    pub fn take(config: &Config) -> Result<ServeLock, StartError> {
        let Some(path) = sqlite_file(&config.database_url()) else {
            return Ok(ServeLock { _file: None });
        };
        if let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let lock_path = format!("{path}.serve.lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StartError::SqliteInUse(path)),
            Err(std::fs::TryLockError::Error(e)) => Err(StartError::Io(e)),
        }
    }
}

/// The file behind a `sqlite:` URL (`None` for PostgreSQL and in-memory databases).
pub fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.contains(":memory:") && !rest.contains("mode=memory")).then(|| path.to_string())
}

/// Opens the database, applies migrations, loads the master key. Shared by `serve` and the
/// offline commands.
pub async fn open(config: &Config, rng: &dyn Rng) -> Result<(Db, Arc<MasterKey>), StartError> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let db =
        crate::store::connect(&config.database_url(), config.database.max_connections, config.database.acquire_timeout)
            .await?;
    crate::store::migrate(&db).await?;
    let master = match &config.master_key {
        Some(k) => MasterKey::from_base64(&k.0)?,
        None => {
            let (k, created) = MasterKey::load_or_create(&config.data_dir, rng)?;
            let path = config.data_dir.join("master.key");
            if created {
                tracing::warn!(path = %path.display(), "GENERATED A NEW MASTER KEY. Production deployments must set FEDGATE_MASTER_KEY (base64 of 32 random bytes) and keep it safe: without it, stored secrets and signing keys cannot be decrypted.");
            } else {
                tracing::warn!(path = %path.display(), "using the master key file from the data directory; production deployments should set FEDGATE_MASTER_KEY");
            }
            k
        }
    };
    Ok((db, Arc::new(master)))
}

impl AppState {
    pub async fn new(config: Config, clock: Arc<dyn Clock>, rng: Arc<dyn Rng>) -> Result<Self, StartError> {
        let (db, master) = open(&config, &*rng).await?;
        let keys = Arc::new(KeyRing::new(
            db.clone(),
            master.clone(),
            clock.clone(),
            rng.clone(),
            config.keys.rotation_interval,
            config.keys.publish_ahead,
            config.max_signed_lifetime(),
        ));
        keys.rotate(false).await?;
        let openapi = Arc::new(crate::admin::openapi_document());
        let scim_log = crate::scim::reqlog::RequestLog::start(db.clone());
        let outbound = crate::net::Outbound::new(config.allow_private_network)
            .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))?;
        let instance_id = format!("ins_{}", crate::ids::random128(&*rng));
        let saml_pool = Arc::new(crate::blocking::BlockingPool::new(config.saml.workers(), config.saml.verify_queue));
        let upstream = Arc::new(
            crate::upstream::UpstreamCtx::new(
                config.allow_private_network,
                master.clone(),
                clock.clone(),
                rng.clone(),
                config.dev_mode,
                saml_pool.clone(),
                config.saml.decryption_failure_floor_ms,
            )
            .map_err(std::io::Error::other)?,
        );
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let limits = Arc::new(crate::http::limits::Limits::new(
            &config.rate_limits,
            config.limits.form_body,
            clock.clone(),
            metrics.clone(),
        ));
        let failure_log = Arc::new(crate::traces::sampled::FailureLog::new(config.rate_limits.failure_log_interval));
        Ok(Self {
            config: Arc::new(config),
            db,
            clock,
            rng,
            keys,
            master,
            openapi,
            outbound,
            instance_id,
            metrics,
            demo: Arc::default(),
            connectors: Arc::new(crate::upstream::registry::Connectors::new(upstream.clone())),
            upstream,
            scim_log,
            saml_pool,
            limits,
            failure_log,
            client_keys: Arc::default(),
            trace_budget: Arc::new(crate::traces::sampled::Budget::new(
                crate::traces::sampled::TRACE_BUDGET_PER_MINUTE,
            )),
        })
    }

    /// The webhook and back-channel delivery worker's dependencies.
    pub fn delivery_worker(&self) -> crate::events::delivery::Worker {
        crate::events::delivery::Worker {
            db: self.db.clone(),
            clock: self.clock.clone(),
            rng: self.rng.clone(),
            master: self.master.clone(),
            keys: self.keys.clone(),
            outbound: self.outbound.clone(),
            metrics: self.metrics.clone(),
            issuer: self.config.issuer.clone(),
            webhooks: self.config.webhooks.clone(),
        }
    }

    /// One round of maintenance. Per instance: rate-limit housekeeping. Once across all
    /// instances (each job under its own lease in `locks`, see `store::jobs`): key rotation when
    /// due, clean-up and retention, SAML metadata refresh. Returns the jobs this instance ran.
    pub async fn maintenance(&self) -> Result<Vec<&'static str>, crate::keys::KeyError> {
        self.limits.housekeeping();
        let mut ran = Vec::new();
        for job in JOBS {
            if self.leased(job, JOB_LEASE_SECS, self.run_job(job)).await?.is_some() {
                ran.push(job);
            }
        }
        Ok(ran)
    }

    /// Runs `work` as the scheduled job `job` if this instance takes the job's lease for `ttl`
    /// seconds (`None`: another instance holds it), and records the run in
    /// `fedgate_job_runs_total` / `fedgate_job_duration_seconds`.
    pub async fn leased<E: From<crate::store::conn::DbErr>>(
        &self,
        job: &'static str,
        ttl: i64,
        work: impl std::future::Future<Output = Result<(), E>>,
    ) -> Result<Option<()>, E> {
        if !crate::store::jobs::try_lease(&self.db, job, &self.instance_id, self.clock.now(), ttl).await? {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        let r = work.await;
        let result = if r.is_ok() { "ok" } else { "error" };
        self.metrics.inc("fedgate_job_runs_total", &[("job", job), ("result", result)]);
        self.metrics.observe("fedgate_job_duration_seconds", &[("job", job)], started.elapsed().as_secs_f64());
        r.map(Some)
    }

    async fn run_job(&self, job: &str) -> Result<(), crate::keys::KeyError> {
        let now = self.clock.now();
        let db_err = crate::keys::KeyError::from;
        match job {
            "rotate_keys" => {
                self.keys.rotate(false).await?;
            }
            "cleanup" => {
                // Unfinished logins leave an `abandoned` trace before clean-up removes them.
                crate::traces::abandon_expired(&self.db, now).await.map_err(db_err)?;
                crate::store::cleanup::expired(&self.db, now).await.map_err(db_err)?;
                crate::store::ui_sessions::prune(&self.db, now).await.map_err(db_err)?;
                crate::events::prune(&self.db, now - self.config.events.retention).await.map_err(db_err)?;
                crate::events::audit::prune(&self.db, now - self.config.events.audit_retention)
                    .await
                    .map_err(db_err)?;
                crate::traces::expire(&self.db, now, self.config.tokens.login_trace_retention).await.map_err(db_err)?;
                let r = &self.config.retention;
                crate::store::cleanup::retention(&self.db, now - r.deliveries, now - r.scim_requests)
                    .await
                    .map_err(db_err)?;
            }
            "saml_metadata_refresh" => {
                let runs = crate::upstream::saml::refresh::run_due(&self.db, &self.upstream).await.map_err(db_err)?;
                for (conn, outcome) in runs {
                    self.metrics.inc(
                        "fedgate_saml_metadata_refreshes_total",
                        &[("tenant", &conn.tenant_id), ("connection", &conn.id), ("result", outcome.label())],
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The scheduled jobs, in the order a round runs them.
pub const JOBS: [&str; 3] = ["rotate_keys", "cleanup", "saml_metadata_refresh"];
/// Seconds a job's lease lasts: less than the one-minute round, so a dead instance's jobs are
/// taken over at the next round.
pub const JOB_LEASE_SECS: i64 = 55;

/// Registers every route on an app.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let form_limit = state.config.limits.form_body;
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(form_limit))
            .configure(crate::issuer::routes)
            .configure(crate::scim::routes)
            .configure(crate::login::routes)
            .configure(crate::portal::routes)
            .configure(crate::demo::routes)
            .configure(crate::console::routes);
    }
}

async fn not_found() -> actix_web::HttpResponse {
    crate::templates::ErrorPage {
        title: "Not found",
        message: "There is nothing at this address.",
        code: ErrorCode::NotFound,
        request_id: &crate::http::current_request_id(),
        back: None,
        trace: None,
    }
    .respond(actix_web::HttpResponse::NotFound())
}

/// A running server.
pub struct Running {
    pub port: u16,
    pub state: AppState,
    pub handle: actix_web::dev::ServerHandle,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn start(state: AppState) -> Result<Running, StartError> {
    let listener = std::net::TcpListener::bind(&state.config.listen)?;
    start_on(state, listener).await
}

/// Runs on an already bound listener (tests bind port 0 first to learn the issuer URL).
pub async fn start_on(state: AppState, listener: std::net::TcpListener) -> Result<Running, StartError> {
    let port = listener.local_addr()?.port();
    let s2 = state.clone();
    let server = HttpServer::new(move || {
        let app = App::new()
            .wrap(actix_web::middleware::from_fn(crate::http::limits::rate_limit))
            .wrap(actix_web::middleware::from_fn(crate::http::request_context))
            .configure(configure(s2.clone()));
        crate::admin::register(utoipa_actix_web::AppExt::into_utoipa_app(app))
            .default_service(web::to(not_found))
            .into_app()
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    let handle = server.handle();
    if state.config.background_tasks {
        let st = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = st.maintenance().await {
                    crate::util::log_internal("maintenance failed", &e);
                }
                if let Err(e) = st.keys.reload().await {
                    crate::util::log_internal("reloading keys failed", &e);
                }
            }
        });
    }
    if state.config.background_tasks {
        let st = state.clone();
        let worker = st.delivery_worker();
        let poll = std::time::Duration::from_millis(st.config.webhooks.poll_interval_ms.max(50));
        let owner = st.instance_id.clone();
        let in_flight = st.config.webhooks.max_in_flight;
        tokio::spawn(crate::events::delivery::run_forever(worker, owner, poll, in_flight));
    }
    if state.config.background_tasks {
        // Pending domain claims of the setup portal: their TXT records, checked on a schedule.
        match crate::tenant::dns::DnsChecker::new(state.config.dns.resolver.as_deref()) {
            Ok(checker) => {
                let st = state.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
                    loop {
                        tick.tick().await;
                        let now = st.clock.now();
                        // One instance a round (the job's lease, see store::jobs).
                        let check = async {
                            crate::tenant::domain_claims::check_due(&st.db, &*st.rng, &checker, now, 20)
                                .await
                                .map(|_| ())
                        };
                        if let Err(e) = st.leased("domain_checks", 25, check).await {
                            crate::util::log_internal("checking domain claims failed", &e);
                        }
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "domain claims are not checked in the background"),
        }
    }
    if let Some(addr) = state.config.metrics.listen.clone() {
        let st = state.clone();
        let metrics_server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(st.clone()))
                .app_data(web::Data::new(crate::issuer::MetricsListener))
                .route("/metrics", web::get().to(crate::issuer::metrics))
        })
        .workers(1)
        .bind(&addr)?
        .run();
        tokio::spawn(metrics_server);
        tracing::info!(%addr, "metrics listener");
    }
    let task = tokio::spawn(server);
    Ok(Running { port, state, handle, task })
}
