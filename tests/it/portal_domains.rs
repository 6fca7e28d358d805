//! The setup portal's domains: claim, TXT record, "Check now" against a real DNS server
//! (Debian's dnsmasq on a high port, configured by the test), the background check, what a
//! failed check shows, and what a verified domain is trusted for.
use crate::common::{Backend, TestApp};
use crate::portal_scim::{attr_after, open_portal};
use std::process::{Child, Command, Stdio};

/// dnsmasq answering only the TXT records given, on 127.0.0.1:`port`.
struct Dnsmasq {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    fn available() -> bool {
        Command::new("dnsmasq").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success())
    }

    fn start(port: u16, records: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut conf = String::from("local=/test/\n");
        for (name, value) in records {
            conf.push_str(&format!("txt-record={name},\"{value}\"\n"));
        }
        let path = dir.path().join("dnsmasq.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("dnsmasq")
            .args(["--port", &port.to_string(), "--listen-address", "127.0.0.1", "--bind-interfaces", "--no-resolv"])
            .args(["--no-hosts", "--no-daemon", "--pid-file=", "--cache-size=0"])
            .arg(format!("--conf-file={}", path.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq starts");
        // Ready when it answers on TCP (it listens on UDP and TCP at once). A loaded machine (the
        // whole suite in parallel, a build beside it) can take seconds to start it: wait up to
        // 20 s, and say so if it never came up rather than let a lookup fail for another reason.
        let mut child = child;
        let ready = (0..1000).any(|_| {
            let exited = child.try_wait().ok().flatten();
            assert!(exited.is_none(), "dnsmasq exited at start on port {port} ({exited:?}): is the port taken?");
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if !up {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            up
        });
        assert!(ready, "dnsmasq did not start on port {port}");
        Self { child, _dir: dir }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both UDP and TCP (dnsmasq binds both, and exits if either is taken), below
/// the kernel's ephemeral range: the test restarts dnsmasq on this port, and in between an
/// outgoing TCP connection of another test could take an ephemeral port (it did, once).
fn free_port() -> u16 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos());
    let seed = std::process::id() as usize ^ nanos.unwrap_or(0) as usize;
    (0..2_000)
        .map(|i| 20_000 + ((seed.wrapping_mul(7919) + i * 104_729) % 12_000) as u16)
        .find(|&p| {
            std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        })
        .expect("a free port below the ephemeral range")
}

async fn spawn(backend: Backend, port: u16) -> TestApp {
    TestApp::spawn_with(backend, move |c| {
        c.allow_private_network = true;
        c.dns.resolver = Some(format!("127.0.0.1:{port}"));
    })
    .await
}

async fn page(app: &TestApp, b: &reqwest::Client) -> String {
    b.get(app.url("/setup/domains")).send().await.unwrap().text().await.unwrap()
}

async fn claim(app: &TestApp, b: &reqwest::Client, csrf: &str, domain: &str) -> (u16, String) {
    let r = b.post(app.url("/setup/domains")).form(&[("csrf", csrf), ("domain", domain)]).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.text().await.unwrap())
}

async fn check_now(app: &TestApp, b: &reqwest::Client, csrf: &str, claim_id: &str) -> String {
    let r = b.post(app.url(&format!("/setup/domains/{claim_id}/check"))).form(&[("csrf", csrf)]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    page(app, b).await
}

async fn domains_verified_by_dns(backend: Backend) {
    if !Dnsmasq::available() {
        eprintln!(
            "SKIPPED: dnsmasq is not installed (Debian: apt-get install dnsmasq-base; scripts/deps.sh installs it)"
        );
        return;
    }
    let port = free_port();
    let app = spawn(backend, port).await;
    app.tenant("acme", "acme-old.test", &[]).await;
    app.tenant("globex", "globex.test", &[]).await;
    let (b, csrf) = open_portal(&app, "acme", &["domains"]).await;

    // Refused: a consumer domain, another tenant's domain, a form without its token.
    let (st, html) = claim(&app, &b, &csrf, "gmail.com").await;
    assert_eq!(st, 400);
    assert!(html.contains("data-testid=\"domain-error\"") && html.contains("public mail service"), "{html}");
    let (st, html) = claim(&app, &b, &csrf, "Globex.test").await;
    assert_eq!(st, 409);
    assert!(html.contains("already belongs to another organization"), "{html}");
    let r = b.post(app.url("/setup/domains")).form(&[("domain", "acme.test")]).send().await.unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");

    // Claim: the TXT record to add.
    let (st, _) = claim(&app, &b, &csrf, "acme.test").await;
    assert_eq!(st, 303);
    let html = page(&app, &b).await;
    let id = attr_after(&html, "id=\"claim-").unwrap();
    let name = attr_after(&html, "data-testid=\"record-name\" value=\"").unwrap();
    let value = attr_after(&html, "data-testid=\"record-value\" value=\"").unwrap();
    assert_eq!(name, "_fedgate-challenge.acme.test");
    assert!(value.starts_with("fedgate-verification="), "{value}");
    assert!(html.contains("Domains added by the vendor") && html.contains("acme-old.test"));
    // Claiming again is the same claim.
    claim(&app, &b, &csrf, "ACME.test.").await;
    assert_eq!(page(&app, &b).await.matches("data-testid=\"claim\"").count(), 1);

    // Not trusted while pending: home-realm discovery does not know it.
    assert!(fedgate::tenant::by_domain(&app.state.db, "acme.test").await.unwrap().is_none());

    // No record yet.
    let dns = Dnsmasq::start(port, &[("_fedgate-challenge.other.test", "x")]);
    let html = check_now(&app, &b, &csrf, &id).await;
    assert!(html.contains("No TXT record was found at <code>_fedgate-challenge.acme.test</code>"), "{html}");
    drop(dns);

    // Two records, neither matching: the page says what DNS returned.
    let dns = Dnsmasq::start(port, &[(&name, "fedgate-verification=old"), (&name, "v=spf1 -all")]);
    let html = check_now(&app, &b, &csrf, &id).await;
    assert!(
        html.contains(
            "2 TXT records were found at <code>_fedgate-challenge.acme.test</code>, but none has the value above"
        ),
        "{html}"
    );
    assert!(
        html.contains("<code>fedgate-verification=old</code>") && html.contains("<code>v=spf1 -all</code>"),
        "{html}"
    );
    assert!(fedgate::tenant::by_domain(&app.state.db, "acme.test").await.unwrap().is_none());
    drop(dns);

    // The right record, found by the background job (the schedule is due a minute later).
    let _dns = Dnsmasq::start(port, &[(&name, "v=spf1 -all"), (&name, &value)]);
    let checker = fedgate::tenant::dns::DnsChecker::new(Some(&format!("127.0.0.1:{port}"))).unwrap();
    let now = fedgate::clock::Clock::now(&app.clock);
    let n = fedgate::tenant::domain_claims::check_due(&app.state.db, &fedgate::clock::SystemRng, &checker, now, 20)
        .await
        .unwrap();
    assert_eq!(n, 0, "not due yet");
    let n =
        fedgate::tenant::domain_claims::check_due(&app.state.db, &fedgate::clock::SystemRng, &checker, now + 61, 20)
            .await
            .unwrap();
    assert_eq!(n, 1);
    let html = page(&app, &b).await;
    assert!(html.contains("data-state=\"verified\""), "{html}");

    // Verified: a domain of the tenant (discovery, email trust), for nobody else.
    let t = fedgate::tenant::by_domain(&app.state.db, "acme.test").await.unwrap().expect("discovery finds it");
    assert_eq!(t.slug, "acme");
    let (_, view) = app.get("/tenants/acme").await;
    assert!(view["domains"].as_array().unwrap().iter().any(|d| d == "acme.test"), "{view}");
    let (b2, csrf2) = open_portal(&app, "globex", &["domains"]).await;
    let (st, _) = claim(&app, &b2, &csrf2, "acme.test").await;
    assert_eq!(st, 409, "verified by another tenant");

    // Audited, by the setup link and by the background check.
    let (_, log) = app.get("/audit-log").await;
    let text = log.to_string();
    assert!(text.contains("domain_claim.create") && text.contains("domain_claim.verify"), "{text}");
    assert!(text.contains("system:dns-check"));

    // A link without the domains intent gets no domains page.
    let (b3, _) = open_portal(&app, "acme", &["scim"]).await;
    assert_eq!(b3.get(app.url("/setup/domains")).send().await.unwrap().status(), 403);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    domains_verified_by_dns(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    domains_verified_by_dns(Backend::Postgres).await;
}
