//! Reads the standard `OTEL_*` variables (and `PREHEAT_SKIP=telemetry`) into
//! one [`Config`], or `None` when nothing is to be sent.

use std::time::Duration;

/// How the OTLP body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Protobuf,
    Json,
}

/// Where and how one signal (traces or metrics) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signal {
    pub(crate) url: String,
    pub(crate) protocol: Protocol,
    /// Header names and values; the values are registered as secrets.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub(crate) traces: Option<Signal>,
    pub(crate) metrics: Option<Signal>,
    /// Lines to print once (an unsupported protocol, a malformed header).
    pub(crate) warnings: Vec<String>,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `lookup` is `std::env::var` in production, a map in tests.
pub(crate) fn read(lookup: &dyn Fn(&str) -> Option<String>) -> Option<Config> {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return None;
    }
    if get("PREHEAT_SKIP").is_some_and(|v| {
        v.split(',')
            .any(|w| w.trim().eq_ignore_ascii_case("telemetry"))
    }) {
        return None;
    }
    let mut warnings = Vec::new();
    let traces = signal(&get, "TRACES", "v1/traces", &mut warnings);
    let metrics = signal(&get, "METRICS", "v1/metrics", &mut warnings);
    if traces.is_none() && metrics.is_none() {
        return None;
    }
    Some(Config {
        traces,
        metrics,
        warnings,
    })
}

fn signal(
    get: &dyn Fn(&str) -> Option<String>,
    kind: &str,
    path: &str,
    warnings: &mut Vec<String>,
) -> Option<Signal> {
    let exporter = format!("OTEL_{kind}_EXPORTER");
    if let Some(value) = get(&exporter) {
        let value = value.to_ascii_lowercase();
        if value.split(',').any(|v| v.trim() == "none") {
            return None;
        }
        if !value.split(',').any(|v| v.trim() == "otlp") {
            warnings.push(format!(
                "{exporter}={value} is not supported; preheat exports OTLP only (set it to `otlp` or `none`)"
            ));
        }
    }
    // The spec: a per-signal endpoint is used as is; the generic one gets the signal's path.
    let url = if let Some(url) = get(&format!("OTEL_EXPORTER_OTLP_{kind}_ENDPOINT")) {
        url
    } else {
        let base = get("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        format!("{}/{path}", base.trim_end_matches('/'))
    };
    let protocol_var = format!("OTEL_EXPORTER_OTLP_{kind}_PROTOCOL");
    let protocol = match get(&protocol_var).or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL")) {
        None => Protocol::Protobuf,
        Some(p) if p == "http/protobuf" => Protocol::Protobuf,
        Some(p) if p == "http/json" => Protocol::Json,
        Some(p) => {
            warnings.push(format!(
                "OTLP protocol `{p}` is not supported; preheat sends http/protobuf (set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or http/json)"
            ));
            Protocol::Protobuf
        }
    };
    let mut headers = parse_headers(get("OTEL_EXPORTER_OTLP_HEADERS").as_deref(), warnings);
    for (name, value) in parse_headers(
        get(&format!("OTEL_EXPORTER_OTLP_{kind}_HEADERS")).as_deref(),
        warnings,
    ) {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        headers.push((name, value));
    }
    let timeout = get(&format!("OTEL_EXPORTER_OTLP_{kind}_TIMEOUT"))
        .or_else(|| get("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .map_or(DEFAULT_TIMEOUT, |ms| {
            if let Ok(n) = ms.parse::<u64>() {
                Duration::from_millis(n)
            } else {
                warnings.push(format!(
                    "OTEL_EXPORTER_OTLP_TIMEOUT `{ms}` is not a number of milliseconds; using 10000"
                ));
                DEFAULT_TIMEOUT
            }
        });
    Some(Signal {
        url,
        protocol,
        headers,
        timeout,
    })
}

/// `key1=value1,key2=value2`, values percent-decoded (the spec's W3C Baggage form).
/// A malformed entry is named by its key only: its value may be a secret.
pub(crate) fn parse_headers(
    value: Option<&str>,
    warnings: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in value.unwrap_or_default().split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((name, value)) = entry.split_once('=') else {
            warnings.push(format!(
                "OTEL_EXPORTER_OTLP_HEADERS has an entry without `=` (the {} entry); it is left out",
                ordinal(out.len() + 1)
            ));
            continue;
        };
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8_lossy()
            .into_owned();
        crate::redact::register(&value);
        out.push((name.trim().to_string(), value));
    }
    out
}

fn ordinal(n: usize) -> String {
    match n {
        1 => "first".into(),
        2 => "second".into(),
        3 => "third".into(),
        n => format!("{n}th"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Option<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        read(&|name| map.get(name).cloned())
    }

    #[test]
    fn nothing_configured_is_off() {
        assert_eq!(config(&[]), None);
        assert_eq!(config(&[("OTEL_SERVICE_NAME", "x")]), None);
    }

    #[test]
    fn generic_endpoint_gets_the_signal_paths() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]).expect("on");
        let traces = c.traces.expect("traces");
        assert_eq!(traces.url, "http://c:4318/v1/traces");
        assert_eq!(traces.protocol, Protocol::Protobuf);
        assert_eq!(traces.timeout, Duration::from_secs(10));
        assert_eq!(c.metrics.expect("metrics").url, "http://c:4318/v1/metrics");
    }

    #[test]
    fn per_signal_endpoint_is_used_as_is() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
        ])
        .expect("on");
        assert_eq!(c.traces.expect("traces").url, "http://t:1/custom");
        assert_eq!(c.metrics.expect("metrics").url, "http://c:4318/v1/metrics");
        let only = config(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m/x")]).expect("on");
        assert!(only.traces.is_none());
    }

    #[test]
    fn switches_turn_it_off() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(config(&[on, ("OTEL_SDK_DISABLED", "TRUE")]), None);
        assert_eq!(config(&[on, ("PREHEAT_SKIP", "warmup, telemetry")]), None);
        let c = config(&[on, ("OTEL_TRACES_EXPORTER", "none")]).expect("metrics still on");
        assert!(c.traces.is_none() && c.metrics.is_some());
        assert_eq!(
            config(&[
                on,
                ("OTEL_TRACES_EXPORTER", "none"),
                ("OTEL_METRICS_EXPORTER", "none")
            ]),
            None
        );
    }

    #[test]
    fn protocol_headers_and_timeout() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=s%3Dcret1,bad, x-team = a ",
            ),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "X-API-KEY=other"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
        ])
        .expect("on");
        let traces = c.traces.expect("traces");
        assert_eq!(traces.protocol, Protocol::Json);
        assert_eq!(traces.timeout, Duration::from_millis(1500));
        assert_eq!(
            traces.headers,
            vec![
                ("x-api-key".to_string(), "s=cret1".to_string()),
                ("x-team".to_string(), "a".to_string())
            ]
        );
        let metrics = c.metrics.expect("metrics");
        assert!(
            metrics
                .headers
                .contains(&("X-API-KEY".into(), "other".into()))
        );
        assert_eq!(metrics.headers.len(), 2);
        // The malformed entry is reported by position, never by content.
        assert!(c.warnings.iter().any(|w| w.contains("second entry")));
        assert!(c.warnings.iter().all(|w| !w.contains("cret1")));
        assert!(crate::redact::scrub("key s=cret1").contains("********"));
    }

    #[test]
    fn grpc_is_named_and_falls_back() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ])
        .expect("on");
        assert_eq!(c.traces.expect("t").protocol, Protocol::Protobuf);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("`grpc` is not supported"))
        );
    }
}
