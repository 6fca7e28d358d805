//! `fedgate-bench`: a load driver for a running fedgate server (loopback only in practice).
//!
//! It sets up its own tenant, dev connection and confidential client through the admin API,
//! prepares authorization codes by driving the real authorize -> dev login -> approve flow
//! (not timed), and then measures token-endpoint phases at a fixed concurrency:
//!
//! * `code`    - authorization_code grants (client_secret_basic, PKCE S256)
//! * `refresh` - refresh_token grants, each worker rotating its own token chain
//! * `token`   - `code` then `refresh`
//! * `login`   - complete brokered logins through an upstream OIDC connection: authorize ->
//!   fixture IdP -> `/sso/oidc/callback` -> code -> token, one timed operation each. The
//!   fixture IdP (idp-fixtures/oidc_idp.rs) runs inside this process, so its CPU is not the
//!   server's; the server needs dev mode (http issuer URLs) and `allow_private_network`.
//! * `saml`    - complete SAML logins: authorize -> 302 to the IdP (HTTP-Redirect, signed
//!   AuthnRequest) -> the bench plays the IdP with the fixture SAML IdP
//!   (crates/fixtures/src/saml_idp.rs: a signed Response to the request whose ID is the RelayState) ->
//!   `POST /sso/saml/{conn}/acs` -> 303 `/sso/saml/resume` (binding cookie) -> code -> token,
//!   one timed operation each. Signing happens in this process (the other core).
//! * `saml-acs` - the ACS alone: pending logins are started and their Responses signed untimed,
//!   then only `POST /sso/saml/{conn}/acs` is timed.
//! * `scim`    - SCIM: `POST /Users` one at a time (`scim-create-1`) and at the configured
//!   concurrency (`scim-create`), `GET /Users?filter=userName eq "..."` once the tenant holds
//!   `--scim-users` users (`scim-filter`, and `scim-filter-1` one at a time; populating is
//!   untimed), and `PATCH active=false`
//!   (`scim-deactivate`)
//! * `flood`   - 10,000 junk ACS posts and 10,000 anonymous authorization requests from one
//!   address while legitimate logins of another tenant run: counts the logins that succeed, the
//!   rows the flood adds and the webhooks that leave (see `flood.rs`). Needs the
//!   database URL and a server that trusts loopback as a proxy; scripts/bench.sh sets both.
//!
//! This file is deliberately self-contained: it measures the server strictly through its HTTP
//! contract (the fedgate library is used only by the in-process fixture IdP, for its keys).
//!
//! Adding a phase: add a variant to [`PhaseArg`] / [`Phase`], write an `async fn run_xxx_phase`
//! that prepares whatever state it needs untimed and then calls [`drive`] (the generic
//! "run N requests at concurrency C with this async closure" helper) wrapped in
//! [`measure`], and hook it up in [`run_phase`].
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

type BoxErr = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxErr>;

/// Redirect URI registered for the bench client. Port 9 (discard) is never contacted: the
/// bench does not follow redirects, it only reads the `Location` header.
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
const SCOPE: &str = "openid email profile offline_access";
/// How many error bodies to keep per phase.
const ERROR_SAMPLES: usize = 5;
/// Authorization codes live 60 s on the server; anything older than this is not even tried.
const CODE_MAX_AGE: Duration = Duration::from_secs(58);
/// Latency histogram range in microseconds (1 us .. 120 s).
const HIST_MAX_US: u64 = 120_000_000;

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

#[derive(Parser, Debug, Clone)]
#[command(
    name = "fedgate-bench",
    about = "Load driver for the fedgate token endpoint (run against a server on loopback)",
    after_help = "The admin key may also be given in the FEDGATE_ADMIN_KEY environment variable.\n\
                  rps counts successful requests only; latency percentiles cover all requests."
)]
struct Args {
    /// Base URL of the running fedgate server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,

    /// Admin API key (default: $FEDGATE_ADMIN_KEY).
    #[arg(long)]
    admin_key: Option<String>,

    /// Concurrent in-flight requests (workers).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,

    /// Timed requests per phase.
    #[arg(long, default_value_t = 2000)]
    count: usize,

    /// Untimed warm-up requests before each phase.
    #[arg(long, default_value_t = 200)]
    warmup: usize,

    /// PID of the server process, for server CPU accounting (default: the process listening
    /// on the URL's port, found through /proc, if it is visible).
    #[arg(long)]
    server_pid: Option<u32>,

    /// Also print one JSON line per phase on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,

    /// Bearer token of the server's `/metrics` (default: $FEDGATE_METRICS_TOKEN): with it, each
    /// phase also reports the SQL statements and transactions the server ran per request.
    #[arg(long)]
    metrics_token: Option<String>,

    /// Maximum authorization codes prepared per batch in the `code` phase
    /// (default: concurrency * 250).
    #[arg(long)]
    code_batch: Option<usize>,

    /// Maximum seconds spent preparing one batch of codes; codes expire after 60 s so
    /// preparation plus exchange of a batch must stay well inside that.
    #[arg(long, default_value_t = 20)]
    code_batch_secs: u64,

    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,

    /// Tokio worker threads for the bench itself (default: number of CPUs).
    #[arg(long)]
    client_threads: Option<usize>,

    /// SAML phases: the connection does not sign its AuthnRequests (`sign_requests: false`),
    /// to see what request signing costs the server.
    #[arg(long)]
    saml_unsigned_requests: bool,

    /// A webhook endpoint (global, `user.*`) is enabled before the phases run, with a receiver
    /// in this process that answers 204: SCIM writes then have a delivery each, as in a
    /// deployment that tells its app what changed by webhook.
    #[arg(long)]
    webhook: bool,

    /// Users in the tenant before the `scim-filter` phase is timed (created untimed as needed).
    #[arg(long, default_value_t = 100_000)]
    scim_users: usize,

    /// `flood`: junk ACS posts.
    #[arg(long, default_value_t = 10_000)]
    flood_acs: usize,

    /// `flood`: anonymous authorization requests.
    #[arg(long, default_value_t = 10_000)]
    flood_authorize: usize,

    /// `acs-burst`: clients posting hostile SAML responses during the second measurement.
    #[arg(long, default_value_t = 16)]
    burst_concurrency: usize,

    /// `flood`: the server's database, to count rows (default: FEDGATE_DATABASE_URL).
    #[arg(long)]
    database_url: Option<String>,

    /// Phase to run.
    #[arg(value_enum)]
    phase: PhaseArg,
}

/// What the user may ask for on the command line (may expand to several [`Phase`]s).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum PhaseArg {
    /// `code` then `refresh`.
    Token,
    /// authorization_code grants.
    Code,
    /// refresh_token grants (rotation).
    Refresh,
    /// complete brokered logins through a fixture upstream OIDC IdP.
    Login,
    /// complete SAML logins through the fixture SAML IdP, then the ACS alone.
    Saml,
    /// the ACS alone (pending logins and signed Responses prepared untimed).
    SamlAcs,
    /// SCIM provisioning: creates (1 and N in flight), filter lookups, deactivations.
    Scim,
    /// junk ACS posts and authorization requests during legitimate logins (`--count` of them).
    Flood,
    /// A burst of hostile SAML responses at one tenant's ACS while another tenant's logins are timed.
    AcsBurst,
    /// Group membership at scale: 1,000-member PATCHes, a 50,000-member group, a user in 500 groups.
    ScimGroups,
}

impl PhaseArg {
    fn phases(self) -> Vec<Phase> {
        match self {
            PhaseArg::Token => vec![Phase::Code, Phase::Refresh],
            PhaseArg::Code => vec![Phase::Code],
            PhaseArg::Refresh => vec![Phase::Refresh],
            PhaseArg::Login => vec![Phase::Login],
            PhaseArg::Saml => vec![Phase::Saml, Phase::SamlAcs],
            PhaseArg::SamlAcs => vec![Phase::SamlAcs],
            PhaseArg::Flood => vec![Phase::Flood],
            PhaseArg::AcsBurst => vec![Phase::AcsBurst],
            PhaseArg::ScimGroups => vec![Phase::ScimGroups],
            PhaseArg::Scim => {
                vec![
                    Phase::ScimCreate1,
                    Phase::ScimCreate,
                    Phase::ScimFilter,
                    Phase::ScimFilter1,
                    Phase::ScimExtId1,
                    Phase::ScimGet1,
                    Phase::ScimGet,
                    Phase::ScimPatch,
                    Phase::ScimDeactivate,
                ]
            }
        }
    }
}

/// One measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Code,
    Refresh,
    Login,
    Saml,
    SamlAcs,
    ScimCreate1,
    ScimCreate,
    ScimFilter,
    ScimFilter1,
    ScimExtId1,
    ScimGet1,
    ScimGet,
    ScimPatch,
    ScimDeactivate,
    Flood,
    AcsBurst,
    ScimGroups,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Code => "code",
            Phase::Refresh => "refresh",
            Phase::Login => "login",
            Phase::Saml => "saml",
            Phase::SamlAcs => "saml-acs",
            Phase::ScimCreate1 => "scim-create-1",
            Phase::ScimCreate => "scim-create",
            Phase::ScimFilter => "scim-filter",
            Phase::ScimFilter1 => "scim-filter-1",
            Phase::ScimExtId1 => "scim-extid-1",
            Phase::ScimGet1 => "scim-get-1",
            Phase::ScimGet => "scim-get",
            Phase::ScimPatch => "scim-patch",
            Phase::ScimDeactivate => "scim-deactivate",
            Phase::Flood => "flood",
            Phase::AcsBurst => "acs-burst",
            Phase::ScimGroups => "scim-groups",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = args.client_threads {
        builder.worker_threads(n.max(1));
    }
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fedgate-bench: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(reports) => {
            if reports.iter().any(|r| r.errors > 0) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("fedgate-bench: error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Res<Vec<PhaseReport>> {
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let admin_key = match args.admin_key.clone() {
        Some(k) => k,
        None => {
            std::env::var("FEDGATE_ADMIN_KEY").map_err(|_| "no admin key: pass --admin-key or set FEDGATE_ADMIN_KEY")?
        }
    };
    let base = Url::parse(&args.url).map_err(|e| format!("bad --url {}: {e}", args.url))?;

    let mut cpu = CpuSampler::new(args.server_pid.or_else(|| discover_server_pid(&base)));
    if let (Some(token), Some(host), Some(port)) = (
        args.metrics_token.clone().or_else(|| std::env::var("FEDGATE_METRICS_TOKEN").ok()),
        base.host_str(),
        base.port_or_known_default(),
    ) {
        cpu.metrics = Some((format!("{host}:{port}"), token));
        if cpu.db().is_none() {
            eprintln!("warning: could not read the server's /metrics: no statement counts");
        }
    }
    match cpu.pid {
        Some(pid) => eprintln!("server pid {pid} (CPU accounting on, {} ticks/s)", cpu.ticks),
        None => eprintln!("server pid unknown (pass --server-pid for CPU accounting)"),
    }

    let ctx = Arc::new(setup(&args, &base, &admin_key).await?);
    eprintln!(
        "setup: tenant {} ({}), connection {}, client {}",
        ctx.slug, ctx.tenant_id, ctx.connection_id, ctx.client_id
    );
    let _receiver = match args.webhook {
        true => {
            let (url, hits, handle) = flood::webhook_listener().await?;
            admin_post(
                &ctx.http,
                ctx.base.join("/admin/v1/webhooks")?,
                &ctx.admin_key,
                json!({"url": url, "event_types": ["user.*"]}),
            )
            .await?;
            eprintln!("webhook endpoint enabled: {url}");
            Some((hits, handle))
        }
        false => None,
    };

    let mut reports = Vec::new();
    for phase in args.phase.phases() {
        eprintln!("--- phase {} ---", phase.name());
        let report = run_phase(phase, &ctx, &args, &cpu).await?;
        if args.json {
            println!("{}", report.json());
        }
        reports.push(report);
    }
    print_table(&reports, &args);
    Ok(reports)
}

async fn run_phase(phase: Phase, ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    match phase {
        Phase::Code => run_code_phase(ctx, args, cpu).await,
        Phase::Refresh => run_refresh_phase(ctx, args, cpu).await,
        Phase::Login => run_login_phase(ctx, args, cpu).await,
        Phase::Saml => run_saml_phase(ctx, args, cpu).await,
        Phase::SamlAcs => run_saml_acs_phase(ctx, args, cpu).await,
        Phase::ScimCreate1 => run_scim_create_phase(ctx, args, cpu, 1, Phase::ScimCreate1).await,
        Phase::ScimCreate => run_scim_create_phase(ctx, args, cpu, args.concurrency, Phase::ScimCreate).await,
        Phase::ScimFilter => run_scim_filter_phase(ctx, args, cpu, args.concurrency, Phase::ScimFilter).await,
        Phase::ScimFilter1 => run_scim_filter_phase(ctx, args, cpu, 1, Phase::ScimFilter1).await,
        Phase::ScimExtId1 => run_scim_filter_phase(ctx, args, cpu, 1, Phase::ScimExtId1).await,
        Phase::ScimGet1 => run_scim_get_phase(ctx, args, cpu, 1, Phase::ScimGet1).await,
        Phase::ScimGet => run_scim_get_phase(ctx, args, cpu, args.concurrency, Phase::ScimGet).await,
        Phase::ScimPatch => run_scim_patch_phase(ctx, args, cpu).await,
        Phase::ScimDeactivate => run_scim_deactivate_phase(ctx, args, cpu).await,
        Phase::Flood => flood::run_flood_phase(ctx, args, cpu).await,
        Phase::AcsBurst => burst::run_acs_burst_phase(ctx, args, cpu).await,
        Phase::ScimGroups => groups::run_scim_groups_phase(ctx, args, cpu).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

/// Everything the phases need to talk to the server.
struct Ctx {
    http: Client,
    base: Url,
    admin_key: String,
    issuer: String,
    authorize_endpoint: Url,
    token_endpoint: Url,
    slug: String,
    tenant_id: String,
    connection_id: String,
    client_id: String,
    /// Precomputed `Authorization: Basic ...` for client_secret_basic.
    basic_auth: HeaderValue,
    /// `<issuer>/scim/v2/<slug>` and its bearer token.
    scim_base: String,
    scim_token: String,
    /// Next SCIM user number, and the ids of the users created so far.
    scim_next: AtomicUsize,
    scim_ids: std::sync::Mutex<Vec<String>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

fn http_client(args: &Args) -> Res<Client> {
    Ok(Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency.saturating_mul(2))
        .timeout(Duration::from_secs(args.timeout_secs.max(1)))
        .build()?)
}

async fn admin_post(http: &Client, url: Url, key: &str, body: serde_json::Value) -> Res<serde_json::Value> {
    let resp =
        http.post(url.clone()).bearer_auth(key).json(&body).send().await.map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if status != StatusCode::CREATED {
        return Err(format!("POST {url}: expected 201, got {status}: {}", clip(&text)).into());
    }
    Ok(serde_json::from_str(&text).map_err(|e| format!("POST {url}: bad JSON ({e}): {}", clip(&text)))?)
}

fn json_str(v: &serde_json::Value, field: &str, what: &str) -> Res<String> {
    v.get(field)
        .and_then(|x| x.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} response has no string field {field:?}: {v}").into())
}

async fn setup(args: &Args, base: &Url, admin_key: &str) -> Res<Ctx> {
    let http = http_client(args)?;

    // Discovery first: it tells us the endpoints and the issuer to expect in `iss`.
    let disco_url = base.join("/.well-known/openid-configuration")?;
    let resp = http
        .get(disco_url.clone())
        .send()
        .await
        .map_err(|e| format!("GET {disco_url}: {e} (is the server running?)"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("GET {disco_url}: status {}", resp.status()).into());
    }
    let disco: Discovery = resp.json().await?;
    let authorize_endpoint = Url::parse(&disco.authorization_endpoint)?;
    let token_endpoint = Url::parse(&disco.token_endpoint)?;

    let slug = format!("bench-{}", hex(&random_bytes(5)?));
    let tenant = admin_post(
        &http,
        base.join("/admin/v1/tenants")?,
        admin_key,
        json!({"name": format!("Bench {slug}"), "slug": slug, "domains": [format!("{slug}.test")]}),
    )
    .await?;
    let tenant_id = json_str(&tenant, "id", "create tenant")?;

    let conn = admin_post(
        &http,
        base.join(&format!("/admin/v1/tenants/{tenant_id}/connections"))?,
        admin_key,
        json!({
            "type": "dev",
            "name": "Bench dev login",
            "default_email": format!("bench@{slug}.test"),
            "default_name": "Bench User",
            "groups": ["bench"],
        }),
    )
    .await?;
    let connection_id = json_str(&conn, "id", "create connection")?;

    let client = admin_post(
        &http,
        base.join("/admin/v1/clients")?,
        admin_key,
        json!({
            "name": format!("Bench client {slug}"),
            "type": "confidential",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "id_token_signed_response_alg": "ES256",
            "post_logout_redirect_uris": ["http://127.0.0.1:9/bye"],
        }),
    )
    .await?;
    let client_id = json_str(&client, "id", "create client")?;
    let client_secret = json_str(&client, "client_secret", "create client")?;

    // RFC 6749 section 2.3.1: id and secret are form-urlencoded before base64.
    let creds = format!("{}:{}", form_encode(&client_id), form_encode(&client_secret));
    let basic_auth = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(creds)))?;

    let scim = admin_post(
        &http,
        base.join(&format!("/admin/v1/tenants/{tenant_id}/scim-tokens"))?,
        admin_key,
        json!({"name": "bench"}),
    )
    .await?;
    let scim_token = json_str(&scim, "token", "create SCIM token")?;
    let scim_base = json_str(&scim, "scim_base_url", "create SCIM token")?;

    Ok(Ctx {
        scim_base,
        scim_token,
        scim_next: AtomicUsize::new(0),
        scim_ids: std::sync::Mutex::new(Vec::new()),
        http,
        base: base.clone(),
        admin_key: admin_key.to_string(),
        issuer: disco.issuer,
        authorize_endpoint,
        token_endpoint,
        slug,
        tenant_id,
        connection_id,
        client_id,
        basic_auth,
    })
}

// ---------------------------------------------------------------------------------------------
// Authorization flow (preparation, untimed)
// ---------------------------------------------------------------------------------------------

/// An authorization code ready to be exchanged.
struct PreparedCode {
    code: String,
    verifier: String,
    issued: Instant,
}

/// A fresh authorization request for `org`: PKCE S256, random state and nonce. Returns the URL,
/// the code verifier and the state.
fn authorize_url(ctx: &Ctx, org: &str) -> Result<(Url, String, String), String> {
    let random = |n: usize| random_bytes(n).map(|b| URL_SAFE_NO_PAD.encode(b)).map_err(|e| e.to_string());
    let verifier = random(32)?;
    let challenge =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    let state = random(16)?;
    let mut authorize = ctx.authorize_endpoint.clone();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &ctx.client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", SCOPE)
        .append_pair("state", &state)
        .append_pair("nonce", &random(16)?)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("organization", org);
    Ok((authorize, verifier, state))
}

/// Drives authorize -> dev page -> approve with a fresh cookie jar and returns the code.
async fn obtain_code(ctx: &Ctx) -> Result<PreparedCode, String> {
    let (authorize, verifier, state) = authorize_url(ctx, &ctx.slug)?;

    let jar = Jar::default();

    // 1. authorize -> redirect to the dev login page (or straight back with a code).
    let resp = send_with_jar(ctx.http.get(authorize.clone()), &jar, &authorize).await?;
    let mut next = redirect_target(resp, &authorize, "GET /oauth2/authorize").await?;

    if !is_redirect_uri(&next) {
        // 2. the dev login page.
        let page_url = next.clone();
        let resp = send_with_jar(ctx.http.get(page_url.clone()), &jar, &page_url).await?;
        let status = resp.status();
        let html = resp.text().await.map_err(|e| format!("GET {page_url}: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!("GET {page_url}: expected 200, got {status}: {}", clip(&html)));
        }
        let form =
            parse_form(&html).ok_or_else(|| format!("GET {page_url}: no <form> found in page: {}", clip(&html)))?;
        let action = page_url.join(&form.action).map_err(|e| format!("bad form action {:?}: {e}", form.action))?;

        // 3. approve.
        let body = {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &form.hidden {
                ser.append_pair(k, v);
            }
            ser.append_pair("action", "approve");
            ser.finish()
        };
        let req = ctx.http.post(action.clone()).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body);
        let resp = send_with_jar(req, &jar, &action).await?;
        next = redirect_target(resp, &action, "POST dev form").await?;
        if !is_redirect_uri(&next) {
            return Err(format!("approve redirected to {next}, not to {REDIRECT_URI}"));
        }
    }

    // 4. the redirect back to the client.
    let q: BTreeMap<String, String> = next.query_pairs().into_owned().collect();
    if q.contains_key("error") {
        return Err(format!("authorization error redirect: {next}"));
    }
    if q.get("state") != Some(&state) {
        return Err(format!("state mismatch in redirect: {next}"));
    }
    match q.get("iss") {
        Some(iss) if *iss == ctx.issuer => {}
        _ => return Err(format!("missing or wrong iss (want {}) in redirect: {next}", ctx.issuer)),
    }
    let code = q.get("code").cloned().ok_or_else(|| format!("no code in redirect: {next}"))?;
    Ok(PreparedCode { code, verifier, issued: Instant::now() })
}

fn is_redirect_uri(u: &Url) -> bool {
    let s = u.as_str();
    s.split(['?', '#']).next() == Some(REDIRECT_URI)
}

/// Sends a request with the jar's cookies and stores any `Set-Cookie` back into the jar.
async fn send_with_jar(mut req: reqwest::RequestBuilder, jar: &Jar, url: &Url) -> Result<reqwest::Response, String> {
    if let Some(c) = jar.cookies(url) {
        req = req.header(COOKIE, c);
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let mut set = resp.headers().get_all(SET_COOKIE).iter();
    jar.set_cookies(&mut set, url);
    Ok(resp)
}

async fn redirect_target(resp: reqwest::Response, from: &Url, what: &str) -> Result<Url, String> {
    let status = resp.status();
    if !status.is_redirection() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("{what}: expected a redirect, got {status}: {}", clip(&body)));
    }
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("{what}: {status} without a Location header"))?;
    from.join(loc).map_err(|e| format!("{what}: bad Location {loc:?}: {e}"))
}

struct Form {
    action: String,
    hidden: Vec<(String, String)>,
}

/// Minimal HTML scan: the first `<form>`'s action and the hidden inputs inside it.
fn parse_form(html: &str) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<form")?;
    let end = lower[start..].find("</form").map(|e| start + e).unwrap_or(html.len());
    let (form_attrs, _) = tag_attrs(&html[start + 5..])?;
    let action = form_attrs.iter().find(|(k, _)| k == "action").map(|(_, v)| v.clone()).unwrap_or_default();

    let mut hidden = Vec::new();
    let mut pos = start;
    while let Some(i) = lower[pos..end].find("<input") {
        let at = pos + i + 6;
        let (attrs, len) = tag_attrs(&html[at..])?;
        pos = at + len;
        let get = |name: &str| attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if get("type").map(|t| t.eq_ignore_ascii_case("hidden")) == Some(true) {
            if let Some(n) = get("name") {
                hidden.push((n.to_owned(), get("value").unwrap_or("").to_owned()));
            }
        }
    }
    Some(Form { action, hidden })
}

/// Parses attributes from just after a tag name up to `>`; returns them (names lowercased,
/// values entity-decoded) and the number of bytes consumed.
fn tag_attrs(s: &str) -> Option<(Vec<(String, String)>, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        if b[i] == b'>' {
            return Some((out, i + 1));
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = s[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                let ve = vs + b[vs..].iter().position(|&c| c == q)?;
                value = html_unescape(&s[vs..ve]);
                i = ve + 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = html_unescape(&s[vs..i]);
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
}

fn html_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let semi = rest.find(';').filter(|&j| j <= 10);
        let decoded = semi.and_then(|j| {
            let ent = &rest[1..j];
            let ch = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    if let Some(h) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                        u32::from_str_radix(h, 16).ok().and_then(char::from_u32)
                    } else if let Some(d) = ent.strip_prefix('#') {
                        d.parse::<u32>().ok().and_then(char::from_u32)
                    } else {
                        None
                    }
                }
            };
            ch.map(|c| (c, j))
        });
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &rest[j + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// Token endpoint calls (the measured requests)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    token_type: Option<String>,
    id_token: Option<String>,
    refresh_token: Option<String>,
}

async fn token_request(ctx: &Ctx, form: &[(&str, &str)]) -> Result<TokenResponse, String> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let resp = ctx
        .http
        .post(ctx.token_endpoint.clone())
        .header(AUTHORIZATION, ctx.basic_auth.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST token: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("POST token: {e}"))?;
    if status != StatusCode::OK {
        return Err(format!("HTTP {status}: {}", clip(&text)));
    }
    let tr: TokenResponse =
        serde_json::from_str(&text).map_err(|e| format!("bad token JSON ({e}): {}", clip(&text)))?;
    if tr.access_token.as_deref().is_none_or(str::is_empty) {
        return Err(format!("no access_token: {}", clip(&text)));
    }
    if !tr.token_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("bearer")) {
        return Err(format!("token_type is not Bearer: {}", clip(&text)));
    }
    Ok(tr)
}

/// authorization_code grant; returns the refresh token.
async fn exchange_code(ctx: &Ctx, pc: &PreparedCode) -> Result<String, String> {
    let tr = token_request(
        ctx,
        &[
            ("grant_type", "authorization_code"),
            ("code", &pc.code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &pc.verifier),
        ],
    )
    .await?;
    if tr.id_token.as_deref().is_none_or(str::is_empty) {
        return Err("code exchange returned no id_token".into());
    }
    tr.refresh_token.ok_or_else(|| "code exchange returned no refresh_token (offline_access requested)".into())
}

/// refresh_token grant; returns the rotated refresh token.
async fn refresh(ctx: &Ctx, token: &str) -> Result<String, String> {
    let tr = token_request(ctx, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await?;
    match tr.refresh_token {
        Some(t) if t != token => Ok(t),
        Some(_) => Err("refresh returned the same refresh_token (no rotation)".into()),
        None => Err("refresh returned no refresh_token".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Generic driver
// ---------------------------------------------------------------------------------------------

/// Result of one [`drive`] call.
struct Measurement {
    /// Latency of every completed request (ok or not), in microseconds.
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    error_samples: Vec<String>,
    wall: Duration,
    /// Server CPU seconds during the run (None without a PID).
    server_cpu: Option<f64>,
    /// SQL statements and transactions the server ran during the run (None without /metrics).
    db: Option<(f64, f64)>,
    /// CPU seconds of this machine's PostgreSQL processes during the run (None where /proc is
    /// unreadable): with the server's, what an operation costs when its database is a server.
    pg_cpu: Option<f64>,
}

impl Measurement {
    fn new() -> Res<Self> {
        Ok(Measurement {
            hist: new_hist()?,
            ok: 0,
            errors: 0,
            error_samples: Vec::new(),
            wall: Duration::ZERO,
            server_cpu: Some(0.0),
            db: Some((0.0, 0.0)),
            pg_cpu: Some(0.0),
        })
    }

    fn record(&mut self, latency: Duration, outcome: Result<(), String>) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        self.hist.saturating_record(us);
        match outcome {
            Ok(()) => self.ok += 1,
            Err(e) => {
                self.errors += 1;
                if self.error_samples.len() < ERROR_SAMPLES {
                    self.error_samples.push(e);
                }
            }
        }
    }

    /// Folds `other` in (wall times and CPU add up: used for batched phases).
    fn merge(&mut self, other: Measurement) -> Res<()> {
        self.hist.add(&other.hist).map_err(|e| format!("histogram merge: {e:?}"))?;
        self.ok += other.ok;
        self.errors += other.errors;
        for e in other.error_samples {
            if self.error_samples.len() < ERROR_SAMPLES {
                self.error_samples.push(e);
            }
        }
        self.wall += other.wall;
        self.server_cpu = match (self.server_cpu, other.server_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.db = match (self.db, other.db) {
            (Some(a), Some(b)) => Some((a.0 + b.0, a.1 + b.1)),
            _ => None,
        };
        self.pg_cpu = match (self.pg_cpu, other.pg_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        Ok(())
    }
}

fn new_hist() -> Res<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, HIST_MAX_US, 3).map_err(|e| format!("histogram: {e:?}"))?)
}

/// Runs `total` requests over `states.len()` concurrent workers (one per state).
///
/// Each worker repeatedly takes the next request index (shared counter, so work is spread
/// dynamically), calls `f(state, index)` and records the latency of the returned future.
/// The worker owns its state and gets it back from `f`, so per-worker state such as a
/// refresh-token chain needs no locking. Workers stop taking new requests after `deadline`.
/// Returns the measurement and the final worker states.
async fn drive<S, F, Fut>(states: Vec<S>, total: usize, deadline: Option<Instant>, f: F) -> Res<(Measurement, Vec<S>)>
where
    S: Send + 'static,
    F: Fn(S, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (S, Result<(), String>)> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(states.len());
    for state in states {
        let f = Arc::clone(&f);
        let next = Arc::clone(&next);
        let mut m = Measurement::new()?;
        handles.push(tokio::spawn(async move {
            let mut state = state;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t0 = Instant::now();
                let (s, outcome) = f(state, i).await;
                m.record(t0.elapsed(), outcome);
                state = s;
            }
            (m, state)
        }));
    }
    let mut total_m = Measurement::new()?;
    let mut out_states = Vec::with_capacity(handles.len());
    for h in handles {
        let (m, s) = h.await.map_err(|e| format!("worker failed: {e}"))?;
        total_m.merge(m)?;
        out_states.push(s);
    }
    total_m.wall = start.elapsed();
    total_m.server_cpu = None;
    total_m.db = None;
    total_m.pg_cpu = None;
    Ok((total_m, out_states))
}

/// [`drive`] with server CPU sampled before and after.
async fn measure<S, F, Fut>(cpu: &CpuSampler, states: Vec<S>, total: usize, f: F) -> Res<(Measurement, Vec<S>)>
where
    S: Send + 'static,
    F: Fn(S, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (S, Result<(), String>)> + Send + 'static,
{
    let db_before = cpu.db();
    let pg_before = postgres_cpu();
    let before = cpu.sample();
    let (mut m, states) = drive(states, total, None, f).await?;
    let after = cpu.sample();
    let pg_after = postgres_cpu();
    let db_after = cpu.db();
    m.pg_cpu = match (pg_before, pg_after) {
        (Some(b), Some(a)) => Some((a - b).max(0.0) / cpu.ticks),
        _ => None,
    };
    m.server_cpu = match (before, after) {
        (Some(b), Some(a)) => Some((a - b).max(0.0)),
        _ => None,
    };
    m.db = match (db_before, db_after) {
        (Some(b), Some(a)) => Some(((a.0 - b.0).max(0.0), (a.1 - b.1).max(0.0))),
        _ => None,
    };
    Ok((m, states))
}

/// Prepares up to `n` authorization codes at `concurrency`, stopping early at `deadline`.
async fn prepare_codes(
    ctx: &Arc<Ctx>,
    n: usize,
    concurrency: usize,
    deadline: Option<Instant>,
) -> Res<(Vec<PreparedCode>, Measurement)> {
    let states: Vec<Vec<PreparedCode>> = (0..concurrency.min(n).max(1)).map(|_| Vec::new()).collect();
    let ctx = Arc::clone(ctx);
    let (m, states) = drive(states, n, deadline, move |mut acc, _i| {
        let ctx = Arc::clone(&ctx);
        async move {
            match obtain_code(&ctx).await {
                Ok(pc) => {
                    acc.push(pc);
                    (acc, Ok(()))
                }
                Err(e) => (acc, Err(e)),
            }
        }
    })
    .await?;
    let mut codes: Vec<PreparedCode> = states.into_iter().flatten().collect();
    codes.sort_by_key(|c| c.issued);
    Ok((codes, m))
}

fn report_prep(what: &str, m: &Measurement) {
    eprintln!("  prepared {} {what} in {:.1}s ({} errors)", m.ok, m.wall.as_secs_f64(), m.errors);
    for e in &m.error_samples {
        eprintln!("    prep error: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------

/// Exchanges `codes` at `concurrency`, measured.
async fn exchange_batch(
    ctx: &Arc<Ctx>,
    cpu: &CpuSampler,
    codes: Vec<PreparedCode>,
    concurrency: usize,
) -> Res<Measurement> {
    let n = codes.len();
    let codes = Arc::new(codes);
    let ctx = Arc::clone(ctx);
    let states = vec![(); concurrency.min(n).max(1)];
    let (m, _) = measure(cpu, states, n, move |(), i| {
        let ctx = Arc::clone(&ctx);
        let codes = Arc::clone(&codes);
        async move {
            let r = match codes.get(i) {
                Some(pc) if pc.issued.elapsed() > CODE_MAX_AGE => {
                    Err(format!("code too old ({:.0}s), not sent", pc.issued.elapsed().as_secs_f64()))
                }
                Some(pc) => exchange_code(&ctx, pc).await.map(|_| ()),
                None => Err(format!("no code #{i}")),
            };
            ((), r)
        }
    })
    .await?;
    Ok(m)
}

async fn run_code_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let batch_max = args.code_batch.unwrap_or(c.saturating_mul(250)).max(1);
    let prep_budget = Duration::from_secs(args.code_batch_secs.max(1));

    // Warm-up (untimed), possibly in several batches itself.
    let mut warm_left = args.warmup;
    while warm_left > 0 {
        let (codes, pm) = prepare_codes(ctx, warm_left.min(batch_max), c, Some(Instant::now() + prep_budget)).await?;
        report_prep("warm-up codes", &pm);
        if codes.is_empty() {
            return Err("could not prepare any authorization code".into());
        }
        warm_left = warm_left.saturating_sub(codes.len());
        let wm = exchange_batch(ctx, cpu, codes, c).await?;
        eprintln!("  warm-up: {} exchanges, {} errors", wm.ok + wm.errors, wm.errors);
    }

    // Timed, in batches: prepare (untimed) then exchange (timed) while the codes are fresh.
    let mut total = Measurement::new()?;
    total.server_cpu = cpu.pid.map(|_| 0.0);
    total.pg_cpu = Some(0.0);
    let mut left = args.count;
    while left > 0 {
        let (codes, pm) = prepare_codes(ctx, left.min(batch_max), c, Some(Instant::now() + prep_budget)).await?;
        report_prep("codes", &pm);
        if codes.is_empty() {
            return Err("could not prepare any authorization code".into());
        }
        left = left.saturating_sub(codes.len());
        let m = exchange_batch(ctx, cpu, codes, c).await?;
        eprintln!("  exchanged {} codes in {:.2}s ({} errors)", m.ok + m.errors, m.wall.as_secs_f64(), m.errors);
        total.merge(m)?;
    }
    Ok(PhaseReport::new(Phase::Code, c, total))
}

/// Per-worker state of the refresh phase: the worker's own rotating chain.
struct Chain {
    token: Option<String>,
}

async fn run_refresh_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    // One refresh-token chain per worker.
    let (codes, pm) = prepare_codes(ctx, c, c, None).await?;
    report_prep("codes for refresh chains", &pm);
    let mut chains = Vec::with_capacity(c);
    for pc in &codes {
        match exchange_code(ctx, pc).await {
            Ok(t) => chains.push(Chain { token: Some(t) }),
            Err(e) => eprintln!("    chain setup error: {e}"),
        }
    }
    if chains.is_empty() {
        return Err("could not obtain any refresh token".into());
    }
    if chains.len() < c {
        eprintln!("  only {} of {c} refresh chains could be set up", chains.len());
    }

    let step = {
        let ctx = Arc::clone(ctx);
        move |mut chain: Chain, _i: usize| {
            let ctx = Arc::clone(&ctx);
            async move {
                // A chain broken by an earlier error (the family is revoked on reuse, and a
                // timed-out request may have consumed the token) is re-seeded first.
                let token = match chain.token.take() {
                    Some(t) => t,
                    None => match obtain_code(&ctx).await {
                        Ok(pc) => match exchange_code(&ctx, &pc).await {
                            Ok(t) => t,
                            Err(e) => return (chain, Err(format!("re-seeding chain: {e}"))),
                        },
                        Err(e) => return (chain, Err(format!("re-seeding chain: {e}"))),
                    },
                };
                match refresh(&ctx, &token).await {
                    Ok(new) => {
                        chain.token = Some(new);
                        (chain, Ok(()))
                    }
                    Err(e) => (chain, Err(e)),
                }
            }
        }
    };

    if args.warmup > 0 {
        let (wm, back) = drive(chains, args.warmup, None, step.clone()).await?;
        eprintln!("  warm-up: {} refreshes, {} errors", wm.ok + wm.errors, wm.errors);
        for e in &wm.error_samples {
            eprintln!("    warm-up error: {e}");
        }
        chains = back;
    }
    let (m, _) = measure(cpu, chains, args.count, step).await?;
    Ok(PhaseReport::new(Phase::Refresh, c, m))
}

#[path = "../../../idp-fixtures/oidc_idp.rs"]
mod oidc_idp;

/// One brokered login, start to finish: authorize -> fixture IdP -> callback -> code -> token.
async fn brokered_login(ctx: &Ctx, org: &str) -> Result<(), String> {
    let (authorize, verifier, _) = authorize_url(ctx, org)?;
    let jar = Jar::default();
    let resp = send_with_jar(ctx.http.get(authorize.clone()), &jar, &authorize).await?;
    let idp = redirect_target(resp, &authorize, "GET /oauth2/authorize").await?;
    let resp = ctx.http.get(idp.clone()).send().await.map_err(|e| format!("{idp}: {e}"))?;
    let callback = redirect_target(resp, &idp, "GET fixture /authorize").await?;
    let resp = send_with_jar(ctx.http.get(callback.clone()), &jar, &callback).await?;
    let back = redirect_target(resp, &callback, "GET /sso/oidc/callback").await?;
    let q: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
    let code = q.get("code").cloned().ok_or_else(|| format!("no code in {back}"))?;
    exchange_code(ctx, &PreparedCode { code, verifier, issued: Instant::now() }).await.map(|_| ())
}

async fn run_login_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let slug = format!("{}-oidc", ctx.slug);
    let knobs = oidc_idp::Knobs {
        email: format!("person@{slug}.test"),
        alg: fedgate::keys::Alg::ES256,
        ..oidc_idp::Knobs::default()
    };
    let idp = oidc_idp::FixtureIdp::start(knobs, 1).await?;
    admin_post(
        &ctx.http,
        ctx.base.join("/admin/v1/tenants")?,
        &ctx.admin_key,
        json!({"name": format!("Bench {slug}"), "slug": slug, "domains": [format!("{slug}.test")]}),
    )
    .await?;
    admin_post(
        &ctx.http,
        ctx.base.join(&format!("/admin/v1/tenants/{slug}/connections"))?,
        &ctx.admin_key,
        idp.connection_body("Bench fixture IdP"),
    )
    .await?;
    eprintln!("  fixture IdP at {} (tenant {slug})", idp.issuer);
    let step = {
        let ctx = Arc::clone(ctx);
        let slug = slug.clone();
        move |(), _i: usize| {
            let ctx = Arc::clone(&ctx);
            let slug = slug.clone();
            async move { ((), brokered_login(&ctx, &slug).await) }
        }
    };
    if args.warmup > 0 {
        let (wm, _) = drive(vec![(); c], args.warmup, None, step.clone()).await?;
        eprintln!("  warm-up: {} logins, {} errors", wm.ok + wm.errors, wm.errors);
        for e in &wm.error_samples {
            eprintln!("    warm-up error: {e}");
        }
    }
    let (m, _) = measure(cpu, vec![(); c], args.count, step).await?;
    idp.stop().await;
    Ok(PhaseReport::new(Phase::Login, c, m))
}

// ---------------------------------------------------------------------------------------------
// SAML
// ---------------------------------------------------------------------------------------------

use fedgate_fixtures::saml_idp;

const SAML_IDP_ENTITY: &str = "https://idp.bench.test/saml";
/// Never contacted: the bench reads the redirect and answers as the IdP itself.
const SAML_SSO_URL: &str = "http://127.0.0.1:9/saml/sso";

/// A tenant with one SAML connection to the fixture IdP.
struct SamlSetup {
    slug: String,
    idp: saml_idp::FixtureIdp,
    sp_entity_id: String,
    acs_url: Url,
}

async fn saml_setup(ctx: &Ctx, args: &Args, suffix: &str) -> Res<Arc<SamlSetup>> {
    let slug = format!("{}-{suffix}", ctx.slug);
    let idp = saml_idp::FixtureIdp::test(SAML_IDP_ENTITY)?;
    admin_post(
        &ctx.http,
        ctx.base.join("/admin/v1/tenants")?,
        &ctx.admin_key,
        json!({"name": format!("Bench {slug}"), "slug": slug, "domains": [format!("{slug}.test")]}),
    )
    .await?;
    let conn = admin_post(
        &ctx.http,
        ctx.base.join(&format!("/admin/v1/tenants/{slug}/connections"))?,
        &ctx.admin_key,
        json!({
            "type": "saml",
            "name": "Bench fixture SAML IdP",
            "metadata_xml": idp.metadata_xml(Some(SAML_SSO_URL), None),
            "request_binding": "redirect",
            "sign_requests": !args.saml_unsigned_requests,
        }),
    )
    .await?;
    let sp_entity_id = json_str(&conn, "sp_entity_id", "create SAML connection")?;
    let acs_url = Url::parse(&json_str(&conn, "acs_url", "create SAML connection")?)?;
    eprintln!(
        "  SAML connection {} (tenant {slug}, signed requests: {})",
        json_str(&conn, "id", "create SAML connection")?,
        !args.saml_unsigned_requests
    );
    Ok(Arc::new(SamlSetup { slug, idp, sp_entity_id, acs_url }))
}

/// A SAML login started (authorize answered with the redirect to the IdP), not yet answered.
struct PendingSaml {
    jar: Jar,
    login_id: String,
    verifier: String,
}

/// authorize -> the 302 to the IdP; returns the login (its ID is the AuthnRequest's ID and the
/// RelayState).
async fn saml_start(ctx: &Ctx, s: &SamlSetup) -> Result<PendingSaml, String> {
    let (authorize, verifier, _) = authorize_url(ctx, &s.slug)?;
    let jar = Jar::default();
    let resp = send_with_jar(ctx.http.get(authorize.clone()), &jar, &authorize).await?;
    let idp = redirect_target(resp, &authorize, "GET /oauth2/authorize").await?;
    if !idp.as_str().starts_with(SAML_SSO_URL) || !idp.query_pairs().any(|(k, _)| k == "SAMLRequest") {
        return Err(format!("authorize did not redirect to the SAML IdP: {idp}"));
    }
    let login_id = idp
        .query_pairs()
        .find(|(k, _)| k == "RelayState")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no RelayState in {idp}"))?;
    Ok(PendingSaml { jar, login_id, verifier })
}

/// The fixture IdP's answer: the base64 `SAMLResponse` for `login_id` (a signed Response).
fn saml_answer(s: &SamlSetup, login_id: &str, n: usize) -> Result<String, String> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs() as i64;
    let user = n % 100;
    let p = saml_idp::ResponseParams::new(
        &s.idp.entity_id,
        &s.sp_entity_id,
        s.acs_url.as_str(),
        Some(login_id),
        &format!("bench-user-{user}"),
        &format!("person{user}@{}.test", s.slug),
        now,
    );
    Ok(saml_idp::post_form_fields(&s.idp.response(&p)?))
}

/// POST the Response to the ACS; returns the resume URL it redirects to.
async fn saml_post_acs(ctx: &Ctx, s: &SamlSetup, login_id: &str, saml_response: &str) -> Result<Url, String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", saml_response)
        .append_pair("RelayState", login_id)
        .finish();
    // A cross-site POST from the IdP: no fedgate cookie travels with it.
    let resp = ctx
        .http
        .post(s.acs_url.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST ACS: {e}"))?;
    if resp.status() != StatusCode::SEE_OTHER {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(format!("POST ACS: expected 303, got {status}: {}", clip(&text)));
    }
    redirect_target(resp, &s.acs_url, "POST ACS").await
}

/// One complete SAML login: authorize -> (fixture IdP) -> ACS -> resume -> code -> token.
async fn saml_login(ctx: &Ctx, s: &SamlSetup, n: usize) -> Result<(), String> {
    let p = saml_start(ctx, s).await?;
    let answer = saml_answer(s, &p.login_id, n)?;
    let resume = saml_post_acs(ctx, s, &p.login_id, &answer).await?;
    let resp = send_with_jar(ctx.http.get(resume.clone()), &p.jar, &resume).await?;
    let back = redirect_target(resp, &resume, "GET /sso/saml/resume").await?;
    if !is_redirect_uri(&back) {
        return Err(format!("resume redirected to {back}, not to the app"));
    }
    let q: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
    let code = q.get("code").cloned().ok_or_else(|| format!("no code in {back}"))?;
    exchange_code(ctx, &PreparedCode { code, verifier: p.verifier, issued: Instant::now() }).await.map(|_| ())
}

async fn run_saml_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let setup = saml_setup(ctx, args, "saml").await?;
    let step = {
        let ctx = Arc::clone(ctx);
        move |(), i: usize| {
            let ctx = Arc::clone(&ctx);
            let setup = Arc::clone(&setup);
            async move { ((), saml_login(&ctx, &setup, i).await) }
        }
    };
    if args.warmup > 0 {
        let (wm, _) = drive(vec![(); c], args.warmup, None, step.clone()).await?;
        eprintln!("  warm-up: {} logins, {} errors", wm.ok + wm.errors, wm.errors);
        for e in &wm.error_samples {
            eprintln!("    warm-up error: {e}");
        }
    }
    let (m, _) = measure(cpu, vec![(); c], args.count, step).await?;
    Ok(PhaseReport::new(Phase::Saml, c, m))
}

/// Starts `n` logins and signs their Responses, untimed (batches stay well inside the pending
/// login's lifetime and the Response's 5-minute validity).
async fn prepare_saml_answers(
    ctx: &Arc<Ctx>,
    setup: &Arc<SamlSetup>,
    n: usize,
    c: usize,
) -> Res<Vec<(String, String)>> {
    let states: Vec<Vec<(String, String)>> = (0..c.min(n).max(1)).map(|_| Vec::new()).collect();
    let ctx = Arc::clone(ctx);
    let setup = Arc::clone(setup);
    let (m, states) = drive(states, n, None, move |mut acc, i| {
        let ctx = Arc::clone(&ctx);
        let setup = Arc::clone(&setup);
        async move {
            let r = match saml_start(&ctx, &setup).await {
                Ok(p) => saml_answer(&setup, &p.login_id, i).map(|a| acc.push((p.login_id, a))),
                Err(e) => Err(e),
            };
            (acc, r)
        }
    })
    .await?;
    report_prep("pending SAML logins with signed Responses", &m);
    Ok(states.into_iter().flatten().collect())
}

async fn run_saml_acs_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let setup = saml_setup(ctx, args, "acs").await?;
    let post_all = |answers: Vec<(String, String)>| {
        let ctx = Arc::clone(ctx);
        let setup = Arc::clone(&setup);
        let n = answers.len();
        let answers = Arc::new(answers);
        (n, move |(), i: usize| {
            let ctx = Arc::clone(&ctx);
            let setup = Arc::clone(&setup);
            let answers = Arc::clone(&answers);
            async move {
                let r = match answers.get(i) {
                    Some((id, a)) => saml_post_acs(&ctx, &setup, id, a).await.map(|_| ()),
                    None => Err(format!("no prepared Response #{i}")),
                };
                ((), r)
            }
        })
    };
    if args.warmup > 0 {
        let (n, f) = post_all(prepare_saml_answers(ctx, &setup, args.warmup, c).await?);
        let (wm, _) = drive(vec![(); c], n, None, f).await?;
        eprintln!("  warm-up: {} ACS posts, {} errors", wm.ok + wm.errors, wm.errors);
    }
    // Batches of at most 2,000 so every Response is posted well within its validity.
    let mut total = Measurement::new()?;
    total.server_cpu = cpu.pid.map(|_| 0.0);
    total.pg_cpu = Some(0.0);
    let mut left = args.count;
    while left > 0 {
        let answers = prepare_saml_answers(ctx, &setup, left.min(2000), c).await?;
        if answers.is_empty() {
            return Err("could not prepare any SAML Response".into());
        }
        left = left.saturating_sub(answers.len());
        let (n, f) = post_all(answers);
        let (m, _) = measure(cpu, vec![(); c], n, f).await?;
        eprintln!("  posted {} Responses in {:.2}s ({} errors)", m.ok + m.errors, m.wall.as_secs_f64(), m.errors);
        total.merge(m)?;
    }
    Ok(PhaseReport::new(Phase::SamlAcs, c, total))
}

// ---------------------------------------------------------------------------------------------
// SCIM phases
// ---------------------------------------------------------------------------------------------

fn scim_user_name(ctx: &Ctx, n: usize) -> String {
    format!("user{n}@{}.test", ctx.slug)
}

/// `POST /Users` of the next user; records its id.
async fn scim_create(ctx: &Ctx) -> Result<(), String> {
    let n = ctx.scim_next.fetch_add(1, Ordering::Relaxed);
    let name = scim_user_name(ctx, n);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name, "externalId": format!("ext-{n}"), "active": true,
        "name": {"givenName": "Bench", "familyName": format!("User {n}")},
        "emails": [{"value": name, "type": "work", "primary": true}],
    });
    let url = format!("{}/Users", ctx.scim_base);
    let resp = ctx
        .http
        .post(&url)
        .bearer_auth(&ctx.scim_token)
        .header(CONTENT_TYPE, "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("POST {url}: {e}"))?;
    if status != StatusCode::CREATED {
        return Err(format!("POST /Users: {status}: {}", clip(&text)));
    }
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("POST /Users: {e}"))?;
    let id = v.get("id").and_then(|x| x.as_str()).ok_or("POST /Users: no id")?.to_string();
    ctx.scim_ids.lock().map_err(|_| "poisoned")?.push(id);
    Ok(())
}

async fn scim_creates(ctx: &Arc<Ctx>, cpu: &CpuSampler, n: usize, concurrency: usize) -> Res<Measurement> {
    let c2 = Arc::clone(ctx);
    let (m, _) = measure(cpu, vec![(); concurrency.min(n).max(1)], n, move |(), _i| {
        let ctx = Arc::clone(&c2);
        async move { ((), scim_create(&ctx).await) }
    })
    .await?;
    Ok(m)
}

async fn run_scim_create_phase(
    ctx: &Arc<Ctx>,
    args: &Args,
    cpu: &CpuSampler,
    concurrency: usize,
    phase: Phase,
) -> Res<PhaseReport> {
    if args.warmup > 0 {
        let wm = scim_creates(ctx, cpu, args.warmup, concurrency).await?;
        eprintln!("  warm-up: {} creates, {} errors", wm.ok + wm.errors, wm.errors);
    }
    let m = scim_creates(ctx, cpu, args.count, concurrency).await?;
    Ok(PhaseReport::new(phase, concurrency, m))
}

fn scim_created(ctx: &Ctx) -> usize {
    ctx.scim_next.load(Ordering::Relaxed)
}

async fn run_scim_filter_phase(
    ctx: &Arc<Ctx>,
    args: &Args,
    cpu: &CpuSampler,
    c: usize,
    phase: Phase,
) -> Res<PhaseReport> {
    let have = scim_created(ctx);
    if have < args.scim_users {
        let t0 = Instant::now();
        let pm = scim_creates(ctx, cpu, args.scim_users - have, args.concurrency).await?;
        eprintln!(
            "  populated {} users (untimed) in {:.1}s ({} errors); the tenant now has {}",
            pm.ok,
            t0.elapsed().as_secs_f64(),
            pm.errors,
            scim_created(ctx)
        );
    }
    let total = scim_created(ctx).max(1);
    let c2 = Arc::clone(ctx);
    let (m, _) = measure(cpu, vec![(); c], args.count, move |(), i| {
        let ctx = Arc::clone(&c2);
        async move {
            // Spread lookups over the whole tenant, in a different case than stored.
            let n = (i.wrapping_mul(7919).wrapping_add(13)) % total;
            let filter = if phase == Phase::ScimExtId1 {
                format!("externalId eq \"ext-{n}\"")
            } else {
                format!("userName eq \"{}\"", scim_user_name(&ctx, n).to_uppercase())
            };
            let mut url = match Url::parse(&format!("{}/Users", ctx.scim_base)) {
                Ok(u) => u,
                Err(e) => return ((), Err(e.to_string())),
            };
            url.query_pairs_mut().append_pair("filter", &filter);
            let r = async {
                let resp =
                    ctx.http.get(url.clone()).bearer_auth(&ctx.scim_token).send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let text = resp.text().await.map_err(|e| e.to_string())?;
                if status != StatusCode::OK || !text.contains("\"totalResults\":1") {
                    return Err(format!("GET /Users?filter: {status}: {}", clip(&text)));
                }
                Ok(())
            }
            .await;
            ((), r)
        }
    })
    .await?;
    Ok(PhaseReport::new(phase, c, m))
}

/// `GET /Users/{id}` spread over every user created so far.
async fn run_scim_get_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler, c: usize, phase: Phase) -> Res<PhaseReport> {
    let ids: Arc<Vec<String>> = Arc::new(ctx.scim_ids.lock().map_err(|_| "poisoned")?.clone());
    if ids.is_empty() {
        return Err("no SCIM users to read".into());
    }
    let c2 = Arc::clone(ctx);
    let (m, _) = measure(cpu, vec![(); c], args.count, move |(), i| {
        let ctx = Arc::clone(&c2);
        let ids = Arc::clone(&ids);
        async move {
            let r = async {
                let id = ids.get(i.wrapping_mul(7919).wrapping_add(13) % ids.len()).ok_or("no id")?;
                let url = format!("{}/Users/{id}", ctx.scim_base);
                let resp = ctx.http.get(&url).bearer_auth(&ctx.scim_token).send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let text = resp.text().await.map_err(|e| e.to_string())?;
                if status != StatusCode::OK || !text.contains(id.as_str()) {
                    return Err(format!("GET /Users/{id}: {status}: {}", clip(&text)));
                }
                Ok::<(), String>(())
            }
            .await;
            ((), r)
        }
    })
    .await?;
    Ok(PhaseReport::new(phase, c, m))
}

/// `PATCH /Users/{id}` in the shapes Okta and Entra ID send, alternately: Okta replaces with a
/// value object and no path, Entra names each attribute path (`Replace`, capitalised).
async fn run_scim_patch_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let ids: Arc<Vec<String>> = Arc::new(ctx.scim_ids.lock().map_err(|_| "poisoned")?.clone());
    if ids.is_empty() {
        return Err("no SCIM users to patch".into());
    }
    let c2 = Arc::clone(ctx);
    let (m, _) = measure(cpu, vec![(); c], args.count, move |(), i| {
        let ctx = Arc::clone(&c2);
        let ids = Arc::clone(&ids);
        async move {
            let r = async {
                let id = ids.get(i.wrapping_mul(7919).wrapping_add(13) % ids.len()).ok_or("no id")?;
                let url = format!("{}/Users/{id}", ctx.scim_base);
                let body = if i % 2 == 0 {
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "replace", "value": {"name": {"givenName": format!("Okta {i}")}}}]})
                } else {
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "Replace", "path": "name.givenName", "value": format!("Entra {i}")},
                                          {"op": "Add", "path": "title", "value": "Engineer"}]})
                };
                let resp = ctx
                    .http
                    .patch(&url)
                    .bearer_auth(&ctx.scim_token)
                    .header(CONTENT_TYPE, "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                if status != StatusCode::OK {
                    let text = resp.text().await.unwrap_or_default();
                    return Err(format!("PATCH /Users/{id}: {status}: {}", clip(&text)));
                }
                Ok::<(), String>(())
            }
            .await;
            ((), r)
        }
    })
    .await?;
    Ok(PhaseReport::new(Phase::ScimPatch, c, m))
}

async fn run_scim_deactivate_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let ids: Arc<Vec<String>> = Arc::new(ctx.scim_ids.lock().map_err(|_| "poisoned")?.clone());
    if ids.is_empty() {
        return Err("no SCIM users to deactivate".into());
    }
    let n = args.count.min(ids.len());
    let c2 = Arc::clone(ctx);
    let (m, _) = measure(cpu, vec![(); c.min(n).max(1)], n, move |(), i| {
        let ctx = Arc::clone(&c2);
        let ids = Arc::clone(&ids);
        async move {
            let r = async {
                let id = ids.get(i).ok_or("no id")?;
                let url = format!("{}/Users/{id}", ctx.scim_base);
                let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                  "Operations": [{"op": "replace", "path": "active", "value": false}]});
                let resp = ctx
                    .http
                    .patch(&url)
                    .bearer_auth(&ctx.scim_token)
                    .header(CONTENT_TYPE, "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = resp.status();
                if status != StatusCode::OK {
                    let text = resp.text().await.unwrap_or_default();
                    return Err(format!("PATCH /Users/{id}: {status}: {}", clip(&text)));
                }
                Ok::<(), String>(())
            }
            .await;
            ((), r)
        }
    })
    .await?;
    Ok(PhaseReport::new(Phase::ScimDeactivate, c, m))
}

mod flood;

mod burst;

mod groups;

// ---------------------------------------------------------------------------------------------
// Reporting
// ---------------------------------------------------------------------------------------------

struct PhaseReport {
    phase: Phase,
    concurrency: usize,
    requests: u64,
    errors: u64,
    seconds: f64,
    rps: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu_ms_per_req: Option<f64>,
    server_cores_busy: Option<f64>,
    db_statements_per_req: Option<f64>,
    db_tx_per_req: Option<f64>,
    pg_cpu_ms_per_req: Option<f64>,
    error_samples: Vec<String>,
}

impl PhaseReport {
    fn new(phase: Phase, concurrency: usize, m: Measurement) -> Self {
        let seconds = m.wall.as_secs_f64();
        let requests = m.ok + m.errors;
        let q = |x: f64| m.hist.value_at_quantile(x) as f64 / 1000.0;
        let empty = m.hist.is_empty();
        let pick = |v: f64| if empty { 0.0 } else { v };
        PhaseReport {
            phase,
            concurrency,
            requests,
            errors: m.errors,
            seconds,
            rps: if seconds > 0.0 { m.ok as f64 / seconds } else { 0.0 },
            p50_ms: pick(q(0.50)),
            p90_ms: pick(q(0.90)),
            p99_ms: pick(q(0.99)),
            max_ms: pick(m.hist.max() as f64 / 1000.0),
            server_cpu_ms_per_req: m.server_cpu.filter(|_| requests > 0).map(|s| s * 1000.0 / requests as f64),
            server_cores_busy: m.server_cpu.filter(|_| seconds > 0.0).map(|s| s / seconds),
            db_statements_per_req: m.db.filter(|_| requests > 0).map(|d| d.0 / requests as f64),
            db_tx_per_req: m.db.filter(|_| requests > 0).map(|d| d.1 / requests as f64),
            pg_cpu_ms_per_req: m.pg_cpu.filter(|_| requests > 0).map(|s| s * 1000.0 / requests as f64),
            error_samples: m.error_samples,
        }
    }

    /// One JSON line; fields in the documented order.
    fn json(&self) -> String {
        #[derive(Serialize)]
        struct Line {
            phase: &'static str,
            requests: u64,
            errors: u64,
            seconds: f64,
            rps: f64,
            p50_ms: f64,
            p90_ms: f64,
            p99_ms: f64,
            max_ms: f64,
            server_cpu_ms_per_req: Option<f64>,
            server_cores_busy: Option<f64>,
            db_statements_per_req: Option<f64>,
            db_tx_per_req: Option<f64>,
            pg_cpu_ms_per_req: Option<f64>,
            concurrency: usize,
        }
        let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
        let line = Line {
            phase: self.phase.name(),
            requests: self.requests,
            errors: self.errors,
            seconds: r3(self.seconds),
            rps: r3(self.rps),
            p50_ms: r3(self.p50_ms),
            p90_ms: r3(self.p90_ms),
            p99_ms: r3(self.p99_ms),
            max_ms: r3(self.max_ms),
            server_cpu_ms_per_req: self.server_cpu_ms_per_req.map(r3),
            server_cores_busy: self.server_cores_busy.map(r3),
            db_statements_per_req: self.db_statements_per_req.map(r3),
            db_tx_per_req: self.db_tx_per_req.map(r3),
            pg_cpu_ms_per_req: self.pg_cpu_ms_per_req.map(r3),
            concurrency: self.concurrency,
        };
        serde_json::to_string(&line).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

fn print_table(reports: &[PhaseReport], args: &Args) {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<8} {:>5} {:>8} {:>6} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>11} {:>6} {:>8} {:>6}\n",
        "phase",
        "conc",
        "requests",
        "errors",
        "seconds",
        "rps",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "cpu ms/req",
        "cores",
        "stmt/req",
        "tx/req"
    ));
    for r in reports {
        let opt = |v: Option<f64>, p: usize| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.p$}"));
        out.push_str(&format!(
            "{:<8} {:>5} {:>8} {:>6} {:>8.2} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>11} {:>6} {:>8} {:>6}\n",
            r.phase.name(),
            r.concurrency,
            r.requests,
            r.errors,
            r.seconds,
            r.rps,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            opt(r.server_cpu_ms_per_req, 3),
            opt(r.server_cores_busy, 2),
            opt(r.db_statements_per_req, 2),
            opt(r.db_tx_per_req, 2),
        ));
    }
    for r in reports {
        for e in &r.error_samples {
            out.push_str(&format!("error [{}]: {e}\n", r.phase.name()));
        }
    }
    if args.json {
        eprint!("{out}");
    } else {
        print!("{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// Server CPU accounting through /proc
// ---------------------------------------------------------------------------------------------

struct CpuSampler {
    pid: Option<u32>,
    ticks: f64,
    /// (host:port, bearer token) of the server's `/metrics`.
    metrics: Option<(String, String)>,
}

impl CpuSampler {
    fn new(pid: Option<u32>) -> Self {
        let ticks = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0);
        CpuSampler { pid, ticks, metrics: None }
    }

    /// The server's `fedgate_db_statements` and `fedgate_db_transactions` (a blocking
    /// HTTP/1.0 GET of `/metrics`: two per phase, outside the timed requests).
    fn db(&self) -> Option<(f64, f64)> {
        use std::io::{Read, Write};
        let (addr, token) = self.metrics.as_ref()?;
        let mut s = std::net::TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        Some((value("fedgate_db_statements")?, value("fedgate_db_transactions")?))
    }

    /// utime + stime of the whole process (all threads), in seconds.
    fn sample(&self) -> Option<f64> {
        let pid = self.pid?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest starts at field 3 (state); utime is field 14, stime field 15.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / self.ticks)
    }
}

/// CPU ticks (user + system, and of reaped children) of every process named `postgres` on this
/// machine: the PostgreSQL server's work for the statements the phase sends (its other work,
/// autovacuum or another database's clients, shows up too; the bench runs on a quiet server).
fn postgres_cpu() -> Option<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if stat.get(open + 1..close) != Some("postgres") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17 (index 11 to 14 after the name).
        total += fields.get(11..15).into_iter().flatten().filter_map(|f| f.parse::<f64>().ok()).sum::<f64>();
    }
    Some(total)
}

/// Finds the PID of the process listening on the URL's (loopback) port, via /proc/net/tcp*
/// and /proc/*/fd. Best effort: None if anything is unreadable.
fn discover_server_pid(base: &Url) -> Option<u32> {
    let port = base.port_or_known_default()?;
    let mut inodes = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(st), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9)) else {
                continue;
            };
            let lport = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if *st == "0A" && lport == Some(port) && *inode != "0" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn random_bytes(n: usize) -> Res<Vec<u8>> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| "random number generator failed")?;
    Ok(buf)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Shortens a response body for error messages.
fn clip(s: &str) -> String {
    const MAX: usize = 300;
    let s = s.trim();
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dev_form() {
        let html = r#"<html><body><h1>Dev</h1>
            <FORM method="post" action="/sso/dev/abc?x=1&amp;y=2">
              <input type="hidden" name="login_id" value="abc">
              <input name='csrf' type='hidden' value='t&#x2F;k&quot;'/>
              <input type=text name=ignored value=v>
              <button type="submit" name="action" value="approve">Approve</button>
              <button type="submit" name="action" value="deny">Deny</button>
            </FORM><input type="hidden" name="outside" value="no"></body></html>"#;
        let f = parse_form(html);
        assert!(f.is_some());
        let f = f.unwrap_or(Form { action: String::new(), hidden: vec![] });
        assert_eq!(f.action, "/sso/dev/abc?x=1&y=2");
        assert_eq!(f.hidden, vec![("login_id".to_owned(), "abc".to_owned()), ("csrf".to_owned(), "t/k\"".to_owned())]);
    }

    #[test]
    fn redirect_uri_match() {
        let u = Url::parse("http://127.0.0.1:9/cb?code=x&state=y").ok();
        assert_eq!(u.map(|u| is_redirect_uri(&u)), Some(true));
        let u = Url::parse("http://127.0.0.1:9/cbx?code=x").ok();
        assert_eq!(u.map(|u| is_redirect_uri(&u)), Some(false));
    }
}
