//! `fedgate-ha`: the high-availability test driver (tests/ha/run.sh starts the cluster, the
//! instances and HAProxy, then runs this).
//!
//! Through the HAProxy front (round-robin, so each step of a login lands on another instance) it
//! sets up a login tenant (an upstream OIDC connection to the in-process fixture IdP), SCIM
//! tenants and two webhook endpoints pointing at an in-process receiver, then runs two phases of
//! load (brokered logins, SCIM creates and patches, the webhook deliveries they cause):
//!
//! * **A**: one instance is killed with SIGKILL mid-load (the `kill` hook). Logins that were not
//!   in flight at that moment must all succeed; afterwards (the instance restarted, the outbox
//!   drained) every acknowledged SCIM write must read back, and every event must have reached
//!   each endpoint (exactly once after de-duplication by `webhook-id`), per tenant in order.
//! * **B**: PostgreSQL is stopped mid-load and started again (the `pg-stop` / `pg-start`
//!   hooks). Meanwhile each instance is probed directly on every surface: it must answer 503 in
//!   its surface's shape with `Retry-After`, quickly (never hang, never 500), and every instance
//!   must answer 2xx within 5 s of the database being back. The same checks as A follow.
//!
//! The numbers go to stdout and to `--out` (JSON). Exit status 1 when a check fails.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use clap::Parser;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderValue, CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use reqwest::{Client, StatusCode};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};
use url::Url;

#[path = "../../../../idp-fixtures/oidc_idp.rs"]
mod oidc_idp;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxErr>;

const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

#[derive(Parser, Debug, Clone)]
#[command(name = "fedgate-ha", about = "High-availability test driver (run by tests/ha/run.sh)")]
struct Args {
    /// The load balancer's URL (the issuer).
    #[arg(long)]
    url: String,
    /// Every instance's own URL, comma-separated, in hook numbering order (1, 2, 3).
    #[arg(long, value_delimiter = ',')]
    instances: Vec<String>,
    /// Admin API key (default: $FEDGATE_ADMIN_KEY).
    #[arg(long)]
    admin_key: Option<String>,
    /// The database all instances share (read to check the outbox).
    #[arg(long)]
    database_url: String,
    /// Command run with one more argument: `kill N`, `start N`, `pg-stop`, `pg-start`.
    #[arg(long)]
    hook: String,
    /// Which instance phase A kills (1-based).
    #[arg(long, default_value_t = 2)]
    kill: usize,
    /// Seconds of load per phase.
    #[arg(long, default_value_t = 10.0)]
    phase_secs: f64,
    /// Seconds into phase A when the instance is killed / into phase B when PostgreSQL stops.
    #[arg(long, default_value_t = 4.0)]
    event_at: f64,
    /// Seconds PostgreSQL stays down in phase B.
    #[arg(long, default_value_t = 5.0)]
    pg_down_secs: f64,
    /// Concurrent logins.
    #[arg(long, default_value_t = 6)]
    logins: usize,
    /// SCIM tenants (one sequential writer each, so each tenant's events have one order).
    #[arg(long, default_value_t = 3)]
    scim_tenants: usize,
    /// Seconds an instance may take to answer 2xx after the database is back.
    #[arg(long, default_value_t = 5.0)]
    reconnect_limit: f64,
    /// Seconds a request may take while the database is down.
    #[arg(long, default_value_t = 5.0)]
    hang_limit: f64,
    /// Seconds to wait for the outbox to drain.
    #[arg(long, default_value_t = 90.0)]
    drain_secs: f64,
    /// Where the JSON summary goes.
    #[arg(long, default_value = "target/ha/summary.json")]
    out: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fedgate-ha: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fedgate-ha: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn since(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

fn log(t0: Instant, msg: impl AsRef<str>) {
    eprintln!("[ha {:7.3}s] {}", since(t0), msg.as_ref());
}

fn clip(s: &str) -> String {
    let s = s.replace('\n', " ");
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = aws_lc_rs::rand::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

struct ScimTenant {
    id: String,
    base: String,
    token: String,
}

struct Ctx {
    http: Client,
    base: Url,
    admin_key: String,
    issuer: String,
    authorize: Url,
    token: Url,
    client_id: String,
    basic: HeaderValue,
    login_slug: String,
    login_tenant: String,
    scim: Vec<ScimTenant>,
    endpoints: Vec<(String, String)>,
    instances: Vec<Url>,
    hook: String,
    t0: Instant,
}

async fn admin_post(http: &Client, url: Url, key: &str, body: Value) -> Res<Value> {
    let resp = http.post(url.clone()).bearer_auth(key).json(&body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if status != StatusCode::CREATED {
        return Err(format!("POST {url}: {status}: {}", clip(&text)).into());
    }
    Ok(serde_json::from_str(&text)?)
}

fn s(v: &Value, f: &str) -> Res<String> {
    v.get(f).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| format!("no {f} in {v}").into())
}

fn http_client() -> Res<Client> {
    Ok(Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Runs the hook with `action` and waits for it.
async fn hook(ctx: &Ctx, action: &str) -> Res<()> {
    let cmd = format!("{} {action}", ctx.hook);
    let c2 = cmd.clone();
    let st =
        tokio::task::spawn_blocking(move || std::process::Command::new("bash").arg("-c").arg(&c2).status()).await??;
    if !st.success() {
        return Err(format!("hook `{cmd}` failed: {st}").into());
    }
    Ok(())
}

async fn setup(args: &Args, receiver: &Receiver, idp: &oidc_idp::FixtureIdp, slug: &str) -> Res<Ctx> {
    let http = http_client()?;
    let base = Url::parse(&args.url)?;
    let admin_key = match &args.admin_key {
        Some(k) => k.clone(),
        None => std::env::var("FEDGATE_ADMIN_KEY").map_err(|_| "no admin key (--admin-key or FEDGATE_ADMIN_KEY)")?,
    };
    let disco: Value = http.get(base.join("/.well-known/openid-configuration")?).send().await?.json().await?;
    let issuer = s(&disco, "issuer")?;
    let authorize = Url::parse(&s(&disco, "authorization_endpoint")?)?;
    let token = Url::parse(&s(&disco, "token_endpoint")?)?;

    let client = admin_post(
        &http,
        base.join("/admin/v1/clients")?,
        &admin_key,
        json!({"name": format!("HA {slug}"), "type": "confidential", "redirect_uris": [REDIRECT_URI],
               "grant_types": ["authorization_code", "refresh_token"], "id_token_signed_response_alg": "ES256"}),
    )
    .await?;
    let client_id = s(&client, "id")?;
    let creds = format!("{}:{}", form_encode(&client_id), form_encode(&s(&client, "client_secret")?));
    let basic = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(creds)))?;

    let login_slug = format!("{slug}-login");
    let t = admin_post(
        &http,
        base.join("/admin/v1/tenants")?,
        &admin_key,
        json!({"name": format!("HA {login_slug}"), "slug": login_slug, "domains": [format!("{login_slug}.test")]}),
    )
    .await?;
    let login_tenant = s(&t, "id")?;
    admin_post(
        &http,
        base.join(&format!("/admin/v1/tenants/{login_slug}/connections"))?,
        &admin_key,
        idp.connection_body("HA fixture IdP"),
    )
    .await?;

    let mut scim = Vec::new();
    for i in 0..args.scim_tenants.max(1) {
        let ts = format!("{slug}-scim{i}");
        let t = admin_post(
            &http,
            base.join("/admin/v1/tenants")?,
            &admin_key,
            json!({"name": format!("HA {ts}"), "slug": ts, "domains": [format!("{ts}.test")]}),
        )
        .await?;
        let id = s(&t, "id")?;
        let tok = admin_post(
            &http,
            base.join(&format!("/admin/v1/tenants/{id}/scim-tokens"))?,
            &admin_key,
            json!({"name": "ha"}),
        )
        .await?;
        scim.push(ScimTenant { id, base: s(&tok, "scim_base_url")?, token: s(&tok, "token")? });
    }

    let mut endpoints = Vec::new();
    for name in ["a", "b"] {
        let ep = admin_post(
            &http,
            base.join("/admin/v1/webhooks")?,
            &admin_key,
            json!({"url": format!("{}/hook/{name}", receiver.url), "event_types": []}),
        )
        .await?;
        let id = s(&ep, "id")?;
        receiver.secrets.lock().map_err(|_| "poisoned")?.insert(id.clone(), s(&ep, "secret")?);
        receiver.names.lock().map_err(|_| "poisoned")?.insert(name.to_string(), id.clone());
        endpoints.push((name.to_string(), id));
    }
    let instances = args.instances.iter().map(|u| Url::parse(u)).collect::<Result<Vec<_>, _>>()?;
    Ok(Ctx {
        http,
        base,
        admin_key,
        issuer,
        authorize,
        token,
        client_id,
        basic,
        login_slug,
        login_tenant,
        scim,
        endpoints,
        instances,
        hook: args.hook.clone(),
        t0: Instant::now(),
    })
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Received {
    endpoint: String,
    event_id: String,
    tenant: Option<String>,
    signature_ok: bool,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    secrets: Arc<Mutex<HashMap<String, String>>>,
    /// endpoint name ("a") -> endpoint id
    names: Arc<Mutex<HashMap<String, String>>>,
    log: Arc<Mutex<Vec<Received>>>,
}

fn verify_signature(secret: &str, id: &str, ts: &str, body: &[u8], header: &str) -> bool {
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else { return false };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let mut msg = format!("{id}.{ts}.").into_bytes();
    msg.extend_from_slice(body);
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| STANDARD.decode(sig).is_ok_and(|sig| aws_lc_rs::hmac::verify(&key, &msg, &sig).is_ok()))
}

async fn hook_handler(req: HttpRequest, body: web::Bytes, st: web::Data<Receiver>) -> HttpResponse {
    let name = req.match_info().get("ep").unwrap_or("").to_string();
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (id, ts, sig) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature"));
    let endpoint = st.names.lock().ok().and_then(|m| m.get(&name).cloned()).unwrap_or(name);
    let secret = st.secrets.lock().ok().and_then(|m| m.get(&endpoint).cloned()).unwrap_or_default();
    let signature_ok = verify_signature(&secret, &id, &ts, &body, &sig);
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let tenant = v.pointer("/data/tenant_id").and_then(Value::as_str).map(str::to_owned);
    if let Ok(mut l) = st.log.lock() {
        l.push(Received { endpoint, event_id: id, tenant, signature_ok });
    }
    HttpResponse::NoContent().finish()
}

async fn start_receiver() -> Res<(Receiver, actix_web::dev::ServerHandle)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let r = Receiver {
        url: format!("http://127.0.0.1:{port}"),
        secrets: Arc::default(),
        names: Arc::default(),
        log: Arc::default(),
    };
    let data = web::Data::new(r.clone());
    let server =
        HttpServer::new(move || App::new().app_data(data.clone()).route("/hook/{ep}", web::post().to(hook_handler)))
            .workers(2)
            .disable_signals()
            .listen(listener)?
            .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((r, handle))
}

// ---------------------------------------------------------------------------------------------
// Load: logins and SCIM writes through the front
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct LoginRec {
    start: f64,
    end: f64,
    ok: bool,
    error: String,
}

/// One SCIM user of one writer: its id once the create was acknowledged, and its patches
/// (value, acknowledged) in the order they were sent.
#[derive(Clone, Debug, Default)]
struct ScimUser {
    tenant: usize,
    id: String,
    patches: Vec<(String, bool)>,
}

#[derive(Default)]
struct Tally {
    logins: Vec<LoginRec>,
    scim_users: Vec<ScimUser>,
    scim_attempts: u64,
    scim_acked: u64,
    scim_failed: u64,
    /// HTTP statuses of every request through the front (0 = no answer).
    statuses: BTreeMap<u16, u64>,
    /// 500 answers (bodies), which must never happen.
    five_hundreds: Vec<String>,
    /// Longest request through the front, seconds, and what it was.
    max_latency: f64,
    slowest: String,
    /// Longest request answered with an error (or no answer), seconds: an error must be quick.
    max_error_latency: f64,
    slowest_error: String,
}

impl Tally {
    fn status(&mut self, what: &str, code: u16, body: &str, latency: f64) {
        *self.statuses.entry(code).or_default() += 1;
        if code == 500 {
            self.five_hundreds.push(clip(body));
        }
        if latency > self.max_latency {
            self.max_latency = latency;
            self.slowest = format!("{what} -> {code}: {}", clip(body));
        }
        if (code == 0 || code >= 400) && latency > self.max_error_latency {
            self.max_error_latency = latency;
            self.slowest_error = format!("{what} -> {code}: {}", clip(body));
        }
    }
}

type Shared = Arc<Mutex<Tally>>;

/// A request through the front, its status recorded.
async fn send(
    tally: &Shared,
    req: reqwest::RequestBuilder,
) -> Result<(StatusCode, reqwest::header::HeaderMap, String), String> {
    let t = Instant::now();
    let what = req
        .try_clone()
        .and_then(|r| r.build().ok())
        .map(|r| format!("{} {}", r.method(), r.url().path()))
        .unwrap_or_default();
    let r = req.send().await;
    match r {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.text().await.unwrap_or_default();
            if let Ok(mut t2) = tally.lock() {
                t2.status(&what, status.as_u16(), &body, t.elapsed().as_secs_f64());
            }
            Ok((status, headers, body))
        }
        Err(e) => {
            if let Ok(mut t2) = tally.lock() {
                t2.status(&what, 0, "", t.elapsed().as_secs_f64());
            }
            Err(e.to_string())
        }
    }
}

fn with_cookies(mut req: reqwest::RequestBuilder, jar: &Jar, url: &Url) -> reqwest::RequestBuilder {
    if let Some(c) = jar.cookies(url) {
        req = req.header(COOKIE, c);
    }
    req
}

fn store_cookies(jar: &Jar, headers: &reqwest::header::HeaderMap, url: &Url) {
    let mut set = headers.get_all(SET_COOKIE).iter();
    jar.set_cookies(&mut set, url);
}

fn location(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
    from: &Url,
    what: &str,
) -> Result<Url, String> {
    if !status.is_redirection() {
        return Err(format!("{what}: {status}: {}", clip(body)));
    }
    let loc = headers.get(LOCATION).and_then(|v| v.to_str().ok()).ok_or(format!("{what}: no Location"))?;
    from.join(loc).map_err(|e| format!("{what}: {e}"))
}

/// authorize (front) -> fixture IdP -> callback (front) -> token (front): with round-robin, the
/// three fedgate steps land on different instances.
async fn login(ctx: &Ctx, tally: &Shared) -> Result<(), String> {
    let verifier = URL_SAFE_NO_PAD.encode(random_hex(32));
    let challenge =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    let state = random_hex(8);
    let mut a = ctx.authorize.clone();
    a.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &ctx.client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid email profile")
        .append_pair("state", &state)
        .append_pair("nonce", &random_hex(8))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("organization", &ctx.login_slug);
    let jar = Jar::default();
    let (st, h, b) = send(tally, ctx.http.get(a.clone())).await?;
    store_cookies(&jar, &h, &a);
    let idp = location(st, &h, &b, &a, "authorize")?;
    let resp = ctx.http.get(idp.clone()).send().await.map_err(|e| format!("fixture IdP: {e}"))?;
    let st = resp.status();
    let h = resp.headers().clone();
    let callback = location(st, &h, "", &idp, "fixture IdP")?;
    let (st, h, b) = send(tally, with_cookies(ctx.http.get(callback.clone()), &jar, &callback)).await?;
    let back = location(st, &h, &b, &callback, "callback")?;
    let q: HashMap<String, String> = back.query_pairs().into_owned().collect();
    if q.get("state") != Some(&state) {
        return Err(format!("callback redirected to {back}"));
    }
    let code = q.get("code").ok_or(format!("no code in {back}"))?;
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        form_encode(code),
        form_encode(REDIRECT_URI),
        form_encode(&verifier)
    );
    let req = ctx
        .http
        .post(ctx.token.clone())
        .header(reqwest::header::AUTHORIZATION, ctx.basic.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form);
    let (st, _, b) = send(tally, req).await?;
    if st != StatusCode::OK {
        return Err(format!("token: {st}: {}", clip(&b)));
    }
    let v: Value = serde_json::from_str(&b).map_err(|e| format!("token: {e}"))?;
    if v.get("id_token").and_then(Value::as_str).is_none() {
        return Err(format!("token: no id_token: {}", clip(&b)));
    }
    Ok(())
}

fn scim_req(
    ctx: &Ctx,
    t: &ScimTenant,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::RequestBuilder {
    let mut r = ctx.http.request(method, format!("{}{path}", t.base)).bearer_auth(&t.token);
    if let Some(b) = body {
        r = r.header(CONTENT_TYPE, "application/scim+json").body(b.to_string());
    }
    r
}

/// One writer per SCIM tenant, sequential: create a user, patch it twice, next user.
async fn scim_writer(ctx: Arc<Ctx>, tally: Shared, stop: Arc<AtomicBool>, ti: usize, counter: Arc<AtomicUsize>) {
    let t = &ctx.scim[ti];
    while !stop.load(Ordering::Relaxed) {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("u{n}-t{ti}@ha.test");
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
                          "active": true, "name": {"givenName": "HA", "familyName": "v0"},
                          "emails": [{"value": name, "primary": true}]});
        let r = send(&tally, scim_req(&ctx, t, reqwest::Method::POST, "/Users", Some(body))).await;
        let id = match r {
            Ok((StatusCode::CREATED, _, b)) => serde_json::from_str::<Value>(&b)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned)),
            _ => None,
        };
        let Some(id) = id else {
            if let Ok(mut tl) = tally.lock() {
                tl.scim_attempts += 1;
                tl.scim_failed += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut user = ScimUser { tenant: ti, id: id.clone(), patches: Vec::new() };
        let (mut acked, mut failed) = (1u64, 0u64);
        for k in 1..=2 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let value = format!("v{k}");
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": [{"op": "replace", "path": "name.familyName", "value": value}]});
            let r = send(&tally, scim_req(&ctx, t, reqwest::Method::PATCH, &format!("/Users/{id}"), Some(body))).await;
            let ok = matches!(r, Ok((StatusCode::OK, _, _)) | Ok((StatusCode::NO_CONTENT, _, _)));
            user.patches.push((value, ok));
            if ok {
                acked += 1;
            } else {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if let Ok(mut tl) = tally.lock() {
            tl.scim_attempts += acked + failed;
            tl.scim_acked += acked;
            tl.scim_failed += failed;
            tl.scim_users.push(user);
        }
    }
}

async fn login_worker(ctx: Arc<Ctx>, tally: Shared, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let start = since(ctx.t0);
        let r = login(&ctx, &tally).await;
        let end = since(ctx.t0);
        let failed = r.is_err();
        if let Ok(mut t) = tally.lock() {
            t.logins.push(LoginRec { start, end, ok: r.is_ok(), error: r.err().unwrap_or_default() });
        }
        if failed {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Load {
    stop: Arc<AtomicBool>,
    tally: Shared,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(ctx: &Arc<Ctx>, args: &Args, counter: &Arc<AtomicUsize>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let tally: Shared = Arc::default();
    let mut handles = Vec::new();
    for _ in 0..args.logins {
        handles.push(tokio::spawn(login_worker(ctx.clone(), tally.clone(), stop.clone())));
    }
    for ti in 0..ctx.scim.len() {
        handles.push(tokio::spawn(scim_writer(ctx.clone(), tally.clone(), stop.clone(), ti, counter.clone())));
    }
    Load { stop, tally, handles }
}

async fn stop_load(load: Load) -> Res<Tally> {
    load.stop.store(true, Ordering::Relaxed);
    for h in load.handles {
        h.await?;
    }
    let mut t = load.tally.lock().map_err(|_| "poisoned")?;
    Ok(std::mem::take(&mut *t))
}

// ---------------------------------------------------------------------------------------------
// Checks after a phase
// ---------------------------------------------------------------------------------------------

async fn wait_ready(ctx: &Ctx, what: &str, limit: Duration) -> Res<()> {
    let deadline = Instant::now() + limit;
    loop {
        let mut all = true;
        for u in &ctx.instances {
            let ok = ctx
                .http
                .get(u.join("/readyz")?)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            all &= ok;
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: instances not ready after {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn pending_deliveries(db: &sea_orm::DatabaseConnection) -> Res<i64> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM deliveries WHERE status = 'pending'",
        ))
        .await?
        .ok_or("no row")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// Waits (polling) until no delivery is pending; returns the seconds it took.
async fn drain(db: &sea_orm::DatabaseConnection, limit: f64) -> Res<f64> {
    let t = Instant::now();
    loop {
        if pending_deliveries(db).await? == 0 {
            return Ok(since(t));
        }
        if since(t) > limit {
            return Err(format!("the outbox did not drain within {limit} s").into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[derive(Default, Debug, Clone, serde::Serialize)]
struct DeliveryCheck {
    expected: usize,
    delivered: usize,
    missing: usize,
    duplicates: usize,
    unexpected: usize,
    out_of_order: usize,
    bad_signatures: usize,
    not_succeeded_in_db: usize,
}

/// Every event with a delivery to our endpoints reached the receiver; duplicates (the same
/// `webhook-id` twice) are counted; per (endpoint, SCIM tenant) the first arrivals follow the
/// event sequence (each SCIM tenant has one sequential writer, so sequence = commit order).
async fn check_deliveries(ctx: &Ctx, db: &sea_orm::DatabaseConnection, rx: &Receiver) -> Res<DeliveryCheck> {
    let ids: Vec<String> = ctx.endpoints.iter().map(|(_, id)| format!("'{}'", id.replace('\'', ""))).collect();
    let sql = format!(
        "SELECT d.target_id, d.status, e.id AS event_id, COALESCE(e.tenant_id, '') AS tenant_id, e.seq \
         FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.target_id IN ({}) ORDER BY e.seq",
        ids.join(",")
    );
    let rows = db.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await?;
    let received = rx.log.lock().map_err(|_| "poisoned")?.clone();
    let mut c = DeliveryCheck::default();
    let mut expected: HashSet<(String, String)> = HashSet::new();
    // (endpoint, tenant) -> event ids in sequence order
    let mut order: HashMap<(String, String), Vec<String>> = HashMap::new();
    for r in &rows {
        let target: String = r.try_get("", "target_id")?;
        let status: String = r.try_get("", "status")?;
        let event: String = r.try_get("", "event_id")?;
        let tenant: String = r.try_get("", "tenant_id")?;
        if status != "succeeded" {
            c.not_succeeded_in_db += 1;
        }
        expected.insert((target.clone(), event.clone()));
        order.entry((target, tenant)).or_default().push(event);
    }
    c.expected = expected.len();
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut first: HashMap<(String, String), Vec<String>> = HashMap::new();
    for r in &received {
        if !r.signature_ok {
            c.bad_signatures += 1;
        }
        let key = (r.endpoint.clone(), r.event_id.clone());
        let n = counts.entry(key.clone()).or_default();
        *n += 1;
        if *n == 1 {
            if !expected.contains(&key) {
                c.unexpected += 1;
            }
            first
                .entry((r.endpoint.clone(), r.tenant.clone().unwrap_or_default()))
                .or_default()
                .push(r.event_id.clone());
        } else {
            c.duplicates += 1;
        }
    }
    c.delivered = expected.iter().filter(|k| counts.contains_key(*k)).count();
    c.missing = c.expected - c.delivered;
    let scim_tenants: HashSet<&str> = ctx.scim.iter().map(|t| t.id.as_str()).collect();
    for ((ep, tenant), want) in &order {
        if !scim_tenants.contains(tenant.as_str()) {
            continue;
        }
        let got = first.get(&(ep.clone(), tenant.clone())).cloned().unwrap_or_default();
        // Positions in sequence order; count arrivals that come after a later event.
        let pos: HashMap<&String, usize> = want.iter().enumerate().map(|(i, id)| (id, i)).collect();
        let mut max_seen: Option<usize> = None;
        for id in &got {
            let Some(&p) = pos.get(id) else { continue };
            if max_seen.is_some_and(|m| p < m) {
                c.out_of_order += 1;
            }
            max_seen = Some(max_seen.map_or(p, |m| m.max(p)));
        }
    }
    Ok(c)
}

#[derive(Default, Debug, Clone, serde::Serialize)]
struct ScimCheck {
    users_acked: usize,
    writes_acked: usize,
    present: usize,
    missing: usize,
    stale: usize,
    read_errors: usize,
    samples: Vec<String>,
}

/// Reads every acknowledged user back through the front: it exists, and its familyName is the
/// last acknowledged patch (or a later one that was sent but not acknowledged).
async fn check_scim(ctx: &Arc<Ctx>, users: &[ScimUser]) -> Res<ScimCheck> {
    let mut c = ScimCheck { users_acked: users.len(), ..Default::default() };
    c.writes_acked = users.len() + users.iter().map(|u| u.patches.iter().filter(|p| p.1).count()).sum::<usize>();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut handles = Vec::new();
    for u in users.iter().cloned() {
        let ctx = ctx.clone();
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _p = sem.acquire().await;
            let t = &ctx.scim[u.tenant];
            let r = scim_req(&ctx, t, reqwest::Method::GET, &format!("/Users/{}", u.id), None).send().await;
            let (status, body) = match r {
                Ok(r) => (r.status(), r.text().await.unwrap_or_default()),
                Err(e) => return (u, Err(e.to_string())),
            };
            (u, Ok((status, body)))
        }));
    }
    for h in handles {
        let (u, r) = h.await?;
        match r {
            Ok((StatusCode::OK, body)) => {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let family = v.pointer("/name/familyName").and_then(Value::as_str).unwrap_or("").to_string();
                let last_acked = u.patches.iter().rposition(|p| p.1);
                let allowed: Vec<String> = match last_acked {
                    Some(i) => u.patches[i..].iter().map(|p| p.0.clone()).collect(),
                    None => std::iter::once("v0".to_string()).chain(u.patches.iter().map(|p| p.0.clone())).collect(),
                };
                if allowed.contains(&family) {
                    c.present += 1;
                } else {
                    c.stale += 1;
                    if c.samples.len() < 5 {
                        c.samples.push(format!("{}: familyName {family:?}, want one of {allowed:?}", u.id));
                    }
                }
            }
            Ok((StatusCode::NOT_FOUND, _)) => {
                c.missing += 1;
                if c.samples.len() < 5 {
                    c.samples.push(format!("{}: 404", u.id));
                }
            }
            Ok((st, body)) => {
                c.read_errors += 1;
                if c.samples.len() < 5 {
                    c.samples.push(format!("{}: {st}: {}", u.id, clip(&body)));
                }
            }
            Err(e) => {
                c.read_errors += 1;
                if c.samples.len() < 5 {
                    c.samples.push(format!("{}: {e}", u.id));
                }
            }
        }
    }
    Ok(c)
}

// ---------------------------------------------------------------------------------------------
// Phase B probes: each instance directly, every surface
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Probe {
    at: f64,
    instance: usize,
    surface: &'static str,
    status: u16,
    latency: f64,
    /// The body has the surface's 503 shape and the answer has Retry-After.
    shaped: bool,
    body: String,
}

const SURFACES: [&str; 5] = ["readyz", "oauth_token", "scim", "admin", "authorize_page"];

async fn probe_once(ctx: &Ctx, i: usize, surface: &'static str) -> Probe {
    let u = &ctx.instances[i];
    let t = &ctx.scim[0];
    let scim_path = t.base.find("/scim/").map(|p| t.base[p..].to_string()).unwrap_or_default();
    let req = match surface {
        "readyz" => ctx.http.get(u.join("/readyz").unwrap_or_else(|_| u.clone())),
        "oauth_token" => ctx
            .http
            .post(u.join("/oauth2/token").unwrap_or_else(|_| u.clone()))
            .header(reqwest::header::AUTHORIZATION, ctx.basic.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=authorization_code&code=probe-{}&redirect_uri={}&code_verifier={}",
                random_hex(8),
                form_encode(REDIRECT_URI),
                "x".repeat(43)
            )),
        "scim" => ctx
            .http
            .get(u.join(&format!("{scim_path}/Users?count=1")).unwrap_or_else(|_| u.clone()))
            .bearer_auth(&t.token),
        "admin" => {
            ctx.http.get(u.join("/admin/v1/tenants?limit=1").unwrap_or_else(|_| u.clone())).bearer_auth(&ctx.admin_key)
        }
        _ => {
            let mut a = u.join("/oauth2/authorize").unwrap_or_else(|_| u.clone());
            a.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", &ctx.client_id)
                .append_pair("redirect_uri", REDIRECT_URI)
                .append_pair("scope", "openid")
                .append_pair("state", "probe")
                .append_pair("code_challenge", &"x".repeat(43))
                .append_pair("code_challenge_method", "S256")
                .append_pair("organization", &ctx.login_slug);
            ctx.http.get(a)
        }
    };
    let start = Instant::now();
    let at = since(ctx.t0);
    let r = req.timeout(Duration::from_secs(15)).send().await;
    let (status, retry, ctype, body) = match r {
        Ok(r) => {
            let st = r.status().as_u16();
            let retry = r.headers().contains_key(RETRY_AFTER);
            let ct = r.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            (st, retry, ct, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, false, String::new(), e.to_string()),
    };
    let latency = start.elapsed().as_secs_f64();
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let shaped = status == 503
        && retry
        && match surface {
            "readyz" => true,
            "oauth_token" => v.get("error").and_then(Value::as_str) == Some("temporarily_unavailable"),
            "scim" => {
                ctype.starts_with("application/scim+json")
                    && v.get("status").and_then(Value::as_str) == Some("503")
                    && v.pointer("/schemas/0").and_then(Value::as_str)
                        == Some("urn:ietf:params:scim:api:messages:2.0:Error")
            }
            "admin" => v.get("error").and_then(Value::as_str) == Some("database_unavailable"),
            _ => ctype.starts_with("text/html") && body.contains("database_unavailable"),
        };
    Probe { at, instance: i, surface, status, latency, shaped, body: clip(&body) }
}

/// Probes every instance on every surface every 100 ms until `stop`.
fn start_probes(ctx: &Arc<Ctx>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Probe>> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let mut all = Vec::new();
        let mut tasks: Vec<tokio::task::JoinHandle<Vec<Probe>>> = Vec::new();
        for i in 0..ctx.instances.len() {
            for surface in SURFACES {
                let ctx = ctx.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    let mut v = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let next = Instant::now() + Duration::from_millis(100);
                        v.push(probe_once(&ctx, i, surface).await);
                        tokio::time::sleep_until(next.into()).await;
                    }
                    v
                }));
            }
        }
        for t in tasks {
            if let Ok(v) = t.await {
                all.extend(v);
            }
        }
        all.sort_by(|a, b| a.at.total_cmp(&b.at));
        all
    })
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

fn login_summary(logins: &[LoginRec]) -> Value {
    let ok = logins.iter().filter(|l| l.ok).count();
    json!({"total": logins.len(), "ok": ok, "failed": logins.len() - ok})
}

fn failures_sample(logins: &[LoginRec]) -> Vec<String> {
    logins.iter().filter(|l| !l.ok).take(5).map(|l| format!("{:.3}-{:.3}s: {}", l.start, l.end, l.error)).collect()
}

async fn run(args: Args) -> Res<bool> {
    if args.instances.len() < 2 || args.kill == 0 || args.kill > args.instances.len() {
        return Err("need at least two --instances and --kill within them".into());
    }
    let db = sea_orm::Database::connect(args.database_url.as_str()).await?;
    let (receiver, rx_handle) = start_receiver().await?;
    let slug = format!("ha-{}", random_hex(4));
    let knobs = oidc_idp::Knobs {
        email: format!("person@{slug}-login.test"),
        alg: fedgate::keys::Alg::ES256,
        ..oidc_idp::Knobs::default()
    };
    let idp = oidc_idp::FixtureIdp::start(knobs, 2).await?;
    let ctx = Arc::new(setup(&args, &receiver, &idp, &slug).await?);
    let t0 = ctx.t0;
    let mut ok = true;
    let mut failures: Vec<String> = Vec::new();
    let mut fail = |ok: &mut bool, msg: String| {
        eprintln!("[ha] CHECK FAILED: {msg}");
        failures.push(msg);
        *ok = false;
    };
    log(t0, format!("front {} issuer {}; instances {:?}", ctx.base, ctx.issuer, args.instances));
    // The first login creates the user (one JIT provisioning), so the load's logins are alike.
    let warm: Shared = Arc::default();
    login(&ctx, &warm).await.map_err(|e| format!("warm-up login failed: {e}"))?;
    log(
        t0,
        format!("setup done: login tenant {}, {} SCIM tenants, 2 webhook endpoints", ctx.login_tenant, ctx.scim.len()),
    );
    let counter = Arc::new(AtomicUsize::new(0));
    let mut summary = json!({"instances": args.instances.len(), "login_concurrency": args.logins,
                             "scim_writers": ctx.scim.len(), "phase_secs": args.phase_secs});
    let mut all_users: Vec<ScimUser> = Vec::new();

    // ---- Phase A: kill -9 one instance mid-load.
    log(t0, "phase A: load, then kill -9 instance");
    let a_start = since(t0);
    let load = start_load(&ctx, &args, &counter);
    tokio::time::sleep(Duration::from_secs_f64(args.event_at)).await;
    let t_kill = since(t0);
    hook(&ctx, &format!("kill {}", args.kill)).await?;
    let t_killed = since(t0);
    log(t0, format!("killed instance {} (SIGKILL)", args.kill));
    tokio::time::sleep(Duration::from_secs_f64((args.phase_secs - args.event_at).max(1.0))).await;
    let tally_a = stop_load(load).await?;
    let a_end = since(t0);
    log(t0, format!("phase A load stopped: {} logins", tally_a.logins.len()));
    // In flight at the kill: overlapping the hook's run (the SIGKILL lands somewhere in it).
    let in_flight = |l: &LoginRec| l.start <= t_killed && l.end >= t_kill;
    let failed_in_flight = tally_a.logins.iter().filter(|l| !l.ok && in_flight(l)).count();
    let failed_other: Vec<&LoginRec> = tally_a.logins.iter().filter(|l| !l.ok && !in_flight(l)).collect();
    let after_kill_ok = tally_a.logins.iter().filter(|l| l.ok && l.start > t_kill).count();
    if !failed_other.is_empty() {
        fail(
            &mut ok,
            format!(
                "phase A: {} logins not in flight at the kill failed, e.g. {:?}",
                failed_other.len(),
                failed_other
                    .iter()
                    .take(3)
                    .map(|l| format!("{:.3}-{:.3}: {}", l.start, l.end, l.error))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if after_kill_ok == 0 {
        fail(&mut ok, "phase A: no login succeeded after the kill".into());
    }
    if !tally_a.five_hundreds.is_empty() {
        fail(
            &mut ok,
            format!(
                "phase A: {} answers were 500: {:?}",
                tally_a.five_hundreds.len(),
                &tally_a.five_hundreds[..tally_a.five_hundreds.len().min(3)]
            ),
        );
    }
    hook(&ctx, &format!("start {}", args.kill)).await?;
    wait_ready(&ctx, "after restarting the killed instance", Duration::from_secs(30)).await?;
    log(t0, format!("instance {} restarted", args.kill));
    let drain_a = drain(&db, args.drain_secs).await?;
    all_users.extend(tally_a.scim_users.iter().cloned());
    let scim_a = check_scim(&ctx, &all_users).await?;
    let del_a = check_deliveries(&ctx, &db, &receiver).await?;
    log(t0, format!("phase A checked: outbox drained in {drain_a:.2}s"));
    for (name, c) in [("phase A", &scim_a)] {
        if c.missing + c.stale + c.read_errors > 0 {
            fail(&mut ok, format!("{name}: SCIM writes lost: {c:?}"));
        }
    }
    if del_a.missing + del_a.out_of_order + del_a.unexpected + del_a.bad_signatures + del_a.not_succeeded_in_db > 0 {
        fail(&mut ok, format!("phase A: deliveries: {del_a:?}"));
    }
    summary["phase_a"] = json!({
        "window_s": [a_start, a_end], "kill_at_s": t_kill, "killed_instance": args.kill,
        "logins": login_summary(&tally_a.logins),
        "logins_failed_in_flight_at_kill": failed_in_flight,
        "logins_failed_not_in_flight": failed_other.len(),
        "logins_ok_after_kill": after_kill_ok,
        "login_failure_samples": failures_sample(&tally_a.logins),
        "scim_writes": {"attempted": tally_a.scim_attempts, "acked": tally_a.scim_acked, "failed": tally_a.scim_failed},
        "scim_check_cumulative": scim_a,
        "deliveries_cumulative": del_a,
        "outbox_drain_s": drain_a,
        "front_statuses": tally_a.statuses,
        "front_max_latency_s": tally_a.max_latency,
        "front_slowest": tally_a.slowest,
    });

    // ---- Phase B: restart PostgreSQL mid-load.
    log(t0, "phase B: load, then PostgreSQL stop / start");
    let b_start = since(t0);
    let probe_stop = Arc::new(AtomicBool::new(false));
    let probes = start_probes(&ctx, probe_stop.clone());
    let load = start_load(&ctx, &args, &counter);
    tokio::time::sleep(Duration::from_secs_f64(args.event_at)).await;
    let t_stop_begin = since(t0);
    hook(&ctx, "pg-stop").await?;
    let t_down = since(t0);
    log(t0, format!("PostgreSQL stopped ({:.2}s to stop)", t_down - t_stop_begin));
    tokio::time::sleep(Duration::from_secs_f64(args.pg_down_secs)).await;
    let t_start_begin = since(t0);
    hook(&ctx, "pg-start").await?;
    let t_up = since(t0);
    log(t0, "PostgreSQL started");
    // Keep loading until every instance has answered 2xx everywhere for a while, at most 15 s.
    tokio::time::sleep(Duration::from_secs_f64((args.phase_secs - args.event_at).max(args.reconnect_limit + 1.0)))
        .await;
    probe_stop.store(true, Ordering::Relaxed);
    let tally_b = stop_load(load).await?;
    let probes = probes.await?;
    let b_end = since(t0);
    log(t0, format!("phase B load stopped: {} logins, {} probes", tally_b.logins.len(), probes.len()));

    // While down: every probe answered (no hang), 503 shaped, never 500.
    // Answered while the database was surely stopped (sent once stopping had begun).
    let down: Vec<&Probe> = probes
        .iter()
        .filter(|p| p.at >= t_stop_begin && p.at + p.latency >= t_down && p.at + p.latency <= t_start_begin)
        .collect();
    let down_503 = down.iter().filter(|p| p.status == 503).count();
    let down_shaped = down.iter().filter(|p| p.shaped).count();
    let down_max_latency = down.iter().map(|p| p.latency).fold(0.0, f64::max);
    let mut down_by_surface: BTreeMap<String, BTreeMap<u16, usize>> = BTreeMap::new();
    for p in &down {
        *down_by_surface.entry(p.surface.to_string()).or_default().entry(p.status).or_default() += 1;
    }
    let not_503: Vec<String> = down
        .iter()
        .filter(|p| !p.shaped)
        .take(5)
        .map(|p| format!("{} #{} {}: {} in {:.2}s: {}", p.surface, p.instance + 1, p.at, p.status, p.latency, p.body))
        .collect();
    let all_500: Vec<String> = probes
        .iter()
        .filter(|p| p.status == 500 || p.body.contains("panicked") || p.body.contains("stack backtrace"))
        .take(5)
        .map(|p| format!("{} #{} at {:.2}s: {}", p.surface, p.instance + 1, p.at, p.body))
        .collect();
    if down.is_empty() {
        fail(&mut ok, "phase B: no probe completed while PostgreSQL was down".into());
    }
    if down_shaped != down.len() {
        fail(
            &mut ok,
            format!(
                "phase B: {} of {} answers while down were not a shaped 503: {not_503:?}",
                down.len() - down_shaped,
                down.len()
            ),
        );
    }
    if !all_500.is_empty() {
        fail(&mut ok, format!("phase B: 500 answers: {all_500:?}"));
    }
    let hang = probes.iter().filter(|p| p.at >= t_stop_begin && p.at <= t_up).map(|p| p.latency).fold(0.0, f64::max);
    if hang > args.hang_limit {
        fail(
            &mut ok,
            format!("phase B: a request took {hang:.2}s while PostgreSQL was down (limit {})", args.hang_limit),
        );
    }
    // Reconnect: per instance, the first moment after t_up from which every surface's probe
    // answers 2xx (3xx for the authorize page; 400 for the bogus code grant).
    let good = |p: &Probe| match p.surface {
        "authorize_page" => (200..400).contains(&p.status),
        "oauth_token" => p.status == 400,
        _ => (200..300).contains(&p.status),
    };
    let mut reconnect: Vec<Option<f64>> = Vec::new();
    for i in 0..ctx.instances.len() {
        let mut t_ok: Option<f64> = Some(t_up);
        for surface in SURFACES {
            let ps: Vec<&Probe> =
                probes.iter().filter(|p| p.instance == i && p.surface == surface && p.at >= t_up).collect();
            // The answer of the first probe after which every probe of this surface was good.
            let first_good = match ps.iter().rposition(|p| !good(p)) {
                None => ps.first(),
                Some(k) => ps.get(k + 1),
            }
            .map(|p| p.at + p.latency);
            t_ok = match (t_ok, first_good) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        let r = t_ok.map(|t| (t - t_up).max(0.0));
        match r {
            Some(s) if s <= args.reconnect_limit => {}
            Some(s) => fail(
                &mut ok,
                format!("phase B: instance {} answered 2xx only {s:.2}s after PostgreSQL was back", i + 1),
            ),
            None => fail(
                &mut ok,
                format!("phase B: instance {} never answered 2xx on every surface after PostgreSQL was back", i + 1),
            ),
        }
        reconnect.push(r);
    }
    if !tally_b.five_hundreds.is_empty() {
        fail(
            &mut ok,
            format!(
                "phase B: {} answers through the front were 500: {:?}",
                tally_b.five_hundreds.len(),
                &tally_b.five_hundreds[..tally_b.five_hundreds.len().min(3)]
            ),
        );
    }
    // A request that succeeds across the restart may take longer (it waited for a connection
    // and got one); an error answer must come quickly.
    if tally_b.max_error_latency > args.hang_limit {
        fail(
            &mut ok,
            format!(
                "phase B: an error answer through the front took {:.2}s: {}",
                tally_b.max_error_latency, tally_b.slowest_error
            ),
        );
    }
    let b_logins_ok_after = tally_b.logins.iter().filter(|l| l.ok && l.start > t_up).count();
    let b_failed_outside = tally_b
        .logins
        .iter()
        .filter(|l| !l.ok && (l.end < t_stop_begin || l.start > t_up + args.reconnect_limit))
        .count();
    if b_failed_outside > 0 {
        fail(
            &mut ok,
            format!(
                "phase B: {b_failed_outside} logins failed outside the outage: {:?}",
                failures_sample(&tally_b.logins)
            ),
        );
    }
    if b_logins_ok_after == 0 {
        fail(&mut ok, "phase B: no login succeeded after PostgreSQL was back".into());
    }
    wait_ready(&ctx, "after phase B", Duration::from_secs(30)).await?;
    let drain_b = drain(&db, args.drain_secs).await?;
    all_users.extend(tally_b.scim_users.iter().cloned());
    let scim_b = check_scim(&ctx, &all_users).await?;
    let del_b = check_deliveries(&ctx, &db, &receiver).await?;
    if scim_b.missing + scim_b.stale + scim_b.read_errors > 0 {
        fail(&mut ok, format!("phase B: SCIM writes lost: {scim_b:?}"));
    }
    if del_b.missing + del_b.out_of_order + del_b.unexpected + del_b.bad_signatures + del_b.not_succeeded_in_db > 0 {
        fail(&mut ok, format!("phase B: deliveries: {del_b:?}"));
    }
    let probe_statuses_down: BTreeMap<u16, usize> = down.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p.status).or_default() += 1;
        m
    });
    summary["phase_b"] = json!({
        "window_s": [b_start, b_end], "pg_stop_requested_s": t_stop_begin, "pg_down_s": t_down,
        "pg_start_requested_s": t_start_begin, "pg_up_s": t_up,
        "logins": login_summary(&tally_b.logins),
        "logins_ok_after_pg_back": b_logins_ok_after,
        "login_failure_samples": failures_sample(&tally_b.logins),
        "scim_writes": {"attempted": tally_b.scim_attempts, "acked": tally_b.scim_acked, "failed": tally_b.scim_failed},
        "scim_check_cumulative": scim_b,
        "deliveries_cumulative": del_b,
        "outbox_drain_s": drain_b,
        "probes_while_down": down.len(),
        "probes_while_down_statuses": probe_statuses_down,
        "probes_while_down_by_surface": down_by_surface,
        "probes_while_down_503_shaped": down_shaped,
        "probes_while_down_503": down_503,
        "max_latency_while_down_s": down_max_latency,
        "max_probe_latency_during_outage_s": hang,
        "not_shaped_samples": not_503,
        "reconnect_s_per_instance": reconnect,
        "front_statuses": tally_b.statuses,
        "front_max_latency_s": tally_b.max_latency,
        "front_slowest": tally_b.slowest,
        "front_max_error_latency_s": tally_b.max_error_latency,
        "front_slowest_error": tally_b.slowest_error,
    });
    summary["ok"] = json!(ok);
    summary["failures"] = json!(failures);
    idp.stop().await;
    rx_handle.stop(false).await;

    let text = serde_json::to_string_pretty(&summary)?;
    if let Some(dir) = std::path::Path::new(&args.out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, &text)?;
    print_summary(&summary);
    eprintln!("[ha] summary written to {}", args.out);
    Ok(ok)
}

fn print_summary(s: &Value) {
    let g = |p: &str| s.pointer(p).cloned().unwrap_or(Value::Null);
    println!("== fedgate HA test: {} instances behind HAProxy (round-robin), PostgreSQL ==", g("/instances"));
    println!(
        "phase A (kill -9 instance {} at {:.1}s): logins {} (failed in flight at the kill: {}, failed otherwise: {}); SCIM writes acked {} / attempted {}",
        g("/phase_a/killed_instance"),
        g("/phase_a/kill_at_s").as_f64().unwrap_or(0.0),
        g("/phase_a/logins"),
        g("/phase_a/logins_failed_in_flight_at_kill"),
        g("/phase_a/logins_failed_not_in_flight"),
        g("/phase_a/scim_writes/acked"),
        g("/phase_a/scim_writes/attempted"),
    );
    println!("  SCIM read back (cumulative): {}", g("/phase_a/scim_check_cumulative"));
    println!(
        "  deliveries (cumulative): {}; outbox drained in {:.2}s",
        g("/phase_a/deliveries_cumulative"),
        g("/phase_a/outbox_drain_s").as_f64().unwrap_or(0.0)
    );
    println!("  front statuses: {}", g("/phase_a/front_statuses"));
    println!(
        "phase B (PostgreSQL down {:.1}s..{:.1}s): logins {}; SCIM writes acked {} / attempted {}",
        g("/phase_b/pg_down_s").as_f64().unwrap_or(0.0),
        g("/phase_b/pg_up_s").as_f64().unwrap_or(0.0),
        g("/phase_b/logins"),
        g("/phase_b/scim_writes/acked"),
        g("/phase_b/scim_writes/attempted"),
    );
    println!(
        "  probes while down: {} ({} shaped 503), by surface {}; max latency {:.3}s",
        g("/phase_b/probes_while_down"),
        g("/phase_b/probes_while_down_503_shaped"),
        g("/phase_b/probes_while_down_by_surface"),
        g("/phase_b/max_latency_while_down_s").as_f64().unwrap_or(0.0),
    );
    println!("  reconnect after PostgreSQL is back, seconds per instance: {}", g("/phase_b/reconnect_s_per_instance"));
    println!("  SCIM read back (cumulative): {}", g("/phase_b/scim_check_cumulative"));
    println!(
        "  deliveries (cumulative): {}; outbox drained in {:.2}s",
        g("/phase_b/deliveries_cumulative"),
        g("/phase_b/outbox_drain_s").as_f64().unwrap_or(0.0)
    );
    println!(
        "  front statuses: {}; max front latency {:.3}s (error answers: {:.3}s)",
        g("/phase_b/front_statuses"),
        g("/phase_b/front_max_latency_s").as_f64().unwrap_or(0.0),
        g("/phase_b/front_max_error_latency_s").as_f64().unwrap_or(0.0)
    );
    println!("result: {}", if g("/ok") == Value::Bool(true) { "PASS" } else { "FAIL" });
}
