//! The demo must never trust a published key, and never share its data with production:
//! `serve --demo` generates the demo SAML IdP's key pair at first start (kept in the data
//! directory, the private key sealed), keeps its data in ./fedgate-demo-data, and `serve` without
//! dev mode refuses a database that holds the demo.
use crate::common::*;
use crate::saml_corpus::saml_idp::{post_form_fields, FixtureIdp, ResponseParams};
use fedgate::clock::Clock;
use serde_json::Value;

async fn demo_saml(app: &TestApp) -> Value {
    let (s, conns) = app.get("/tenants/acme/connections").await;
    assert_eq!(s, 200, "{conns}");
    conns["data"].as_array().unwrap().iter().find(|c| c["type"] == "saml").unwrap().clone()
}

/// The attack: the fixture IdP's private key is in the repository (idp-fixtures/saml/keys), so
/// anyone could sign "alice@demo.example" for the demo tenant. The demo IdP now signs with its
/// own generated key, and a response signed with the fixture key is refused.
async fn demo_idp_key_is_generated_not_published(app: &TestApp) {
    fedgate::demo::setup(&app.state).await.expect("demo setup");
    let md = app.http.get(app.url("/demo/saml-idp/metadata")).send().await.unwrap().text().await.unwrap();
    let entity = app.url("/demo/saml-idp/metadata");
    let published = FixtureIdp::test(&entity).unwrap();
    assert!(!md.contains(&published.cert_b64()), "the demo IdP must not publish the fixture certificate");
    // Kept sealed in the data directory; a restart keeps the same key.
    let stored = std::fs::read_to_string(app.state.config.data_dir.join(fedgate::demo::DEMO_IDP_KEY_FILE)).unwrap();
    assert!(!stored.contains("PRIVATE KEY"), "the private key is sealed with the master key");
    assert!(stored.contains("BEGIN CERTIFICATE"));
    fedgate::demo::setup(&app.state).await.expect("demo setup again");
    let md2 = app.http.get(app.url("/demo/saml-idp/metadata")).send().await.unwrap().text().await.unwrap();
    assert_eq!(md, md2, "the same key after a restart");
    let conn = demo_saml(app).await;
    assert_eq!(conn["idp_certificates"].as_array().unwrap().len(), 1);
    assert!(!conn["idp_certificates"][0]["pem"].as_str().unwrap().contains(&published.cert_b64()[..64]));

    // A SAML login to the demo connection, answered with the published fixture key.
    let b = browser();
    let r = b.get(app.url("/demo/start?via=saml")).send().await.unwrap();
    let r = b.get(location(&r)).send().await.unwrap();
    let sso = location(&r);
    assert!(sso.starts_with(&app.url("/demo/saml-idp/sso?")), "{sso}");
    let login = query_of(&sso)["RelayState"].clone();
    let (sp, acs) = (conn["sp_entity_id"].as_str().unwrap(), conn["acs_url"].as_str().unwrap());
    let forged =
        ResponseParams::new(&entity, sp, acs, Some(&login), "demo-alice-0001", "alice@demo.example", app.clock.now());
    let body = post_form_fields(&published.response(&forged).unwrap());
    let r = b.post(acs).form(&[("SAMLResponse", body.as_str()), ("RelayState", login.as_str())]).send().await.unwrap();
    let status = r.status().as_u16();
    let page = r.text().await.unwrap();
    assert!(status >= 400, "a response signed with the published key must be refused: {status} {page}");
    assert!(page.contains("saml_signature_invalid"), "{page}");
    // The demo IdP's own button still signs in.
    let r = b.get(&sso).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// `serve` without dev mode refuses a database that holds the demo (before the fix the demo
/// lived in the default data directory, which `make serve` also uses).
async fn serve_refuses_the_demo_without_dev_mode(app: &TestApp) {
    use fedgate::app::AppState;
    use fedgate::clock::SystemRng;
    use std::sync::Arc;
    let master = std::fs::read_to_string(app.state.config.data_dir.join("master.key")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = |dev_mode: bool| fedgate::config::Config {
        database_url: app.state.config.database_url.clone(),
        master_key: Some(fedgate::config::SecretString(master.trim().to_string())),
        data_dir: dir.path().to_path_buf(),
        issuer: app.base.clone(),
        dev_mode,
        background_tasks: false,
        ..fedgate::config::Config::default()
    };
    let production = AppState::new(config(false), Arc::new(app.clock.clone()), Arc::new(SystemRng)).await.unwrap();
    fedgate::demo::refuse_without_dev_mode(&production).await.expect("no demo yet: serve starts");
    fedgate::demo::setup(&app.state).await.expect("demo setup");
    let e = fedgate::demo::refuse_without_dev_mode(&production).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, fedgate::demo::DemoError::DemoInProduction), "{msg}");
    assert!(msg.contains("fedgate-demo-data") && msg.contains("FEDGATE_DEV_MODE"), "{msg}");
    let demo = AppState::new(config(true), Arc::new(app.clock.clone()), Arc::new(SystemRng)).await.unwrap();
    fedgate::demo::refuse_without_dev_mode(&demo).await.expect("dev mode: the demo may run");
}

crate::both!(demo_idp_key_is_generated_not_published, serve_refuses_the_demo_without_dev_mode);

/// The real binary: `serve --demo` puts its data in ./fedgate-demo-data (never ./fedgate-data),
/// and `serve` on that directory without dev mode exits with the explanation.
#[test]
fn demo_binary_keeps_its_own_data_dir() {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};
    let cwd = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_fedgate");
    let command = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("FEDGATE") {
                c.env_remove(k);
            }
        }
        c.current_dir(cwd.path())
            .env("FEDGATE_LOG", "warn")
            .env("FEDGATE_LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    /// Waits (bounded) for the child to exit, killing it when it does not.
    fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    let mut demo = command(&["serve", "--demo"]).spawn().unwrap();
    let stderr = demo.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("fedgate demo is ready") {
                let _ = tx.send(());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(120)).is_ok();
    let _ = demo.kill();
    let _ = demo.wait();
    assert!(ready, "serve --demo did not get ready");
    assert!(
        cwd.path().join("fedgate-demo-data").join(fedgate::demo::DEMO_IDP_KEY_FILE).exists(),
        "serve --demo writes its data to ./fedgate-demo-data"
    );
    assert!(!cwd.path().join("fedgate-data").exists(), "and never to the default ./fedgate-data");

    let mut serve = command(&["serve"]);
    serve.env("FEDGATE_DATA_DIR", "fedgate-demo-data");
    let mut child = serve.spawn().unwrap();
    let mut err = String::new();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut err);
        err
    });
    let status = wait_bounded(&mut child, Duration::from_secs(120));
    let err = reader.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("serve must exit, not listen: {err}"));
    assert!(!status.success(), "{err}");
    assert!(err.contains("holds the demo"), "{err}");
}
