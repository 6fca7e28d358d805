//! The browser side of fedgate: RP-initiated logout ends a session only in the browser that
//! holds it (or after a confirmation our page alone can post), and with an https issuer every
//! cookie carries the `__Host-` prefix and only the prefixed name is read.
use crate::common::*;

fn logout_url(app: &TestApp, pairs: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&app.url("/oauth2/logout")).unwrap();
    u.query_pairs_mut().extend_pairs(pairs.iter());
    u.to_string()
}

async fn has_session(app: &TestApp, b: &reqwest::Client, cid: &str) -> bool {
    let r = b.get(authorize_url(app, cid, &[("organization", "acme"), ("prompt", "none")])).send().await.unwrap();
    let to = location(&r);
    let q = query_of(&to);
    match (q.get("code"), q.get("error")) {
        (Some(_), _) => true,
        (_, Some(e)) if e == "login_required" => false,
        _ => panic!("unexpected answer to prompt=none: {to}"),
    }
}

fn hidden(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    Some(page[at..at + page[at..].find('"')?].to_string())
}

/// The attack: whoever holds someone's ID token (an app's log, a Referer, the app itself) opens
/// `/oauth2/logout?id_token_hint=…` in their own browser. Before the fix that ended the named
/// session wherever it lived; now it ends nothing outside the browser that holds it.
async fn logout_hint_ends_nothing_in_another_browser(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, secret) = app.client("confidential", "ES256").await;
    let s = secret.unwrap();
    let victim = browser();
    let code = code_for(app, &victim, &cid, &[("organization", "acme")]).await;
    let (_, t) = exchange(app, &cid, Some(&s), &code).await;
    let id = t["id_token"].as_str().unwrap().to_string();

    let attacker = browser();
    let r = attacker
        .get(logout_url(
            app,
            &[("id_token_hint", &id), ("post_logout_redirect_uri", "http://127.0.0.1:9/bye"), ("state", "s1")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "post_logout_redirect_uri is still honoured");
    assert_eq!(location(&r), "http://127.0.0.1:9/bye?state=s1");
    assert!(has_session(app, &victim, &cid).await, "the victim's session survives");
    let (st, t2) = refresh(app, &cid, Some(&s), t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200, "and its grants: {t2}");

    // The attacker signed in as someone else: the hint names another session, so fedgate only
    // offers to end the attacker's own session, and the victim's stays.
    code_for(app, &attacker, &cid, &[("organization", "acme"), ("login_hint", "mallory@acme.test")]).await;
    let r = attacker.get(logout_url(app, &[("id_token_hint", &id)])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign out?"));
    assert!(has_session(app, &attacker, &cid).await, "nothing ended before the confirmation");
    assert!(has_session(app, &victim, &cid).await);

    // The victim's own browser with its hint: ended at once, tokens included.
    let r = victim.get(logout_url(app, &[("id_token_hint", &id)])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert!(!has_session(app, &victim, &cid).await);
    let (st, _) = refresh(app, &cid, Some(&s), t2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 400, "logout revokes the session's grants");
    assert!(has_session(app, &attacker, &cid).await, "and only that session");
}

/// The confirmation is a POST carrying a token derived from the session cookie: a forged POST
/// (from a page that cannot read ours) ends nothing.
async fn logout_confirmation_needs_the_page_token(app: &TestApp) {
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let b = browser();
    code_for(app, &b, &cid, &[("organization", "acme")]).await;
    let r = b.get(app.url("/oauth2/logout")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    let token = hidden(&page, "logout_token").unwrap_or_else(|| panic!("no token in {page}"));
    for forged in [vec![("confirm", "yes")], vec![("confirm", "yes"), ("logout_token", "0123abcd")]] {
        let r = b.post(app.url("/oauth2/logout")).form(&forged).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Sign out?"), "a forged confirmation only shows the question");
        assert!(has_session(app, &b, &cid).await, "{forged:?} must not sign out");
    }
    // Another browser's token does not work here either.
    let other = browser();
    code_for(app, &other, &cid, &[("organization", "acme"), ("login_hint", "bob@acme.test")]).await;
    let page2 = other.get(app.url("/oauth2/logout")).send().await.unwrap().text().await.unwrap();
    let token2 = hidden(&page2, "logout_token").unwrap();
    assert_ne!(token, token2);
    let r =
        b.post(app.url("/oauth2/logout")).form(&[("confirm", "yes"), ("logout_token", &token2)]).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("Sign out?"));
    assert!(has_session(app, &b, &cid).await);
    // Our own page's form signs out.
    let r =
        b.post(app.url("/oauth2/logout")).form(&[("confirm", "yes"), ("logout_token", &token)]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert!(!has_session(app, &b, &cid).await);
    assert!(has_session(app, &other, &cid).await);
}

crate::both!(logout_hint_ends_nothing_in_another_browser, logout_confirmation_needs_the_page_token);

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
}

/// With an https issuer (the test talks http to the port; the issuer is only configuration),
/// the binding and session cookies are `__Host-` cookies: Secure, Path=/, no Domain. A cookie
/// without the prefix (which a sibling subdomain or a plain-http page could plant) is not read.
async fn https_issuer_uses_host_prefixed_cookies(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.issuer = "https://fedgate.example.com".into()).await;
    app.tenant("acme", "acme.test", &[]).await;
    let (cid, _) = app.client("confidential", "ES256").await;
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = plain.get(authorize_url(&app, &cid, &[("organization", "acme")])).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let dev = location(&r).replacen("https://fedgate.example.com", &app.base, 1);
    let cookies = set_cookies(&r);
    let binding = cookies.iter().find(|c| c.contains("fedgate_login=")).unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(binding.starts_with("__Host-fedgate_login="), "{binding}");
    for attr in ["Secure", "Path=/", "HttpOnly", "SameSite=Lax"] {
        assert!(binding.contains(attr), "{attr} missing: {binding}");
    }
    assert!(!binding.to_ascii_lowercase().contains("domain="), "{binding}");
    let value = cookie_value(binding);

    // The unprefixed name is not the binding cookie.
    let r = plain
        .post(&dev)
        .header("cookie", format!("fedgate_login={value}"))
        .form(&[("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("login_binding_mismatch"));
    let r = plain
        .post(&dev)
        .header("cookie", format!("__Host-fedgate_login={value}"))
        .form(&[("action", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    let cookies = set_cookies(&r);
    let session = cookies.iter().find(|c| c.contains("fedgate_session=")).unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(session.starts_with("__Host-fedgate_session=") && session.contains("Secure") && session.contains("Path=/"));
    assert!(!session.to_ascii_lowercase().contains("domain="), "{session}");
    let secret = cookie_value(session);

    let prompt_none = |cookie: String| {
        let url = authorize_url(&app, &cid, &[("organization", "acme"), ("prompt", "none")]);
        let plain = plain.clone();
        async move {
            let r = plain.get(url).header("cookie", cookie).send().await.unwrap();
            query_of(&location(&r))
        }
    };
    assert!(prompt_none(format!("__Host-fedgate_session={secret}")).await.contains_key("code"));
    assert_eq!(prompt_none(format!("fedgate_session={secret}")).await["error"], "login_required");
    // Logout clears the prefixed cookie.
    let r = plain
        .get(app.url("/oauth2/logout"))
        .header("cookie", format!("__Host-fedgate_session={secret}"))
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    let token = hidden(&page, "logout_token").unwrap();
    let r = plain
        .post(app.url("/oauth2/logout"))
        .header("cookie", format!("__Host-fedgate_session={secret}"))
        .form(&[("confirm", "yes"), ("logout_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let cleared = set_cookies(&r);
    assert!(
        cleared.iter().any(|c| c.starts_with("__Host-fedgate_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(prompt_none(format!("__Host-fedgate_session={secret}")).await["error"], "login_required");
    app.stop().await;
}

mod https_issuer_uses_host_prefixed_cookies {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::https_issuer_uses_host_prefixed_cookies(crate::common::Backend::Sqlite).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::https_issuer_uses_host_prefixed_cookies(crate::common::Backend::Postgres).await;
    }
}
