//! `preheat await-live VERSION`: the logic of `heroku ps:wait`, done right.
//!
//! 1. Poll the release until it succeeded and is current; stop when it
//!    failed or a newer release superseded it.
//! 2. Poll the dynos until every `web` dyno is `up` on VERSION or later.
//! 3. Warm through the public URL until a whole round is warm.
//! 4. With `[confirm] rollback`, a live release whose web dynos crash or
//!    whose warm-up keeps answering wrong goes back to the one before.
//! 5. POST `[notify]`, whatever the outcome.

use super::rollback::{self, Rolled};
use super::warm_url::{self, WarmEnd};
use super::{ApiError, Dyno, Session, by_name, fail_setup, offset, parse_version};
use crate::config::duration::human;
use crate::config::skip::Skip;
use crate::exit;
use crate::output;
use crate::platform::notify::{self, Notice, Outcome};
use crate::release::signals;
use crate::release::signals::pause;
use crate::telemetry::{self, Telemetry};
use std::time::{Duration, Instant};

/// Why the wait ended early.
enum Stop {
    /// The release failed, or there is nothing to confirm.
    Failed(String),
    /// A newer release replaced this one before it was live.
    Superseded(Option<u64>),
    /// The deadline passed while waiting for this.
    Timeout(String),
    /// The release is live and broken: its web dynos crash, or its warm-up
    /// through the router keeps answering wrong (only with `[confirm] rollback`).
    Broken(String),
    Api(ApiError),
    Interrupted(i32),
}

impl From<ApiError> for Stop {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Interrupted(signal) => Stop::Interrupted(signal),
            ApiError::Deadline { request } => Stop::Timeout(format!("an answer to {request}")),
            other => Stop::Api(other),
        }
    }
}

struct Watch<'a> {
    session: &'a Session,
    version: u64,
    started: Instant,
    deadline: Instant,
    description: Option<String>,
    /// The web dynos as last seen.
    dynos: Vec<Dyno>,
    live_at: Option<Duration>,
    warm_at: Option<Duration>,
    url: Option<url::Url>,
    /// How it was warmed, when not through the public URL.
    warm_note: Option<String>,
}

/// The `await-live` command.
pub(crate) fn run(version: Option<&str>, app: Option<&str>) -> u8 {
    let started = Instant::now();
    let (version, skip, session) = match start(version, app) {
        Ok(found) => found,
        Err(code) => return code,
    };
    output::header(&format!(
        "preheat await-live v{version} ({})",
        session.api.app()
    ));
    // The release's trace: HEROKU_RELEASE_VERSION may be absent here, the version is not.
    let tel = Telemetry::from_lookup(&|name| {
        if name == "HEROKU_RELEASE_VERSION" {
            Some(format!("v{version}"))
        } else {
            std::env::var(name).ok()
        }
    });
    let mut span = tel.span("preheat await-live");
    // The warm-up through the router carries the trace too.
    telemetry::set_request_traceparent(tel.traceparent(&span));
    let mut watch = Watch {
        session: &session,
        version,
        started,
        deadline: started + session.confirm.deadline,
        description: None,
        dynos: Vec::new(),
        live_at: None,
        warm_at: None,
        url: None,
        warm_note: None,
    };
    let result = watch
        .release_live()
        .and_then(|()| watch.dynos_up())
        .and_then(|()| watch.warm(skip));
    telemetry::set_request_traceparent(None);
    let attempt = match &result {
        Err(Stop::Broken(reason)) => Some(watch.roll_back(reason)),
        _ => None,
    };
    let mut ending = Ending::of(&result, &session);
    let mut note = None;
    match &attempt {
        Some(rollback::End::Rolled(rolled)) => {
            ending.outcome = Outcome::RolledBack;
            note = Some(serde_json::json!({
                "from": rolled.from,
                "to": rolled.to,
                "release": rolled.release,
                "reason": crate::redact::scrub(&rolled.reason),
            }));
        }
        Some(rollback::End::Refused(line)) => {
            note = Some(serde_json::json!({ "refused": crate::redact::scrub(line) }));
        }
        Some(rollback::End::Interrupted(signal)) => {
            ending.code = 128 + u8::try_from(*signal).unwrap_or(0);
        }
        None => {}
    }
    let text = match &attempt {
        Some(rollback::End::Rolled(rolled)) => rolled_back_line(rolled),
        _ => watch.verdict(ending.outcome, ending.reason.as_deref()),
    };
    let shown = shown_and_traced(&mut span, &watch, &ending, attempt.as_ref(), &text);
    let text_for_notify = text;
    let text = shown;
    match &result {
        Ok(()) => output::bullet(&text),
        Err(Stop::Api(error)) => output::error(&format!("{text}\n\n{error}")),
        Err(Stop::Failed(_)) => output::error(&format!(
            "{text}\n\nSee `heroku releases:info v{version}` and `heroku ps`; the release output is in `heroku releases:output v{version}`."
        )),
        Err(Stop::Superseded(_)) => output::warning(&format!(
            "{text}\n\nThe newer release confirms itself when it was scheduled by `preheat release`."
        )),
        Err(Stop::Timeout(_)) => output::error(&format!(
            "{text}\n\nSee `heroku ps` for dynos that did not come up, or raise `[confirm] deadline` in preheat.toml."
        )),
        Err(Stop::Broken(_) | Stop::Interrupted(_)) => output::error(&text),
    }
    let delivered = notify(
        &watch,
        skip,
        (ending.outcome, ending.reason, ending.superseded_by),
        text_for_notify,
        note,
    );
    span.event(
        "notified",
        &[("preheat.notify.delivered", delivered.into())],
    );
    tel.end(span);
    tel.shutdown();
    if delivered || ending.code != exit::OK {
        ending.code
    } else {
        exit::FAILED
    }
}

/// The stages the watch reached, as span events and attributes.
fn trace_watch(span: &mut telemetry::Span, watch: &Watch<'_>, outcome: &str) {
    span.attr("preheat.outcome", outcome);
    span.attr("preheat.dynos", watch.dynos.len());
    if let Some(at) = watch.live_at {
        span.event(
            "release current",
            &[("preheat.elapsed_s", at.as_secs_f64().into())],
        );
    }
    if !watch.dynos.is_empty() {
        span.event("dynos up", &[("preheat.dynos", watch.dynos.len().into())]);
    }
    if let Some(at) = watch.warm_at {
        span.event("warm", &[("preheat.elapsed_s", at.as_secs_f64().into())]);
    }
}

/// The version, `PREHEAT_SKIP` and the session; on a usage error, its exit code.
fn start(version: Option<&str>, app: Option<&str>) -> Result<(u64, Skip, Session), u8> {
    if let Err(error) = signals::install() {
        output::error(&format!("Could not install signal handlers: {error}"));
        return Err(exit::FAILED);
    }
    let given = version
        .map(str::to_string)
        .or_else(|| std::env::var("HEROKU_RELEASE_VERSION").ok())
        .filter(|v| !v.trim().is_empty());
    let Some(given) = given else {
        output::header("preheat await-live");
        output::error(
            "No release version: pass one, like `preheat await-live v42`, or set HEROKU_RELEASE_VERSION.\n\n`preheat release` passes it when it schedules this command; `heroku labs:enable runtime-dyno-metadata` makes it available to every dyno.",
        );
        return Err(exit::USAGE);
    };
    let version = parse_version(&given).map_err(|why| {
        output::header("preheat await-live");
        output::error(&why);
        exit::USAGE
    })?;
    let skip = Skip::from_env().map_err(|error| {
        output::header(&format!("preheat await-live v{version}"));
        output::error(&error.to_string());
        exit::USAGE
    })?;
    let session = Session::start(app).map_err(|error| {
        output::header(&format!("preheat await-live v{version}"));
        fail_setup(&error)
    })?;
    Ok((version, skip, session))
}

/// The outcome for the webhook, and the exit code.
struct Ending {
    outcome: Outcome,
    reason: Option<String>,
    superseded_by: Option<u64>,
    code: u8,
}

impl Ending {
    fn of(result: &Result<(), Stop>, session: &Session) -> Self {
        let failed = |reason: String, code: u8| Ending {
            outcome: Outcome::Failed,
            reason: Some(reason),
            superseded_by: None,
            code,
        };
        match result {
            Ok(()) => Ending {
                outcome: Outcome::Warm,
                reason: None,
                superseded_by: None,
                code: exit::OK,
            },
            Err(Stop::Failed(why) | Stop::Broken(why)) => failed(why.clone(), exit::FAILED),
            Err(Stop::Superseded(by)) => Ending {
                superseded_by: *by,
                ..failed(
                    match by {
                        Some(newer) => format!("superseded by v{newer} before it was live"),
                        None => "superseded by a newer release before it was live".to_string(),
                    },
                    exit::FAILED,
                )
            },
            Err(Stop::Timeout(what)) => Ending {
                outcome: Outcome::Timeout,
                reason: Some(format!(
                    "gave up at the {} deadline, waiting for {what}",
                    human(session.confirm.deadline)
                )),
                superseded_by: None,
                code: exit::DEADLINE,
            },
            Err(Stop::Api(error)) => failed(
                error.summary(),
                if error.is_auth() {
                    exit::USAGE
                } else {
                    exit::FAILED
                },
            ),
            Err(Stop::Interrupted(signal)) => failed(
                format!("stopped by {}", signals::name(*signal)),
                128 + u8::try_from(*signal).unwrap_or(0),
            ),
        }
    }
}

/// Step 4: the webhook, whatever the outcome. `false` when it was not delivered.
fn notify(
    watch: &Watch<'_>,
    skip: Skip,
    (outcome, reason, superseded_by): (Outcome, Option<String>, Option<u64>),
    text: String,
    rollback: Option<serde_json::Value>,
) -> bool {
    let session = watch.session;
    let Some(notify) = &session.config.notify else {
        return true;
    };
    if skip.notify {
        output::bullet("Notify: skipped (PREHEAT_SKIP=notify)");
        return true;
    }
    let notice = Notice {
        app: session.api.app().to_string(),
        version: watch.version,
        commit: commit(watch.description.as_deref()),
        outcome,
        reason,
        superseded_by,
        live_after: watch.live_at,
        warm_after: watch.warm_at,
        elapsed: watch.elapsed(),
        dynos: watch.dynos.clone(),
        url: watch.url.as_ref().map(ToString::to_string),
        text,
        rollback,
    };
    output::bullet("Notify");
    let backoff =
        (session.confirm.poll / 5).clamp(Duration::from_millis(10), Duration::from_secs(1));
    // 15s an attempt at the 5s poll; scaled down, like the backoff, under the test knob.
    let attempt = (session.confirm.poll * 3).clamp(Duration::from_secs(2), Duration::from_secs(15));
    // Its own budget: a timed-out wait still gets its notification out.
    match notify::send(
        notify,
        &notice,
        (backoff, attempt),
        Instant::now() + Duration::from_mins(1),
    ) {
        Ok(line) => {
            output::sub_bullet(&format!("POST {line}"));
            true
        }
        Err(error) => {
            output::error(&format!("The notification was not delivered.\n\n{error}"));
            false
        }
    }
}

impl Watch<'_> {
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A poll's answer; the deadline passing during its request is the
    /// wait's timeout, named for what was awaited, not for the request.
    fn polled<T>(result: Result<T, ApiError>, waiting_for: &str) -> Result<T, Stop> {
        result.map_err(|error| match error {
            ApiError::Deadline { request } => {
                Stop::Timeout(format!("{waiting_for} ({request} was unanswered)"))
            }
            other => other.into(),
        })
    }

    /// Pauses one poll interval, or stops at the deadline.
    fn next_poll(&self, waiting_for: &str) -> Result<(), Stop> {
        let wait = self.session.poll_pause();
        if Instant::now() + wait >= self.deadline {
            return Err(Stop::Timeout(waiting_for.to_string()));
        }
        pause(wait).map_err(Stop::Interrupted)
    }

    /// Step 1: the release succeeded and is current.
    fn release_live(&mut self) -> Result<(), Stop> {
        let api = &self.session.api;
        let version = self.version;
        output::bullet(&format!("Release v{version}"));
        let mut last = String::new();
        let waiting_for = format!("release v{version} to succeed");
        loop {
            let release = Self::polled(api.release(version, self.deadline), &waiting_for)?;
            if release.description.is_some() {
                self.description.clone_from(&release.description);
            }
            let state = match (release.status.as_str(), release.current) {
                ("succeeded", true) => {
                    output::sub_bullet(&format!(
                        "v{version} succeeded and is current ({})",
                        offset(self.elapsed())
                    ));
                    return Ok(());
                }
                ("failed", _) => {
                    output::sub_bullet(&format!("v{version} failed ({})", offset(self.elapsed())));
                    return Err(Stop::Failed(format!(
                        "release v{version} failed: its release phase did not succeed"
                    )));
                }
                ("succeeded", false) => {
                    // A rollback or a later deploy makes a newer release.
                    let newest = api.newest_release(self.deadline)?;
                    match newest {
                        Some(newer) if newer.version > version => {
                            output::sub_bullet(&format!(
                                "v{version} succeeded, but v{} replaced it ({})",
                                newer.version,
                                offset(self.elapsed())
                            ));
                            return Err(Stop::Superseded(Some(newer.version)));
                        }
                        _ => "succeeded, not current yet".to_string(),
                    }
                }
                ("pending", _) => "pending: release phase still running".to_string(),
                (other, _) => other.to_string(),
            };
            if state != last {
                output::sub_bullet(&format!("v{version}: {state}"));
                last = state;
            }
            self.next_poll(&waiting_for)?;
        }
    }

    /// Step 2: every web dyno is up on this release or a later one.
    fn dynos_up(&mut self) -> Result<(), Stop> {
        let mut crash_log = Crashes::default();
        let result = self.watch_dynos(&mut crash_log);
        // Every way this step can time out goes through the crash check.
        result.map_err(|stop| self.timed_out(&crash_log, stop))
    }

    fn watch_dynos(&mut self, crash_log: &mut Crashes) -> Result<(), Stop> {
        let api = &self.session.api;
        let version = self.version;
        output::bullet("Web dynos");
        let mut last = String::new();
        let mut empty = 0;
        let mut checked_newer = false;
        let waiting_for = format!("every web dyno to be up on v{version}");
        loop {
            let mut dynos: Vec<Dyno> = Self::polled(api.dynos(self.deadline), &waiting_for)?
                .into_iter()
                .filter(|d| d.process_type() == "web")
                .collect();
            by_name(&mut dynos);
            self.dynos.clone_from(&dynos);
            let ready = dynos
                .iter()
                .filter(|d| d.is_up() && d.version().is_some_and(|v| v >= version))
                .count();
            let crashed: Vec<&str> = dynos
                .iter()
                .filter(|d| d.state == "crashed" && d.version() == Some(version))
                .map(|d| d.name.as_str())
                .collect();
            if let Some(twice) = crash_log.seen(&crashed)
                && self.session.confirm.rollback
            {
                return Err(Stop::Broken(format!("{twice} crashed twice on v{version}")));
            }
            if dynos.is_empty() {
                empty += 1;
                if empty >= 3 {
                    return Err(Stop::Failed(format!(
                        "no web dynos are running on {} (is `web` scaled to 0? `heroku ps:scale web=1`)",
                        api.app()
                    )));
                }
            } else if ready == dynos.len() {
                let live = self.elapsed();
                self.live_at = Some(live);
                output::sub_bullet(&format!(
                    "{ready}/{ready} up on v{version}{} ({})",
                    if dynos.iter().any(|d| d.version() > Some(version)) {
                        " or later"
                    } else {
                        ""
                    },
                    offset(live)
                ));
                return Ok(());
            }
            let line = format!(
                "{ready}/{} up on v{version}: {}",
                dynos.len(),
                dynos.iter().map(Dyno::line).collect::<Vec<_>>().join(", ")
            );
            if line != last {
                output::sub_bullet(&line);
                last = line;
            }
            if !checked_newer && dynos.iter().any(|d| d.version() > Some(version)) {
                checked_newer = true;
                let release = Self::polled(api.release(version, self.deadline), &waiting_for)?;
                if !release.current {
                    let newest = Self::polled(api.newest_release(self.deadline), &waiting_for)?;
                    return Err(Stop::Superseded(newest.map(|r| r.version)));
                }
            }
            self.next_poll(&waiting_for)?;
        }
    }

    /// Past the deadline, a web dyno that crashed on this release and is
    /// still not up is the release failing, not the platform being slow.
    fn timed_out(&self, crash_log: &Crashes, stop: Stop) -> Stop {
        if !matches!(stop, Stop::Timeout(_)) || !self.session.confirm.rollback {
            return stop;
        }
        let down: Vec<&str> = self
            .dynos
            .iter()
            .filter(|d| crash_log.ever(&d.name) && !d.is_up())
            .map(|d| d.name.as_str())
            .collect();
        if down.is_empty() {
            return stop;
        }
        Stop::Broken(format!(
            "{} crashed on v{} and was not up by the {} deadline",
            down.join(", "),
            self.version,
            human(self.session.confirm.deadline)
        ))
    }

    /// Step 3: the warm-up through the public URL.
    fn warm(&mut self, skip: Skip) -> Result<(), Stop> {
        let session = self.session;
        let warmup = &session.config.warmup;
        if skip.warmup || !warmup.enabled {
            self.warm_note = Some(if skip.warmup {
                "warm-up skipped (PREHEAT_SKIP=warmup)".to_string()
            } else {
                "warm-up off ([warmup] enabled = false)".to_string()
            });
            self.warm_at = self.live_at;
            return Ok(());
        }
        let url = match super::public_url(&session.config) {
            Ok(Some(url)) => url,
            Ok(None) => {
                output::warning(
                    "No public URL to warm through: HEROKU_APP_DEFAULT_DOMAIN_NAME is not set and preheat.toml has no `[warmup] url`.\n\nEach web dyno warmed itself at boot. To warm through the router as well, set `[warmup] url` (the only way on Fir), or on Cedar run `heroku labs:enable runtime-dyno-metadata`.",
                );
                self.warm_note = Some("boot warm-up only".to_string());
                self.warm_at = self.live_at;
                return Ok(());
            }
            Err(why) => return Err(Stop::Failed(why)),
        };
        output::bullet(&format!("Warm-up through {url}"));
        self.url = Some(url.clone());
        let keep_until = match warm_url::preboot_window(session, self.deadline) {
            Some(window) => {
                output::sub_bullet(&format!(
                    "Preboot is on: the router moves traffic to the new dynos over up to {}; warming through it until then",
                    human(window)
                ));
                Instant::now() + window
            }
            None => Instant::now(),
        };
        let give_up = session.confirm.rollback.then_some(warm_url::FAILING_ROUNDS);
        match warm_url::warm_until_warm(session, &url, keep_until, self.deadline, give_up) {
            WarmEnd::Warm(verdict) => {
                self.warm_at = Some(self.elapsed());
                output::sub_bullet(&verdict);
                Ok(())
            }
            WarmEnd::Deadline(verdict) => Err(Stop::Timeout(format!(
                "a warm answer through {url} (last round: {verdict})"
            ))),
            WarmEnd::Failing(reason) => Err(Stop::Broken(reason)),
            WarmEnd::Interrupted(signal) => Err(Stop::Interrupted(signal)),
        }
    }

    /// Step 4: the rollback, after its guards. Runs at most once per release:
    /// only a `Broken` ending calls it, and a run has one ending.
    fn roll_back(&self, reason: &str) -> rollback::End {
        output::bullet("Rollback");
        let end = rollback::roll_back(
            self.session,
            self.version,
            self.description.as_deref(),
            reason,
            self.started,
        );
        match &end {
            rollback::End::Rolled(rolled) => output::sub_bullet(&format!(
                "v{} (Rollback to v{}) is current ({})",
                rolled.release,
                rolled.to,
                offset(self.elapsed())
            )),
            rollback::End::Refused(line) => {
                output::warning(&format!("Not rolled back: {line}"));
            }
            rollback::End::Interrupted(_) => {}
        }
        // The hook for the release trace: the `otel` branch's span event goes here.
        end
    }

    /// The final line: `my-app v42 is live and warm: live at +40s, warm at +42s (2 web dynos)`.
    fn verdict(&self, outcome: Outcome, reason: Option<&str>) -> String {
        let app = self.session.api.app();
        let version = self.version;
        let live = self.live_at.map_or_else(
            || "not live".to_string(),
            |t| format!("live at {}", offset(t)),
        );
        let warm = self.warm_at.map_or_else(
            || "not warm".to_string(),
            |t| format!("warm at {}", offset(t)),
        );
        let dynos = match self.dynos.len() {
            1 => "1 web dyno".to_string(),
            n => format!("{n} web dynos"),
        };
        match outcome {
            Outcome::Warm => {
                let note = self
                    .warm_note
                    .as_deref()
                    .map(|n| format!("; {n}"))
                    .unwrap_or_default();
                format!("{app} v{version} is live and warm: {live}, {warm} ({dynos}{note})")
            }
            Outcome::Failed | Outcome::Timeout | Outcome::RolledBack => format!(
                "{app} v{version} is not live and warm: {}; {live}, {warm}, stopped at {}",
                reason.unwrap_or("it failed"),
                offset(self.elapsed())
            ),
        }
    }
}

/// `rolled back v43 → v42: /checkout answered 500 on 6 of 6 requests through the router`
fn rolled_back_line(rolled: &Rolled) -> String {
    format!(
        "rolled back v{} → v{}: {}",
        rolled.from, rolled.to, rolled.reason
    )
}

/// The line's `| event=rollback from=43 to=42 release=44` tail, for the log only.
/// The verdict as printed (with its figures: `event=await_live`, or
/// `event=rollback` when it rolled back), and the same on the span.
fn shown_and_traced(
    span: &mut telemetry::Span,
    watch: &Watch<'_>,
    ending: &Ending,
    attempt: Option<&rollback::End>,
    text: &str,
) -> String {
    let version = watch.version;
    let started = watch.started;
    let ms = |t: Option<Duration>| t.map_or_else(String::new, |t| t.as_millis().to_string());
    let shown = match attempt {
        Some(rollback::End::Rolled(rolled)) => format!("{text}{}", rollback_figures(rolled)),
        _ => format!(
            "{text}{}",
            output::figures(&[
                ("event", &"await_live"),
                ("version", &format!("v{version}")),
                ("outcome", &ending.outcome.as_str()),
                ("dynos", &watch.dynos.len()),
                ("live_ms", &ms(watch.live_at)),
                ("warm_ms", &ms(watch.warm_at)),
                ("duration_ms", &started.elapsed().as_millis()),
            ])
        ),
    };
    trace_watch(span, watch, ending.outcome.as_str());
    match attempt {
        Some(rollback::End::Rolled(rolled)) => span.event(
            "rolled back",
            &[
                ("preheat.rollback.from", format!("v{}", rolled.from).into()),
                ("preheat.rollback.to", format!("v{}", rolled.to).into()),
                (
                    "preheat.rollback.release",
                    format!("v{}", rolled.release).into(),
                ),
                (
                    "preheat.rollback.reason",
                    crate::redact::scrub(&rolled.reason).into(),
                ),
            ],
        ),
        Some(rollback::End::Refused(line)) => span.event(
            "rollback refused",
            &[(
                "preheat.rollback.refused",
                crate::redact::scrub(line).into(),
            )],
        ),
        _ => {}
    }
    if ending.code != exit::OK {
        span.fail(text);
    }
    shown
}

fn rollback_figures(rolled: &Rolled) -> String {
    output::figures(&[
        ("event", &"rollback"),
        ("from", &rolled.from),
        ("to", &rolled.to),
        ("release", &rolled.release),
    ])
}

/// The commit: `SOURCE_VERSION`, `HEROKU_BUILD_COMMIT` or `HEROKU_SLUG_COMMIT`,
/// else the release's description (`Deploy 3f2e1a9b` gives `3f2e1a9b`).
pub(super) fn commit(description: Option<&str>) -> Option<String> {
    [
        "SOURCE_VERSION",
        "HEROKU_BUILD_COMMIT",
        "HEROKU_SLUG_COMMIT",
    ]
    .into_iter()
    .find_map(|name| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
    .or_else(|| {
        let description = description?.trim();
        if description.is_empty() {
            return None;
        }
        Some(match description.strip_prefix("Deploy ") {
            Some(rest) if rest.split_whitespace().count() == 1 => rest.to_string(),
            _ => description.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_from_a_deploy_description() {
        // SOURCE_VERSION and friends are not set in unit tests.
        if std::env::var_os("SOURCE_VERSION").is_some()
            || std::env::var_os("HEROKU_BUILD_COMMIT").is_some()
            || std::env::var_os("HEROKU_SLUG_COMMIT").is_some()
        {
            return;
        }
        assert_eq!(commit(Some("Deploy 3f2e1a9b")).as_deref(), Some("3f2e1a9b"));
        assert_eq!(
            commit(Some("Set FOO config vars")).as_deref(),
            Some("Set FOO config vars")
        );
        assert_eq!(commit(None), None);
    }
}

/// Crashes of the release's web dynos across polls. Heroku restarts a crashed
/// dyno at once, and after a second crash only after a cool-off, so a dyno seen
/// `crashed` on two polls in a row, or again after it came back, crashed twice.
#[derive(Default)]
struct Crashes {
    /// Per dyno: crash episodes seen, and whether the last poll saw it crashed.
    dynos: std::collections::BTreeMap<String, (u32, bool)>,
}

impl Crashes {
    /// Records one poll's crashed dynos; returns those that have crashed twice.
    fn seen(&mut self, crashed: &[&str]) -> Option<String> {
        let mut twice = Vec::new();
        for (name, (_, last)) in &mut self.dynos {
            if !crashed.contains(&name.as_str()) {
                *last = false;
            }
        }
        for name in crashed {
            let (episodes, last) = self.dynos.entry((*name).to_string()).or_default();
            if *last {
                twice.push(*name);
            } else {
                *episodes += 1;
                *last = true;
                if *episodes >= 2 {
                    twice.push(*name);
                }
            }
        }
        (!twice.is_empty()).then(|| twice.join(", "))
    }

    fn ever(&self, name: &str) -> bool {
        self.dynos
            .get(name)
            .is_some_and(|(episodes, _)| *episodes > 0)
    }
}

#[cfg(test)]
mod crash_tests {
    use super::Crashes;

    #[test]
    fn one_crash_that_recovers_is_not_twice() {
        let mut crashes = Crashes::default();
        assert_eq!(crashes.seen(&["web.1"]), None);
        assert_eq!(crashes.seen(&[]), None);
        assert_eq!(crashes.seen(&[]), None);
        assert!(crashes.ever("web.1"));
        assert!(!crashes.ever("web.2"));
    }

    #[test]
    fn crashed_on_two_polls_in_a_row_is_twice() {
        let mut crashes = Crashes::default();
        assert_eq!(crashes.seen(&["web.1", "web.2"]), None);
        assert_eq!(crashes.seen(&["web.2"]), Some("web.2".to_string()));
    }

    #[test]
    fn crashed_again_after_coming_back_is_twice() {
        let mut crashes = Crashes::default();
        assert_eq!(crashes.seen(&["web.1"]), None);
        assert_eq!(crashes.seen(&["web.2"]), None);
        assert_eq!(crashes.seen(&[]), None);
        assert_eq!(crashes.seen(&["web.1"]), Some("web.1".to_string()));
    }
}
