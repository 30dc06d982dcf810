//! A warm-up run inside a `preheat warm-up` span, and its verdict line with
//! figures: the boot warmer and the gate share both.

use crate::telemetry::{self, Span, Telemetry};
use crate::warmup::requests::{self, Report, Target};
use std::time::Instant;

/// Runs the warm-up under `parent` (or the release root), with a `traceparent`
/// header on every request while telemetry is on.
pub(crate) fn run(
    tel: &Telemetry,
    parent: Option<&Span>,
    target: &Target,
    warmup: &crate::config::Warmup,
    deadline: Instant,
    log: &(dyn Fn(&str) + Sync),
) -> Report {
    let mut span = match parent {
        Some(parent) => tel.child(parent, "preheat warm-up"),
        None => tel.span("preheat warm-up"),
    };
    telemetry::set_request_traceparent(tel.traceparent(&span));
    let report = requests::run_until_deadline(target, warmup, deadline, log);
    telemetry::set_request_traceparent(None);
    record(tel, &mut span, &report);
    tel.end(span);
    report
}

/// The span's attributes and the warm-up metrics; nothing when telemetry is off.
pub(crate) fn record(tel: &Telemetry, span: &mut Span, report: &Report) {
    if !span.is_recording() {
        return;
    }
    span.attr("preheat.warmup.rounds", report.rounds);
    span.attr("preheat.warmup.converged", report.warm());
    span.attr("preheat.warmup.requests", report.hits.len());
    span.attr("preheat.warmup.ok", report.ok_count());
    span.attr("preheat.warmup.deadline_hit", report.deadline_hit);
    if let Some(slowest) = report.hits.iter().max_by_key(|h| h.took) {
        span.attr("preheat.warmup.slowest_path", slowest.label.as_str());
        span.attr("preheat.warmup.slowest_s", slowest.took.as_secs_f64());
    }
    if !report.warm() {
        span.fail(&report.verdict());
    }
    let outcome = if report.warm() { "warm" } else { "not_warm" };
    tel.histogram(
        "preheat.warmup.duration",
        "s",
        report.took.as_secs_f64(),
        &[("preheat.outcome", outcome.into())],
    );
    for hit in &report.hits {
        let mut attrs = vec![("preheat.warmup.request", hit.label.as_str().into())];
        if let Some(status) = hit.status {
            attrs.push(("http.response.status_code", status.into()));
        }
        tel.sum("preheat.warmup.requests", "{request}", 1.0, &attrs);
    }
}

/// `warm in 1.2s (…) | event=warmup dyno=web.1 …`: the verdict with its figures.
pub(crate) fn verdict_line(report: &Report, dyno: &str) -> String {
    let slowest = report.hits.iter().max_by_key(|h| h.took);
    let mut line = report.verdict();
    line.push_str(&crate::output::figures(&[
        ("event", &"warmup"),
        ("dyno", &dyno),
        ("warm", &report.warm()),
        ("rounds", &report.rounds),
        ("requests", &report.hits.len()),
        ("ok", &report.ok_count()),
        ("duration_ms", &report.took.as_millis()),
        ("slowest_ms", &slowest.map_or(0, |h| h.took.as_millis())),
    ]));
    line
}
