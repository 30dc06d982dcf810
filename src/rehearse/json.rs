//! `--json FILE`: the rehearsal's figures, for CI and for tracking them over
//! time. The schema (version 1) is documented in docs/rehearse.md; fields are
//! only ever added.

use super::dynos::{Measured, WarmUp};
use super::report::Context;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Serialize)]
struct Document<'a> {
    schema: u32,
    ok: bool,
    web: &'a str,
    gated: bool,
    host: &'a str,
    host_from: Option<&'a str>,
    path: &'a str,
    burst: usize,
    release_ms: f64,
    warm: Vec<DynoFigures<'a>>,
    cold: Option<Vec<DynoFigures<'a>>>,
}

#[derive(Serialize)]
struct DynoFigures<'a> {
    dyno: &'a str,
    bind_ms: f64,
    /// `"done"`, `"gave_up"`, `"gate"` or `"off"`.
    warm_up: &'static str,
    warm_up_ms: Option<f64>,
    first_users: Vec<User<'a>>,
    first_worst_ms: f64,
    first_median_ms: f64,
    steady_median_ms: f64,
    steady_requests: usize,
    /// The other paths' first users (`--path`, else every `[warmup]` path).
    more_paths: Vec<PathFigures<'a>>,
}

#[derive(Serialize)]
struct PathFigures<'a> {
    path: &'a str,
    first_users: Vec<User<'a>>,
    first_worst_ms: f64,
    /// The slowest of the warm bursts after them (`--require-warm` only).
    warm_worst_ms: Option<f64>,
}

fn users(answers: &[super::users::Answer]) -> Vec<User<'_>> {
    answers
        .iter()
        .map(|a| User {
            status: a.status,
            ms: millis(a.took),
            error: a.problem.as_deref(),
        })
        .collect()
}

fn worst(answers: &[super::users::Answer]) -> Option<Duration> {
    answers.iter().map(|a| a.took).max()
}

#[derive(Serialize)]
struct User<'a> {
    status: Option<u16>,
    ms: f64,
    error: Option<&'a str>,
}

/// What the document says about the run besides the figures.
pub(crate) struct Run<'a> {
    pub(crate) ok: bool,
    pub(crate) web: &'a str,
    pub(crate) host_from: Option<&'a str>,
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn dyno(m: &Measured) -> DynoFigures<'_> {
    let (warm_up, warm_up_ms) = match m.warm_up {
        WarmUp::Off => ("off", None),
        WarmUp::Gate => ("gate", None),
        WarmUp::GaveUp => ("gave_up", None),
        WarmUp::Done(after) => ("done", Some(millis(after))),
    };
    DynoFigures {
        dyno: &m.name,
        bind_ms: millis(m.bound_after),
        warm_up,
        warm_up_ms,
        first_users: users(&m.first),
        first_worst_ms: millis(m.worst()),
        first_median_ms: millis(m.first_median()),
        steady_median_ms: millis(m.steady_median()),
        steady_requests: m.steady.len(),
        more_paths: m
            .more
            .iter()
            .map(|more| PathFigures {
                path: &more.path,
                first_users: users(&more.first),
                first_worst_ms: millis(worst(&more.first).unwrap_or_default()),
                warm_worst_ms: worst(&more.warm).map(millis),
            })
            .collect(),
    }
}

/// Writes the figures to `file`; the error names the file.
pub(crate) fn write(
    file: &Path,
    run: &Run,
    context: &Context,
    warm: &[Measured],
    cold: Option<&[Measured]>,
) -> Result<(), String> {
    let document = Document {
        schema: 1,
        ok: run.ok,
        web: run.web,
        gated: context.gated,
        host: context.host,
        host_from: run.host_from,
        path: context.path,
        burst: context.burst,
        release_ms: millis(context.release),
        warm: warm.iter().map(dyno).collect(),
        cold: cold.map(|c| c.iter().map(dyno).collect()),
    };
    let text = serde_json::to_string_pretty(&document)
        .map_err(|e| format!("Could not write the figures as JSON: {e}"))?;
    std::fs::write(file, text + "\n")
        .map_err(|e| format!("Could not write {}: {e}", file.display()))?;
    crate::output::sub_bullet(&format!("Wrote the figures to {}", file.display()));
    Ok(())
}
