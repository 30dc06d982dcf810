//! The export thread: encodes with the official OTLP types (`opentelemetry-proto`,
//! prost for protobuf, its serde support for JSON) and posts with reqwest's
//! blocking client. Started only when telemetry is on; the process's own
//! threads never wait on the network except in `shutdown`, and then at most 2 s.

use super::config::{Config, Protocol, Signal};
use super::ids::{SpanId, TraceId};
use super::{Attrs, Value, now_nanos};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The semconv's advised bucket boundaries for HTTP durations, in seconds.
const SECONDS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// One warning line per process, whichever way the export failed.
static WARNED: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
pub(crate) struct SpanData {
    pub(crate) name: String,
    pub(crate) trace: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent: Option<SpanId>,
    pub(crate) start: u64,
    pub(crate) attrs: Attrs,
    pub(crate) events: Vec<(u64, String, Attrs)>,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Histogram,
    Sum,
}

struct Point {
    kind: MetricKind,
    name: String,
    unit: String,
    attrs: Attrs,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    buckets: Vec<u64>,
}

#[derive(Default)]
struct Pending {
    spans: Vec<pt::Span>,
    points: Vec<Point>,
    since: u64,
}

enum Job {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

pub(crate) struct Exporter {
    pending: Mutex<Pending>,
    resource: Resource,
    traces: bool,
    metrics: bool,
    jobs: Option<mpsc::Sender<Job>>,
    done: Mutex<mpsc::Receiver<()>>,
}

fn key_value(key: &str, value: &Value) -> KeyValue {
    let value = match value {
        Value::Str(s) => any_value::Value::StringValue(s.clone()),
        Value::Int(i) => any_value::Value::IntValue(*i),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::F64(f) => any_value::Value::DoubleValue(*f),
    };
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn key_values(attrs: &[(String, Value)]) -> Vec<KeyValue> {
    attrs.iter().map(|(k, v)| key_value(k, v)).collect()
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "preheat".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    }
}

impl Exporter {
    pub(crate) fn start(config: Config, resource: &[(String, String)]) -> Self {
        let resource = Resource {
            attributes: resource
                .iter()
                .map(|(k, v)| key_value(k, &Value::Str(v.clone())))
                .collect(),
            ..Default::default()
        };
        let (jobs, receiver) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel::<()>();
        let traces = config.traces.is_some();
        let metrics = config.metrics.is_some();
        let spawned = std::thread::Builder::new()
            .name("otel-export".into())
            .spawn(move || {
                run(&config, &receiver);
                let _ = done_tx.send(());
            });
        let jobs = match spawned {
            Ok(_) => Some(jobs),
            Err(error) => {
                crate::output::warning(&format!("telemetry: not exported: {error}"));
                None
            }
        };
        Exporter {
            pending: Mutex::new(Pending {
                since: now_nanos(),
                ..Default::default()
            }),
            resource,
            traces,
            metrics,
            jobs,
            done: Mutex::new(done),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push_span(&self, data: &mut SpanData, end: u64) {
        if !self.traces {
            return;
        }
        let status = match data.error.take() {
            Some(message) => pt::Status {
                message,
                code: pt::status::StatusCode::Error as i32,
            },
            None => pt::Status {
                message: String::new(),
                code: pt::status::StatusCode::Ok as i32,
            },
        };
        let span = pt::Span {
            trace_id: data.trace.to_vec(),
            span_id: data.span_id.to_vec(),
            parent_span_id: data.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: std::mem::take(&mut data.name),
            kind: pt::span::SpanKind::Internal as i32,
            start_time_unix_nano: data.start,
            end_time_unix_nano: end.max(data.start),
            attributes: key_values(&data.attrs),
            events: data
                .events
                .drain(..)
                .map(|(time, name, attrs)| pt::span::Event {
                    time_unix_nano: time,
                    name,
                    attributes: key_values(&attrs),
                    dropped_attributes_count: 0,
                })
                .collect(),
            status: Some(status),
            ..Default::default()
        };
        self.lock().spans.push(span);
    }

    pub(crate) fn record(
        &self,
        kind: MetricKind,
        name: &str,
        unit: &str,
        value: f64,
        attrs: &[(&str, Value)],
    ) {
        if !self.metrics {
            return;
        }
        let attrs = super::attrs(attrs);
        let mut pending = self.lock();
        let index = pending
            .points
            .iter()
            .position(|p| p.kind == kind && p.name == name && p.attrs == attrs);
        let index = index.unwrap_or_else(|| {
            pending.points.push(Point {
                kind,
                name: name.to_string(),
                unit: unit.to_string(),
                attrs,
                count: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                buckets: vec![0; SECONDS_BUCKETS.len() + 1],
            });
            pending.points.len() - 1
        });
        let point = &mut pending.points[index];
        point.count += 1;
        point.sum += value;
        point.min = point.min.min(value);
        point.max = point.max.max(value);
        let bucket = SECONDS_BUCKETS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(SECONDS_BUCKETS.len());
        point.buckets[bucket] += 1;
    }

    pub(crate) fn flush(&self) {
        let now = now_nanos();
        let (spans, points, since) = {
            let mut pending = self.lock();
            let since = std::mem::replace(&mut pending.since, now);
            (
                std::mem::take(&mut pending.spans),
                std::mem::take(&mut pending.points),
                since,
            )
        };
        let Some(jobs) = &self.jobs else { return };
        if !spans.is_empty() {
            let _ = jobs.send(Job::Traces(ExportTraceServiceRequest {
                resource_spans: vec![pt::ResourceSpans {
                    resource: Some(self.resource.clone()),
                    scope_spans: vec![pt::ScopeSpans {
                        scope: Some(scope()),
                        spans,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            }));
        }
        if !points.is_empty() {
            let metrics = points.into_iter().map(|p| metric(p, since, now)).collect();
            let _ = jobs.send(Job::Metrics(ExportMetricsServiceRequest {
                resource_metrics: vec![pm::ResourceMetrics {
                    resource: Some(self.resource.clone()),
                    scope_metrics: vec![pm::ScopeMetrics {
                        scope: Some(scope()),
                        metrics,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }],
            }));
        }
    }

    pub(crate) fn shutdown(mut self, limit: Duration) {
        self.flush();
        // Closing the channel lets the thread finish once the queue is sent.
        if self.jobs.take().is_some() {
            let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            if done.recv_timeout(limit).is_err() && !WARNED.swap(true, Ordering::Relaxed) {
                crate::output::warning(&format!(
                    "telemetry: the OTLP endpoint did not take the export within {} s; preheat gave up on it and exits",
                    limit.as_secs()
                ));
            }
        }
    }
}

fn metric(p: Point, since: u64, now: u64) -> pm::Metric {
    let attributes = key_values(&p.attrs);
    let data = match p.kind {
        MetricKind::Histogram => pm::metric::Data::Histogram(pm::Histogram {
            data_points: vec![pm::HistogramDataPoint {
                attributes,
                start_time_unix_nano: since,
                time_unix_nano: now,
                count: p.count,
                sum: Some(p.sum),
                bucket_counts: p.buckets,
                explicit_bounds: SECONDS_BUCKETS.to_vec(),
                min: Some(p.min),
                max: Some(p.max),
                ..Default::default()
            }],
            aggregation_temporality: pm::AggregationTemporality::Delta as i32,
        }),
        MetricKind::Sum => pm::metric::Data::Sum(pm::Sum {
            data_points: vec![pm::NumberDataPoint {
                attributes,
                start_time_unix_nano: since,
                time_unix_nano: now,
                value: Some(pm::number_data_point::Value::AsDouble(p.sum)),
                ..Default::default()
            }],
            aggregation_temporality: pm::AggregationTemporality::Delta as i32,
            is_monotonic: true,
        }),
    };
    pm::Metric {
        name: p.name,
        unit: p.unit,
        data: Some(data),
        ..Default::default()
    }
}

/// The export thread's loop: one POST per job, one warning line per process on failure.
fn run(config: &Config, jobs: &mpsc::Receiver<Job>) {
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("preheat/", env!("CARGO_PKG_VERSION")))
        // The collector's redirect must not carry the headers elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let client = match client {
        Ok(client) => Arc::new(client),
        Err(error) => {
            crate::output::warning(&format!(
                "telemetry: not exported: could not set up HTTP: {}",
                error.without_url()
            ));
            return;
        }
    };
    while let Ok(job) = jobs.recv() {
        let (signal, body, what) = match &job {
            Job::Traces(request) => (
                config.traces.as_ref(),
                encode(config.traces.as_ref(), request),
                "traces",
            ),
            Job::Metrics(request) => (
                config.metrics.as_ref(),
                encode(config.metrics.as_ref(), request),
                "metrics",
            ),
        };
        let (Some(signal), Some(body)) = (signal, body) else {
            continue;
        };
        if let Err(reason) = send(&client, signal, body)
            && !WARNED.swap(true, Ordering::Relaxed)
        {
            crate::output::warning(&format!(
                "telemetry: could not export {what} to the OTLP endpoint ({reason}); preheat carries on without it"
            ));
        }
    }
}

fn encode<T: Message + serde::Serialize>(signal: Option<&Signal>, request: &T) -> Option<Vec<u8>> {
    Some(match signal?.protocol {
        Protocol::Protobuf => request.encode_to_vec(),
        Protocol::Json => serde_json::to_vec(request).ok()?,
    })
}

fn send(client: &reqwest::blocking::Client, signal: &Signal, body: Vec<u8>) -> Result<(), String> {
    let content_type = match signal.protocol {
        Protocol::Protobuf => "application/x-protobuf",
        Protocol::Json => "application/json",
    };
    let started = Instant::now();
    let mut request = client
        .post(&signal.url)
        .timeout(signal.timeout)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body);
    for (name, value) in &signal.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    // Errors name no URL (it may carry credentials) and no header value.
    let response = request.send().map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {} ms", signal.timeout.as_millis())
        } else if e.is_connect() {
            "could not connect".to_string()
        } else {
            crate::redact::scrub(&e.without_url().to_string())
        }
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "HTTP {} after {} ms",
            status.as_u16(),
            started.elapsed().as_millis()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_hex_ids_as_otlp_json_requires() {
        let span = pt::Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            name: "preheat release".into(),
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![pt::ResourceSpans {
                scope_spans: vec![pt::ScopeSpans {
                    spans: vec![span],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let signal = Signal {
            url: String::new(),
            protocol: Protocol::Json,
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
        };
        let body =
            String::from_utf8(encode(Some(&signal), &request).expect("json")).expect("utf-8");
        assert!(
            body.contains(&format!("\"traceId\":\"{}\"", "ab".repeat(16))),
            "{body}"
        );
        assert!(body.contains("\"spanId\":\"0101010101010101\""), "{body}");
    }

    #[test]
    fn histogram_points_fall_in_their_buckets() {
        let config = Config {
            traces: None,
            metrics: Some(Signal {
                url: "http://127.0.0.1:9/v1/metrics".into(),
                protocol: Protocol::Protobuf,
                headers: Vec::new(),
                timeout: Duration::from_secs(1),
            }),
            warnings: Vec::new(),
        };
        let exporter = Exporter::start(config, &[]);
        let attrs = [("url.path", Value::from("/"))];
        for value in [0.001, 0.003, 0.2, 20.0] {
            exporter.record(MetricKind::Histogram, "h", "s", value, &attrs);
        }
        exporter.record(
            MetricKind::Histogram,
            "h",
            "s",
            0.001,
            &[("url.path", "/x".into())],
        );
        let pending = exporter.lock();
        assert_eq!(pending.points.len(), 2, "one point per attribute set");
        let point = &pending.points[0];
        assert_eq!(point.count, 4);
        assert_eq!(point.buckets[0], 2, "<= 5 ms");
        assert_eq!(point.buckets[6], 1, "<= 250 ms");
        assert_eq!(point.buckets[SECONDS_BUCKETS.len()], 1, "overflow");
        assert!((point.max - 20.0).abs() < f64::EPSILON);
    }
}
