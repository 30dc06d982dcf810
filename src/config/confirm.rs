//! `[confirm]`: the detached fleet confirmation's deadline, poll, lifetime and rollback.

use super::diagnostic::Located;
use super::duration::Span;
use super::raw::RawConfirm;
use super::{
    Confirm, DEFAULT_CONFIRM_DEADLINE, DEFAULT_CONFIRM_POLL, MAX_TIME_TO_LIVE, MIN_CONFIRM_POLL,
    TIME_TO_LIVE_MARGIN,
};

pub(super) fn convert_confirm(raw: RawConfirm) -> Result<Confirm, Located> {
    let deadline = raw
        .deadline
        .as_ref()
        .map_or(DEFAULT_CONFIRM_DEADLINE, |d| d.get_ref().get());
    let poll = match raw.poll {
        None => DEFAULT_CONFIRM_POLL,
        Some(poll) if poll.get_ref().get() < MIN_CONFIRM_POLL => {
            return Err(Located::new(
                poll.span(),
                format!(
                    "`poll` must be at least {}, not {}",
                    Span(MIN_CONFIRM_POLL),
                    poll.get_ref()
                ),
                "The Platform API allows an account about 75 requests a minute; polling faster takes that budget from every other tool that uses the token. Write `poll = \"5s\"` or more.",
            ));
        }
        Some(poll) => poll.into_inner().get(),
    };
    let time_to_live = match &raw.time_to_live {
        Some(ttl) if ttl.get_ref().get() < deadline => {
            return Err(Located::new(
                ttl.span(),
                format!(
                    "`time_to_live` ({}) is shorter than the `deadline` ({})",
                    ttl.get_ref(),
                    Span(deadline)
                ),
                "Heroku would stop the detached dyno before `preheat await-live` reaches its deadline. Make `time_to_live` longer than `deadline`, or leave it out (the default is the deadline plus 5m).",
            ));
        }
        Some(ttl) => ttl.get_ref().get(),
        None => deadline.saturating_add(TIME_TO_LIVE_MARGIN),
    };
    if time_to_live > MAX_TIME_TO_LIVE {
        let (span, key) = match (&raw.time_to_live, &raw.deadline) {
            (Some(ttl), _) => (ttl.span(), "time_to_live"),
            (None, Some(deadline)) => (deadline.span(), "deadline"),
            (None, None) => (0..0, "deadline"),
        };
        return Err(Located::new(
            span,
            format!(
                "`{key}` makes the detached dyno live {}, longer than Heroku's 24h limit",
                crate::config::duration::human(time_to_live)
            ),
            "One-off dynos stop after 24 hours. Keep `deadline` (plus the 5m margin) and `time_to_live` within 24h; a release is normally live within minutes.",
        ));
    }
    Ok(Confirm {
        enabled: raw.enabled,
        deadline,
        poll,
        time_to_live,
        rollback: raw.rollback,
    })
}
