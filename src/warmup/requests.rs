//! The warm-up itself: wait until a web process accepts connections, then
//! replay the `[warmup]` requests against it, `concurrency` at a time.

use crate::config::duration::human;
use crate::config::{WarmRequest, Warmup};
use crate::redact;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

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
    pub(crate) took: Duration,
    pub(crate) deadline_hit: bool,
}

impl Report {
    pub(crate) fn ok_count(&self) -> usize {
        self.hits.iter().filter(|h| h.ok).count()
    }

    pub(crate) fn all_ok(&self) -> bool {
        !self.deadline_hit && !self.hits.is_empty() && self.ok_count() == self.hits.len()
    }

    /// `warm in 1.84s (3/3 requests ok, slowest /dashboard 1.52s)`
    pub(crate) fn verdict(&self, expected: usize) -> String {
        let slowest = self
            .hits
            .iter()
            .max_by_key(|h| h.took)
            .map(|h| format!(", slowest {} {}", h.label, human(h.took)))
            .unwrap_or_default();
        let state = if self.all_ok() && self.hits.len() == expected {
            "warm"
        } else if self.ok_count() > 0 {
            "partly warm"
        } else {
            "NOT warm"
        };
        let mut text = format!(
            "{state} in {} ({}/{expected} requests ok{slowest})",
            human(self.took),
            self.ok_count()
        );
        if self.deadline_hit {
            text.push_str("; gave up at the warm-up deadline");
        }
        text
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

fn client() -> Result<reqwest::blocking::Client, String> {
    reqwest::blocking::Client::builder()
        .user_agent(concat!("preheat-warmup/", env!("CARGO_PKG_VERSION")))
        // A redirect to https://your-domain must not leave this machine.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("could not set up HTTP: {e}"))
}

/// Runs every round of requests; `log` gets one line per request.
pub(crate) fn run(
    target: &Target,
    warmup: &Warmup,
    deadline: Instant,
    log: &(dyn Fn(&str) + Sync),
) -> Report {
    let started = Instant::now();
    let client = match client() {
        Ok(client) => client,
        Err(problem) => {
            log(&problem);
            return Report {
                hits: Vec::new(),
                took: started.elapsed(),
                deadline_hit: false,
            };
        }
    };
    let hits = Mutex::new(Vec::new());
    let mut deadline_hit = false;
    'rounds: for _ in 0..warmup.rounds {
        let next = AtomicUsize::new(0);
        let workers = usize::try_from(warmup.concurrency)
            .unwrap_or(1)
            .min(warmup.requests.len());
        thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::SeqCst);
                        let Some(request) = warmup.requests.get(index) else {
                            break;
                        };
                        if Instant::now() >= deadline {
                            break;
                        }
                        let hit = send(&client, target, request, deadline);
                        log(&hit_line(&hit));
                        if let Ok(mut list) = hits.lock() {
                            list.push(hit);
                        }
                    }
                });
            }
        });
        if Instant::now() >= deadline {
            deadline_hit = true;
            break 'rounds;
        }
    }
    Report {
        hits: hits.into_inner().unwrap_or_default(),
        took: started.elapsed(),
        deadline_hit,
    }
}

fn hit_line(hit: &Hit) -> String {
    let status = hit
        .status
        .map_or_else(|| "---".to_string(), |s| s.to_string());
    let mut line = format!("{} {status} {}ms", hit.label, hit.took.as_millis());
    if let Some(problem) = &hit.problem {
        let _ = write!(line, " ({problem})");
    }
    redact::scrub(&line)
}

fn send(
    client: &reqwest::blocking::Client,
    target: &Target,
    request: &WarmRequest,
    deadline: Instant,
) -> Hit {
    let label = if request.method == crate::config::Method::Get {
        request.path.clone()
    } else {
        format!("{} {}", request.method.as_str(), request.path)
    };
    let started = Instant::now();
    let fail = |problem: String| Hit {
        label: label.clone(),
        status: None,
        ok: false,
        took: started.elapsed(),
        problem: Some(problem),
    };
    let url = match target.base.join(request.path.trim_start_matches('/')) {
        Ok(url) => url,
        Err(e) => return fail(format!("bad path: {e}")),
    };
    let Ok(method) = reqwest::Method::from_bytes(request.method.as_str().as_bytes()) else {
        return fail("bad method".to_string());
    };
    let mut builder = client
        .request(method, url)
        .timeout(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        )
        // Look like a request that came through the Heroku router.
        .header("X-Forwarded-Proto", "https")
        .header("X-Preheat-Warmup", "1");
    if let Some(host) = &target.host {
        builder = builder.header(reqwest::header::HOST, host.as_str());
    }
    for (name, value) in &request.headers {
        match value.expand() {
            Ok(value) => {
                redact::register(&value);
                builder = builder.header(name.as_str(), value);
            }
            Err(missing) => return fail(missing.to_string()),
        }
    }
    if let Some(body) = &request.body {
        match body.expand() {
            Ok(body) => builder = builder.body(body),
            Err(missing) => return fail(missing.to_string()),
        }
    }
    match builder.send() {
        Ok(response) => {
            let status = response.status().as_u16();
            let mut problem = None;
            if !request.expect.accepts(status) {
                problem = Some(format!("expected {}", request.expect));
            }
            if let Some(needle) = &request.expect_body {
                let body = response.text().unwrap_or_default();
                if problem.is_none() && !body.contains(needle.as_str()) {
                    problem = Some(format!("body does not contain {needle:?}"));
                }
            } else {
                // Read the body so the app's whole response path runs.
                let _ = response.bytes();
            }
            Hit {
                label,
                status: Some(status),
                ok: problem.is_none(),
                took: started.elapsed(),
                problem,
            }
        }
        Err(error) => fail(crate::release::httpstep::describe_error(&error)),
    }
}
