//! Logs and traces: the `tracing` subscriber every mode installs.
//!
//! - Logs go to stderr, as text (coloured only on a terminal) or, with `LOG_FORMAT=json`, one JSON object
//!   per line with the fields of every open span (request, order and
//!   workflow ids) flattened in.
//! - Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g.
//!   `http://collector:4318`), spans — a request's, an activity's — are also
//!   exported over OTLP/HTTP (protobuf) in batches, as service
//!   `flightctl-<mode>`. The exporter reads the standard `OTEL_*` variables
//!   (headers, timeout, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). Unset: no
//!   exporter, nothing is sent anywhere.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the trace exporter alive; `shutdown` flushes what is buffered.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flightctl: flushing traces failed: {e}");
        }
    }
}

/// Install the subscriber for `mode` (`serve`, `worker`, ...). Fails on a
/// `LOG_FORMAT` other than `text` or `json`, or an unusable OTLP setting.
pub fn init(mode: &str) -> anyhow::Result<Telemetry> {
    // Colours only on a terminal: a file, a pipe or a container's log
    // collector gets plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logs = match std::env::var("LOG_FORMAT").as_deref() {
        Err(_) | Ok("" | "text") => fmt.boxed(),
        Ok("json") => fmt.json().flatten_event(true).boxed(),
        Ok(other) => anyhow::bail!("LOG_FORMAT must be `text` or `json`, not {other:?}"),
    };
    let traces = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if endpoint.trim().starts_with("https://") => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_ENDPOINT: this build exports over plain http only; \
             put a collector (or a TLS-terminating proxy) on http"
        ),
        Ok(endpoint) if !endpoint.trim().is_empty() => Some(tracer_provider(mode)?),
        _ => None,
    };
    // Spans are exported as `RUST_LOG` selects them, like log lines.
    let otel = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("flightctl"))
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter()))
        .with(otel)
        .init();
    Ok(Telemetry { traces })
}

/// `RUST_LOG`, or our default: info, the Temporal SDK's chatter at warn.
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,temporalio_sdk_core=warn,temporalio_client=warn".into())
}

fn tracer_provider(mode: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces: {e}"))?;
    let resource = Resource::builder()
        .with_service_name(format!("flightctl-{mode}"))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The span of one activity: its name, the order and the workflow it works
/// for, and the API request that led to it when known, name every line it
/// logs, as they do in `serve`'s logs. The name is the method's
/// (`hold_seats`), without the type the SDK registers it under.
pub fn activity_span(
    ctx: &temporalio_sdk::activities::ActivityContext,
    order_id: crate::domain::OrderId,
    request_id: Option<&str>,
) -> tracing::Span {
    let info = ctx.info();
    let activity = info.activity_type.rsplit("::").next().unwrap_or_default();
    let span = tracing::info_span!(
        "activity",
        activity,
        order_id = %order_id,
        workflow_id = info.workflow_id.as_deref().unwrap_or_default(),
        request_id = tracing::field::Empty,
    );
    if let Some(id) = request_id {
        span.record("request_id", id);
    }
    span
}
