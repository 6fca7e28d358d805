//! The HTTP client for calls to identity providers: no redirects, short timeouts, a response
//! size limit, and (unless `allow_private_network`) no private, loopback or link-local
//! addresses — checked on literal IP hosts and on every address DNS returns.
use openidconnect::{HttpRequest, HttpResponse};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Largest response body accepted from an identity provider.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The destination is a private or loopback address and private networks are not allowed.
    #[error("refused to call {0}: private, loopback and link-local addresses are not allowed (allow_private_network)")]
    Blocked(String),
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("could not reach {0}")]
    Connect(String),
    #[error("the response from {0} is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge(String),
    #[error("only http and https URLs can be called: {0}")]
    BadUrl(String),
    #[error("HTTP call to {0} failed: {1}")]
    Other(String, String),
}

impl HttpError {
    /// A short name of the failure (span attributes).
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Blocked(_) => "blocked",
            HttpError::Timeout(_) => "timeout",
            HttpError::Connect(_) => "connect",
            HttpError::TooLarge(_) => "too_large",
            HttpError::BadUrl(_) => "bad_url",
            HttpError::Other(..) => "other",
        }
    }
}

/// Whether an address is private, loopback, link-local, unspecified or otherwise not public
/// (one definition for every outbound call: see `crate::net`).
pub fn is_private(ip: IpAddr) -> bool {
    !crate::net::is_public(&ip)
}

use crate::net::GuardedResolver;

/// The guarded client. Cheap to clone.
#[derive(Clone)]
pub struct UpstreamHttp {
    client: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for UpstreamHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UpstreamHttp(allow_private={})", self.allow_private)
    }
}

impl UpstreamHttp {
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        // No proxy: a proxy would resolve names itself, past the address checks below.
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("fedgate/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            b = b.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self { client: b.build()?, allow_private })
    }

    /// Sends one request and reads at most [`MAX_RESPONSE_BYTES`] of the answer, in an
    /// `upstream.http` span (method, host and path: never the query, headers or body, which
    /// carry codes and client secrets).
    pub async fn execute(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        use tracing::Instrument;
        let uri = req.uri();
        let span = tracing::info_span!(
            "upstream.http",
            otel.kind = "client",
            otel.name = %format_args!("{} {}", req.method(), uri.host().unwrap_or("-")),
            http.request.method = %req.method(),
            server.address = uri.host().unwrap_or("-"),
            url.path = uri.path(),
            http.response.status_code = tracing::field::Empty,
            "error.type" = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let r = self.send(req).instrument(span.clone()).await;
        match &r {
            Ok(resp) => {
                span.record("http.response.status_code", resp.status().as_u16());
            }
            Err(e) => {
                span.record("error.type", e.kind());
                span.record("otel.status_code", "ERROR");
            }
        }
        r
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let url = url::Url::parse(&req.uri().to_string()).map_err(|_| HttpError::BadUrl(req.uri().to_string()))?;
        let host = url.host_str().unwrap_or_default().to_string();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::BadUrl(url.to_string()));
        }
        if !self.allow_private {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = literal.parse::<IpAddr>() {
                if is_private(ip) {
                    return Err(HttpError::Blocked(host));
                }
            }
            if literal.eq_ignore_ascii_case("localhost") {
                return Err(HttpError::Blocked(host));
            }
        }
        let (parts, body) = req.into_parts();
        let mut rb = self.client.request(parts.method, url.clone()).body(body);
        for (k, v) in parts.headers.iter() {
            rb = rb.header(k, v);
        }
        let mut resp = rb.send().await.map_err(|e| classify(&host, e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if resp.content_length().is_some_and(|n| n as usize > MAX_RESPONSE_BYTES) {
            return Err(HttpError::TooLarge(host));
        }
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&host, e))? {
            if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge(host));
            }
            buf.extend_from_slice(&chunk);
        }
        let mut out = openidconnect::http::Response::builder().status(status.as_u16());
        for (k, v) in headers.iter() {
            out = out.header(k.as_str(), v.as_bytes());
        }
        out.body(buf).map_err(|e| HttpError::Other(host, e.to_string()))
    }
}

fn classify(host: &str, e: reqwest::Error) -> HttpError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(HttpError::Blocked(h)) = s.downcast_ref::<HttpError>() {
            return HttpError::Blocked(h.clone());
        }
        src = s.source();
    }
    if e.is_timeout() {
        HttpError::Timeout(host.to_string())
    } else if e.is_connect() {
        HttpError::Connect(host.to_string())
    } else {
        HttpError::Other(host.to_string(), e.to_string())
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for UpstreamHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;
    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn private_ranges() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.4",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "100.64.1.1",
        ] {
            assert!(is_private(a.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))), "{a}");
        }
        for a in ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"] {
            assert!(!is_private(a.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))), "{a}");
        }
    }
}
