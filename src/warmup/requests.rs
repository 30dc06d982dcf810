//! The warm-up itself: replay the `[warmup]` requests until every worker of
//! the web process answers warm.
//!
//! A round takes the paths one after another, each with `in_flight` requests
//! at once, every one on a fresh connection, so that each worker gets some of
//! each path (sending all paths at once lets a round-robin balancer hand one
//! worker none of a path). Rounds repeat until one converges (`converge`), at
//! least `rounds` and at most `max_rounds` times, or until the deadline.

use crate::config::duration::human;
use crate::config::{Method, WarmRequest, Warmup};
use crate::redact;
use crate::warmup::converge::{Fastest, Judgement, Sample};
use crate::warmup::oneshot::{Prepared, Sender};
use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

/// Most requests in flight for one path, whatever `WEB_CONCURRENCY` says.
pub(crate) const MAX_IN_FLIGHT: u32 = 64;
/// A request thread needs little stack; the warmer's memory stays small.
const THREAD_STACK: usize = 256 * 1024;

/// Where the requests go.
pub(crate) struct Target {
    pub(crate) base: url::Url,
    /// `Host` header, so apps with host checks answer as in production.
    pub(crate) host: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) label: String,
    pub(crate) status: Option<u16>,
    pub(crate) ok: bool,
    pub(crate) took: Duration,
    pub(crate) problem: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) hits: Vec<Hit>,
    /// Rounds started.
    pub(crate) rounds: u32,
    /// How the last whole round went.
    pub(crate) judgement: Judgement,
    pub(crate) took: Duration,
    pub(crate) deadline_hit: bool,
}

impl Report {
    pub(crate) fn ok_count(&self) -> usize {
        self.hits.iter().filter(|h| h.ok).count()
    }

    /// Every request answered as expected, before the deadline.
    pub(crate) fn all_ok(&self) -> bool {
        !self.deadline_hit && !self.hits.is_empty() && self.ok_count() == self.hits.len()
    }

    /// All ok, and converged (or a single round was all that was allowed).
    pub(crate) fn warm(&self) -> bool {
        self.all_ok() && matches!(self.judgement, Judgement::Converged | Judgement::Unjudged)
    }

    /// The fastest successful answer per method and path (query dropped):
    /// the warm figure that the gate judges its first users by.
    pub(crate) fn fastest_ok(&self) -> std::collections::HashMap<(String, String), Duration> {
        let mut fastest = std::collections::HashMap::new();
        for hit in self.hits.iter().filter(|h| h.ok) {
            // `label` is the path for GET, `METHOD path` otherwise.
            let (method, path) = match hit.label.split_once(' ') {
                Some((method, path)) if !hit.label.starts_with('/') => (method, path),
                _ => ("GET", hit.label.as_str()),
            };
            let path = path.split(['?', '#']).next().unwrap_or("/").to_string();
            fastest
                .entry((method.to_string(), path))
                .and_modify(|d: &mut Duration| *d = (*d).min(hit.took))
                .or_insert(hit.took);
        }
        fastest
    }

    /// `warm in 1.2s (3 rounds, converged; 36/36 ok, slowest /dashboard 812ms)`
    pub(crate) fn verdict(&self) -> String {
        let state = if self.warm() {
            "warm"
        } else if self.ok_count() > 0 {
            "partly warm"
        } else {
            "NOT warm"
        };
        let rounds = match self.rounds {
            1 => "1 round".to_string(),
            n => format!("{n} rounds"),
        };
        let judged = match &self.judgement {
            Judgement::Converged => ", converged".to_string(),
            Judgement::Unjudged if self.deadline_hit || self.rounds != 1 => String::new(),
            Judgement::Unjudged => ", convergence not checked (max_rounds = 1)".to_string(),
            Judgement::Slow {
                label,
                slowest,
                fastest,
            } => format!(
                ", not converged: {label} still took {} against a fastest {}",
                human(*slowest),
                human(*fastest)
            ),
            Judgement::Failed { label } => format!(", not converged: {label} failed"),
        };
        let slowest = self
            .hits
            .iter()
            .max_by_key(|h| h.took)
            .map(|h| format!(", slowest {} {}", h.label, human(h.took)))
            .unwrap_or_default();
        let mut text = format!(
            "{state} in {} ({rounds}{judged}; {}/{} ok{slowest})",
            human(self.took),
            self.ok_count(),
            self.hits.len(),
        );
        if self.deadline_hit {
            text.push_str("; gave up at the warm-up deadline");
        }
        redact::scrub(&text)
    }
}

/// The default `Host` for a warm-up: `[warmup] host`, else the app's domain on Heroku.
pub(crate) fn default_host(warmup: &Warmup) -> Option<String> {
    warmup
        .host
        .clone()
        .or_else(|| std::env::var("HEROKU_APP_DEFAULT_DOMAIN_NAME").ok())
        .filter(|h| !h.is_empty())
}

/// Requests in flight per path: `max(concurrency, 2 × WEB_CONCURRENCY)`, with
/// `concurrency` 4 unless set. A missing or invalid `WEB_CONCURRENCY` counts as 1.
pub(crate) fn in_flight(concurrency: u32, web_concurrency: Option<&str>) -> usize {
    let wanted = concurrency
        .max(workers(web_concurrency).saturating_mul(2))
        .min(MAX_IN_FLIGHT);
    usize::try_from(wanted).unwrap_or(4)
}

/// `WEB_CONCURRENCY` as a worker count: 1 when unset, zero or not a number.
pub(crate) fn workers(web_concurrency: Option<&str>) -> u32 {
    web_concurrency
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// Runs rounds until they converge; `log` gets a line per path and round.
pub(crate) fn run(
    target: &Target,
    warmup: &Warmup,
    deadline: Instant,
    log: &(dyn Fn(&str) + Sync),
) -> Report {
    let started = Instant::now();
    let mut report = Report {
        hits: Vec::new(),
        rounds: 0,
        judgement: Judgement::Unjudged,
        took: Duration::ZERO,
        deadline_hit: false,
    };
    let sender = match Sender::for_url(&target.base) {
        Ok(sender) => sender,
        Err(problem) => {
            log(&problem);
            report.took = started.elapsed();
            return report;
        }
    };
    let web_concurrency = std::env::var("WEB_CONCURRENCY").ok();
    let in_flight = in_flight(warmup.concurrency, web_concurrency.as_deref());
    let mut fastest = Fastest::new(warmup.requests.len());
    while report.rounds < warmup.max_rounds.max(1) {
        report.rounds += 1;
        let mut paths = Vec::new();
        for request in &warmup.requests {
            if Instant::now() >= deadline {
                report.deadline_hit = true;
                break;
            }
            let hits = batch(&sender, target, request, in_flight, deadline);
            for line in batch_lines(&hits, report.rounds) {
                log(&line);
            }
            let samples = hits
                .iter()
                .map(|h| Sample {
                    ok: h.ok,
                    took: h.took,
                })
                .collect();
            paths.push((label(request), samples));
            report.hits.extend(hits);
        }
        if report.deadline_hit {
            break;
        }
        report.judgement = fastest.judge(report.rounds, &paths);
        if report.rounds >= warmup.rounds && report.judgement == Judgement::Converged {
            break;
        }
        if report.rounds < warmup.max_rounds && Instant::now() >= deadline {
            report.deadline_hit = true;
            break;
        }
    }
    report.took = started.elapsed();
    report
}

fn label(request: &WarmRequest) -> String {
    if request.method == Method::Get {
        request.path.clone()
    } else {
        format!("{} {}", request.method.as_str(), request.path)
    }
}

/// `count` copies of one request at once, each on its own connection.
fn batch(
    sender: &Sender,
    target: &Target,
    request: &WarmRequest,
    count: usize,
    deadline: Instant,
) -> Vec<Hit> {
    let label = label(request);
    let prepared = match prepare(target, request) {
        Ok(prepared) => prepared,
        Err(problem) => {
            return vec![Hit {
                label,
                status: None,
                ok: false,
                took: Duration::ZERO,
                problem: Some(problem),
            }];
        }
    };
    let one = || {
        let started = Instant::now();
        match sender.send(&prepared, deadline) {
            Ok(answer) => Hit {
                label: label.clone(),
                status: Some(answer.status),
                ok: answer.problem.is_none(),
                took: answer.took,
                problem: answer.problem,
            },
            Err(problem) => Hit {
                label: label.clone(),
                status: None,
                ok: false,
                took: started.elapsed(),
                problem: Some(problem),
            },
        }
    };
    thread::scope(|scope| {
        let handles: Vec<_> = (1..count)
            .map(|_| {
                thread::Builder::new()
                    .stack_size(THREAD_STACK)
                    .spawn_scoped(scope, one)
            })
            .collect();
        // One from this thread: it is already running, so on a busy dyno the
        // first request does not wait for a new thread to be scheduled.
        let mine = one();
        std::iter::once(mine)
            .chain(handles.into_iter().map(|handle| match handle {
                Ok(handle) => handle.join().unwrap_or_else(|_| Hit {
                    label: label.clone(),
                    status: None,
                    ok: false,
                    took: Duration::ZERO,
                    problem: Some("the request thread failed".to_string()),
                }),
                // No thread to spare: send it from here instead.
                Err(_) => one(),
            }))
            .collect()
    })
}

/// The request as it goes out: URL, headers with templates expanded.
fn prepare(target: &Target, request: &WarmRequest) -> Result<Prepared, String> {
    let url = target
        .base
        .join(request.path.trim_start_matches('/'))
        .map_err(|e| format!("bad path: {e}"))?;
    let mut headers: Vec<(String, String)> = vec![
        (
            "User-Agent".to_string(),
            concat!("preheat-warmup/", env!("CARGO_PKG_VERSION")).to_string(),
        ),
        // Look like a request that came through the Heroku router.
        ("X-Forwarded-Proto".to_string(), "https".to_string()),
        ("X-Preheat-Warmup".to_string(), "1".to_string()),
    ];
    if let Some(host) = &target.host {
        headers.push(("Host".to_string(), host.clone()));
    }
    // Joins the app's server spans to the release trace (telemetry on only).
    if let Some(traceparent) = crate::telemetry::request_traceparent() {
        headers.push(("traceparent".to_string(), traceparent));
    }
    for (name, value) in &request.headers {
        let value = value.expand().map_err(|missing| missing.to_string())?;
        redact::register(&value);
        if ["content-length", "connection", "transfer-encoding"]
            .iter()
            .any(|ours| name.eq_ignore_ascii_case(ours))
        {
            continue;
        }
        headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value));
    }
    let body = match &request.body {
        Some(body) => Some(body.expand().map_err(|missing| missing.to_string())?),
        None => None,
    };
    Ok(Prepared {
        url,
        method: request.method,
        headers,
        body,
        expect: request.expect.clone(),
        expect_body: request.expect_body.clone(),
    })
}

/// One line per outcome of a path's batch:
/// `/dashboard 200 ×6 11–412ms, round 1`, `/ 500 ×4 2–5ms (expected 2xx/3xx), round 1`.
fn batch_lines(hits: &[Hit], round: u32) -> Vec<String> {
    let mut groups: BTreeMap<(bool, String, Option<String>), Vec<Duration>> = BTreeMap::new();
    for hit in hits {
        let status = hit
            .status
            .map_or_else(|| "---".to_string(), |s| s.to_string());
        groups
            .entry((!hit.ok, status, hit.problem.clone()))
            .or_default()
            .push(hit.took);
    }
    let Some(label) = hits.first().map(|h| h.label.as_str()) else {
        return Vec::new();
    };
    groups
        .into_iter()
        .map(|((_, status, problem), times)| {
            let low = times.iter().min().copied().unwrap_or_default().as_millis();
            let high = times.iter().max().copied().unwrap_or_default().as_millis();
            let count = if times.len() == 1 {
                String::new()
            } else {
                format!(" ×{}", times.len())
            };
            let took = if low == high {
                format!("{low}ms")
            } else {
                format!("{low}–{high}ms")
            };
            let problem = problem.map(|p| format!(" ({p})")).unwrap_or_default();
            redact::scrub(&format!(
                "{label} {status}{count} {took}{problem}, round {round}"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(status: Option<u16>, ok: bool, ms: u64, problem: Option<&str>) -> Hit {
        Hit {
            label: "/dashboard".to_string(),
            status,
            ok,
            took: Duration::from_millis(ms),
            problem: problem.map(str::to_string),
        }
    }

    #[test]
    fn in_flight_is_twice_web_concurrency_at_least_four() {
        assert_eq!(in_flight(4, None), 4);
        assert_eq!(in_flight(4, Some("3")), 6);
        assert_eq!(in_flight(4, Some(" 8 ")), 16);
        assert_eq!(in_flight(4, Some("lots")), 4);
        assert_eq!(in_flight(4, Some("0")), 4);
        assert_eq!(in_flight(10, Some("2")), 10);
        assert_eq!(in_flight(4, Some("1000")), 64);
    }

    #[test]
    fn a_batch_logs_one_line_per_outcome() {
        let lines = batch_lines(
            &[
                hit(Some(200), true, 11, None),
                hit(Some(200), true, 412, None),
                hit(Some(500), false, 3, Some("expected 2xx/3xx")),
                hit(None, false, 30, Some("connection refused")),
            ],
            2,
        );
        assert_eq!(
            lines,
            vec![
                "/dashboard 200 ×2 11–412ms, round 2",
                "/dashboard --- 30ms (connection refused), round 2",
                "/dashboard 500 3ms (expected 2xx/3xx), round 2",
            ]
        );
    }

    fn report(hits: Vec<Hit>, rounds: u32, judgement: Judgement, deadline_hit: bool) -> Report {
        Report {
            hits,
            rounds,
            judgement,
            took: Duration::from_millis(1200),
            deadline_hit,
        }
    }

    #[test]
    fn the_verdict_says_rounds_and_convergence() {
        let hits = vec![
            hit(Some(200), true, 812, None),
            hit(Some(200), true, 9, None),
        ];
        assert_eq!(
            report(hits.clone(), 3, Judgement::Converged, false).verdict(),
            "warm in 1.2s (3 rounds, converged; 2/2 ok, slowest /dashboard 812ms)"
        );
        let slow = Judgement::Slow {
            label: "/dashboard".to_string(),
            slowest: Duration::from_millis(412),
            fastest: Duration::from_millis(9),
        };
        let not_converged = report(hits.clone(), 5, slow, false);
        assert!(!not_converged.warm());
        assert!(not_converged.all_ok());
        assert_eq!(
            not_converged.verdict(),
            "partly warm in 1.2s (5 rounds, not converged: /dashboard still took 412ms against a fastest 9ms; 2/2 ok, slowest /dashboard 812ms)"
        );
        assert_eq!(
            report(hits, 1, Judgement::Unjudged, false).verdict(),
            "warm in 1.2s (1 round, convergence not checked (max_rounds = 1); 2/2 ok, slowest /dashboard 812ms)"
        );
    }

    #[test]
    fn the_verdict_of_failures_and_the_deadline() {
        let failed = report(
            vec![hit(Some(500), false, 3, Some("expected 2xx/3xx"))],
            5,
            Judgement::Failed {
                label: "/dashboard".to_string(),
            },
            false,
        );
        assert_eq!(
            failed.verdict(),
            "NOT warm in 1.2s (5 rounds, not converged: /dashboard failed; 0/1 ok, slowest /dashboard 3ms)"
        );
        let late = report(
            vec![hit(Some(200), true, 5, None)],
            2,
            Judgement::Unjudged,
            true,
        );
        assert!(!late.warm());
        assert_eq!(
            late.verdict(),
            "partly warm in 1.2s (2 rounds; 1/1 ok, slowest /dashboard 5ms); gave up at the warm-up deadline"
        );
    }
}
