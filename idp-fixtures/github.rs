//! A fixture GitHub, in process on port 0, speaking GitHub's OAuth 2.0 and REST dialect: the
//! token endpoint answers form-encoded unless asked for JSON and reports a bad code with HTTP 200
//! and an `error` field; the API refuses a request without `User-Agent` (403, as GitHub does) or
//! without a token (`Authorization: Bearer …` or `token …`), and `/user/emails` lists addresses
//! with `primary` and `verified`. It auto-approves every authorization request.
//!
//! Include it with `#[path = ".../idp-fixtures/github.rs"] mod github_fixture;`.
#![allow(dead_code)]
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use fedgate::clock::SystemRng;
use fedgate::keys::sha256_b64url;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The person GitHub signs in, changeable while the fixture runs.
#[derive(Debug, Clone)]
pub struct GithubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    /// `(email, primary, verified)`.
    pub emails: Vec<(String, bool, bool)>,
}

impl Default for GithubUser {
    fn default() -> Self {
        Self {
            id: 583231,
            login: "octocat".into(),
            name: Some("The Octocat".into()),
            emails: vec![("octocat@github.test".into(), true, true), ("old@github.test".into(), false, false)],
        }
    }
}

struct Inner {
    client_id: String,
    client_secret: String,
    user: Mutex<GithubUser>,
    /// code -> (redirect_uri, code_challenge)
    codes: Mutex<HashMap<String, (String, Option<String>)>>,
    tokens: Mutex<HashMap<String, GithubUser>>,
    /// Header problems seen by the API (for assertions).
    refused: Mutex<Vec<String>>,
}

pub struct FixtureGithub {
    pub base: String,
    inner: Arc<Inner>,
    handle: actix_web::dev::ServerHandle,
}

impl FixtureGithub {
    pub async fn start() -> std::io::Result<FixtureGithub> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let inner = Arc::new(Inner {
            client_id: "Iv1.fixture".into(),
            client_secret: "github-fixture-secret".into(),
            user: Mutex::new(GithubUser::default()),
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            refused: Mutex::new(Vec::new()),
        });
        let data = web::Data::from(inner.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/login/oauth/authorize", web::get().to(authorize))
                .route("/login/oauth/access_token", web::post().to(token))
                .route("/api/user", web::get().to(user))
                .route("/api/user/emails", web::get().to(emails))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(FixtureGithub { base, inner, handle })
    }

    pub fn set_user(&self, f: impl FnOnce(&mut GithubUser)) {
        f(&mut self.inner.user.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn refused(&self) -> Vec<String> {
        self.inner.refused.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The connection body for fedgate's admin API.
    pub fn connection_body(&self, name: &str) -> Value {
        let b = &self.base;
        json!({"type": "github", "name": name, "client_id": self.inner.client_id, "client_secret": self.inner.client_secret,
               "authorization_endpoint": format!("{b}/login/oauth/authorize"),
               "token_endpoint": format!("{b}/login/oauth/access_token"), "api_base": format!("{b}/api")})
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect()
}

async fn authorize(req: HttpRequest, st: web::Data<Inner>) -> HttpResponse {
    let q = query(&req);
    if q.get("client_id") != Some(&st.client_id) {
        return HttpResponse::NotFound().body("unknown client_id");
    }
    let Some(redirect_uri) = q.get("redirect_uri").cloned() else {
        return HttpResponse::BadRequest().body("redirect_uri missing");
    };
    if q.contains_key("code_challenge") && q.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return HttpResponse::BadRequest().body("only S256");
    }
    let Ok(mut u) = url::Url::parse(&redirect_uri) else {
        return HttpResponse::BadRequest().body("bad redirect_uri");
    };
    let code = fedgate::ids::random128(&SystemRng)[..20].to_string();
    st.codes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(code.clone(), (redirect_uri.clone(), q.get("code_challenge").cloned()));
    {
        let mut qp = u.query_pairs_mut();
        qp.append_pair("code", &code);
        if let Some(s) = q.get("state") {
            qp.append_pair("state", s);
        }
    }
    HttpResponse::Found().insert_header(("location", u.to_string())).finish()
}

/// GitHub answers errors with HTTP 200, in the format asked for.
fn answer(json_wanted: bool, v: Value) -> HttpResponse {
    if json_wanted {
        return HttpResponse::Ok().json(v);
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Value::Object(m) = &v {
        for (k, x) in m {
            s.append_pair(k, x.as_str().unwrap_or_default());
        }
    }
    HttpResponse::Ok().content_type("application/x-www-form-urlencoded").body(s.finish())
}

async fn token(req: HttpRequest, body: web::Bytes, st: web::Data<Inner>) -> HttpResponse {
    let json_wanted =
        req.headers().get("accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("client_id") != Some(&st.client_id) || form.get("client_secret") != Some(&st.client_secret) {
        return answer(
            json_wanted,
            json!({"error": "incorrect_client_credentials", "error_description": "The client_id and/or client_secret passed are incorrect."}),
        );
    }
    let bad =
        json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."});
    let Some((redirect_uri, challenge)) =
        form.get("code").and_then(|c| st.codes.lock().unwrap_or_else(|e| e.into_inner()).remove(c))
    else {
        return answer(json_wanted, bad);
    };
    if form.get("redirect_uri").is_some_and(|r| *r != redirect_uri) {
        return answer(json_wanted, json!({"error": "redirect_uri_mismatch"}));
    }
    if let Some(c) = challenge {
        if form.get("code_verifier").map(|v| sha256_b64url(v.as_bytes())) != Some(c) {
            return answer(json_wanted, bad);
        }
    }
    let token = format!("gho_{}", &fedgate::ids::random128(&SystemRng)[..24]);
    let user = st.user.lock().unwrap_or_else(|e| e.into_inner()).clone();
    st.tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(token.clone(), user);
    answer(json_wanted, json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}))
}

/// The headers GitHub's REST API requires: a User-Agent and a token.
#[allow(clippy::result_large_err)]
fn authorized(req: &HttpRequest, st: &Inner) -> Result<GithubUser, HttpResponse> {
    if req.headers().get("user-agent").is_none() {
        st.refused.lock().unwrap_or_else(|e| e.into_inner()).push("user-agent".into());
        return Err(HttpResponse::Forbidden()
            .body("Request forbidden by administrative rules. Please make sure your request has a User-Agent header"));
    }
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("token ")).unwrap_or_default();
    match st.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(token) {
        Some(u) => Ok(u.clone()),
        None => {
            st.refused.lock().unwrap_or_else(|e| e.into_inner()).push("authorization".into());
            Err(HttpResponse::Unauthorized().json(
                json!({"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"}),
            ))
        }
    }
}

async fn user(req: HttpRequest, st: web::Data<Inner>) -> HttpResponse {
    match authorized(&req, &st) {
        Ok(u) => HttpResponse::Ok().json(json!({
            "login": u.login, "id": u.id, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": false,
            "name": u.name,
            // The public profile email: not necessarily verified (fedgate must not use it).
            "email": "public-profile@github.test",
        })),
        Err(r) => r,
    }
}

async fn emails(req: HttpRequest, st: web::Data<Inner>) -> HttpResponse {
    match authorized(&req, &st) {
        Ok(u) => HttpResponse::Ok().json(
            u.emails
                .iter()
                .map(|(e, p, v)| json!({"email": e, "primary": p, "verified": v, "visibility": if *p { Some("private") } else { None }}))
                .collect::<Vec<_>>(),
        ),
        Err(r) => r,
    }
}
