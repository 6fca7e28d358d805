//! The `scim-groups` phase: group membership at scale (issue 13), one request at a time.
//!
//! Set-up (untimed): `BENCH_GROUP_MEMBERS` SCIM users (default 50,000) and a group holding all
//! of them (one `POST /Groups`); the dev login's user (`bench@<slug>.test`) in
//! `BENCH_USER_GROUPS` groups (default 500).
//!
//! Then, each printed as its own JSON line (`"phase": "scim-groups/<step>"`, with p50/p99, server
//! CPU and statements per request):
//! * `add-1000` / `remove-1000-entra` / `remove-1000-okta`: a PATCH adding 1,000 members to a
//!   small group in one `add` operation, then removing them in one `remove` with a value list
//!   (Entra ID) or in 1,000 `members[value eq "id"]` operations (Okta); 10 of each.
//! * `big-add-1000` / `big-remove-1000`: the same against the big group.
//! * `big-get-excluded`: `GET /Groups/{big}?excludedAttributes=members`;
//!   `big-get-full`: `GET /Groups/{big}` (every member);
//!   `filter-name`: `GET /Groups?filter=displayName eq "..."&excludedAttributes=members`;
//!   `filter-member`: `GET /Groups?filter=members[value eq "uid"]&excludedAttributes=members`;
//!   `filter-id-member`: Entra's `id eq "big" and members.value eq "uid"`.
//! * `big-add-1` / `big-remove-1`: one member added to (removed from) the big group, as Okta and
//!   Entra send it (no `excludedAttributes`: the response carries every member), and
//!   `big-add-1-excluded` with `?excludedAttributes=members`.
//! * `token-500-code`, `token-500-refresh`, `userinfo-500`: the user in 500 groups: code
//!   exchange, refresh, userinfo (the ID token carries the overage, userinfo every group).
use super::*;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// One SCIM request; the status and body.
async fn scim(
    ctx: &Ctx,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(StatusCode, String), String> {
    let url = format!("{}{path}", ctx.scim_base);
    let mut req = ctx.http.request(method.clone(), &url).bearer_auth(&ctx.scim_token);
    if let Some(b) = body {
        req = req.header(CONTENT_TYPE, "application/scim+json").body(b.to_string());
    }
    let resp = req.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("{method} {path}: {e}"))?;
    Ok((status, text))
}

async fn expect(
    ctx: &Ctx,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
    want: StatusCode,
) -> Result<String, String> {
    let (st, text) = scim(ctx, method.clone(), path, body).await?;
    if st != want {
        return Err(format!("{method} {}: {st}: {}", clip(path), clip(&text)));
    }
    Ok(text)
}

fn patch_body(ops: serde_json::Value) -> serde_json::Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

fn members(ids: &[String]) -> serde_json::Value {
    serde_json::Value::Array(ids.iter().map(|i| json!({"value": i})).collect())
}

async fn create_group(ctx: &Ctx, name: &str, ids: &[String]) -> Res<String> {
    let body = json!({"schemas": [GROUP], "displayName": name, "members": members(ids)});
    let text =
        expect(ctx, reqwest::Method::POST, "/Groups?excludedAttributes=members", Some(body), StatusCode::CREATED)
            .await?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    json_str(&v, "id", "POST /Groups")
}

/// Runs `n` requests one at a time and prints the step's JSON line.
async fn step<F, Fut>(cpu: &CpuSampler, args: &Args, name: &str, n: usize, f: F) -> Res<Measurement>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let f = Arc::new(f);
    let (m, _) = measure(cpu, vec![()], n, move |(), i| {
        let f = Arc::clone(&f);
        async move { ((), f(i).await) }
    })
    .await?;
    let r = PhaseReport::new(Phase::ScimGroups, 1, m);
    let line = json!({
        "phase": format!("scim-groups/{name}"), "requests": r.requests, "errors": r.errors,
        "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
        "server_cpu_ms_per_req": r.server_cpu_ms_per_req, "db_statements_per_req": r.db_statements_per_req,
        "db_tx_per_req": r.db_tx_per_req,
    });
    eprintln!("  {line}");
    for e in &r.error_samples {
        eprintln!("    error: {e}");
    }
    if args.json {
        println!("{line}");
    }
    let mut back = Measurement::new()?;
    back.ok = r.requests - r.errors;
    back.errors = r.errors;
    Ok(back)
}

/// The ID token's claims (payload only; the signature is the token phases' business).
fn id_token_claims(tr: &TokenResponse) -> Result<serde_json::Value, String> {
    let tok = tr.id_token.as_deref().ok_or("no id_token")?;
    let payload = tok.split('.').nth(1).ok_or("malformed id_token")?;
    let raw = URL_SAFE_NO_PAD.decode(payload).map_err(|e| e.to_string())?;
    serde_json::from_slice(&raw).map_err(|e| e.to_string())
}

pub(super) async fn run_scim_groups_phase(ctx: &Arc<Ctx>, args: &Args, cpu: &CpuSampler) -> Res<PhaseReport> {
    let big_n = env_usize("BENCH_GROUP_MEMBERS", 50_000);
    let user_groups = env_usize("BENCH_USER_GROUPS", 500);
    let reads = args.count.clamp(1, 500);

    // --- set-up (untimed) ---
    let have = scim_created(ctx);
    if have < big_n + 1_000 {
        let t0 = Instant::now();
        let pm = scim_creates(ctx, cpu, big_n + 1_000 - have, args.concurrency).await?;
        eprintln!("  created {} users in {:.1}s ({} errors)", pm.ok, t0.elapsed().as_secs_f64(), pm.errors);
    }
    let ids: Vec<String> = ctx.scim_ids.lock().map_err(|_| "poisoned")?.clone();
    let (in_big, spare) = ids.split_at(big_n.min(ids.len().saturating_sub(1_000)));
    let spare: Vec<String> = spare.iter().take(1_000).cloned().collect();
    let t0 = Instant::now();
    let big = create_group(ctx, "big group", in_big).await?;
    eprintln!("  group of {} members created in {:.1}s", in_big.len(), t0.elapsed().as_secs_f64());
    let small = create_group(ctx, "small group", &[]).await?;

    let me = format!("bench@{}.test", ctx.slug);
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": me, "active": true,
                      "emails": [{"value": me, "type": "work", "primary": true}]});
    let text = expect(ctx, reqwest::Method::POST, "/Users", Some(body), StatusCode::CREATED).await?;
    let me_id = json_str(&serde_json::from_str(&text)?, "id", "POST /Users")?;
    let t0 = Instant::now();
    for g in 0..user_groups {
        create_group(ctx, &format!("team {g:04}"), std::slice::from_ref(&me_id)).await?;
    }
    eprintln!("  the login's user is in {user_groups} groups ({:.1}s)", t0.elapsed().as_secs_f64());

    let ctx = Arc::clone(ctx);
    let spare = Arc::new(spare);
    let in_big: Arc<Vec<String>> = Arc::new(in_big.to_vec());

    // --- (a) 1,000 members in one PATCH ---
    for (name, group) in [("", small.clone()), ("big-", big.clone())] {
        let reps = if name.is_empty() { 10 } else { 3 };
        for remove in ["entra", "okta"] {
            if !name.is_empty() && remove == "okta" {
                continue;
            }
            let c = Arc::clone(&ctx);
            let (g, s) = (group.clone(), Arc::clone(&spare));
            let path = format!("/Groups/{g}");
            let label = format!("{name}add-1000");
            // Adds and removes alternate (each measured on its own): the group is back to its
            // size after every pair.
            let mut add = Measurement::new()?;
            let mut rem = Measurement::new()?;
            for _ in 0..reps {
                let (c2, p2, s2) = (Arc::clone(&c), path.clone(), Arc::clone(&s));
                let m = step(cpu, args, &label, 1, move |_| {
                    let (c, p, s) = (Arc::clone(&c2), p2.clone(), Arc::clone(&s2));
                    async move {
                        let body = patch_body(json!([{"op": "add", "path": "members", "value": members(&s)}]));
                        expect(&c, reqwest::Method::PATCH, &p, Some(body), StatusCode::OK).await.map(|_| ())
                    }
                })
                .await?;
                add.ok += m.ok;
                let (c2, p2, s2) = (Arc::clone(&c), path.clone(), Arc::clone(&s));
                let okta = remove == "okta";
                let m = step(cpu, args, &format!("{name}remove-1000-{remove}"), 1, move |_| {
                    let (c, p, s) = (Arc::clone(&c2), p2.clone(), Arc::clone(&s2));
                    async move {
                        let ops = if okta {
                            serde_json::Value::Array(
                                s.iter()
                                    .map(|id| json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")}))
                                    .collect(),
                            )
                        } else {
                            json!([{"op": "Remove", "path": "members", "value": members(&s)}])
                        };
                        expect(&c, reqwest::Method::PATCH, &p, Some(patch_body(ops)), StatusCode::OK).await.map(|_| ())
                    }
                })
                .await?;
                rem.ok += m.ok;
            }
            eprintln!("  {label}: {} ok, remove-{remove}: {} ok", add.ok, rem.ok);
        }
    }

    // --- (b) the big group ---
    let get = |name: &'static str, n: usize, path: String, needle: Option<String>| {
        let c = Arc::clone(&ctx);
        step(cpu, args, name, n, move |_| {
            let (c, p, needle) = (Arc::clone(&c), path.clone(), needle.clone());
            async move {
                let text = expect(&c, reqwest::Method::GET, &p, None, StatusCode::OK).await?;
                match needle {
                    Some(n) if !text.contains(&n) => Err(format!("GET {}: {} not in {}", clip(&p), n, clip(&text))),
                    _ => Ok(()),
                }
            }
        })
    };
    let member = in_big.get(in_big.len() / 2).cloned().unwrap_or_default();
    let enc = |s: &str| form_encode(s);
    get("big-get-excluded", reads, format!("/Groups/{big}?excludedAttributes=members"), Some(big.clone())).await?;
    get("big-get-full", 5, format!("/Groups/{big}"), Some(member.clone())).await?;
    get(
        "filter-name",
        reads,
        format!("/Groups?filter={}&excludedAttributes=members", enc("displayName eq \"big group\"")),
        Some(big.clone()),
    )
    .await?;
    get(
        "filter-member",
        reads,
        format!("/Groups?filter={}&excludedAttributes=members", enc(&format!("members[value eq \"{member}\"]"))),
        Some(big.clone()),
    )
    .await?;
    get(
        "filter-id-member",
        reads,
        format!(
            "/Groups?filter={}&excludedAttributes=members",
            enc(&format!("id eq \"{big}\" and members.value eq \"{member}\""))
        ),
        Some(big.clone()),
    )
    .await?;
    get(
        "filter-member-500",
        reads,
        format!(
            "/Groups?filter={}&excludedAttributes=members&count=100",
            enc(&format!("members[value eq \"{me_id}\"]"))
        ),
        Some(format!("\"totalResults\":{user_groups}")),
    )
    .await?;
    for (name, query, reps) in
        [("big-add-1", "", 10usize), ("big-add-1-excluded", "?excludedAttributes=members", reads)]
    {
        let c = Arc::clone(&ctx);
        let p = format!("/Groups/{big}{query}");
        let s = Arc::clone(&spare);
        let rm_name = name.replace("add", "remove");
        for i in 0..reps {
            let one = s.get(i % s.len().max(1)).cloned().unwrap_or_default();
            let (c2, p2, o2) = (Arc::clone(&c), p.clone(), one.clone());
            step(cpu, args, name, 1, move |_| {
                let (c, p, o) = (Arc::clone(&c2), p2.clone(), o2.clone());
                async move {
                    let body = patch_body(json!([{"op": "add", "path": "members", "value": [{"value": o}]}]));
                    expect(&c, reqwest::Method::PATCH, &p, Some(body), StatusCode::OK).await.map(|_| ())
                }
            })
            .await?;
            let (c2, p2, o2) = (Arc::clone(&c), p.clone(), one.clone());
            step(cpu, args, &rm_name, 1, move |_| {
                let (c, p, o) = (Arc::clone(&c2), p2.clone(), o2.clone());
                async move {
                    let body = patch_body(json!([{"op": "Remove", "path": "members", "value": [{"value": o}]}]));
                    expect(&c, reqwest::Method::PATCH, &p, Some(body), StatusCode::OK).await.map(|_| ())
                }
            })
            .await?;
        }
    }

    // --- (c) a user in 500 groups gets a token ---
    let n_tokens = reads.min(200);
    let (codes, pm) = prepare_codes(&ctx, n_tokens, 1, Some(Instant::now() + Duration::from_secs(40))).await?;
    report_prep("codes", &pm);
    let codes = Arc::new(codes);
    let chains: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c2, codes2, chains2) = (Arc::clone(&ctx), Arc::clone(&codes), Arc::clone(&chains));
    let groups_expected = user_groups;
    step(cpu, args, "token-500-code", codes.len(), move |i| {
        let (c, codes, chains) = (Arc::clone(&c2), Arc::clone(&codes2), Arc::clone(&chains2));
        async move {
            let pc = codes.get(i).ok_or("no code")?;
            let tr = token_request(
                &c,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &pc.code),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", &pc.verifier),
                ],
            )
            .await?;
            let claims = id_token_claims(&tr)?;
            let n = claims.get("groups").and_then(|g| g.as_array()).map(Vec::len);
            if groups_expected > 200 && claims.get("_claim_names").is_none() {
                return Err(format!("no groups overage in the ID token ({n:?} groups)"));
            }
            let (at, rt) = (tr.access_token.unwrap_or_default(), tr.refresh_token.unwrap_or_default());
            chains.lock().map_err(|_| "poisoned")?.push((at, rt));
            Ok(())
        }
    })
    .await?;
    let chains: Vec<(String, String)> = chains.lock().map_err(|_| "poisoned")?.clone();
    let at = chains.first().map(|c| c.0.clone()).ok_or("no access token")?;
    let rts = Arc::new(std::sync::Mutex::new(chains.into_iter().map(|c| c.1).collect::<Vec<_>>()));
    let c2 = Arc::clone(&ctx);
    step(cpu, args, "token-500-refresh", n_tokens, move |i| {
        let (c, rts) = (Arc::clone(&c2), Arc::clone(&rts));
        async move {
            let old = {
                let g = rts.lock().map_err(|_| "poisoned")?;
                g.get(i % g.len().max(1)).cloned().ok_or("no refresh token")?
            };
            let new = refresh(&c, &old).await?;
            let mut g = rts.lock().map_err(|_| "poisoned")?;
            let k = i % g.len().max(1);
            if let Some(slot) = g.get_mut(k) {
                *slot = new;
            }
            Ok(())
        }
    })
    .await?;
    let userinfo = ctx.base.join("/oauth2/userinfo")?;
    let c2 = Arc::clone(&ctx);
    let last = step(cpu, args, "userinfo-500", reads, move |_| {
        let (c, u, at) = (Arc::clone(&c2), userinfo.clone(), at.clone());
        async move {
            let resp = c.http.get(u).bearer_auth(&at).send().await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| e.to_string())?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{status}: {e}: {}", clip(&text)))?;
            let n = v.get("groups").and_then(|g| g.as_array()).map(Vec::len).unwrap_or(0);
            if status != StatusCode::OK || n < groups_expected {
                return Err(format!("userinfo: {status}, {n} groups"));
            }
            Ok(())
        }
    })
    .await?;
    Ok(PhaseReport::new(Phase::ScimGroups, 1, last))
}
