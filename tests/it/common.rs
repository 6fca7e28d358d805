//! The test harness: the real app in-process on port 0, a fresh database per test (SQLite file
//! or a new PostgreSQL database), a manual clock, and helpers that drive real HTTP.
#![allow(dead_code)]
use fedgate::app::{self, AppState, Running};
use fedgate::clock::{Clock, ManualClock, SystemClock, SystemRng};
use fedgate::config::Config;
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub clock: ManualClock,
    pub state: AppState,
    pub admin_key: String,
    pub http: reqwest::Client,
    pub backend: Backend,
    running: Running,
    _dir: tempfile::TempDir,
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static PG_CLEAN: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Creates a fresh PostgreSQL database for one test. The name carries the test process's pid
/// (`fgt_<pid>_<random>`); once per process, the databases of test processes that are gone are
/// dropped. Databases of a run still going (another `cargo test`, CI on the same server) are
/// left alone, so concurrent runs never pull a database from under each other.
pub async fn fresh_pg_database() -> String {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let admin = Database::connect(pg_admin_url()).await.expect("PostgreSQL must be running (see README)");
    PG_CLEAN
        .get_or_init(|| async {
            let rows = admin
                .query_all_raw(Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT datname FROM pg_database WHERE datname LIKE 'fgt\\_%\\_%'".to_string(),
                ))
                .await
                .unwrap_or_default();
            let dead: Vec<String> = rows
                .into_iter()
                .filter_map(|r| r.try_get::<String>("", "datname").ok())
                .filter(|name| {
                    name.split('_')
                        .nth(1)
                        .and_then(|p| p.parse::<u32>().ok())
                        .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
                })
                .collect();
            // Dropping a few hundred databases takes minutes (each drop removes files and waits
            // for a checkpoint): it runs beside the tests, four at a time, on a thread of its
            // own; what this process does not finish, the next one does.
            if !dead.is_empty() {
                std::thread::spawn(move || {
                    use futures_util::stream::{self, StreamExt};
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                    rt.block_on(async move {
                        let Ok(admin) = Database::connect(pg_admin_url()).await else { return };
                        stream::iter(dead)
                            .for_each_concurrent(4, |name| {
                                let admin = admin.clone();
                                async move {
                                    let _ = admin
                                        .execute_raw(Statement::from_string(
                                            sea_orm::DbBackend::Postgres,
                                            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                                        ))
                                        .await;
                                }
                            })
                            .await;
                    });
                });
            }
        })
        .await;
    let name = format!("fgt_{}_{}", std::process::id(), &fedgate::ids::random128(&SystemRng)[..16]);
    admin
        .execute_raw(Statement::from_string(sea_orm::DbBackend::Postgres, format!("CREATE DATABASE \"{name}\"")))
        .await
        .expect("create test database");
    let base = pg_admin_url();
    let (prefix, _) = base.rsplit_once('/').expect("database url");
    format!("{prefix}/{name}")
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).cookie_store(true).build().expect("client")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |c| c.allow_private_network = true).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_pg_database().await),
        };
        Self::spawn_on(backend, db, tweak).await
    }

    /// A second instance on the same database (PostgreSQL), as behind a load balancer: same
    /// master key, same issuer.
    pub async fn second_instance(&self) -> TestApp {
        let url = self.state.config.database_url.clone();
        let master = std::fs::read_to_string(self.state.config.data_dir.join("master.key")).expect("master key");
        let issuer = self.state.config.issuer.clone();
        let allow_private = self.state.config.allow_private_network;
        Self::spawn_on(self.backend, url, move |c| {
            c.master_key = Some(fedgate::config::SecretString(master.trim().to_string()));
            c.issuer = issuer;
            c.allow_private_network = allow_private;
        })
        .await
    }

    /// An instance on another database (a restored backup) with this one's master key.
    pub async fn instance_on(&self, database_url: String) -> TestApp {
        let master = std::fs::read_to_string(self.state.config.data_dir.join("master.key")).expect("master key");
        Self::spawn_on(self.backend, Some(database_url), move |c| {
            c.master_key = Some(fedgate::config::SecretString(master.trim().to_string()));
            c.allow_private_network = true;
        })
        .await
    }

    async fn spawn_on(backend: Backend, db: Option<String>, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let database_url = Some(match db {
            Some(u) => u,
            None => format!("sqlite://{}/fedgate.db?mode=rwc", dir.path().display()),
        });
        let mut config = Config {
            listen: format!("127.0.0.1:{port}"),
            issuer: format!("http://127.0.0.1:{port}"),
            data_dir: dir.path().to_path_buf(),
            dev_mode: true,
            background_tasks: false,
            database_url,
            ..Config::default()
        };
        config.database.max_connections = 8;
        tweak(&mut config);
        let clock = ManualClock::new(SystemClock.now_ms());
        let state = AppState::new(config, Arc::new(clock.clone()), Arc::new(SystemRng)).await.expect("app state");
        let (_, admin_key) =
            fedgate::admin::auth::create_key(&state.db, "tests", clock.now_ms(), &SystemRng).await.expect("admin key");
        let running = app::start_on(state.clone(), listener).await.expect("start");
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            clock,
            state,
            admin_key,
            http: browser(),
            backend,
            running,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.http.request(method, self.url(&format!("/admin/v1{path}"))).bearer_auth(&self.admin_key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("admin request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.admin(reqwest::Method::GET, path, None).await
    }

    /// A tenant with a dev connection. Returns (tenant, connection).
    pub async fn tenant(&self, slug: &str, domain: &str, groups: &[&str]) -> (Value, Value) {
        let (s, t) =
            self.post("/tenants", json!({"name": format!("{slug} Inc"), "slug": slug, "domains": [domain]})).await;
        assert_eq!(s, 201, "{t}");
        let (s, c) = self
            .post(
                &format!("/tenants/{slug}/connections"),
                json!({"type": "dev", "name": "Dev", "default_email": format!("alice@{domain}"), "default_name": "Alice Example", "groups": groups}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        (t, c)
    }

    /// A client; returns (client_id, secret or None).
    pub async fn client(&self, kind: &str, alg: &str) -> (String, Option<String>) {
        let (s, c) = self
            .post(
                "/clients",
                json!({"name": "App", "type": kind, "redirect_uris": ["http://127.0.0.1:9/cb"], "id_token_signed_response_alg": alg,
                       "post_logout_redirect_uris": ["http://127.0.0.1:9/bye"]}),
            )
            .await;
        assert_eq!(s, 201, "{c}");
        (c["id"].as_str().unwrap().to_string(), c["client_secret"].as_str().map(str::to_string))
    }

    pub async fn jwks(&self) -> Value {
        reqwest::get(self.url("/oauth2/jwks")).await.unwrap().json().await.unwrap()
    }

    pub async fn stop(self) {
        self.running.handle.stop(false).await;
    }
}

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub fn location(r: &reqwest::Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Authorize URL with PKCE and the given extra params.
pub fn authorize_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&app.url("/oauth2/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email profile offline_access")
            .append_pair("state", "st-123")
            .append_pair("nonce", "n-456")
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

/// Follows authorize -> dev page -> approve. Returns the final redirect to the app.
pub async fn login_via(app: &TestApp, b: &reqwest::Client, url: &str) -> String {
    let r = b.get(url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "authorize: {}", r.text().await.unwrap_or_default());
    let dev = location(&r);
    if dev.starts_with(REDIRECT) {
        return dev;
    }
    assert!(dev.contains("/sso/dev/"), "expected the dev page, got {dev}");
    let page = b.get(&dev).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let r = b.post(&dev).form(&[("action", "approve")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "approve: {}", r.text().await.unwrap_or_default());
    let _ = app;
    location(&r)
}

/// A complete login for `client_id` in `org`; returns the code.
pub async fn code_for(app: &TestApp, b: &reqwest::Client, client_id: &str, extra: &[(&str, &str)]) -> String {
    let back = login_via(app, b, &authorize_url(app, client_id, extra)).await;
    let q = query_of(&back);
    assert_eq!(q.get("state").map(String::as_str), Some("st-123"), "{back}");
    assert_eq!(q.get("iss"), Some(&app.base), "{back}");
    q.get("code").cloned().unwrap_or_else(|| panic!("no code in {back}"))
}

pub async fn exchange(app: &TestApp, client_id: &str, secret: Option<&str>, code: &str) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let mut r = app.http.post(app.url("/oauth2/token"));
    match secret {
        Some(s) => r = r.basic_auth(client_id, Some(s)),
        None => form.push(("client_id", client_id)),
    }
    let resp = r.form(&form).send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

pub async fn refresh(app: &TestApp, client_id: &str, secret: Option<&str>, rt: &str) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    let mut r = app.http.post(app.url("/oauth2/token"));
    match secret {
        Some(s) => r = r.basic_auth(client_id, Some(s)),
        None => form.push(("client_id", client_id)),
    }
    let resp = r.form(&form).send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

pub async fn introspect(app: &TestApp, client_id: &str, secret: &str, token: &str) -> Value {
    app.http
        .post(app.url("/oauth2/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies a JWT with the `jsonwebtoken` crate (an independent implementation) against our JWKS.
pub async fn verify_jwt(app: &TestApp, token: &str, aud: &str) -> Value {
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
    let jwks: JwkSet = serde_json::from_value(app.jwks().await).unwrap();
    let header = decode_header(token).unwrap();
    let kid = header.kid.clone().unwrap();
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[&app.base]);
    decode::<Value>(token, &key, &v).unwrap_or_else(|e| panic!("verification failed: {e}")).claims
}

pub fn jwt_header(token: &str) -> Value {
    use base64::Engine;
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// Runs each listed async test function against SQLite and PostgreSQL.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Sqlite).await;
                    super::$name(&app).await;
                    app.stop().await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let app = $crate::common::TestApp::spawn($crate::common::Backend::Postgres).await;
                    super::$name(&app).await;
                    app.stop().await;
                }
            }
        )*
    };
}
