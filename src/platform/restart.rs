//! `preheat restart [--rolling] [--type web]`: a restart at a time you choose,
//! for Heroku Scheduler.
//!
//! Plain, it restarts every dyno at once (`DELETE /apps/{app}/dynos`), as
//! `heroku ps:restart` does. `--rolling` restarts the dynos of one type one at
//! a time: it waits until the restarted dyno is `up` again, and warm through
//! the public URL, before it restarts the next; it never restarts a dyno
//! while another of its type is down.

use super::warm_url::{self, WarmEnd};
use super::{ApiError, Dyno, Session, by_name, fail_setup};
use crate::config::duration::human;
use crate::config::skip::Skip;
use crate::exit;
use crate::output;
use crate::release::signals;
use crate::release::signals::pause;
use std::time::{Duration, Instant};

enum Stop {
    /// Exit code and message.
    Failed(u8, String),
    Api(ApiError),
}

impl From<ApiError> for Stop {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Interrupted(signal) => Stop::Failed(
                128 + u8::try_from(signal).unwrap_or(0),
                format!(
                    "preheat received {} and stopped the rolling restart.",
                    signals::name(signal)
                ),
            ),
            ApiError::Deadline { request } => Stop::Failed(
                exit::DEADLINE,
                format!(
                    "The deadline passed while waiting for {request}. Raise `[confirm] deadline` in preheat.toml."
                ),
            ),
            other => Stop::Api(other),
        }
    }
}

fn valid_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The `restart` command, as one `preheat restart` span (under the release root when the release is known).
pub(crate) fn run(rolling: bool, kind: &str, app: Option<&str>) -> u8 {
    let tel = crate::telemetry::Telemetry::from_env();
    let mut span = tel.span("preheat restart");
    span.attr("preheat.restart.rolling", rolling);
    span.attr("preheat.restart.type", kind);
    let code = restart(rolling, kind, app);
    span.attr("process.exit.code", i64::from(code));
    if code != exit::OK {
        span.fail(&format!("the restart failed (exit {code})"));
    }
    tel.end(span);
    tel.shutdown();
    code
}

fn restart(rolling: bool, kind: &str, app: Option<&str>) -> u8 {
    let started = Instant::now();
    if let Err(error) = signals::install() {
        output::error(&format!("Could not install signal handlers: {error}"));
        return exit::FAILED;
    }
    let title = if rolling {
        format!("preheat restart --rolling --type {kind}")
    } else {
        "preheat restart".to_string()
    };
    if !valid_type(kind) {
        output::header(&title);
        output::error(&format!(
            "`{kind}` is not a process type.\n\nUse a type from the Procfile, like `--type web`."
        ));
        return exit::USAGE;
    }
    if !rolling && kind != "web" {
        output::header(&title);
        output::error(&format!(
            "`--type {kind}` selects the dynos that `--rolling` restarts; a plain `preheat restart` restarts every dyno of the app at once.\n\nRun `preheat restart --rolling --type {kind}` to restart only the `{kind}` dynos, one at a time."
        ));
        return exit::USAGE;
    }
    let skip = match Skip::from_env() {
        Ok(skip) => skip,
        Err(error) => {
            output::header(&title);
            output::error(&error.to_string());
            return exit::USAGE;
        }
    };
    let session = match Session::start(app) {
        Ok(session) => session,
        Err(error) => {
            output::header(&title);
            return fail_setup(&error);
        }
    };
    output::header(&format!("{title} ({})", session.api.app()));
    let deadline = started + session.confirm.deadline;
    let result = if rolling {
        rolling_restart(&session, kind, skip, started, deadline)
    } else {
        session
            .api
            .restart_all(deadline)
            .map_err(Stop::from)
            .map(|()| {
                output::bullet(&format!(
                    "Restarted every dyno of {} at once (DELETE /apps/{}/dynos)",
                    session.api.app(),
                    session.api.app()
                ));
                output::sub_bullet(
                    "Each web dyno warms itself at boot. To restart one dyno at a time, each up and warm before the next, use `preheat restart --rolling`.",
                );
            })
    };
    match result {
        Ok(()) => {
            bullet_stream::global::print::all_done(&Some(started));
            exit::OK
        }
        Err(Stop::Failed(code, message)) => {
            output::error(&message);
            code
        }
        Err(Stop::Api(error)) => {
            let code = if error.is_auth() {
                exit::USAGE
            } else {
                exit::FAILED
            };
            let refused = if error.is_auth() {
                "The restart was refused; no dyno was restarted by this request.\n\n"
            } else {
                ""
            };
            output::error(&format!("{refused}{error}"));
            code
        }
    }
}

fn of_type(session: &Session, kind: &str, deadline: Instant) -> Result<Vec<Dyno>, Stop> {
    let mut dynos: Vec<Dyno> = session
        .api
        .dynos(deadline)?
        .into_iter()
        .filter(|d| d.process_type() == kind)
        .collect();
    by_name(&mut dynos);
    Ok(dynos)
}

fn next_poll(session: &Session, deadline: Instant, waiting_for: &str) -> Result<(), Stop> {
    let wait = session.poll_pause();
    if Instant::now() + wait >= deadline {
        return Err(Stop::Failed(
            exit::DEADLINE,
            format!(
                "Gave up at the {} deadline, waiting for {waiting_for}. See `heroku ps`; raise `[confirm] deadline` in preheat.toml if restarts take longer.",
                human(session.confirm.deadline)
            ),
        ));
    }
    pause(wait).map_err(|signal| {
        Stop::Failed(
            128 + u8::try_from(signal).unwrap_or(0),
            format!(
                "preheat received {} and stopped the rolling restart.",
                signals::name(signal)
            ),
        )
    })
}

fn rolling_restart(
    session: &Session,
    kind: &str,
    skip: Skip,
    started: Instant,
    deadline: Instant,
) -> Result<(), Stop> {
    let api = &session.api;
    let dynos = of_type(session, kind, deadline)?;
    if dynos.is_empty() {
        return Err(Stop::Failed(
            exit::FAILED,
            format!(
                "No `{kind}` dynos are running on {}, so there is nothing to restart.\n\nSee `heroku ps`.",
                api.app()
            ),
        ));
    }
    // Only web dynos answer through the public URL.
    let warmup = &session.config.warmup;
    let url = if kind == "web" && warmup.enabled && !skip.warmup {
        match super::public_url(&session.config) {
            Ok(url) => url,
            Err(why) => return Err(Stop::Failed(exit::USAGE, why)),
        }
    } else {
        None
    };
    let count = dynos.len();
    output::bullet(&format!(
        "Rolling restart of {count} `{kind}` dyno{}, one at a time",
        if count == 1 { "" } else { "s" }
    ));
    if kind == "web" && url.is_none() && warmup.enabled && !skip.warmup {
        output::sub_bullet(
            "No public URL (HEROKU_APP_DEFAULT_DOMAIN_NAME or [warmup] url): each dyno warms itself at boot; this waits for `up` only",
        );
    }
    let mut replaced: Vec<String> = Vec::new();
    for (index, dyno) in dynos.iter().enumerate() {
        let name = &dyno.name;
        let (before, earlier) = others_up(session, kind, name, &replaced, deadline)?;
        let Some(before) = before else {
            output::sub_bullet(&format!("{name}: gone (scaled down?), skipped"));
            continue;
        };
        let restarted_at = Instant::now();
        api.restart_dyno(name, deadline)?;
        output::sub_bullet(&format!("{name} ({}/{count}): restarting", index + 1));
        let back = wait_until_back(session, kind, (&before, &earlier), &replaced, deadline)?;
        if &back == name {
            output::sub_bullet(&format!(
                "{name}: up again after {}",
                human(restarted_at.elapsed())
            ));
        } else {
            output::sub_bullet(&format!(
                "{name}: replaced by {back}, up after {}",
                human(restarted_at.elapsed())
            ));
            replaced.push(name.clone());
        }
        let name = &back;
        if let Some(url) = &url {
            // The dyno warmed itself at boot; this checks the app answers warm
            // through the router (for a one-dyno app, that is this dyno).
            let until = deadline.min(Instant::now() + warmup.deadline.max(Duration::from_secs(1)));
            match warm_url::warm_until_warm(session, url, Instant::now(), until, None) {
                WarmEnd::Warm(verdict) => output::sub_bullet(&format!("{name}: {verdict}")),
                // `Failing` needs a round limit, and this call gives none.
                WarmEnd::Deadline(verdict) | WarmEnd::Failing(verdict) => {
                    let rest = if index + 1 < count {
                        format!(
                            "; the rolling restart stopped before {}",
                            dynos[index + 1].name
                        )
                    } else {
                        String::new()
                    };
                    return Err(Stop::Failed(
                        exit::FAILED,
                        format!(
                            "{name} is up again, but {url} did not answer warm within {} ({verdict}){rest}.\n\nCheck `heroku logs --dyno {name}` and the [warmup] requests.",
                            human(warmup.deadline)
                        ),
                    ));
                }
                WarmEnd::Interrupted(signal) => {
                    return Err(Stop::Failed(
                        128 + u8::try_from(signal).unwrap_or(0),
                        format!("preheat received {} and stopped.", signals::name(signal)),
                    ));
                }
            }
        }
    }
    output::bullet(&format!(
        "Restarted {count} `{kind}` dyno{} one at a time in {}",
        if count == 1 { "" } else { "s" },
        human(started.elapsed())
    ));
    Ok(())
}

/// Never two down at once: waits until every other dyno of the type is up.
/// Fir dynos this restart already replaced may still be listed while they
/// terminate; they do not count. Returns the dyno `name` (if it is still
/// there) and the list.
fn others_up(
    session: &Session,
    kind: &str,
    name: &str,
    replaced: &[String],
    deadline: Instant,
) -> Result<(Option<Dyno>, Vec<Dyno>), Stop> {
    let mut said = false;
    loop {
        let mut now = of_type(session, kind, deadline)?;
        now.retain(|d| !replaced.contains(&d.name));
        let down: Vec<String> = now
            .iter()
            .filter(|d| d.name != name && !d.is_up())
            .map(Dyno::line)
            .collect();
        if down.is_empty() {
            return Ok((now.iter().find(|d| d.name == name).cloned(), now));
        }
        if !said {
            output::sub_bullet(&format!(
                "waiting for {} before restarting {name}",
                down.join(", ")
            ));
            said = true;
        }
        next_poll(session, deadline, &format!("{} to be up", down.join(", ")))?;
    }
}

/// Waits until the dyno that was `before` has restarted and is `up` again.
/// On Cedar it comes back under its name (`web.1`). On Fir the restarted dyno
/// is a new one with a new name (`web-12a34b56d-e78f9` → `…-k3m8q`): it is
/// back when its old name is gone and a dyno that was not there before is
/// `up`, with as many of the type up as before. Returns the name it came back as.
fn wait_until_back(
    session: &Session,
    kind: &str,
    (before, earlier): (&Dyno, &[Dyno]),
    replaced: &[String],
    deadline: Instant,
) -> Result<String, Stop> {
    let mut left_up = false;
    let mut last = String::new();
    let up_before = earlier.iter().filter(|d| d.is_up()).count();
    loop {
        next_poll(
            session,
            deadline,
            &format!("{} to be up again", before.name),
        )?;
        let mut now = of_type(session, kind, deadline)?;
        now.retain(|d| !replaced.contains(&d.name));
        let old = now.iter().find(|d| d.name == before.name);
        match old {
            Some(dyno) if dyno.is_up() => {
                let changed = dyno.id != before.id || dyno.updated_at != before.updated_at;
                if changed || left_up {
                    return Ok(dyno.name.clone());
                }
            }
            // Gone, or down while it restarts (or while a Fir pod terminates).
            _ => left_up = true,
        }
        // A replacement: a dyno that was not there before, up, with the type
        // back to as many up as before.
        let fresh: Vec<&Dyno> = now
            .iter()
            .filter(|d| !earlier.iter().any(|e| e.name == d.name))
            .collect();
        let up = now.iter().filter(|d| d.is_up()).count();
        if left_up
            && up >= up_before
            && let Some(new) = fresh.iter().find(|d| d.is_up())
        {
            return Ok(new.name.clone());
        }
        let line = if fresh.is_empty() {
            old.filter(|d| !d.is_up())
                .map(Dyno::line)
                .unwrap_or_default()
        } else {
            format!(
                "{}: replaced by {}",
                before.name,
                fresh
                    .iter()
                    .map(|d| d.line())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if !line.is_empty() && line != last {
            output::sub_bullet(&line);
        }
        last = line;
    }
}
