//! `--require-warm`: the rehearsal fails when any first user of a warmed dyno
//! was cold, by the one cold rule (`crate::cold::is_cold`). Each first
//! user is judged against the slowest answer of three warm bursts of the same
//! size on the same dyno and path, so that queueing behind the other users of
//! a burst, and a busy machine's noise, are not taken for a cold start.

use super::dynos::{Measured, WarmUp};
use super::users::Answer;
use crate::cold;
use crate::config::duration::human;
use std::time::Duration;

/// One path of one dyno: how many of its first users were cold.
pub(crate) struct PathVerdict {
    pub(crate) dyno: String,
    pub(crate) path: String,
    pub(crate) cold: usize,
    pub(crate) users: usize,
    pub(crate) worst: Duration,
    pub(crate) warm: Duration,
}

impl PathVerdict {
    fn of(dyno: &str, path: &str, first: &[Answer], warm: &[Answer]) -> Self {
        let warm = warm.iter().map(|a| a.took).max().unwrap_or_default();
        Self {
            dyno: dyno.to_string(),
            path: path.to_string(),
            cold: first.iter().filter(|a| cold::is_cold(a.took, warm)).count(),
            users: first.len(),
            worst: first.iter().map(|a| a.took).max().unwrap_or_default(),
            warm,
        }
    }

    /// `web.1 /reports/: 6 of 6 first users cold (worst 512ms; slowest warm 9ms, cold past 34ms)`
    pub(crate) fn line(&self) -> String {
        format!(
            "{} {}: {} of {} first users cold (worst {}; slowest warm {}, cold past {})",
            self.dyno,
            self.path,
            self.cold,
            self.users,
            human(self.worst),
            human(self.warm),
            human(cold::warm_bound(self.warm))
        )
    }
}

/// Every path of every dyno that was warmed (by its boot warmer or the gate).
pub(crate) fn judge(path: &str, measured: &[Measured]) -> Vec<PathVerdict> {
    let mut verdicts = Vec::new();
    for dyno in measured {
        if !matches!(dyno.warm_up, WarmUp::Done(_) | WarmUp::Gate) {
            continue;
        }
        verdicts.push(PathVerdict::of(
            &dyno.name,
            path,
            &dyno.first,
            &dyno.warm_burst,
        ));
        for more in &dyno.more {
            verdicts.push(PathVerdict::of(
                &dyno.name,
                &more.path,
                &more.first,
                &more.warm,
            ));
        }
    }
    verdicts
}
