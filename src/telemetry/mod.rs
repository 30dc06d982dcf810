//! OpenTelemetry export (OTLP/HTTP, protobuf or JSON) for every preheat process.
//!
//! A low layer beside `output`: it uses only `output` and `redact`; release,
//! warmup, gate and platform feed it. It is off, and costs nothing (no thread,
//! no buffer), unless the standard `OTEL_*` variables name an endpoint.
//!
//! API, one [`Telemetry`] per process:
//! - [`Telemetry::from_env`] reads the config, the resource (Heroku conventions)
//!   and the trace: derived from the app and `HEROKU_RELEASE_VERSION`, so every
//!   process of one release joins one trace; else `TRACEPARENT`; else random.
//! - [`Telemetry::root_span`] (the release process only) is the trace's root with
//!   the derived span id; [`Telemetry::span`] starts a span under that root,
//!   [`Telemetry::child`] under another span. A [`Span`] takes attributes
//!   ([`Span::attr`]), events ([`Span::event`]) and an error ([`Span::fail`]);
//!   [`Telemetry::end`] queues it.
//! - [`Telemetry::traceparent`] gives the W3C value for `TRACEPARENT` or a header.
//! - [`Telemetry::histogram`] / [`Telemetry::sum`] record metrics (seconds and
//!   semconv attributes, e.g. `http.request.method`, `url.path`).
//! - [`Telemetry::flush`] hands what is queued to the export thread without
//!   waiting; [`Telemetry::shutdown`] flushes and waits at most 2 s.
//!
//! A failed export prints one warning line per process; header values and URL
//! credentials never reach output.

mod config;
mod export;
mod ids;
mod resource;

use export::{Exporter, MetricKind};
pub(crate) use ids::{SpanId, TraceId};
use std::time::{SystemTime, UNIX_EPOCH};

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    F64(f64),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Str(v.clone())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u16> for Value {
    fn from(v: u16) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

pub(crate) type Attrs = Vec<(String, Value)>;

/// Builds an attribute list: `attrs(&[("url.path", "/".into())])`.
pub(crate) fn attrs(pairs: &[(&str, Value)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// The process's telemetry handle. Cheap when off: every call is a no-op.
pub(crate) struct Telemetry {
    trace: TraceId,
    /// The parent of this process's spans: the release's derived root, or `TRACEPARENT`'s span.
    root: Option<SpanId>,
    /// Whether `root` is the derived release root (then `root_span` takes its id).
    root_derived: bool,
    exporter: Option<Exporter>,
}

/// A span being recorded. When telemetry is off it holds nothing.
#[derive(Debug)]
pub(crate) struct Span {
    data: Option<Box<export::SpanData>>,
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Telemetry {
    /// Telemetry that records nothing (tests, `--help`).
    pub(crate) fn off() -> Self {
        Telemetry {
            trace: [0; 16],
            root: None,
            root_derived: false,
            exporter: None,
        }
    }

    /// Reads the process environment. Prints config warnings (once) when on.
    pub(crate) fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let Some(mut config) = config::read(lookup) else {
            return Self::off();
        };
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let resource = resource::attributes(lookup, &mut config.warnings);
        for warning in &config.warnings {
            crate::output::warning(&format!("telemetry: {warning}"));
        }
        let app = get("HEROKU_APP_ID").or_else(|| get("HEROKU_APP_NAME"));
        let (trace, root, root_derived) = match (app, get("HEROKU_RELEASE_VERSION")) {
            (Some(app), Some(version)) => {
                let (trace, root) = ids::release_ids(&app, &version);
                (trace, Some(root), true)
            }
            _ => match get("TRACEPARENT")
                .as_deref()
                .and_then(ids::parse_traceparent)
            {
                Some((trace, parent)) => (trace, Some(parent), false),
                None => (ids::random_trace(), None, false),
            },
        };
        Telemetry {
            trace,
            root,
            root_derived,
            exporter: Some(Exporter::start(config, &resource)),
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.exporter.is_some()
    }

    fn start(&self, name: &str, span_id: SpanId, parent: Option<SpanId>) -> Span {
        if !self.is_on() {
            return Span { data: None };
        }
        Span {
            data: Some(Box::new(export::SpanData {
                name: name.to_string(),
                trace: self.trace,
                span_id,
                parent,
                start: now_nanos(),
                attrs: Vec::new(),
                events: Vec::new(),
                error: None,
            })),
        }
    }

    /// The release's root span, with the span id every other process uses as
    /// parent. Without a release version it is a plain new span.
    pub(crate) fn root_span(&self, name: &str) -> Span {
        match self.root {
            Some(root) if self.root_derived => self.start(name, root, None),
            parent => self.start(name, ids::random_span(), parent),
        }
    }

    /// A span under the release's root (or a root of its own when there is none).
    pub(crate) fn span(&self, name: &str) -> Span {
        self.start(name, ids::random_span(), self.root)
    }

    /// A span under `parent`.
    pub(crate) fn child(&self, parent: &Span, name: &str) -> Span {
        match &parent.data {
            Some(p) => self.start(name, ids::random_span(), Some(p.span_id)),
            None => Span { data: None },
        }
    }

    /// A span under an ended span's `context`.
    pub(crate) fn child_of(&self, parent: Option<SpanContext>, name: &str) -> Span {
        match parent {
            Some(p) if self.is_on() => self.start(name, ids::random_span(), Some(p.span_id)),
            _ => Span { data: None },
        }
    }

    /// The W3C `traceparent` value naming `span`, or `None` when off.
    #[allow(
        clippy::unused_self,
        reason = "a method, so callers read tel.traceparent(&span)"
    )]
    pub(crate) fn traceparent(&self, span: &Span) -> Option<String> {
        span.data
            .as_ref()
            .map(|d| ids::traceparent(&d.trace, d.span_id))
    }

    /// Ends `span` now and queues it for export.
    pub(crate) fn end(&self, span: Span) {
        if let (Some(exporter), Some(mut data)) = (&self.exporter, span.data) {
            exporter.push_span(&mut data, now_nanos());
        }
    }

    /// Records one value in a histogram (explicit buckets in seconds when `unit` is `s`).
    pub(crate) fn histogram(&self, name: &str, unit: &str, value: f64, attrs: &[(&str, Value)]) {
        if let Some(exporter) = &self.exporter {
            exporter.record(MetricKind::Histogram, name, unit, value, attrs);
        }
    }

    /// Adds `value` to a monotonic sum (a count).
    pub(crate) fn sum(&self, name: &str, unit: &str, value: f64, attrs: &[(&str, Value)]) {
        if let Some(exporter) = &self.exporter {
            exporter.record(MetricKind::Sum, name, unit, value, attrs);
        }
    }

    /// Hands what is queued to the export thread; never waits.
    pub(crate) fn flush(&self) {
        if let Some(exporter) = &self.exporter {
            exporter.flush();
        }
    }

    /// Flushes and waits for the export to finish, at most 2 s.
    pub(crate) fn shutdown(self) {
        if let Some(exporter) = self.exporter {
            exporter.shutdown(std::time::Duration::from_secs(2));
        }
    }
}

impl Span {
    /// Sets an attribute (replacing one of the same key).
    pub(crate) fn attr(&mut self, key: &str, value: impl Into<Value>) {
        if let Some(d) = &mut self.data {
            d.attrs.retain(|(k, _)| k != key);
            d.attrs.push((key.to_string(), value.into()));
        }
    }

    /// Adds an event at this moment.
    pub(crate) fn event(&mut self, name: &str, attrs: &[(&str, Value)]) {
        if let Some(d) = &mut self.data {
            d.events
                .push((now_nanos(), name.to_string(), self::attrs(attrs)));
        }
    }

    /// Marks the span failed with `message` (scrubbed of secrets).
    pub(crate) fn fail(&mut self, message: &str) {
        if let Some(d) = &mut self.data {
            d.error = Some(crate::redact::scrub(message));
        }
    }

    pub(crate) fn is_recording(&self) -> bool {
        self.data.is_some()
    }

    /// This span's ids, to parent spans after it has ended (e.g. the gate's first users).
    pub(crate) fn context(&self) -> Option<SpanContext> {
        self.data.as_ref().map(|d| SpanContext {
            trace: d.trace,
            span_id: d.span_id,
        })
    }
}

/// The ids of a span, kept after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpanContext {
    trace: TraceId,
    span_id: SpanId,
}

/// The `traceparent` header that warm-up requests carry (set around a warm-up).
static REQUEST_TRACEPARENT: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Sets (or clears) the `traceparent` header for the warm-up requests that follow.
pub(crate) fn set_request_traceparent(value: Option<String>) {
    *REQUEST_TRACEPARENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
}

/// The `traceparent` header for a warm-up request, if a traced warm-up is running.
pub(crate) fn request_traceparent() -> Option<String> {
    REQUEST_TRACEPARENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn telemetry(vars: &[(&str, &str)]) -> Telemetry {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Telemetry::from_lookup(&|name| map.get(name).cloned())
    }

    #[test]
    fn off_records_nothing() {
        let tel = telemetry(&[("HEROKU_RELEASE_VERSION", "v1"), ("HEROKU_APP_NAME", "a")]);
        assert!(!tel.is_on());
        let mut span = tel.root_span("preheat release");
        span.attr("k", "v");
        assert!(!span.is_recording());
        assert_eq!(tel.traceparent(&span), None);
        assert!(tel.child(&span, "x").context().is_none());
    }

    #[test]
    fn a_release_derives_the_root_and_others_take_it_as_parent() {
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("HEROKU_APP_ID", "app-id"),
            ("HEROKU_RELEASE_VERSION", "v9"),
        ];
        let release = telemetry(&env);
        let web = telemetry(&env);
        let (trace, root) = ids::release_ids("app-id", "v9");
        let root_span = release.root_span("preheat release");
        assert_eq!(
            release.traceparent(&root_span),
            Some(ids::traceparent(&trace, root))
        );
        let gate = web.span("preheat gate");
        let data = gate.data.as_ref().expect("recording");
        assert_eq!((data.trace, data.parent), (trace, Some(root)));
        // A span in the same trace is never given the root's id again.
        assert_ne!(data.span_id, root);
    }

    #[test]
    fn without_a_release_traceparent_is_joined() {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let tel = telemetry(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("TRACEPARENT", parent),
        ]);
        let span = tel.root_span("preheat warm-up");
        let data = span.data.as_ref().expect("recording");
        assert_eq!(ids::hex(&data.trace), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(
            data.parent.map(|p| ids::hex(&p)).as_deref(),
            Some("b7ad6b7169203331")
        );
    }
}
