//! The `acs-burst` phase: does a burst of hostile SAML responses at one tenant's ACS move the
//! login latency of another tenant?
//!
//! Set-up (untimed): a SAML tenant with one pending login, and hostile responses for it — each
//! about 200 KiB (one large attribute), validly shaped and signed, but by a key the connection
//! does not trust: the most expensive message that still reaches signature verification (parse,
//! both parsers' agreement, canonicalization and digest of the whole document, RSA). Every one
//! names the pending login, so every one is verified (and refused, leaving the login open).
//!
//! Then `--count` legitimate logins of the bench tenant (authorize -> dev login -> code ->
//! token) are timed twice at `--concurrency`: alone, and while `--burst-concurrency` clients
//! post hostile responses without pause until the logins are done. The two latency lines are
//! the result; the burst's answers are printed by status (400 refused, 503 pool full, 429 rate
//! limited). Run with rate limits off to see the verification pool alone (scripts/bench.sh
//! turns limits off for every phase but `flood`).
use super::*;

struct Hostile {
    acs: Url,
    body: String,
}

async fn hostile_setup(ctx: &Arc<Ctx>, args: &Args) -> Res<Hostile> {
    let target = saml_setup(ctx, args, "burst").await?;
    let pending = saml_start(ctx, &target).await?;
    let attacker = saml_idp::FixtureIdp::untrusted(SAML_IDP_ENTITY)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let mut p = saml_idp::ResponseParams::new(
        SAML_IDP_ENTITY,
        &target.sp_entity_id,
        target.acs_url.as_str(),
        Some(&pending.login_id),
        "intruder",
        &format!("intruder@{}.test", target.slug),
        now,
    );
    p.attributes.push(("blob".to_owned(), vec!["x".repeat(200 * 1024)]));
    let b64 = saml_idp::post_form_fields(&attacker.response(&p)?);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &b64)
        .append_pair("RelayState", &pending.login_id)
        .finish();
    eprintln!("  hostile response: {} bytes posted, for pending login {}", body.len(), pending.login_id);
    Ok(Hostile { acs: target.acs_url.clone(), body })
}

async fn legit_login(ctx: &Ctx) -> Result<(), String> {
    let pc = obtain_code(ctx).await?;
    exchange_code(ctx, &pc).await.map(|_| ())
}

fn latency(m: &Measurement) -> serde_json::Value {
    let q = |x: f64| (m.hist.value_at_quantile(x) as f64 / 1000.0 * 1000.0).round() / 1000.0;
    json!({"ok": m.ok, "failed": m.errors, "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99),
           "max_ms": (m.hist.max() as f64).round() / 1000.0})
}

pub(super) async fn run_acs_burst_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let c = args.concurrency;
    let hostile = Arc::new(hostile_setup(ctx, args).await?);
    let step = {
        let ctx = Arc::clone(ctx);
        move |(), _i: usize| {
            let ctx = Arc::clone(&ctx);
            async move { ((), legit_login(&ctx).await) }
        }
    };
    if args.warmup > 0 {
        let (wm, _) = drive(vec![(); c], args.warmup, None, step.clone()).await?;
        eprintln!("  warm-up: {} logins, {} errors", wm.ok + wm.errors, wm.errors);
    }
    let (quiet, _) = measure(cpu, vec![(); c], args.count, step.clone()).await?;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tally = Arc::new(std::sync::Mutex::new(BTreeMap::<u16, u64>::new()));
    let mut burst = Vec::new();
    for _ in 0..args.burst_concurrency {
        let (ctx, hostile, stop, tally) =
            (Arc::clone(ctx), Arc::clone(&hostile), Arc::clone(&stop), Arc::clone(&tally));
        burst.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = ctx
                    .http
                    .post(hostile.acs.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(hostile.body.clone())
                    .send()
                    .await;
                let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
                *tally.lock().unwrap_or_else(|e| e.into_inner()).entry(status).or_insert(0) += 1;
            }
        }));
    }
    let started = Instant::now();
    let (loud, _) = measure(cpu, vec![(); c], args.count, step).await?;
    stop.store(true, Ordering::Relaxed);
    for b in burst {
        let _ = b.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let by_status = tally.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let sent: u64 = by_status.values().sum();
    let summary = json!({
        "phase": "acs-burst-summary",
        "legit_alone": latency(&quiet),
        "legit_during_burst": latency(&loud),
        "hostile": {"sent": sent, "per_second": (sent as f64 / secs).round(), "by_status": by_status,
                    "concurrency": args.burst_concurrency},
    });
    eprintln!("  {summary}");
    if args.json {
        println!("{summary}");
    }
    Ok(PhaseReport::new(Phase::AcsBurst, c, loud))
}
