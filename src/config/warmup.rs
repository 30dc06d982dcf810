//! `[warmup]`: from its raw shape to checked paths and requests.

use super::diagnostic::Located;
use super::duration::Span;
use super::raw::RawWarmup;
use super::steps::check_url;
use super::{DEFAULT_MAX_ROUNDS, Expect, WarmRequest, Warmup};
use std::time::Duration;
use toml::Spanned;

pub(super) fn convert_warmup(raw: Spanned<RawWarmup>) -> Result<Warmup, Located> {
    let span = raw.span();
    let raw = raw.into_inner();
    let mut requests = Vec::new();
    let paths_given = raw.paths.is_some();
    for path in raw.paths.unwrap_or_default() {
        check_path(&path)?;
        requests.push(WarmRequest::get(path.get_ref()));
    }
    for request in raw.request {
        check_path(&request.path)?;
        requests.push(WarmRequest {
            method: request.method,
            path: request.path.into_inner(),
            headers: request.headers.into_iter().collect(),
            body: request.body,
            expect: Expect::from_list(request.expect_status, Expect::Range(200, 399))?,
            expect_body: request.expect_body,
        });
    }
    if requests.is_empty() {
        if paths_given && raw.enabled {
            return Err(Located::new(
                span,
                "[warmup] lists no requests",
                "Give at least one path, like `paths = [\"/\"]`, or turn warm-up off with `enabled = false`.",
            ));
        }
        requests.push(WarmRequest::get("/"));
    }
    let bounded = |value: Option<Spanned<u32>>, key: &str, default: u32, max: u32| match value {
        None => Ok(default),
        Some(v) if (1..=max).contains(v.get_ref()) => Ok(v.into_inner()),
        Some(v) => Err(Located::new(
            v.span(),
            format!("`{key}` must be between 1 and {max}, not {}", v.get_ref()),
            format!("Set `{key}` to a number from 1 to {max}."),
        )),
    };
    if let Some(url) = &raw.url {
        check_url(url)?;
    }
    let rounds = bounded(raw.rounds, "rounds", 1, 100)?;
    let max_rounds = match raw.max_rounds {
        Some(max) if *max.get_ref() < rounds && (1..=100).contains(max.get_ref()) => {
            return Err(Located::new(
                max.span(),
                format!(
                    "`max_rounds` ({}) is lower than `rounds` ({rounds})",
                    max.get_ref()
                ),
                "`rounds` is the fewest rounds and `max_rounds` the most: raise `max_rounds` or lower `rounds`.",
            ));
        }
        Some(max) => bounded(Some(max), "max_rounds", DEFAULT_MAX_ROUNDS, 100)?,
        None => DEFAULT_MAX_ROUNDS.max(rounds),
    };
    Ok(Warmup {
        enabled: raw.enabled,
        requests,
        rounds,
        max_rounds,
        concurrency: bounded(raw.concurrency, "concurrency", 4, 64)?,
        deadline: raw.deadline.map_or(Duration::from_secs(90), Span::get),
        host: raw.host,
        url: raw.url.map(Spanned::into_inner),
        gate_timeout: gate_timeout(raw.gate_timeout)?,
        first_users: bounded(
            raw.first_users,
            "first_users",
            super::DEFAULT_FIRST_USERS,
            10_000,
        )?,
        first_users_window: first_users_window(raw.first_users_window)?,
    })
}

/// `gate_timeout`: from 1s to 1h; the platform's own boot timeout is the real bound.
fn gate_timeout(value: Option<Spanned<Span>>) -> Result<Duration, Located> {
    const RANGE: std::ops::RangeInclusive<Duration> =
        Duration::from_secs(1)..=Duration::from_hours(1);
    match value {
        None => Ok(super::DEFAULT_GATE_TIMEOUT),
        Some(v) if RANGE.contains(&v.get_ref().get()) => Ok(v.into_inner().get()),
        Some(v) => Err(Located::new(
            v.span(),
            format!(
                "`gate_timeout` must be between 1s and 1h, not {}",
                v.get_ref()
            ),
            "`preheat gate` opens the port by then even if the app is not warm yet. Keep it under the platform's boot timeout, like \"45s\" for Heroku's 60s.",
        )),
    }
}

/// `first_users_window`: from 1s to 1h after the gate opens.
fn first_users_window(value: Option<Spanned<Span>>) -> Result<Duration, Located> {
    const RANGE: std::ops::RangeInclusive<Duration> =
        Duration::from_secs(1)..=Duration::from_hours(1);
    match value {
        None => Ok(super::DEFAULT_FIRST_USERS_WINDOW),
        Some(v) if RANGE.contains(&v.get_ref().get()) => Ok(v.into_inner().get()),
        Some(v) => Err(Located::new(
            v.span(),
            format!(
                "`first_users_window` must be between 1s and 1h, not {}",
                v.get_ref()
            ),
            "The gate times its first users for this long after it opens (or until `first_users` requests came), like \"60s\".",
        )),
    }
}

fn check_path(path: &Spanned<String>) -> Result<(), Located> {
    if path.get_ref().starts_with('/') {
        Ok(())
    } else {
        Err(Located::new(
            path.span(),
            format!("warm-up path `{}` does not start with `/`", path.get_ref()),
            format!(
                "Write paths relative to the app's root, like \"/{}\".",
                path.get_ref().trim_start_matches('/')
            ),
        ))
    }
}
