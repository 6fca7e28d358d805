//! The `flood` phase: anonymous junk against one tenant while people of another tenant sign in.
//!
//! Set-up (untimed): a SAML tenant whose ACS receives the junk, a webhook endpoint subscribed to
//! `login.failed` that points at a listener in this process (it counts what arrives), and row
//! counts of `logins`, `login_traces`, `events` and `deliveries` read straight from the
//! database (`--database-url`, else `FEDGATE_DATABASE_URL`).
//!
//! Then, at once: `--flood-acs` junk ACS posts (text/plain garbage, unreadable form posts and a
//! well-formed Response to a request nobody made) and `--flood-authorize` anonymous
//! authorization requests (a real public client, no routing: each would be a login row), all
//! from one attacker address, while `--count` legitimate logins of the bench tenant (authorize
//! -> dev login -> code -> token) run from a few office addresses. Addresses are sent as
//! `X-Forwarded-For`, so the server must trust loopback as a proxy
//! (`FEDGATE__RATE_LIMITS__TRUSTED_PROXIES=127.0.0.1/32`; scripts/bench.sh does this for the
//! flood phase). The timed measurement is the legitimate logins; the flood's answers (by
//! status), the rows added and the webhooks delivered are printed after.
use super::*;
use std::sync::atomic::AtomicU64;

/// Addresses as the trusted proxy reports them (documentation ranges, never contacted).
const ATTACKER: &str = "203.0.113.66";
const OFFICES: [&str; 4] = ["198.51.100.10", "198.51.100.20", "198.51.100.30", "198.51.100.40"];
const TABLES: [&str; 4] = ["logins", "login_traces", "events", "deliveries"];

/// A copy of the context whose requests come "from" `addr`.
fn from_addr(ctx: &Ctx, args: &Args, addr: &str) -> Res<Ctx> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(addr)?);
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .default_headers(headers)
        .timeout(Duration::from_secs(args.timeout_secs.max(1)))
        .build()?;
    Ok(Ctx {
        http,
        base: ctx.base.clone(),
        admin_key: ctx.admin_key.clone(),
        issuer: ctx.issuer.clone(),
        authorize_endpoint: ctx.authorize_endpoint.clone(),
        token_endpoint: ctx.token_endpoint.clone(),
        slug: ctx.slug.clone(),
        tenant_id: ctx.tenant_id.clone(),
        connection_id: ctx.connection_id.clone(),
        client_id: ctx.client_id.clone(),
        basic_auth: ctx.basic_auth.clone(),
        scim_base: ctx.scim_base.clone(),
        scim_token: ctx.scim_token.clone(),
        scim_next: AtomicUsize::new(0),
        scim_ids: std::sync::Mutex::new(Vec::new()),
    })
}

/// Row counts of [`TABLES`].
async fn row_counts(db: &sea_orm::DatabaseConnection) -> Res<[i64; 4]> {
    use sea_orm::ConnectionTrait;
    let mut out = [0; 4];
    for (i, t) in TABLES.iter().enumerate() {
        let stmt = sea_orm::Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {t}"));
        let row = db.query_one_raw(stmt).await?.ok_or("COUNT(*) returned no row")?;
        out[i] = row.try_get::<i64>("", "n")?;
    }
    Ok(out)
}

/// A listener that counts the webhook deliveries it receives (and answers 204).
pub(crate) async fn webhook_listener() -> Res<(String, Arc<AtomicU64>, actix_web::dev::ServerHandle)> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let hits = Arc::new(AtomicU64::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr()?.port());
    let counter = web::Data::new(hits.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(counter.clone()).route(
            "/hook",
            web::post().to(|hits: web::Data<Arc<AtomicU64>>| async move {
                hits.fetch_add(1, Ordering::Relaxed);
                HttpResponse::NoContent().finish()
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((url, hits, handle))
}

/// Answers of the flood, by HTTP status.
#[derive(Default)]
struct Tally(std::sync::Mutex<BTreeMap<u16, u64>>);

impl Tally {
    fn add(&self, status: u16) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(status).or_insert(0) += 1;
    }
    fn summary(&self) -> BTreeMap<u16, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One junk ACS post (three kinds in turn).
async fn junk_acs(ctx: &Ctx, acs: &Url, stray_response: &str, i: usize) -> Result<u16, String> {
    let req = match i % 3 {
        0 => ctx.http.post(acs.clone()).header(CONTENT_TYPE, "text/plain").body(format!("junk {i}")),
        1 => ctx
            .http
            .post(acs.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("SAMLResponse={}", form_encode(&STANDARD.encode(format!("<junk n=\"{i}\"/>"))))),
        _ => ctx
            .http
            .post(acs.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("SAMLResponse={}", form_encode(stray_response))),
    };
    req.send().await.map(|r| r.status().as_u16()).map_err(|e| format!("POST ACS: {e}"))
}

/// One anonymous authorization request that nobody follows up.
async fn junk_authorize(ctx: &Ctx) -> Result<u16, String> {
    let mut url = ctx.authorize_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &ctx.client_id)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", "openid");
    ctx.http.get(url).send().await.map(|r| r.status().as_u16()).map_err(|e| format!("GET authorize: {e}"))
}

/// One legitimate login, code exchanged for tokens.
async fn legit_login(ctx: &Ctx) -> Result<(), String> {
    let pc = obtain_code(ctx).await?;
    exchange_code(ctx, &pc).await.map(|_| ())
}

pub(super) async fn run_flood_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let url = args
        .database_url
        .clone()
        .or_else(|| std::env::var("FEDGATE_DATABASE_URL").ok())
        .ok_or("the flood phase counts rows: pass --database-url or set FEDGATE_DATABASE_URL")?;
    let db = sea_orm::Database::connect(url.as_str()).await?;

    // Set-up: the flooded SAML tenant, a webhook receiver for login.failed.
    let target = saml_setup(ctx, args, "flooded").await?;
    let (hook_url, hook_hits, hook_server) = webhook_listener().await?;
    admin_post(
        &ctx.http,
        ctx.base.join("/admin/v1/webhooks")?,
        &ctx.admin_key,
        json!({"url": hook_url, "event_types": ["login.failed"]}),
    )
    .await?;
    let stray = saml_answer(&target, "lgn_00000000000000000000000000", 0)?;
    let before = row_counts(&db).await?;

    let attacker = Arc::new(from_addr(ctx, args, ATTACKER)?);
    let acs_tally = Arc::new(Tally::default());
    let authorize_tally = Arc::new(Tally::default());
    let acs_flood = {
        let (attacker, tally, acs, stray) =
            (Arc::clone(&attacker), Arc::clone(&acs_tally), target.acs_url.clone(), Arc::new(stray));
        drive(vec![(); c], args.flood_acs, None, move |(), i| {
            let (attacker, tally, acs, stray) =
                (Arc::clone(&attacker), Arc::clone(&tally), acs.clone(), Arc::clone(&stray));
            async move {
                let r = junk_acs(&attacker, &acs, &stray, i).await.map(|s| tally.add(s));
                ((), r)
            }
        })
    };
    let authorize_flood = {
        let (attacker, tally) = (Arc::clone(&attacker), Arc::clone(&authorize_tally));
        drive(vec![(); c], args.flood_authorize, None, move |(), _| {
            let (attacker, tally) = (Arc::clone(&attacker), Arc::clone(&tally));
            async move { ((), junk_authorize(&attacker).await.map(|s| tally.add(s))) }
        })
    };
    let offices: Vec<Arc<Ctx>> =
        OFFICES.iter().map(|a| from_addr(ctx, args, a).map(Arc::new)).collect::<Res<Vec<_>>>()?;
    let legit = measure(cpu, offices, args.count, |office: Arc<Ctx>, _| async move {
        let r = legit_login(&office).await;
        (office, r)
    });
    let started = Instant::now();
    let (acs_m, authorize_m, legit_m) = tokio::join!(acs_flood, authorize_flood, legit);
    let ((acs_m, _), (authorize_m, _), (legit_m, _)) = (acs_m?, authorize_m?, legit_m?);
    eprintln!("  flood done in {:.1} s", started.elapsed().as_secs_f64());

    // Deliveries are sent in rounds (webhooks.poll_interval_ms): give them time to leave.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = row_counts(&db).await?;
    hook_server.stop(false).await;

    let grown: Vec<(&str, i64)> =
        TABLES.iter().zip(before.iter().zip(after.iter())).map(|(t, (b, a))| (*t, a - b)).collect();
    let summary = json!({
        "phase": "flood-summary",
        "acs_junk": {"sent": acs_m.ok + acs_m.errors, "transport_errors": acs_m.errors, "by_status": acs_tally.summary(),
                     "seconds": (acs_m.wall.as_secs_f64() * 10.0).round() / 10.0},
        "authorize_junk": {"sent": authorize_m.ok + authorize_m.errors, "transport_errors": authorize_m.errors,
                           "by_status": authorize_tally.summary(), "seconds": (authorize_m.wall.as_secs_f64() * 10.0).round() / 10.0},
        "legit_logins": {"ok": legit_m.ok, "failed": legit_m.errors},
        "rows_added": grown.iter().map(|(t, n)| (t.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "webhooks_received": hook_hits.load(Ordering::Relaxed),
    });
    eprintln!("  {summary}");
    if args.json {
        println!("{summary}");
    }
    Ok(PhaseReport::new(Phase::Flood, OFFICES.len(), legit_m))
}
