//! SCIM filters, sorting and paging as a tenant grows (docs/performance.md, "SCIM filters at
//! 10k / 100k / 1M users"): creates a tenant and a SCIM token over the admin API of a running
//! server, then, for each size, fills the tenant with users straight in SQL (the rows the SCIM
//! create path writes: `users` columns and the stored document, so the database's triggers keep
//! the counts and indexes as a create would) and times SCIM requests over HTTP, one in flight:
//! p50/p99, the server's CPU per request (`/proc/PID/stat`) and its statements per request
//! (`fedgate_db_statements` in `/metrics`). Then a busy minute of mixed SCIM requests at the
//! largest size, with the server's RSS (VmRSS, VmHWM) before and after.
//!
//! A benchmark, not a test: `make scim-growth` (scripts/scim-growth.sh).
use clap::Parser;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Args {
    /// The server's base URL.
    #[arg(long)]
    url: String,
    /// The server's database (the same one): users are inserted there.
    #[arg(long)]
    database_url: String,
    /// The server's process id: CPU and RSS are read from /proc.
    #[arg(long)]
    server_pid: u32,
    /// Tenant sizes, ascending (users are added to reach each).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<u64>,
    /// Timed requests per query and size (fewer when a query is slow: at most `budget_secs` each).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Seconds spent on one query at one size at most.
    #[arg(long, default_value_t = 20.0)]
    budget_secs: f64,
    /// Seconds of mixed load at the largest size (the "busy minute").
    #[arg(long, default_value_t = 60)]
    busy_secs: u64,
}

/// Rows per fill statement.
const FILL_CHUNK: u64 = 100_000;
/// The users' `meta.lastModified` span a year, the newest one a minute ago.
const SPAN_SECS: i64 = 365 * 86400;

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn rfc3339(t: i64) -> String {
    fedgate::util::rfc3339(t)
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn exec(db: &fedgate::store::Db, sql: String) -> Result<u64, sea_orm::DbErr> {
    Ok(db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await?.rows_affected())
}

/// Users `from..=to` of the tenant: what `POST /Users` with this body stores
/// (`resource::normalize_user`, `scim_users::insert`): `userName` `user{x}@growth.test`,
/// `externalId` `ext-{x}`, a primary work email `First{x}.Last@Mail.Growth.test` and a home one
/// `alt{x}@home.example`, active but every tenth, last modified between a year and a minute
/// ago.
async fn fill(db: &fedgate::store::Db, tenant: &str, from: u64, to: u64, n_max: u64, now: i64) -> Res<()> {
    let pg = db.get_database_backend() == DbBackend::Postgres;
    let base = now - 60 - SPAN_SECS;
    // Times spread over the year in no relation to the id (x * 7919 mod n_max is a
    // permutation of 0..n_max): any prefix of the users covers the whole year, as PATCHes to
    // arbitrary users do.
    let t = format!("({base} + ((x * 7919) % {n_max}) * {SPAN_SECS} / {n_max})");
    let id =
        if pg { "'usr_' || lpad(x::text, 26, '0')".to_string() } else { "'usr_' || printf('%026d', x)".to_string() };
    let active = "(x % 10 <> 0)";
    let active_json = format!("CASE WHEN {active} THEN 'true' ELSE 'false' END");
    // The document as normalize_user keeps it (keys as sent, canonical spelling).
    let doc = format!(
        "'{{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"user' || x || '@growth.test\",\
         \"externalId\":\"ext-' || x || '\",\"active\":' || {active_json} || ',\
         \"name\":{{\"givenName\":\"First' || x || '\",\"familyName\":\"Last\"}},\
         \"emails\":[{{\"value\":\"First' || x || '.Last@Mail.Growth.test\",\"type\":\"work\",\"primary\":true}},\
         {{\"value\":\"alt' || x || '@home.example\",\"type\":\"home\"}}]}}'"
    );
    let (t_bool, f_bool) = if pg { ("true", "false") } else { ("1", "0") };
    let select = format!(
        "{id}, '{tenant}', 'user' || x || '@growth.test', 'user' || x || '@growth.test', 'ext-' || x, \
         CASE WHEN {active} THEN {t_bool} ELSE {f_bool} END, 'First' || x || '.Last@Mail.Growth.test', \
         'first' || x || '.last@mail.growth.test', {f_bool}, NULL, 'First' || x, 'Last', {doc}, '{{}}', {t}, {t}, NULL, 1"
    );
    let cols = "id, tenant_id, user_name, user_name_lower, external_id, active, email, email_lower, email_verified, \
                name, given_name, family_name, scim, attributes, created_at, updated_at, deleted_at, version";
    let mut lo = from;
    while lo <= to {
        let hi = (lo + FILL_CHUNK - 1).min(to);
        let sql = if pg {
            format!(
                "INSERT INTO users ({cols}) SELECT {select} FROM generate_series({lo}::bigint, {hi}::bigint) AS g(x)"
            )
        } else {
            format!(
                "WITH RECURSIVE g(x) AS (SELECT {lo} UNION ALL SELECT x + 1 FROM g WHERE x < {hi}) \
                 INSERT INTO users ({cols}) SELECT {select} FROM g"
            )
        };
        exec(db, sql).await?;
        lo = hi + 1;
    }
    Ok(())
}

/// utime + stime of the server (seconds).
fn cpu_secs(pid: u32) -> f64 {
    let ticks = 100.0;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            // Fields after the command: state is index 0; utime 11, stime 12.
            let u: f64 = rest.get(11)?.parse().ok()?;
            let k: f64 = rest.get(12)?.parse().ok()?;
            Some((u + k) / ticks)
        })
        .unwrap_or(0.0)
}

/// VmRSS and VmHWM of the server (MB).
fn rss(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// The server's `fedgate_db_statements` (needs FEDGATE_METRICS_TOKEN).
async fn statements(http: &reqwest::Client, base: &str) -> Option<f64> {
    let token = std::env::var("FEDGATE_METRICS_TOKEN").ok()?;
    let text = http.get(format!("{base}/metrics")).bearer_auth(token).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix("fedgate_db_statements ")).and_then(|v| v.trim().parse().ok())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Scim {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Scim {
    /// GET `path_and_query` under the SCIM base; the response's totalResults.
    async fn get(&self, q: &str) -> Res<i64> {
        let r = self.http.get(format!("{}{q}", self.base)).bearer_auth(&self.token).send().await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            return Err(format!("GET {q}: {status}: {v}").into());
        }
        Ok(v.get("totalResults").and_then(Value::as_i64).unwrap_or(1))
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn list(filter: Option<&str>, extra: &str) -> String {
    match filter {
        Some(f) => format!("/Users?filter={}&count=100{extra}", enc(f)),
        None => format!("/Users?count=100{extra}"),
    }
}

/// A query of the growth table: its URL (path and query string) for the `i`th request.
type Query = Box<dyn Fn(u64) -> String + Send + Sync>;

fn q(f: impl Fn(u64) -> String + Send + Sync + 'static) -> Query {
    Box::new(f)
}

/// The queries timed at each size (`i` varies the looked-up user; `n` is the size).
fn queries(n: u64, now: i64) -> Vec<(&'static str, Query)> {
    let recent = rfc3339(now - 60 - SPAN_SECS / 10_000); // the newest ~0.01 % (100 users at 1M)
    let old = rfc3339(now - 60 - SPAN_SECS + 86400); // all but the first day (~99.7 %)
    let pick = move |i: u64| 1 + (i.wrapping_mul(7919) % n);
    vec![
        ("userName eq", q(move |i| list(Some(&format!("userName eq \"USER{}@growth.test\"", pick(i))), ""))),
        ("externalId eq", q(move |i| list(Some(&format!("externalId eq \"ext-{}\"", pick(i))), ""))),
        (
            "emails.value eq (primary)",
            q(move |i| list(Some(&format!("emails.value eq \"first{}.last@mail.growth.test\"", pick(i))), "")),
        ),
        (
            "emails[value eq] (second email)",
            q(move |i| list(Some(&format!("emails[value eq \"ALT{}@home.example\"]", pick(i))), "")),
        ),
        ("userName sw", q(move |i| list(Some(&format!("userName sw \"user{}\"", pick(i))), ""))),
        // `co` matching a handful (the tail of one number), and nothing at all.
        ("userName co (few)", q(move |i| list(Some(&format!("userName co \"{}@growth\"", pick(i))), ""))),
        ("userName co (none)", q(|_| list(Some("userName co \"zzz\""), ""))),
        ("emails.value co (few)", q(move |i| list(Some(&format!("emails.value co \"{}.last@\"", pick(i))), ""))),
        ("externalId co (few)", q(move |i| list(Some(&format!("externalId co \"t-{}\"", pick(i))), ""))),
        ("meta.lastModified gt (recent)", q(move |_| list(Some(&format!("meta.lastModified gt \"{recent}\"")), ""))),
        ("meta.lastModified gt (old)", q(move |_| list(Some(&format!("meta.lastModified gt \"{old}\"")), ""))),
        ("active eq true (count)", q(|_| list(Some("active eq true"), ""))),
        ("list, first page", q(|_| list(None, ""))),
        ("list, startIndex deep (jump)", q(move |i| list(None, &format!("&startIndex={}", n - 100 - i % 50)))),
        // An import walking the second half page after page: every page but the first of a
        // walk continues after its predecessor's last row (a paging hint), in id order and
        // sorted by userName.
        (
            "list, deep walk (hints)",
            q(move |i| list(None, &format!("&startIndex={}", n / 2 + 1 + 100 * (i % (n / 200).max(1))))),
        ),
        (
            "sortBy=userName, deep walk (hints)",
            q(move |i| {
                list(None, &format!("&sortBy=userName&startIndex={}", n / 2 + 1 + 100 * (i % (n / 200).max(1))))
            }),
        ),
        ("sortBy=userName, first page", q(|_| list(None, "&sortBy=userName"))),
        (
            "sortBy=userName, deep page",
            q(move |i| list(None, &format!("&sortBy=userName&startIndex={}", n / 2 + i % 50))),
        ),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let a = Args::parse();
    let admin_key = std::env::var("FEDGATE_ADMIN_KEY").map_err(|_| "FEDGATE_ADMIN_KEY is not set")?;
    let db = fedgate::store::connect(&a.database_url, 2, 60).await?;
    let pg = db.get_database_backend() == DbBackend::Postgres;
    let kind = if pg { "postgres" } else { "sqlite" };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(600)).build()?;
    let base = a.url.trim_end_matches('/').to_string();

    let (rss0, hwm0) = rss(a.server_pid);
    println!("{{\"db\":\"{kind}\",\"rss\":\"idle\",\"vmrss_mb\":{rss0:.1},\"vmhwm_mb\":{hwm0:.1}}}");

    let slug = format!("growth-{}", unix_now() % 100_000);
    let post = |path: String, body: Value| {
        let http = http.clone();
        let key = admin_key.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http.post(&url).bearer_auth(key).json(&body).send().await?;
            let s = r.status();
            let v: Value = r.json().await?;
            if !s.is_success() {
                return Err(format!("POST {url}: {s}: {v}").into());
            }
            Res::<Value>::Ok(v)
        }
    };
    let tenant =
        post("/admin/v1/tenants".into(), json!({"name": slug, "slug": slug, "domains": [format!("{slug}.test")]}))
            .await?;
    let tenant_id = tenant.get("id").and_then(Value::as_str).ok_or("no tenant id")?.to_string();
    let tok = post(format!("/admin/v1/tenants/{tenant_id}/scim-tokens"), json!({"name": "growth"})).await?;
    let scim = Scim {
        http: http.clone(),
        base: tok.get("scim_base_url").and_then(Value::as_str).ok_or("no scim_base_url")?.to_string(),
        token: tok.get("token").and_then(Value::as_str).ok_or("no token")?.to_string(),
    };

    let now = unix_now();
    let n_max = *a.sizes.iter().max().ok_or("no sizes")?;
    let mut have = 0;
    for &n in &a.sizes {
        let t = Instant::now();
        fill(&db, &tenant_id, have + 1, n, n_max, now).await?;
        if pg {
            exec(&db, "ANALYZE users".into()).await?;
        }
        println!("{{\"db\":\"{kind}\",\"size\":{n},\"fill_s\":{:.1}}}", t.elapsed().as_secs_f64());
        have = n;
        // The queries below look users up among 1..=n with the same spread at every size;
        // `lastModified` "recent" matches ~0.01 % of the users at every size, "old" ~99.7 %.
        for (name, q) in queries(n, now) {
            for i in 0..3 {
                scim.get(&q(1_000_000 + i)).await?;
            }
            let (cpu0, st0) = (cpu_secs(a.server_pid), statements(&http, &base).await);
            let started = Instant::now();
            let mut ms = Vec::new();
            let mut total = 0;
            for i in 0..a.requests as u64 {
                let t = Instant::now();
                total = scim.get(&q(i)).await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                if started.elapsed().as_secs_f64() > a.budget_secs {
                    break;
                }
            }
            let (cpu1, st1) = (cpu_secs(a.server_pid), statements(&http, &base).await);
            let k = ms.len() as f64;
            let stmt = match (st0, st1) {
                // Two reads of /metrics are not SCIM statements; neither touches the database.
                (Some(x), Some(y)) => format!("{:.2}", (y - x) / k),
                _ => "null".into(),
            };
            println!(
                "{{\"db\":\"{kind}\",\"size\":{n},\"query\":\"{name}\",\"requests\":{},\"p50_ms\":{:.2},\"p99_ms\":{:.2},\"cpu_ms_per_req\":{:.3},\"stmt_per_req\":{stmt},\"total_results\":{total}}}",
                ms.len(),
                pct(&mut ms.clone(), 0.5),
                pct(&mut ms, 0.99),
                (cpu1 - cpu0) * 1000.0 / k,
            );
        }
        let (r, h) = rss(a.server_pid);
        println!(
            "{{\"db\":\"{kind}\",\"size\":{n},\"rss\":\"after queries\",\"vmrss_mb\":{r:.1},\"vmhwm_mb\":{h:.1}}}"
        );
    }

    // The busy minute: 4 clients in flight, mixed lookups, lists, deep pages following hints,
    // sorted pages and PATCHes, at the largest size.
    let (r, h) = rss(a.server_pid);
    println!(
        "{{\"db\":\"{kind}\",\"size\":{have},\"rss\":\"before busy minute\",\"vmrss_mb\":{r:.1},\"vmhwm_mb\":{h:.1}}}"
    );
    let scim = std::sync::Arc::new(scim);
    let until = Instant::now() + Duration::from_secs(a.busy_secs);
    let qs = std::sync::Arc::new(queries(have, now));
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let scim = scim.clone();
        let qs = qs.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut errors = 0u64;
            let mut i = w * 1_000_003;
            let mut start = 1 + w * 200_000 % have.max(1);
            while Instant::now() < until {
                i += 1;
                let r = match i % 6 {
                    // An import walking pages in id order (hints).
                    0 => {
                        start = if start + 100 > have { 1 } else { start + 100 };
                        scim.get(&list(None, &format!("&startIndex={start}"))).await.map(|_| ())
                    }
                    1 => {
                        let id = format!("usr_{:026}", 1 + i.wrapping_mul(7919) % have.max(1));
                        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                            "Operations": [{"op": "replace", "path": "name.familyName", "value": format!("Busy{i}")}]});
                        let url = format!("{}/Users/{id}", scim.base);
                        match scim.http.patch(&url).bearer_auth(&scim.token).json(&body).send().await {
                            Ok(r) if r.status().is_success() => Ok(()),
                            Ok(r) => Err(format!("PATCH: {}", r.status()).into()),
                            Err(e) => Err(e.into()),
                        }
                    }
                    _ => {
                        // Lookups and the cheap lists (not the whole-tenant counts).
                        let pick = [0usize, 1, 2, 3, 4, 5, 9, 12, 16][(i as usize / 6) % 9];
                        match qs.get(pick) {
                            Some((_, q)) => scim.get(&q(i)).await.map(|_| ()),
                            None => Ok(()),
                        }
                    }
                };
                match r {
                    Ok(()) => done += 1,
                    Err(_) => errors += 1,
                }
            }
            (done, errors)
        }));
    }
    let mut done = 0;
    let mut errors = 0;
    for t in tasks {
        let (d, e) = t.await?;
        done += d;
        errors += e;
    }
    let (r, h) = rss(a.server_pid);
    println!(
        "{{\"db\":\"{kind}\",\"size\":{have},\"busy_secs\":{},\"requests\":{done},\"errors\":{errors},\"rss\":\"after busy minute\",\"vmrss_mb\":{r:.1},\"vmhwm_mb\":{h:.1}}}",
        a.busy_secs
    );
    Ok(())
}
