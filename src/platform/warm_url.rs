//! The `[warmup]` requests through the app's public URL, repeated until a
//! whole round answers as expected. Right after a deploy the router may still
//! answer from old (or stopping) dynos, and under preboot it moves traffic to
//! the new dynos over a few minutes, so one failed round proves little.

use super::Session;
use crate::config::Warmup;
use crate::config::template::Template;
use crate::output;
use crate::release::signals::pause;
use crate::warmup::requests::{self, Target};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How the repeated warm-up ended.
pub(crate) enum WarmEnd {
    /// A whole round was warm: its verdict.
    Warm(String),
    /// The deadline passed: the last round's verdict.
    Deadline(String),
    /// `[confirm] rollback`: after the preboot window, every one of the
    /// failing rounds allowed had a wrong answer. Why, for the rollback line.
    Failing(String),
    Interrupted(i32),
}

/// Rounds that must all fail after the preboot window before a rollback.
pub(crate) const FAILING_ROUNDS: u32 = 3;

/// Warms through `url` until a round is warm and `keep_until` has passed.
/// `keep_until` is the preboot switch-over: until then, rounds go on even
/// when warm, so the new dynos get warm requests as the router moves to them.
pub(crate) fn warm_until_warm(
    session: &Session,
    url: &url::Url,
    keep_until: Instant,
    deadline: Instant,
    give_up: Option<u32>,
) -> WarmEnd {
    let warmup = &with_request_id(&session.config.warmup, &request_id());
    let target = Target {
        base: url.clone(),
        host: warmup.host.clone(),
    };
    let mut round = 0u32;
    let mut said_warm = false;
    let mut failing = Failing::default();
    loop {
        round += 1;
        let round_deadline = deadline.min(Instant::now() + warmup.deadline);
        let lines = Mutex::new(Vec::new());
        let report = requests::run(&target, warmup, round_deadline, &|line| {
            if let Ok(mut lines) = lines.lock() {
                lines.push(line.to_string());
            }
        });
        let lines = lines.into_inner().unwrap_or_default();
        let verdict = report.verdict();
        // Through the router, latency varies by dyno and network: a round
        // with every answer right counts, converged or not (the verdict says).
        let warm = report.all_ok();
        if warm && Instant::now() >= keep_until {
            if round == 1 {
                for line in &lines {
                    output::sub_bullet(line);
                }
            }
            return WarmEnd::Warm(verdict);
        }
        if warm {
            if !said_warm {
                output::sub_bullet(&format!(
                    "round {round}: {verdict}; warming on until the preboot switch-over is over"
                ));
                said_warm = true;
            }
        } else if round == 1 {
            for line in &lines {
                output::sub_bullet(line);
            }
            output::sub_bullet(&format!(
                "round {round}: {verdict}; retrying, the router may still answer from old dynos"
            ));
        } else {
            output::sub_bullet(&format!("round {round}: {verdict}"));
        }
        if !warm && Instant::now() >= keep_until {
            failing.add(&report.hits);
            if give_up.is_some_and(|limit| failing.rounds >= limit) {
                return WarmEnd::Failing(failing.reason());
            }
        } else {
            failing = Failing::default();
        }
        let wait = session.poll_pause();
        if Instant::now() + wait >= deadline {
            return WarmEnd::Deadline(verdict);
        }
        if let Err(signal) = pause(wait) {
            return WarmEnd::Interrupted(signal);
        }
    }
}

/// `preheat-` and 24 hex digits (time and pid): the router keeps an
/// `X-Request-ID` of 20 to 200 such characters as the `request_id` it logs, and
/// `preheat audit` leaves requests with this prefix out of the users.
fn request_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() & u128::from(u64::MAX));
    format!("preheat-{:016x}{:08x}", nanos, std::process::id())
}

/// The warm-up requests, each with `X-Request-ID: id` unless it sets its own.
fn with_request_id(warmup: &Warmup, id: &str) -> Warmup {
    let mut warmup = warmup.clone();
    if let Ok(value) = Template::parse(id) {
        for request in &mut warmup.requests {
            if !request
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("x-request-id"))
            {
                request
                    .headers
                    .push(("X-Request-ID".to_string(), value.clone()));
            }
        }
    }
    warmup
}

/// Consecutive wrong rounds after the preboot window, per request.
#[derive(Default)]
struct Failing {
    rounds: u32,
    /// label → (wrong answers, requests, the last wrong status or problem)
    by_label: Vec<(String, usize, usize, String)>,
}

impl Failing {
    fn add(&mut self, hits: &[requests::Hit]) {
        self.rounds += 1;
        for hit in hits {
            let index =
                if let Some(index) = self.by_label.iter().position(|(l, ..)| *l == hit.label) {
                    index
                } else {
                    self.by_label.push((hit.label.clone(), 0, 0, String::new()));
                    self.by_label.len() - 1
                };
            let entry = &mut self.by_label[index];
            entry.2 += 1;
            if !hit.ok {
                entry.1 += 1;
                entry.3 = match (hit.status, &hit.problem) {
                    (Some(status), _) if !(200..400).contains(&status) => {
                        format!("answered {status}")
                    }
                    (_, Some(problem)) => format!("failed ({problem})"),
                    (Some(status), None) => format!("answered {status}"),
                    (None, None) => "failed".to_string(),
                };
            }
        }
    }

    /// `/checkout answered 500 on 6 of 6 requests through the router`
    fn reason(&self) -> String {
        let parts: Vec<String> = self
            .by_label
            .iter()
            .filter(|(_, wrong, ..)| *wrong > 0)
            .map(|(label, wrong, total, how)| {
                format!("{label} {how} on {wrong} of {total} requests")
            })
            .collect();
        crate::redact::scrub(&format!("{} through the router", parts.join(", ")))
    }
}

/// Whether preboot is on; any answer but a clear "yes" means no.
pub(crate) fn preboot_window(session: &Session, deadline: Instant) -> Option<Duration> {
    match session.api.preboot(deadline) {
        Ok(true) => Some(session.switch_over()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_carries_the_preheat_request_id_unless_it_sets_one() {
        let id = request_id();
        assert!(
            id.starts_with(crate::audit::REQUEST_ID_PREFIX) && (20..=200).contains(&id.len()),
            "{id}"
        );
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        let config = crate::config::Config::parse_bytes(
            b"[warmup]\npaths = [\"/\"]\n[[warmup.request]]\npath = \"/x\"\nheaders = { X-Request-Id = \"mine-0000000000000000000\" }\n",
            std::path::Path::new("preheat.toml"),
        );
        let Ok(config) = config else {
            panic!("the fixture config parses");
        };
        let warmup = with_request_id(&config.warmup, &id);
        let ids: Vec<String> = warmup
            .requests
            .iter()
            .map(|r| {
                r.headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case("x-request-id"))
                    .map(|(_, v)| v.raw().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        assert_eq!(ids, vec![id, "mine-0000000000000000000".to_string()]);
    }
}
