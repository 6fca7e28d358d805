#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use serde_json::{json, Value as Json};

/// A sample context for every page template: a new page needs one here.
fn samples() -> Vec<(&'static str, Json)> {
    vec![
        (
            "error.html",
            json!({"title": "Sign-in failed", "message": "The identity provider refused.", "code": "saml_replay",
                   "request_id": "req_1", "back": "https://app.test/cb?error=access_denied&state=s", "trace": "lgn_1"}),
        ),
        (
            "login_email.html",
            json!({"login_id": "lgn_1", "message": "Enter a valid email address.", "value": "a@b.test",
                   "social": [{"id": "con_g", "name": "Google", "social": "google", "provider": "Google"}]}),
        ),
        (
            "login_chooser.html",
            json!({"login_id": "lgn_1", "tenant_name": "Acme",
                   "connections": [{"id": "con_1", "name": "Okta"}, {"id": "con_2", "name": "Entra"},
                                   {"id": "con_3", "name": "GitHub", "social": "github", "provider": "GitHub"}]}),
        ),
        (
            "auto_post.html",
            json!({"url": "https://idp.test/sso-post", "fields": [{"name": "SAMLRequest", "value": "PD94"}]}),
        ),
        ("dev_login.html", json!({"app": "Demo", "email": "a@acme.test", "org": "Acme", "login_id": "lgn_1"})),
        ("logout_confirm.html", json!({"fields": [{"name": "logout_token", "value": "abc"}]})),
        ("logout_done.html", json!({})),
        ("demo_home.html", json!({})),
        ("demo_failed.html", json!({"message": "state mismatch"})),
        ("demo_signed_in.html", json!({"claims": "{\n  \"sub\": \"x\"\n}", "logout_url": "/oauth2/logout?a=1&b=2"})),
        (
            "demo_saml_idp.html",
            json!({"request_id": "id_1", "acs": "https://f.test/sso/saml/con_1/acs", "saml_response": "PHNhbWw+",
                   "relay_state": "lgn_1", "email": "alice@demo.example"}),
        ),
        ("demo_saml_idp_error.html", json!({"message": "no SAMLRequest"})),
        (
            "console_notice.html",
            json!({"op": null, "kind": "read_only", "code": "operator_read_only", "next": null, "request_id": "req_1"}),
        ),
        (
            "console_tenants.html",
            json!({"op": console_op(), "tenants": [{"id": "org_1", "slug": "acme", "name": "Acme", "domains": "acme.test", "created_at": "2026-12-06T00:00:00Z"}],
                   "next_cursor": "org_1", "error": {"message": "slug taken", "field": "slug", "code": "slug_taken"},
                   "form": {"name": "A", "slug": "a", "domains": "a.test"}}),
        ),
        (
            "console_tenant.html",
            json!({"op": console_op(), "tenant": {"id": "org_1", "slug": "acme", "name": "Acme", "created_at": "2026-12-06T00:00:00Z", "mfa": "required"},
                   "domains": "acme.test", "domain_list": ["acme.test"],
                   "connections": [{"id": "conn_1", "name": "Okta", "type": "saml", "enabled": false, "mfa": "inherit", "mfa_enforced_by_idp": false,
                                    "last_success": {"at": "2026-12-06T00:00:00Z", "trace": "lgn_1"},
                                    "last_failure": {"at": "2026-12-06T00:00:00Z", "trace": "lgn_2", "code": "saml_expired"},
                                    "cert_expiry": "2027-01-01T00:00:00Z", "cert_days": 26,
                                    "metadata": {"url": "https://idp.test/md", "refreshed_at": "2026-12-06T00:00:00Z", "error": "timeout"},
                                    "warnings": ["the IdP signing certificate expires soon"]}],
                   "tokens": [{"id": "scim_1", "name": "Okta", "created_at": "x", "last_used_at": null, "revoked_at": null}],
                   "links": [{"id": "stl_1", "intents": ["sso", "scim"], "created_by": "operator:ops@vendor.test", "created_at": "x",
                              "expires_at": "y", "status": "active"},
                             {"id": "stl_2", "intents": ["domains"], "created_by": "admin (adm_1)", "created_at": "x",
                              "expires_at": "y", "status": "revoked"}],
                   "requests": [{"at": "x", "method": "POST", "path": "/Users", "status": 201, "duration_ms": "1.2", "error_code": "uniqueness"}],
                   "scim_base_url": "https://f.test/scim/v2/acme", "notice": "created", "error": {"message": "bad domain"},
                   "new_token": {"id": "scim_2", "name": "Entra", "token": "fgscim_x"}}),
        ),
        (
            "console_logins.html",
            json!({"op": console_op(), "form": {"id": "", "tenant": "acme", "email": "a@acme.test", "connection": "", "status": "failed", "from": "", "until": ""},
                   "results": [{"id": "lgn_1", "started_at": "x", "tenant": "acme", "email": "a@acme.test", "connection_id": "conn_1",
                                "client_id": "cli_1", "status": "failed", "error_code": "saml_expired", "why": "clock_skew"}],
                   "next_url": "/console/logins?cursor=1", "problems": ["bad_date"], "statuses": ["pending", "failed"]}),
        ),
        (
            "console_login.html",
            json!({"op": console_op(), "trace": {"id": "lgn_1", "status": "failed", "email": "a@acme.test", "client_id": "cli_1",
                   "started_at": "x", "updated_at": "y", "duration_ms": 12, "code": "saml_audience_mismatch", "cause": "c", "fix": "f"},
                   "why": "wrong_audience", "tenant": {"slug": "acme", "name": "Acme"}, "connection": {"id": "conn_1", "name": "Okta", "type": "saml"},
                   "steps": [{"step": "authorize_received", "at": "x", "elapsed_ms": 0, "duration_ms": 0, "detail": "{}"}]}),
        ),
        (
            "console_events.html",
            json!({"op": console_op(), "events": [{"id": "evt_1", "type": "login.failed", "tenant_id": "org_1", "at": "x", "data": "{}"}],
                   "next_url": "/console/events?after=1", "tenant": "acme"}),
        ),
        (
            "console_webhooks.html",
            json!({"op": console_op(), "webhooks": [{"id": "wh_1", "url": "https://h.test/", "tenant_id": null, "enabled": false,
                   "event_types": "", "disabled_reason": "gone", "failing_since": "x"}]}),
        ),
        (
            "console_webhook.html",
            json!({"op": console_op(), "webhook": {"id": "wh_1", "url": "https://h.test/", "enabled": true, "tenant_id": null, "event_types": "user.*", "disabled_reason": null},
                   "deliveries": [{"id": "dlv_1", "event_id": "evt_1", "status": "failed", "attempts": 2, "last_status": 500, "last_error": "boom",
                                   "created_at": "x", "attempt_log": [{"at": "x", "status": 500, "latency_ms": 3, "error": "boom"}]}],
                   "next_url": "/console/webhooks/wh_1?cursor=1", "replayed": true}),
        ),
        (
            "console_audit.html",
            json!({"op": console_op(), "entries": [{"at": "x", "actor": "operator:o@v.test", "action": "tenant.update", "target": "tenant org_1",
                   "tenant_id": "org_1", "ip": "127.0.0.1", "details": "{}"}],
                   "form": {"tenant": "", "actor": "", "action": ""}, "next_url": "/console/audit?before=3"}),
        ),
    ]
    .into_iter()
    .chain(portal_samples())
    .collect()
}

/// The layout values every portal page gets (`portal::PortalSession::page`).
fn portal(ctx: Json) -> Json {
    let mut m = ctx.as_object().cloned().unwrap_or_default();
    m.insert(
        "portal".into(),
        json!({"tenant_name": "Acme", "csrf": "tok", "home_current": false,
               "nav": [{"id": "sso", "href": "/setup/sso", "current": true}, {"id": "scim", "href": "/setup/scim", "current": false},
                       {"id": "domains", "href": "/setup/domains", "current": false}]}),
    );
    m.insert("accent_css".into(), json!("/setup/assets/accent.css?c=0a7f3c"));
    Json::Object(m)
}

fn sso_connection_sample() -> Json {
    json!({
        "conn": {"id": "conn_1", "name": "Okta", "type": "saml", "state": "draft", "enabled": false, "version": 2, "tested": true},
        "vendor": {"id": "okta", "name": "Okta", "acs_label": "Single sign-on URL", "entity_label": "Audience URI", "metadata_label": "SP metadata"},
        "errors": {"metadata_xml": {"kind": "sp_metadata", "detail": ""}, "new_certificate": {"kind": "cert_expired", "detail": "2020-01-01T00:00:00Z"}},
        "given": {"metadata_url": "", "idp_entity_id": "", "sso_url": "", "issuer": "", "client_id": ""},
        "test_url": "/setup/sso/conn_1/test",
        "saml": {"acs_url": "https://f.test/sso/saml/conn-1/acs", "sp_entity_id": "https://f.test/sso/saml/conn-1/metadata",
                 "sp_metadata_url": "https://f.test/sso/saml/conn-1/metadata", "sp_certificate": "-----BEGIN CERTIFICATE-----",
                 "onelogin_validator": "^https:\\/\\/f\\.test$", "attributes": [{"claim": "email", "attribute": "email"}],
                 "steps_html": "<ol><li>x</li></ol>", "console_warnings": [],
                 "idp": {"entity_id": "http://idp.test", "sso_url": "https://idp.test/sso", "metadata_url": null, "refresh_error": null,
                         "certificates": [{"subject": "CN=idp", "not_after": "2030-01-01T00:00:00Z", "days_left": 1000, "expired": false, "expiring": false, "fingerprint": "ab"}]}},
        "oidc": null,
    })
}

fn portal_samples() -> Vec<(&'static str, Json)> {
    vec![
        (
            "portal_home.html",
            portal(
                json!({"items": [{"id": "sso", "href": "/setup/sso", "status": "live"}, {"id": "scim", "href": "/setup/scim", "status": "draft"},
                                 {"id": "domains", "href": "/setup/domains", "status": null}],
                          "link_expires_at": "2026-12-13T00:00:00Z", "session_expires_at": "2026-12-06T08:00:00Z"}),
            ),
        ),
        (
            "portal_landing.html",
            portal(
                json!({"tenant_name": "Acme", "intents": ["sso", "scim", "domains"], "expires_at": "2026-12-13T00:00:00Z", "action": "/setup/fgs_x"}),
            ),
        ),
        (
            "portal_link_dead.html",
            portal(json!({"reason": "expired", "code": "setup_link_expired", "request_id": "r1"})),
        ),
        ("portal_done.html", portal(json!({}))),
        (
            "portal_scim.html",
            portal(json!({"vendor": "entra", "vendor_name": "Entra ID",
                "vendors": [{"id": "okta", "name": "Okta", "current": false}, {"id": "entra", "name": "Entra ID", "current": true}, {"id": "generic", "name": "x", "current": false}],
                "base_url": "https://f.test/scim/v2/acme", "entra_url": "https://f.test/scim/v2/acme?aadOptscim062020",
                "new_token": "fgscim_x", "tokens": [{"id": "sct_1", "name": "Setup portal (Entra ID)", "created_at": "2026-12-06T00:00:00Z", "last_used_at": null}],
                "lines": [{"id": "scr_1", "time": "2026-12-06T00:00:00Z", "tone": "ok", "key": "test_ok", "who": "Entra ID", "subject": null, "fix": null, "request": "GET /Users", "status": 200},
                          {"id": "scr_2", "time": "2026-12-06T00:00:01Z", "tone": "fail", "key": "group_failed", "who": "Okta", "subject": null, "fix": "group_member", "request": "PATCH /Groups/g", "status": 400}],
                "milestones": [{"id": "first_request", "at": "2026-12-06T00:00:00Z"}, {"id": "first_user", "at": null}],
                "cursor": "scr_2"})),
        ),
        (
            "portal_domains.html",
            portal(json!({"claims": [
                {"id": "dcl_1", "domain": "acme.test", "record_name": "_fedgate-challenge.acme.test", "record_value": "fedgate-verification=x",
                 "state": "pending", "checks": 2, "last_checked_at": "2026-12-06T00:00:00Z", "next_check_at": "2026-12-06T00:01:00Z", "verified_at": null,
                 "result": {"outcome": "mismatch", "count": 2, "found": ["a", "b"]}},
                {"id": "dcl_2", "domain": "acme2.test", "record_name": "_fedgate-challenge.acme2.test", "record_value": "fedgate-verification=y",
                 "state": "verified", "checks": 1, "last_checked_at": "2026-12-06T00:00:00Z", "next_check_at": null, "verified_at": "2026-12-06T00:00:00Z",
                 "result": {"outcome": "verified"}}],
                "added": ["old.test"], "error": "gmail.com is a public mail service", "value": "gmail.com"})),
        ),
        (
            "portal_sso.html",
            portal(
                json!({"connections": [{"id": "conn_1", "name": "Okta", "type": "saml", "state": "draft", "enabled": false, "href": "/setup/sso/conn_1"}],
                          "vendors": [{"id": "okta", "name": "Okta"}]}),
            ),
        ),
        (
            "portal_sso_oidc.html",
            portal(json!({"redirect_uri": "https://f.test/sso/oidc/callback", "steps_html": "<p>steps</p>",
                          "errors": {"issuer": {"kind": "oidc_issuer", "detail": ""}}, "action": "/setup/sso/new-oidc"})),
        ),
        ("portal_sso_connection.html", portal(sso_connection_sample())),
        (
            "portal_sso_test.html",
            portal(json!({"status": "completed", "passed": false,
                          "checks": [{"id": "email", "passed": false, "detail": "No email.", "fix": "Send email."}],
                          "claims": "{}", "code": "test_sign_in_failed", "cause": "No email.", "fix": "Send email.",
                          "trace_id": "lgn_1", "timeline": [{"step": "authorize_received", "after_ms": 0, "duration_ms": 0}],
                          "back": "/setup/sso/conn_1"})),
        ),
    ]
}

fn console_op() -> Json {
    json!({"email": "ops@vendor.test", "role": "full", "can_write": true, "csrf": "tok"})
}

fn branded() -> Look {
    Look {
        brand: Branding::tenant(Some("Acme <b>Corp</b>"), Some("#0a7f3c"), Some("https://cdn.acme.test/logo.png")),
        lang: "en".into(),
    }
}

#[test]
fn the_environment_builds() {
    if let Err(e) = &*ENV {
        panic!("{e}");
    }
}

#[test]
fn every_template_file_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if e.path().is_file() {
            assert!(TEMPLATES.iter().any(|(n, _)| *n == name), "templates/{name} is not in TEMPLATES");
        }
    }
}

#[test]
fn every_page_renders_with_its_sample_in_every_look() {
    let samples = samples();
    for (name, _) in TEMPLATES.iter().filter(|(n, _)| !PARTS.contains(n)) {
        let (_, ctx) = samples.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no sample for {name}"));
        for look in [Look::default(), branded(), Look { brand: Branding::default(), lang: "xx".into() }] {
            let html = render(name, ctx, &look).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(html.starts_with("<!doctype html>") && html.contains("</main>"), "{name}: {html}");
            // No inline JavaScript: portal pages load their one script file.
            let scripts: Vec<&str> = html.match_indices("<script").map(|(i, _)| &html[i..]).collect();
            for s in scripts {
                assert!(
                    s.starts_with("<script src=\"/setup/assets/portal.js\" defer></script>")
                        || s.starts_with("<script src=\"/setup/assets/scim-live.js\" defer></script>"),
                    "{name}: inline script"
                );
            }
        }
    }
}

#[test]
fn a_missing_variable_is_an_error() {
    for (name, ctx) in samples() {
        for key in ctx.as_object().unwrap().keys() {
            let mut partial = ctx.clone();
            partial.as_object_mut().unwrap().remove(key);
            assert!(render(name, &partial, &Look::default()).is_err(), "{name} renders without `{key}`");
        }
    }
    let r = respond(HttpResponse::Ok(), "dev_login.html", json!({}));
    assert_eq!(r.status(), actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let r = respond(HttpResponse::Ok(), "no_such_page.html", json!({}));
    assert_eq!(r.status(), actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn values_are_escaped_and_texts_keep_their_markup() {
    let p = ErrorPage {
        title: "<t>",
        message: "<script>alert(1)</script>",
        code: crate::error_code::ErrorCode::InternalError,
        request_id: "r",
        back: Some("https://x/?a=1&b=\"2"),
        trace: Some("lgn_'1"),
    };
    let html = render("error.html", &p, &Look::default()).unwrap();
    assert!(html.contains("<title>&lt;t&gt;</title>") && html.contains("<h1>&lt;t&gt;</h1>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script"), "{html}");
    assert!(html.contains("href=\"https://x/?a=1&amp;b=&quot;2\""), "{html}");
    assert!(html.contains("Error code <code>internal_error</code> · Request <code>r</code>"), "{html}");
    assert!(html.contains(" · Trace <code>lgn_&#x27;1</code>"), "{html}");
    let html = render(
        "login_chooser.html",
        json!({"login_id": "lgn_1", "tenant_name": "<script>x</script>", "connections": [{"id": "\"><x", "name": "<i>"}]}),
        &Look::default(),
    )
    .unwrap();
    assert!(html.contains("<h1>Sign in to &lt;script&gt;x&lt;/script&gt;</h1>"), "{html}");
    assert!(html.contains("value=\"&quot;&gt;&lt;x\">&lt;i&gt;</button>"), "{html}");
    let html =
        render("dev_login.html", json!({"app": "<a>", "email": "e", "org": "o", "login_id": "l"}), &branded()).unwrap();
    assert!(
        html.contains("Sign in to <strong>&lt;a&gt;</strong> as <strong>e</strong> of <strong>o</strong>?"),
        "{html}"
    );
    assert!(
        html.contains("<strong>Acme &lt;b&gt;Corp&lt;/b&gt;</strong>") || html.contains("alt=\"Acme &lt;b&gt;Corp"),
        "{html}"
    );
}

#[test]
fn the_default_look_is_fedgates() {
    let html = render("logout_done.html", json!({}), &Look::default()).unwrap();
    assert!(html.contains("<html lang=\"en\">") && html.contains("background:#1f6feb"), "{html}");
    assert!(!html.contains("class=\"brand\"") && !html.contains("button:not(.secondary)"), "{html}");
    assert!(html.contains("<h1>You are signed out</h1>\n<p>You can close this window.</p>"), "{html}");
}

#[test]
fn branding_is_checked_and_shown() {
    let b = Branding::tenant(Some("  "), Some("red;}body{x"), Some("http://cdn.test/l.png"));
    assert_eq!(b, Branding::default());
    assert_eq!(Branding::tenant(None, None, Some("javascript:alert(1)")).logo_url, None);
    assert_eq!(Branding::tenant(None, None, Some("https://u:p@cdn.test/l.png")).logo_url, None);
    let look = branded();
    let html = render("logout_done.html", json!({}), &look).unwrap();
    assert!(html.contains("button:not(.secondary){background:#0a7f3c;border-color:#0a7f3c}"), "{html}");
    assert!(
        html.contains("<img src=\"https://cdn.acme.test/logo.png\" alt=\"Acme &lt;b&gt;Corp&lt;/b&gt;\">"),
        "{html}"
    );
    let r = respond_with(HttpResponse::Ok(), "logout_done.html", json!({}), &look);
    let csp = r.headers().get(header::CONTENT_SECURITY_POLICY).unwrap().to_str().unwrap();
    assert!(csp.contains("img-src https://cdn.acme.test;") && csp.starts_with("default-src 'none'"), "{csp}");
    let r = respond(HttpResponse::Ok(), "logout_done.html", json!({}));
    assert!(r.headers().get(header::CONTENT_SECURITY_POLICY).is_none(), "the middleware's default policy applies");
}

/// Every `t("id")` of a template is in the catalogue, and every text is used by a template.
#[test]
fn the_catalogue_and_the_templates_agree() {
    let cat = Catalogue::builtin().unwrap();
    let mut used = std::collections::BTreeSet::new();
    for (name, source) in TEMPLATES {
        for part in source.split("t(\"").skip(1) {
            let id = part.split('"').next().unwrap();
            assert!(cat.get(DEFAULT_LANG, id).is_some(), "{name}: no message `{id}`");
            used.insert(id.to_string());
        }
    }
    for (lang, id, text) in cat.entries() {
        assert!(used.contains(id), "message `{id}` ({lang}) is used by no template");
        let en = cat.get(DEFAULT_LANG, id).unwrap_or_else(|| panic!("`{id}` ({lang}) has no English text"));
        let mut a = catalogue::placeholders(text);
        let mut b = catalogue::placeholders(en);
        a.sort();
        b.sort();
        assert_eq!(a, b, "`{id}` ({lang}) has other placeholders than English");
    }
}
