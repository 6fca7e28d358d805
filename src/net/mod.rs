//! Outbound HTTP for webhooks and back-channel logout: no redirects, no proxy, timeouts, a
//! bounded response, and (unless `allow_private_network`) no private, loopback, link-local or
//! other non-public addresses — checked on literal IPs and on every DNS answer, so a hostname
//! cannot smuggle a request to an internal service.
//!
//! Proxies are always off (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` are ignored): a proxy resolves
//! the name itself, past the address checks, and would carry a request to any internal host.
//!
//! IPv6 forms that carry an IPv4 address are judged by that address or refused: IPv4-mapped
//! (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`, RFC 6052) by the embedded address; Teredo
//! (`2001::/32`) by its server and client addresses; the deprecated or local-only forms —
//! IPv4-compatible (`::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), 6to4 (`2002::/16`, RFC
//! 7526), local-use NAT64 (`64:ff9b:1::/48`, RFC 8215) and site-local (`fec0::/10`) — always.
/// The client for calls to identity providers (discovery, JWKS, token endpoint, metadata).
pub mod upstream;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Whether an address is publicly routable.
pub fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..=127).contains(&o[1])) // CGNAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..=19).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// The IPv4 address in the last 32 bits of an IPv6 address.
fn low_v4(v6: &Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn is_public_v6(v6: &Ipv6Addr) -> bool {
    let s = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_public(&IpAddr::V4(v4));
    }
    // NAT64 well-known prefix (RFC 6052): a public IPv4 host behind DNS64 is fine, a private one
    // is not.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public(&IpAddr::V4(low_v4(v6)));
    }
    // Teredo (RFC 4380): server address in bits 32..64, client address (inverted) in the last 32.
    if s[0] == 0x2001 && s[1] == 0 {
        let server = Ipv4Addr::from((u32::from(s[2]) << 16) | u32::from(s[3]));
        let client = Ipv4Addr::from(!u32::from(low_v4(v6)));
        return is_public(&IpAddr::V4(server)) && is_public(&IpAddr::V4(client));
    }
    !(v6.is_loopback()
        || v6.is_unspecified()
        || v6.is_multicast()
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d (deprecated, RFC 4291)
        || s[..6] == [0, 0, 0, 0, 0xffff, 0] // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48 (RFC 8215)
        || s[0] == 0x2002 // 6to4 (deprecated, RFC 7526): relays reach any embedded IPv4
        || s[..4] == [0x100, 0, 0, 0] // discard-only 100::/64 (RFC 6666)
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated, RFC 3879)
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking 2001:2::/48
        || (s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0020) // ORCHIDv2 2001:20::/28
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] & 0xfff0) == 0x3ff0) // documentation 3fff::/20 (RFC 9637)
}

/// A DNS resolver that drops every non-public address (and fails when none is left).
pub struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| is_public(&a.ip())).collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves only to private or reserved addresses").into();
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("URL not allowed: {0}")]
    NotAllowed(String),
    #[error("request failed: {0}")]
    Request(String),
}

/// The outbound client.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow_private: bool,
}

impl Outbound {
    pub fn new(allow_private: bool) -> Result<Self, NetError> {
        // No proxy, ever: a proxy resolves names itself, past the address checks.
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .user_agent("fedgate");
        if !allow_private {
            b = b.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self { client: b.build().map_err(|e| NetError::Request(e.to_string()))?, allow_private })
    }

    /// Checks a URL before any request: http(s) only, and no literal non-public address.
    pub fn check_url(&self, url: &str) -> Result<url::Url, NetError> {
        let u = url::Url::parse(url).map_err(|_| NetError::NotAllowed("not a URL".into()))?;
        if !matches!(u.scheme(), "https" | "http") {
            return Err(NetError::NotAllowed("only http and https".into()));
        }
        if !self.allow_private {
            match u.host() {
                Some(url::Host::Ipv4(ip)) if !is_public(&IpAddr::V4(ip)) => {
                    return Err(NetError::NotAllowed("private address".into()))
                }
                Some(url::Host::Ipv6(ip)) if !is_public(&IpAddr::V6(ip)) => {
                    return Err(NetError::NotAllowed("private address".into()))
                }
                Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
                    return Err(NetError::NotAllowed("private address".into()))
                }
                None => return Err(NetError::NotAllowed("no host".into())),
                _ => {}
            }
        }
        Ok(u)
    }

    /// GETs a URL; returns the status code and the body, failing when it is larger than `max`
    /// bytes (a client's `jwks_uri`).
    pub async fn get(&self, url: &str, accept: &str, max: usize) -> Result<(u16, Vec<u8>), NetError> {
        let u = self.check_url(url)?;
        let mut resp =
            self.client.get(u).header("accept", accept).send().await.map_err(|e| NetError::Request(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| NetError::Request(e.to_string()))? {
            buf.extend_from_slice(&chunk);
            if buf.len() > max {
                return Err(NetError::Request(format!("response larger than {max} bytes")));
            }
        }
        Ok((status, buf))
    }

    /// POSTs a body; returns the status code and at most 4 KiB of the response body.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, String)],
        body: String,
    ) -> Result<(u16, String), NetError> {
        let u = self.check_url(url)?;
        let mut r = self.client.post(u).header("content-type", content_type).body(body);
        for (k, v) in headers {
            r = r.header(*k, v);
        }
        let mut resp = r.send().await.map_err(|e| NetError::Request(e.to_string()))?;
        let status = resp.status().as_u16();
        let mut buf = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.extend_from_slice(&chunk);
            if buf.len() > 4096 {
                buf.truncate(4096);
                break;
            }
        }
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}

/// An IP network (address and prefix length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host).
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Self { addr: addr.to_canonical(), prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, prefix: u8, width: u8) -> u128 {
            if prefix == 0 {
                0
            } else {
                bits >> (width - prefix)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), self.prefix, 32) == masked(u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(&ip(a)), "{a}");
        }
        assert!(is_public(&ip("93.184.216.34")));
        let o = Outbound::new(false).unwrap();
        assert!(o.check_url("http://127.0.0.1:8080/x").is_err());
        assert!(o.check_url("http://[::1]/x").is_err());
        assert!(o.check_url("http://localhost/x").is_err());
        assert!(o.check_url("file:///etc/passwd").is_err());
        assert!(o.check_url("https://example.com/hook").is_ok());
    }

    #[test]
    fn nat64_is_judged_by_its_embedded_ipv4() {
        for a in
            ["64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1", "64:ff9b::192.168.1.1", "64:ff9b::0.0.0.0"]
        {
            assert!(!is_public(&ip(a)), "{a}");
        }
        assert!(is_public(&ip("64:ff9b::93.184.216.34")), "a public IPv4 host behind DNS64");
        // Local-use NAT64 (RFC 8215): the operator's own translator, never public.
        assert!(!is_public(&ip("64:ff9b:1::5db8:d822")));
        assert!(!is_public(&ip("64:ff9b:1:ffff::7f00:1")));
    }

    #[test]
    fn six_to_four_is_refused() {
        // 6to4 relays deliver to the embedded IPv4 (bits 16..48): 2002:7f00:0001:: is 127.0.0.1.
        for a in ["2002:7f00:1::", "2002:a00:1::1", "2002:c0a8:101::1", "2002:a9fe:a9fe::", "2002:5db8:d822::1"] {
            assert!(!is_public(&ip(a)), "{a}");
        }
    }

    #[test]
    fn ipv4_compatible_and_translated_are_refused() {
        for a in [
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::93.184.216.34",
            "::ffff:0:127.0.0.1",
            "::ffff:0:93.184.216.34",
        ] {
            assert!(!is_public(&ip(a)), "{a}");
        }
        // IPv4-mapped follows the embedded address.
        assert!(!is_public(&ip("::ffff:10.0.0.1")));
        assert!(is_public(&ip("::ffff:93.184.216.34")));
    }

    #[test]
    fn site_local_and_other_reserved_v6_are_refused() {
        for a in [
            "fec0::1",
            "feff::1",
            "fed0:1::2",
            "100::1",
            "2001:2::1",
            "2001:20::1",
            "2001:db8::1",
            "3fff::1",
            "ff02::1",
        ] {
            assert!(!is_public(&ip(a)), "{a}");
        }
        for a in ["2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001::1"] {
            assert!(is_public(&ip(a)), "{a}");
        }
    }

    #[test]
    fn teredo_is_refused_when_it_embeds_a_private_address() {
        // Server 65.54.227.120 (public), client 93.184.216.34 (public): 0x5db8d822 inverted.
        assert!(is_public(&ip("2001:0:4136:e378:8000:63bf:a247:27dd")));
        // Client 127.0.0.1: inverted 0x80fffffe.
        assert!(!is_public(&ip("2001:0:4136:e378:8000:63bf:80ff:fffe")));
        // Client 10.0.0.1: inverted 0xf5fffffe.
        assert!(!is_public(&ip("2001:0:4136:e378::f5ff:fffe")));
        // Server 192.168.1.1.
        assert!(!is_public(&ip("2001:0:c0a8:101::a247:27dd")));
    }

    #[test]
    fn literal_embedded_addresses_are_refused_in_urls() {
        let o = Outbound::new(false).unwrap();
        for u in [
            "http://[64:ff9b::7f00:1]/hook",
            "http://[2002:7f00:1::]/hook",
            "http://[::127.0.0.1]/hook",
            "http://[fec0::1]/hook",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
        ] {
            assert!(matches!(o.check_url(u), Err(NetError::NotAllowed(_))), "{u}");
        }
    }

    /// The child half of [`proxy_environment_is_ignored`]: runs only when that test starts it.
    #[tokio::test]
    #[ignore = "started by proxy_environment_is_ignored in its own process"]
    async fn proxy_child() {
        if std::env::var("FEDGATE_PROXY_CHILD").is_err() {
            return;
        }
        let o = Outbound::new(false).unwrap();
        let _ = o.post("http://internal-only.invalid/hook", "application/json", &[], "{}".into()).await;
        let u = crate::net::upstream::UpstreamHttp::new(false).unwrap();
        let req = openidconnect::http::Request::builder()
            .uri("http://internal-only.invalid/.well-known/openid-configuration")
            .body(Vec::new())
            .unwrap();
        let _ = u.execute(req).await;
    }

    /// With `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` pointing at a listener, a guarded client must
    /// never send it a request: a proxy would resolve the name itself, past the address checks.
    /// The environment is set on a child test process only (it is process-wide).
    #[test]
    fn proxy_environment_is_ignored() {
        use std::io::Read;
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        proxy.set_nonblocking(true).unwrap();
        let url = format!("http://{}", proxy.local_addr().unwrap());
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["net::tests::proxy_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("FEDGATE_PROXY_CHILD", "1")
            .env("HTTP_PROXY", &url)
            .env("HTTPS_PROXY", &url)
            .env("ALL_PROXY", &url)
            .env("http_proxy", &url)
            .env("https_proxy", &url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && log.contains("1 passed"), "child: {log}");
        match proxy.accept() {
            Ok((mut s, _)) => {
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).unwrap_or(0);
                panic!("a guarded client went through the proxy: {}", String::from_utf8_lossy(&buf[..n]));
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        }
    }
}
