//! OpenTelemetry traces end to end: fedgate's exporter (src/telemetry.rs, the same layer `serve`
//! installs) sends to a local OTLP/HTTP collector (an actix server in this test decoding
//! `ExportTraceServiceRequest`); an upstream OIDC login through the fixture IdP must arrive as
//! request spans with login step, upstream HTTP and database children, carrying the tenant and
//! connection, and no span attribute may carry a token, code, secret or email.
//!
//! Its own test binary: the exporter is a process-wide tracing subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "it/common.rs"]
mod common;
#[path = "../idp-fixtures/oidc_idp.rs"]
mod oidc_idp;

use actix_web::{web, App, HttpResponse, HttpServer};
use common::*;
use oidc_idp::{FixtureIdp, Knobs};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// The collector: POST /v1/traces, protobuf in, the spans kept with their service.name.
async fn collector() -> (String, Received, actix_web::dev::ServerHandle) {
    let received: Received = Arc::default();
    let r = received.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(web::Data::new(r.clone())).route(
            "/v1/traces",
            web::post().to(|body: web::Bytes, r: web::Data<Received>| async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                let mut out = r.lock().unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .find(|a| a.key == "service.name")
                        .and_then(|a| a.value.as_ref())
                        .and_then(|v| match &v.value {
                            Some(AnyValue::StringValue(s)) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            out.push((service.clone(), s));
                        }
                    }
                }
                HttpResponse::Ok().content_type("application/x-protobuf").body(Vec::<u8>::new())
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), received, handle)
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).and_then(|v| match &v.value {
        Some(AnyValue::StringValue(x)) => Some(x.clone()),
        Some(AnyValue::IntValue(i)) => Some(i.to_string()),
        Some(AnyValue::BoolValue(b)) => Some(b.to_string()),
        Some(AnyValue::DoubleValue(d)) => Some(d.to_string()),
        _ => None,
    })
}

/// Every string an attribute carries (and every span name).
fn all_text(spans: &[Span]) -> Vec<String> {
    let mut out = Vec::new();
    for s in spans {
        out.push(s.name.clone());
        for a in &s.attributes {
            out.push(format!("{}={:?}", a.key, a.value));
        }
        for e in &s.events {
            out.push(e.name.clone());
            for a in &e.attributes {
                out.push(format!("{}={:?}", a.key, a.value));
            }
        }
    }
    out
}

/// Flushes the exporter and waits (bounded) until `pred` holds for what the collector has.
async fn wait_for(
    telemetry: &fedgate::telemetry::Telemetry,
    received: &Received,
    pred: impl Fn(&[Span]) -> bool,
) -> Vec<Span> {
    for _ in 0..100 {
        let t = telemetry.clone();
        tokio::task::spawn_blocking(move || t.force_flush()).await.unwrap();
        let spans: Vec<Span> = received.lock().unwrap().iter().map(|(_, s)| s.clone()).collect();
        if pred(&spans) {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let names: Vec<String> = received.lock().unwrap().iter().map(|(_, s)| s.name.clone()).collect();
    panic!("the collector did not receive the expected spans within 5 s; it has {names:?}");
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "exactly one {name} span: {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    found[0]
}

fn parent<'a>(spans: &'a [Span], child: &Span) -> &'a Span {
    spans
        .iter()
        .find(|s| s.span_id == child.parent_span_id && s.trace_id == child.trace_id)
        .unwrap_or_else(|| panic!("the parent of {} is not among the spans", child.name))
}

/// Whether `s` descends from `ancestor` (same trace, parent links).
fn descends(spans: &[Span], s: &Span, ancestor: &Span) -> bool {
    let mut cur = s;
    for _ in 0..32 {
        if cur.trace_id != ancestor.trace_id {
            return false;
        }
        if cur.parent_span_id == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|p| p.span_id == cur.parent_span_id && p.trace_id == cur.trace_id) {
            Some(p) => cur = p,
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_spans_reach_an_otlp_collector() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (endpoint, received, handle) = collector().await;
    let config = fedgate::config::TelemetryConfig {
        otlp_endpoint: Some(endpoint),
        service_name: "fedgate-test".into(),
        sample_ratio: 1.0,
    };
    let (layer, telemetry) =
        fedgate::telemetry::layer(&config, tokio::runtime::Handle::current()).unwrap().expect("an endpoint is set");
    tracing_subscriber::registry().with(layer).init();

    for backend in [Backend::Sqlite, Backend::Postgres] {
        received.lock().unwrap().clear();
        login_on(backend, &telemetry, &received).await;
    }
    assert!(received.lock().unwrap().iter().all(|(service, _)| service == "fedgate-test"));
    telemetry.shutdown();
    handle.stop(false).await;
}

async fn login_on(backend: Backend, telemetry: &fedgate::telemetry::Telemetry, received: &Received) {
    let app = TestApp::spawn_with(backend, |c| c.allow_private_network = true).await;
    let idp = FixtureIdp::start(Knobs { email: "bob@acme.test".into(), ..Knobs::default() }, 1).await.unwrap();
    let (s, t) = app.post("/tenants", json!({"name": "Acme Inc", "slug": "acme", "domains": ["acme.test"]})).await;
    assert_eq!(s, 201, "{t}");
    let (s, conn) = app.post("/tenants/acme/connections", idp.connection_body("Acme IdP")).await;
    assert_eq!(s, 201, "{conn}");
    let (tenant_id, conn_id) = (t["id"].as_str().unwrap().to_string(), conn["id"].as_str().unwrap().to_string());
    let (cid, secret) = app.client("confidential", "ES256").await;
    let secret = secret.unwrap();

    // authorize -> fixture IdP -> callback -> the app, then the token request.
    let b = browser();
    let r = b.get(authorize_url(&app, &cid, &[("login_hint", "bob@acme.test")])).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let r = b.get(location(&r)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 302, "fixture authorize");
    let callback = location(&r);
    let upstream_code = query_of(&callback)["code"].clone();
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap_or_default());
    let code = query_of(&location(&r))["code"].clone();
    let (s, tok) = exchange(&app, &cid, Some(&secret), &code).await;
    assert_eq!(s, 200, "{tok}");

    let spans = wait_for(telemetry, received, |spans| {
        ["login.authorize", "login.upstream_begin", "login.oidc_callback", "login.complete", "login.token"]
            .iter()
            .all(|n| spans.iter().any(|s| s.name == *n))
    })
    .await;

    // The callback request: its root span, the callback step under it, the completion under the
    // callback step, the upstream token and JWKS calls and the database statements inside it.
    let callback_step = one(&spans, "login.oidc_callback");
    let root = parent(&spans, callback_step);
    assert_eq!(root.name, "GET /sso/oidc/callback");
    assert!(root.parent_span_id.is_empty(), "the request span is a root");
    assert_eq!(root.kind, opentelemetry_proto::tonic::trace::v1::span::SpanKind::Server as i32);
    assert_eq!(attr(root, "route").as_deref(), Some("/sso/oidc/callback"));
    assert_eq!(attr(root, "status").as_deref(), Some("303"));
    assert!(attr(root, "request_id").is_some_and(|r| r.len() >= 16));
    for s in [root, callback_step] {
        assert_eq!(attr(s, "tenant").as_deref(), Some(tenant_id.as_str()), "{}", s.name);
        assert_eq!(attr(s, "connection").as_deref(), Some(conn_id.as_str()), "{}", s.name);
    }
    let complete = one(&spans, "login.complete");
    assert_eq!(parent(&spans, complete).span_id, callback_step.span_id);
    assert_eq!(attr(complete, "tenant").as_deref(), Some(tenant_id.as_str()));
    assert_eq!(attr(complete, "connection").as_deref(), Some(conn_id.as_str()));
    let upstream: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("POST ") && attr(s, "url.path").as_deref() == Some("/token"))
        .collect();
    assert_eq!(upstream.len(), 1, "one upstream token call");
    assert!(descends(&spans, upstream[0], callback_step), "the upstream token call is inside the callback step");
    assert_eq!(attr(upstream[0], "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attr(upstream[0], "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(upstream[0].kind, opentelemetry_proto::tonic::trace::v1::span::SpanKind::Client as i32);
    let db_in_callback: Vec<&Span> =
        spans.iter().filter(|s| s.name.starts_with("sea_orm.") && descends(&spans, s, root)).collect();
    assert!(!db_in_callback.is_empty(), "database statements of the callback are spans");
    let system = if backend == Backend::Sqlite { "sqlite" } else { "postgresql" };
    assert!(db_in_callback.iter().all(|s| attr(s, "db.system").as_deref() == Some(system)));
    assert!(db_in_callback.iter().any(|s| s.parent_span_id == complete.span_id), "the completion's statements");

    // The other steps: each under its own request's root span, with the tenant and connection
    // where the step knows them.
    let begin = one(&spans, "login.upstream_begin");
    let authorize = one(&spans, "login.authorize");
    assert_eq!(parent(&spans, begin).span_id, authorize.span_id, "routing happens inside authorize");
    assert_eq!(parent(&spans, authorize).name, "GET /oauth2/authorize");
    assert_eq!(attr(begin, "tenant").as_deref(), Some(tenant_id.as_str()));
    assert_eq!(attr(begin, "connection").as_deref(), Some(conn_id.as_str()));
    let token = one(&spans, "login.token");
    assert_eq!(parent(&spans, token).name, "POST /oauth2/token");
    assert_eq!(attr(token, "tenant").as_deref(), Some(tenant_id.as_str()));
    assert_eq!(attr(token, "grant_type").as_deref(), Some("authorization_code"));
    assert_ne!(token.trace_id, root.trace_id, "each request is its own trace");

    // Nothing secret or personal in any span.
    let text = all_text(&spans);
    let mut secrets: HashMap<&str, String> = HashMap::new();
    secrets.insert("client secret", secret.clone());
    secrets.insert("upstream client secret", "fixture-secret".into());
    secrets.insert("upstream code", upstream_code);
    secrets.insert("authorization code", code);
    secrets.insert("email", "bob@acme.test".into());
    for key in ["access_token", "id_token", "refresh_token"] {
        if let Some(v) = tok[key].as_str() {
            secrets.insert(key, v.to_string());
        }
    }
    for (what, value) in &secrets {
        assert!(value.len() >= 8, "{what}");
        if let Some(hit) = text.iter().find(|t| t.contains(value.as_str())) {
            panic!("a span attribute carries the {what}: {hit}");
        }
    }
    idp.stop().await;
    app.stop().await;
}
