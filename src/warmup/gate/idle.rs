//! Idle connections end: one that moves no byte either way for the idle
//! timeout is closed. The default is longer than the routers' own (Heroku
//! closes idle keep-alive connections at 55 s), so the router always closes
//! first; `PREHEAT_GATE_IDLE_TIMEOUT` changes it. A counter bumped on every
//! transfer, read by a coarse timer, so moving bytes costs no clock reads.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;
use std::time::Duration;

pub(crate) const DEFAULT: Duration = Duration::from_secs(75);
pub(crate) const VARIABLE: &str = "PREHEAT_GATE_IDLE_TIMEOUT";
/// Checks per timeout: a connection closes after between 1 and 1.25 timeouts idle.
const CHECKS: u32 = 4;

/// The idle timeout, and a line to log when the override was not understood.
pub(crate) fn limit() -> (Duration, Option<String>) {
    choose(std::env::var(VARIABLE).ok().as_deref())
}

fn choose(value: Option<&str>) -> (Duration, Option<String>) {
    match value.map(str::trim) {
        None | Some("") => (DEFAULT, None),
        Some(text) => match crate::config::duration::parse(text) {
            Ok(limit) if limit >= Duration::from_secs(1) => (limit, None),
            _ => (
                DEFAULT,
                Some(format!(
                    "{VARIABLE}={text} is not a duration of 1s or more (\"75s\", \"2m\"); idle connections close after {}s",
                    DEFAULT.as_secs()
                )),
            ),
        },
    }
}

/// Bytes moved on one connection, as a count (only its own task writes it).
#[derive(Default)]
pub(crate) struct Activity(AtomicU32);

impl Activity {
    pub(crate) fn touch(&self) {
        let n = self.0.load(Ordering::Relaxed);
        self.0.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `work` until it ends, or `None` once `activity` has not moved for `limit`.
pub(crate) async fn within<F: Future>(
    limit: Duration,
    activity: &Activity,
    mut work: Pin<&mut F>,
) -> Option<F::Output> {
    let step = limit / CHECKS;
    let mut timer = pin!(tokio::time::sleep(step));
    let mut seen = activity.count();
    let mut quiet = 0;
    poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        while timer.as_mut().poll(cx).is_ready() {
            let now = activity.count();
            if now == seen {
                quiet += 1;
                if quiet >= CHECKS {
                    return Poll::Ready(None);
                }
            } else {
                (seen, quiet) = (now, 0);
            }
            timer.as_mut().reset(tokio::time::Instant::now() + step);
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_is_a_duration() {
        assert_eq!(choose(None), (DEFAULT, None));
        assert_eq!(choose(Some("2m")).0, Duration::from_mins(2));
        let (limit, warning) = choose(Some("soon"));
        assert_eq!(limit, DEFAULT);
        assert!(warning.is_some_and(|line| line.contains("PREHEAT_GATE_IDLE_TIMEOUT=soon")));
    }
}
