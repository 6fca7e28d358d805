//! Builds the application from explicit dependencies and runs it. Tests build it on port 0.
use crate::clock::{Clock, Rng};
use crate::config::Config;
use crate::keys::{KeyRing, MasterKey};
use crate::store::Db;
use actix_web::{web, App, HttpServer};
use std::sync::Arc;

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub rng: Arc<dyn Rng>,
    pub keys: Arc<KeyRing>,
    pub master: Arc<MasterKey>,
    pub openapi: Arc<serde_json::Value>,
    /// Set by `serve --demo`: the built-in demo app's client secret.
    pub demo: Arc<std::sync::RwLock<Option<crate::demo::DemoApp>>>,
    /// The SCIM request log buffer (written in batches).
    pub scim_log: Arc<crate::scim::reqlog::RequestLog>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("master key: {0}")]
    Secret(#[from] crate::keys::secrets::SecretError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
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
        Ok(Self { config: Arc::new(config), db, clock, rng, keys, master, openapi, demo: Arc::default(), scim_log })
    }

    /// One round of maintenance: key rotation when due, expired rows removed.
    pub async fn maintenance(&self) -> Result<(), crate::keys::KeyError> {
        self.keys.rotate(false).await?;
        crate::issuer::cleanup::expired(&self.db, self.clock.now()).await.map_err(crate::keys::KeyError::from)?;
        Ok(())
    }
}

/// Registers every route on an app.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let form_limit = state.config.limits.form_body;
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(form_limit))
            .configure(crate::issuer::routes)
            .configure(crate::scim::routes)
            .configure(crate::demo::routes);
    }
}

async fn not_found() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NotFound().content_type("text/html; charset=utf-8").body(crate::html::error_page(
        "Not found",
        "There is nothing at this address.",
        "not_found",
        &crate::http::current_request_id(),
        None,
    ))
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
                    crate::error::log_internal("maintenance failed", &e);
                }
                if let Err(e) = st.keys.reload().await {
                    crate::error::log_internal("reloading keys failed", &e);
                }
            }
        });
    }
    let task = tokio::spawn(server);
    Ok(Running { port, state, handle, task })
}
