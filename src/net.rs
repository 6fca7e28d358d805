//! Outbound HTTP for webhooks and back-channel logout: no redirects, timeouts, a bounded
//! response, and (unless `allow_private_network`) no private, loopback, link-local or other
//! non-public addresses — checked on literal IPs and on every DNS answer, so a hostname cannot
//! smuggle a request to an internal service.
use std::net::{IpAddr, SocketAddr};
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
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(&IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
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
        let mut b = reqwest::Client::builder()
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

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn private_addresses_are_refused() {
        for ip in [
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
            let ip: IpAddr = ip.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
            assert!(!is_public(&ip), "{ip}");
        }
        assert!(is_public(&"93.184.216.34".parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))));
        let o = Outbound::new(false).ok();
        if let Some(o) = o {
            assert!(o.check_url("http://127.0.0.1:8080/x").is_err());
            assert!(o.check_url("http://[::1]/x").is_err());
            assert!(o.check_url("http://localhost/x").is_err());
            assert!(o.check_url("file:///etc/passwd").is_err());
            assert!(o.check_url("https://example.com/hook").is_ok());
        }
    }
}
