//! `[confirm] rollback = true`: a live release whose web dynos crash, or whose
//! warm-up through the router keeps answering wrong, goes back to the release
//! before it that succeeded, the way `heroku rollback` does it
//! (`POST /apps/{app}/releases` with `{"release": id}`). The guards come
//! first; each refusal is one line that says why.

use super::{ApiError, Release, Session, client::Scope, offset};
use crate::release::signals::pause;
use std::time::{Duration, Instant};

/// How many recent releases to look through for the one to go back to.
const LOOK_BACK: u32 = 20;

/// A rollback that happened.
#[derive(Debug, Clone)]
pub(crate) struct Rolled {
    pub(crate) from: u64,
    pub(crate) to: u64,
    /// The new release Heroku made for the rollback.
    pub(crate) release: u64,
    pub(crate) reason: String,
}

/// How the attempt ended.
pub(crate) enum End {
    Rolled(Rolled),
    /// A guard or the API said no; the line says why.
    Refused(String),
    Interrupted(i32),
}

/// The description Heroku gives a rollback release: `Rollback to v42`.
pub(crate) fn rolls_back_to(description: Option<&str>) -> Option<u64> {
    description?
        .trim()
        .strip_prefix("Rollback to v")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Rolls `version` back to the release before it that succeeded, after the
/// guards; waits until the rollback release is current.
pub(crate) fn roll_back(
    session: &Session,
    version: u64,
    description: Option<&str>,
    reason: &str,
    started: Instant,
) -> End {
    let api = &session.api;
    // Its own budget: the wait that found the failure may have used the deadline.
    let deadline = Instant::now() + session.confirm.deadline;
    if let Some(to) = rolls_back_to(description) {
        return End::Refused(format!(
            "v{version} is itself a rollback (to v{to}); preheat never rolls back a rollback"
        ));
    }
    let recent = match api.recent_releases(LOOK_BACK, deadline) {
        Ok(recent) => recent,
        Err(error) => return refused_by_api(&error),
    };
    if let Some(newer) = recent.iter().find(|r| r.version > version) {
        return End::Refused(format!(
            "v{} superseded v{version}; preheat rolls back only the current release",
            newer.version
        ));
    }
    let earlier: Vec<&Release> = recent.iter().filter(|r| r.version < version).collect();
    if earlier.is_empty() {
        return End::Refused(format!(
            "no release before v{version} is left to go back to"
        ));
    }
    let Some(target) = earlier.iter().find(|r| r.status == "succeeded") else {
        return End::Refused(format!(
            "no release before v{version} succeeded (of the {} before it); preheat never rolls back to a release that did not succeed",
            earlier.len()
        ));
    };
    if target.id.is_empty() {
        return End::Refused(format!(
            "the Platform API gave no id for v{}, so there is nothing to roll back to",
            target.version
        ));
    }
    crate::output::sub_bullet(&format!(
        "rolling back v{version} → v{}: POST /apps/{}/releases ({})",
        target.version,
        api.app(),
        offset(started.elapsed())
    ));
    let created = match api.rollback(&target.id, deadline) {
        Ok(created) => created,
        Err(error) => match made_anyway(session, version, target.version, deadline) {
            Some(created) => created,
            None => return refused_by_api(&error),
        },
    };
    match wait_current(session, created.version, deadline) {
        Ok(()) => End::Rolled(Rolled {
            from: version,
            to: target.version,
            release: created.version,
            reason: reason.to_string(),
        }),
        Err(Wait::Interrupted(signal)) => End::Interrupted(signal),
        Err(Wait::Refused(line)) => End::Refused(line),
    }
}

/// The rollback release that a POST which failed (a 5xx, a lost answer) may
/// still have made: newer than `version`, described `Rollback to v{to}`.
fn made_anyway(session: &Session, version: u64, to: u64, deadline: Instant) -> Option<Release> {
    let recent = session.api.recent_releases(LOOK_BACK, deadline).ok()?;
    recent
        .into_iter()
        .find(|r| r.version > version && rolls_back_to(r.description.as_deref()) == Some(to))
}

enum Wait {
    Refused(String),
    Interrupted(i32),
}

/// Polls the rollback release until its release phase succeeded and it is current.
fn wait_current(session: &Session, version: u64, deadline: Instant) -> Result<(), Wait> {
    loop {
        let release =
            session
                .api
                .release(version, deadline)
                .map_err(|e| match refused_by_api(&e) {
                    End::Interrupted(signal) => Wait::Interrupted(signal),
                    End::Refused(line) | End::Rolled(Rolled { reason: line, .. }) => {
                        Wait::Refused(line)
                    }
                })?;
        match (release.status.as_str(), release.current) {
            ("succeeded", true) => return Ok(()),
            ("failed", _) => {
                return Err(Wait::Refused(format!(
                    "the rollback release v{version} failed its release phase; the app is on whatever `heroku releases` shows as current"
                )));
            }
            _ => {}
        }
        let wait = session.poll_pause();
        if Instant::now() + wait >= deadline {
            return Err(Wait::Refused(format!(
                "the rollback release v{version} was not current within {}",
                crate::config::duration::human(session.confirm.deadline)
            )));
        }
        pause(wait.min(Duration::from_secs(30))).map_err(Wait::Interrupted)?;
    }
}

fn refused_by_api(error: &ApiError) -> End {
    match error {
        ApiError::Interrupted(signal) => End::Interrupted(*signal),
        ApiError::Forbidden {
            scope: Scope::Write,
            token_var,
            ..
        } => End::Refused(format!(
            "the token in {token_var} lacks the `write` scope (403 on POST /apps/…/releases); create one with `heroku authorizations:create --scope write --description preheat --short`"
        )),
        other => End::Refused(other.summary()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_descriptions() {
        assert_eq!(rolls_back_to(Some("Rollback to v42")), Some(42));
        assert_eq!(rolls_back_to(Some("Rollback to v7 ")), Some(7));
        assert_eq!(rolls_back_to(Some("Deploy 3f2e1a9b")), None);
        assert_eq!(rolls_back_to(Some("Rollback to vX")), None);
        assert_eq!(rolls_back_to(None), None);
    }
}
