//! Logs and traces, set up once at start.
//!
//! - Logs: JSON lines on stdout when stdout is not a terminal (CloudWatch), readable text on a
//!   terminal; level from `RUST_LOG` (default `info`). Nothing logged carries a token, the
//!   token secret or message text: log fields are ids, counts, codes and error kinds only.
//! - Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
//!   set, spans of the [`TARGET`] target go over OTLP/HTTP (protobuf) to that collector (the
//!   ADOT sidecar on ECS, which forwards them to X-Ray), with X-Ray trace ids and the
//!   `X-Amzn-Trace-Id` propagator. Unset: no exporter, no propagator, nothing logged about it,
//!   and trace spans are disabled at their call sites, so the hot paths pay one atomic load.
//!   With traces exported, a JSON log line inside a traced span carries its X-Ray `trace_id`.

use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_aws::trace::{MissingSampledBehavior, XrayIdGenerator, XrayPropagator};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, FilterExt, Targets, filter_fn};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// The `tracing` target of spans meant for X-Ray only. The log layer never sees them, and
/// with no exporter nothing enables them, so creating one costs nothing.
pub const TARGET: &str = "xray";

/// The header the ALB adds (and X-Ray uses) to carry the trace id.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// The propagator, set only when traces are exported.
static PROPAGATOR: OnceLock<XrayPropagator> = OnceLock::new();

/// Keeps the trace exporter alive; dropping it flushes the spans still buffered.
#[must_use = "dropping the guard stops trace export"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Guard {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "Trace export did not flush");
        }
    }
}

/// The OTLP endpoint from the environment, if one is set (an empty value counts as unset).
pub fn otlp_endpoint() -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .filter_map(|var| std::env::var(var).ok())
    .find(|v| !v.trim().is_empty())
}

/// Installs the global subscriber: JSON (or terminal) logs, plus trace export when an OTLP
/// endpoint is configured. Call once, before starting the runtime; keep the guard until exit.
pub fn init(service: &str, color: &str) -> anyhow::Result<Guard> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn")
    });
    // Trace-only spans never reach the log lines.
    let logs_filter = filter.and(filter_fn(|meta| meta.target() != TARGET));
    let logs = if std::io::stdout().is_terminal() {
        fmt::layer().with_filter(logs_filter).boxed()
    } else {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .map_event_format(WithTraceId)
            .with_filter(logs_filter)
            .boxed()
    };

    let provider = match otlp_endpoint() {
        Some(_) => Some(tracer_provider(service, color)?),
        None => None,
    };
    let traces = provider.as_ref().map(|provider| {
        let _ = PROPAGATOR.set(
            XrayPropagator::new().with_missing_sampled_behavior(MissingSampledBehavior::Sampled),
        );
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service.to_string()))
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::TRACE))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    if let Some(endpoint) = otlp_endpoint() {
        tracing::info!(endpoint = %endpoint, "Exporting traces over OTLP/HTTP");
    }
    Ok(Guard { provider })
}

/// The JSON log line of an event inside a traced span (a request, a connection, a send) carries
/// that trace's X-Ray id, `trace_id: "1-5759e988-bd862e3fe1be46a994272793"`: from a trace in the
/// X-Ray console to its lines in CloudWatch Logs (`filter trace_id = "1-…"`). The id is the
/// OpenTelemetry context the trace layer activates on entering a span; lines outside any traced
/// span, and every line when traces are not exported, have none.
struct WithTraceId<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(trace_id) = current_xray_trace_id() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The JSON formatter writes one object, then a newline.
        match line.trim_end().strip_suffix('}') {
            Some(object) => writeln!(writer, "{object},\"trace_id\":\"{trace_id}\"}}"),
            None => writer.write_str(&line),
        }
    }
}

/// The active span's trace id in X-Ray's form (`1-{8 hex digits}-{24 hex digits}`).
fn current_xray_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    PROPAGATOR.get()?;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let context = span.span_context();
    if !context.is_valid() {
        return None;
    }
    let hex = context.trace_id().to_string();
    Some(format!("1-{}-{}", &hex[..8], &hex[8..]))
}

/// Batch export (the SDK reads `OTEL_BSP_*`) over OTLP/HTTP protobuf, X-Ray trace ids.
fn tracer_provider(service: &str, color: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| {
            anyhow::anyhow!("building the OTLP span exporter (OTEL_EXPORTER_OTLP_ENDPOINT): {e}")
        })?;
    // The SDK's default detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_string());
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "deployment.color",
            color.to_string(),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_id_generator(XrayIdGenerator::default())
        .with_resource(resource)
        .build())
}

/// Makes `span` continue the trace named by the request's `X-Amzn-Trace-Id` (the ALB's, which
/// has no `Sampled` flag and is treated as sampled). No-op when traces are not exported.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let Some(propagator) = PROPAGATOR.get() else {
        return;
    };
    if span.is_disabled() || !headers.contains_key(TRACE_HEADER) {
        return;
    }
    let cx = propagator.extract(&opentelemetry_http::HeaderExtractor(headers));
    // Fails only when the span is already started or disabled: then it keeps its own root.
    let _ = span.set_parent(cx);
}
