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
use crate::warmup::converge::{self, Fastest, Judgement, Sample};
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
    /// Where a same-host redirect led, when it was followed.
    pub(crate) redirected_to: Option<String>,
}

/// Same-host redirects followed per request, at most.
pub(crate) const MAX_REDIRECTS: usize = 3;
/// The first pause after a round that failed; it doubles up to `MAX_BACK_OFF`.
const FIRST_BACK_OFF: Duration = Duration::from_millis(250);
const MAX_BACK_OFF: Duration = Duration::from_secs(4);

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
        let mut redirected: Vec<String> = self
            .hits
            .iter()
            .filter_map(|h| Some(format!("{} → {}", h.label, h.redirected_to.as_ref()?)))
            .collect();
        redirected.sort();
        redirected.dedup();
        if !redirected.is_empty() {
            text.push_str("; redirected: ");
            text.push_str(&redirected.join(", "));
        }
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

/// Requests in flight per path: `max(concurrency, 2 × WEB_CONCURRENCY ×
/// RAILS_MAX_THREADS)`, with `concurrency` 4 unless set. A missing or invalid
/// `WEB_CONCURRENCY` or `RAILS_MAX_THREADS` counts as 1. A threaded worker
/// (puma) takes several requests at once, so a burst of two per worker can
/// all land on one of them and leave another cold.
pub(crate) fn in_flight(
    concurrency: u32,
    web_concurrency: Option<&str>,
    threads: Option<&str>,
) -> usize {
    let wanted = concurrency
        .max(
            workers(web_concurrency)
                .saturating_mul(workers(threads))
                .saturating_mul(2),
        )
        .min(MAX_IN_FLIGHT);
    usize::try_from(wanted).unwrap_or(4)
}

/// Threads per worker, from the variables the servers read on Heroku:
/// `RAILS_MAX_THREADS` (puma), else `--threads N` in `GUNICORN_CMD_ARGS`.
pub(crate) fn threads(rails: Option<&str>, gunicorn: Option<&str>) -> Option<String> {
    if let Some(rails) = rails.filter(|r| !r.trim().is_empty()) {
        return Some(rails.to_string());
    }
    let mut words = gunicorn?.split_whitespace();
    while let Some(word) = words.next() {
        if let Some(n) = word.strip_prefix("--threads=") {
            return Some(n.to_string());
        }
        if word == "--threads" {
            return words.next().map(str::to_string);
        }
    }
    None
}

/// `WEB_CONCURRENCY` as a worker count: 1 when unset, zero or not a number.
pub(crate) fn workers(web_concurrency: Option<&str>) -> u32 {
    web_concurrency
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// Runs rounds until they converge; `log` gets a line per path and round.
/// Stops at `max_rounds` even when requests fail: a smoke test's answer.
pub(crate) fn run(
    target: &Target,
    warmup: &Warmup,
    deadline: Instant,
    log: &(dyn Fn(&str) + Sync),
) -> Report {
    rounds(target, warmup, deadline, log, false)
}

/// As `run`, but rounds with failed requests (a 503 while the app boots, a
/// 403 from a host check being fixed) are retried, backing off, until the
/// deadline: the boot warmer and the gate, which then open as before.
pub(crate) fn run_until_deadline(
    target: &Target,
    warmup: &Warmup,
    deadline: Instant,
    log: &(dyn Fn(&str) + Sync),
) -> Report {
    rounds(target, warmup, deadline, log, true)
}

fn rounds(
    target: &Target,
    warmup: &Warmup,
    deadline: Instant,
    log: &(dyn Fn(&str) + Sync),
    retry_failures: bool,
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
    let threads = threads(
        std::env::var("RAILS_MAX_THREADS").ok().as_deref(),
        std::env::var("GUNICORN_CMD_ARGS").ok().as_deref(),
    );
    let in_flight = in_flight(
        warmup.concurrency,
        web_concurrency.as_deref(),
        threads.as_deref(),
    );
    let mut back_off = FIRST_BACK_OFF;
    let mut fastest = Fastest::new(
        warmup.requests.len(),
        converge::queue_depth(in_flight, converge::parallelism()),
    );
    loop {
        report.rounds += 1;
        let mut paths = Vec::new();
        for request in &warmup.requests {
            if Instant::now() >= deadline {
                report.deadline_hit = true;
                break;
            }
            let (hits, sent) = batch(&sender, target, request, in_flight, deadline);
            for line in batch_lines(&hits, report.rounds, &sent) {
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
        let failed = paths
            .iter()
            .any(|(_, samples)| samples.is_empty() || samples.iter().any(|s| !s.ok));
        if report.rounds >= warmup.max_rounds.max(1) && !(failed && retry_failures) {
            break;
        }
        if failed && retry_failures {
            // An app that answers 503 while it boots, or a warm-up briefly
            // misconfigured: wait, then try again until the deadline.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                report.deadline_hit = true;
                break;
            }
            thread::sleep(back_off.min(left));
            back_off = (back_off * 2).min(MAX_BACK_OFF);
        }
        if Instant::now() >= deadline {
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

/// `count` copies of one request at once, each on its own connection; and
/// what was sent as `Host` and `X-Forwarded-Proto`, for the failure lines.
fn batch(
    sender: &Sender,
    target: &Target,
    request: &WarmRequest,
    count: usize,
    deadline: Instant,
) -> (Vec<Hit>, String) {
    let label = label(request);
    let prepared = match prepare(target, request) {
        Ok(prepared) => prepared,
        Err(problem) => {
            let hit = Hit {
                label,
                status: None,
                ok: false,
                took: Duration::ZERO,
                problem: Some(problem),
                redirected_to: None,
            };
            return (vec![hit], String::new());
        }
    };
    let public = Public::of(&prepared);
    let one = || {
        let started = Instant::now();
        let mut prepared = prepared.clone();
        let mut redirected_to = None;
        let mut hops = 0;
        loop {
            let answer = match sender.send(&prepared, deadline) {
                Ok(answer) => answer,
                Err(problem) => {
                    return Hit {
                        label: label.clone(),
                        status: None,
                        ok: false,
                        took: started.elapsed(),
                        problem: Some(problem),
                        redirected_to,
                    };
                }
            };
            let mut hit = Hit {
                label: label.clone(),
                status: Some(answer.status),
                ok: answer.problem.is_none(),
                took: if hops == 0 {
                    answer.took
                } else {
                    started.elapsed()
                },
                problem: answer.problem,
                redirected_to: redirected_to.clone(),
            };
            let Some(location) = answer.location.filter(|_| hit.ok) else {
                return hit;
            };
            // A redirect rendered nothing: it warms nothing unless followed.
            hit.ok = false;
            match public.redirect(&prepared.url, &location) {
                Redirect::Follow(url) if hops < MAX_REDIRECTS => {
                    hops += 1;
                    redirected_to = Some(url.path().to_string());
                    prepared.url = url;
                }
                Redirect::Follow(_) => {
                    hit.problem = Some(format!(
                        "still redirecting after {MAX_REDIRECTS} redirects, to {location}"
                    ));
                    return hit;
                }
                Redirect::Problem(problem) => {
                    hit.problem = Some(problem);
                    return hit;
                }
            }
        }
    };
    let hits = thread::scope(|scope| {
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
                    redirected_to: None,
                }),
                // No thread to spare: send it from here instead.
                Err(_) => one(),
            }))
            .collect()
    });
    (hits, public.describe())
}

/// How the app sees a warm-up request: the scheme it is told
/// (`X-Forwarded-Proto`) and the `Host`; a redirect is judged against them.
struct Public {
    scheme: String,
    host: String,
}

enum Redirect {
    /// Same scheme and host, another path: warm that instead.
    Follow(url::Url),
    /// Off the app, or the same path elsewhere: one line saying what to set.
    Problem(String),
}

impl Public {
    fn of(prepared: &Prepared) -> Self {
        let header = |name: &str| {
            prepared
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let url = &prepared.url;
        let host = header("host").unwrap_or_else(|| match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or("localhost")),
            None => url.host_str().unwrap_or("localhost").to_string(),
        });
        let scheme = header("x-forwarded-proto")
            .map(|v| {
                v.split(',')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| url.scheme().to_string());
        Self { scheme, host }
    }

    /// `Host: blog.example.com, X-Forwarded-Proto: https`
    fn describe(&self) -> String {
        format!("Host: {}, X-Forwarded-Proto: {}", self.host, self.scheme)
    }

    fn redirect(&self, sent: &url::Url, location: &str) -> Redirect {
        let seen = format!("{}://{}{}", self.scheme, self.host, sent.path());
        let Some(to) = url::Url::parse(&seen)
            .ok()
            .and_then(|base| base.join(location).ok())
        else {
            return Redirect::Problem(format!("redirects to `{location}`, which is not a URL"));
        };
        let to_host = match to.port() {
            Some(port) => format!("{}:{port}", to.host_str().unwrap_or("")),
            None => to.host_str().unwrap_or("").to_string(),
        };
        let same_host = to_host.eq_ignore_ascii_case(&self.host)
            || to
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host));
        let same_path = to.path() == sent.path();
        if same_host && to.scheme() == self.scheme {
            if same_path && to.query() == sent.query() {
                return Redirect::Problem(format!("redirects to itself ({location})"));
            }
            let mut next = sent.clone();
            next.set_path(to.path());
            next.set_query(to.query());
            return Redirect::Follow(next);
        }
        Redirect::Problem(if same_path && same_host {
            format!(
                "redirects to {to}, the same page on {}: the app did not take X-Forwarded-Proto: {}; set it in [warmup] headers, or make the app trust the router's header",
                to.scheme(),
                self.scheme
            )
        } else if same_path {
            format!(
                "redirects to {to}, the same page on another host: set `[warmup] host = \"{to_host}\"` (sent Host: {})",
                self.host
            )
        } else {
            format!("redirects off the app to {to}; warm the page it leads to instead")
        })
    }
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
        // Header values may be secrets; these never are, and masking a
        // value like `http` would mask every URL in the log.
        if ![
            "host",
            "x-forwarded-proto",
            "x-forwarded-port",
            "accept",
            "user-agent",
        ]
        .iter()
        .any(|plain| name.eq_ignore_ascii_case(plain))
        {
            redact::register(&value);
        }
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
/// `/dashboard 200 ×6 11–412ms, round 1`, `/ 500 ×4 2–5ms (expected 2xx/3xx), round 1`;
/// a failing line says what was `sent` (`Host`, `X-Forwarded-Proto`).
fn batch_lines(hits: &[Hit], round: u32, sent: &str) -> Vec<String> {
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
        .map(|((failed, status, problem), times)| {
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
            let problem = match problem {
                Some(p) if failed && !sent.is_empty() => format!(" ({p}; sent {sent})"),
                Some(p) => format!(" ({p})"),
                None => String::new(),
            };
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
            redirected_to: None,
        }
    }

    #[test]
    fn in_flight_is_twice_web_concurrency_at_least_four() {
        assert_eq!(in_flight(4, None, None), 4);
        assert_eq!(in_flight(4, Some("3"), None), 6);
        assert_eq!(in_flight(4, Some(" 8 "), None), 16);
        assert_eq!(in_flight(4, Some("lots"), None), 4);
        assert_eq!(in_flight(4, Some("0"), None), 4);
        assert_eq!(in_flight(10, Some("2"), None), 10);
        assert_eq!(in_flight(4, Some("1000"), None), 64);
        // puma: 3 workers of 2 threads.
        assert_eq!(in_flight(4, Some("3"), Some("2")), 12);
        assert_eq!(in_flight(4, Some("3"), Some("many")), 6);
        // gunicorn gthread, from GUNICORN_CMD_ARGS.
        assert_eq!(
            threads(None, Some("--threads 4 --timeout 30")).as_deref(),
            Some("4")
        );
        assert_eq!(
            threads(None, Some("--timeout 30 --threads=3")).as_deref(),
            Some("3")
        );
        assert_eq!(
            threads(Some("5"), Some("--threads 4")).as_deref(),
            Some("5")
        );
        assert_eq!(threads(None, Some("--workers 3")), None);
        assert_eq!(threads(None, None), None);
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
            "Host: blog.example.com, X-Forwarded-Proto: https",
        );
        assert_eq!(
            lines,
            vec![
                "/dashboard 200 ×2 11–412ms, round 2",
                "/dashboard --- 30ms (connection refused; sent Host: blog.example.com, X-Forwarded-Proto: https), round 2",
                "/dashboard 500 3ms (expected 2xx/3xx; sent Host: blog.example.com, X-Forwarded-Proto: https), round 2",
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

    fn public(host: &str, scheme: &str) -> Public {
        Public {
            scheme: scheme.to_string(),
            host: host.to_string(),
        }
    }

    fn sent(path: &str) -> url::Url {
        url::Url::parse(&format!("http://127.0.0.1:5000{path}")).expect("url")
    }

    #[test]
    fn a_same_host_redirect_is_followed_on_the_local_address() {
        let Redirect::Follow(next) =
            public("blog.test", "https").redirect(&sent("/old"), "https://blog.test/posts?page=2")
        else {
            panic!("not followed");
        };
        assert_eq!(next.as_str(), "http://127.0.0.1:5000/posts?page=2");
        assert!(matches!(
            public("blog.test", "https").redirect(&sent("/old"), "/posts"),
            Redirect::Follow(_)
        ));
    }

    #[test]
    fn the_same_page_on_another_scheme_or_host_says_what_to_set() {
        let Redirect::Problem(scheme) =
            public("blog.test", "http").redirect(&sent("/posts"), "https://blog.test/posts")
        else {
            panic!("followed");
        };
        assert!(scheme.contains("X-Forwarded-Proto: http"), "{scheme}");
        let Redirect::Problem(host) =
            public("127.0.0.1:5000", "https").redirect(&sent("/posts"), "https://blog.test/posts")
        else {
            panic!("followed");
        };
        assert!(host.contains("[warmup] host = \"blog.test\""), "{host}");
        let Redirect::Problem(away) =
            public("blog.test", "https").redirect(&sent("/login"), "https://sso.test/auth")
        else {
            panic!("followed");
        };
        assert!(away.contains("off the app"), "{away}");
    }

    #[test]
    fn the_verdict_names_redirected_paths() {
        let mut followed = hit(Some(200), true, 9, None);
        followed.label = "/old-posts".to_string();
        followed.redirected_to = Some("/posts".to_string());
        let verdict = report(vec![followed], 2, Judgement::Converged, false).verdict();
        assert!(
            verdict.ends_with("; redirected: /old-posts → /posts"),
            "{verdict}"
        );
    }
}
