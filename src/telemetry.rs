//! OpenTelemetry traces over OTLP/HTTP (protobuf), off unless `[telemetry] otlp_endpoint` is
//! set. The `tracing` spans fedgate already has become OpenTelemetry spans
//! (`tracing-opentelemetry`): the request's root span, one span per login step
//! (`login.authorize`, `login.upstream_begin`, `login.oidc_callback`, `login.saml_acs`,
//! `login.complete`, `login.token`) with the tenant and connection, the upstream HTTP calls
//! (`upstream.http`), and one span per SQL statement (sea-orm's `tracing-spans`: the operation
//! and the database system, never the statement's values).
//!
//! Spans carry ids and route patterns only: no tokens, secrets, codes, emails or raw URLs with
//! query strings (a test asserts it on what a collector receives).
//!
//! Export runs on the SDK's batch thread; the HTTP call itself runs on fedgate's tokio runtime
//! through the same `reqwest` fedgate uses elsewhere (see [`RuntimeClient`]). [`Telemetry`] is
//! kept for the process's life and flushed on shutdown.
use crate::config::TelemetryConfig;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use std::time::Duration;
use tracing_subscriber::registry::LookupSpan;

/// The spans the exporter sees (a per-layer filter: the log output keeps its own filter).
pub const DEFAULT_FILTER: &str = "info,sea_orm=info,sqlx=warn,hyper=warn,reqwest=warn,h2=warn";

/// Seconds an export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.otlp_endpoint: {0}")]
    Endpoint(String),
    #[error("OTLP exporter: {0}")]
    Exporter(String),
}

/// The tracer provider: keep it for the life of the process, call [`Telemetry::shutdown`] at
/// the end (it exports what is still queued).
#[derive(Debug, Clone)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports every finished span now (blocks until the collector answered or the export
    /// timed out). Call it off the async workers (`spawn_blocking`).
    pub fn force_flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "flushing traces failed");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "stopping the trace exporter failed");
        }
    }
}

/// The URL spans are posted to: `{endpoint}/v1/traces` unless the endpoint already names it.
pub fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_string()
    } else {
        format!("{e}/v1/traces")
    }
}

/// The layer exporting spans, and its provider; `None` when no endpoint is configured. `rt`
/// runs the export calls (the process's tokio runtime).
pub fn layer<S>(
    config: &TelemetryConfig,
    rt: tokio::runtime::Handle,
) -> Result<Option<(impl tracing_subscriber::Layer<S>, Telemetry)>, TelemetryError>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(endpoint) = config.otlp_endpoint.as_deref() else { return Ok(None) };
    let provider = provider(config, endpoint, rt, Duration::from_secs(5))?;
    let tracer = provider.tracer("fedgate");
    let filter = tracing_subscriber::EnvFilter::try_from_env("FEDGATE_TRACE_FILTER")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER));
    let layer = tracing_subscriber::Layer::with_filter(
        tracing_opentelemetry::layer().with_tracer(tracer).with_location(false).with_threads(false),
        filter,
    );
    Ok(Some((layer, Telemetry { provider })))
}

/// The tracer provider alone (the tests build their subscriber with it); `delay` is how long
/// finished spans wait in the batch before they are sent.
pub fn provider(
    config: &TelemetryConfig,
    endpoint: &str,
    rt: tokio::runtime::Handle,
    delay: Duration,
) -> Result<SdkTracerProvider, TelemetryError> {
    let url = traces_url(endpoint);
    url::Url::parse(&url).map_err(|e| TelemetryError::Endpoint(e.to_string()))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(EXPORT_TIMEOUT)
        .user_agent(concat!("fedgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(RuntimeClient { client, rt })
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(delay).build())
        .build();
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batch)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio))))
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: the SDK's batch thread calls it outside any async runtime, so
/// the request is spawned on fedgate's runtime and awaited from there.
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    rt: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        let (status, headers, body) = self
            .rt
            .spawn(async move {
                let r = client.execute(request).await?;
                let status = r.status();
                let headers = r.headers().clone();
                let body = r.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            })
            .await??;
        let mut response = http::Response::builder().status(status.as_u16());
        for (k, v) in headers.iter() {
            response = response.header(k.as_str(), v.as_bytes());
        }
        Ok(response.body(body)?)
    }
}

/// Records the tenant and connection of a login on the current span and on the request's root
/// span (the login step spans and the request span declare both fields).
pub fn record_login(tenant: Option<&str>, connection: Option<&str>) {
    let current = tracing::Span::current();
    if let Some(t) = tenant {
        crate::util::record_tenant(t);
        current.record("tenant", t);
    }
    if let Some(c) = connection {
        current.record("connection", c);
        crate::util::record_on_request("connection", c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_path_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }
}
