//! A fault that lasts a while (descriptors used up, the app refusing) is
//! logged once when it starts, not once per connection nor once per thread:
//! an episode runs until it is ended, or until the fault has not been seen for
//! [`QUIET`] (with a thread per core, one thread's success says nothing of the
//! others, so a success does not end it).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long without the fault before a new occurrence is a new episode.
pub(crate) const QUIET: Duration = Duration::from_secs(5);

/// When the fault was last seen, in ms since the first use (+1; 0 is never).
#[derive(Default)]
pub(crate) struct Episode(AtomicU64);

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
}

impl Episode {
    /// Records the fault; true only for the call that starts an episode.
    pub(crate) fn begin(&self) -> bool {
        self.begin_at(now_ms())
    }

    fn begin_at(&self, now: u64) -> bool {
        let before = self.0.swap(now, Ordering::Relaxed);
        let quiet = u64::try_from(QUIET.as_millis()).unwrap_or(u64::MAX);
        before == 0 || now.saturating_sub(before) >= quiet
    }

    /// The fault is over (the caller knows it recovered).
    pub(crate) fn end(&self) {
        if self.0.load(Ordering::Relaxed) != 0 {
            self.0.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_call_of_an_episode_begins_it() {
        let episode = Episode::default();
        assert!(episode.begin());
        assert!(!episode.begin());
        episode.end();
        assert!(episode.begin());
    }

    #[test]
    fn the_fault_seen_again_after_a_quiet_spell_is_a_new_episode() {
        let episode = Episode::default();
        assert!(episode.begin_at(1_000));
        assert!(!episode.begin_at(1_010));
        assert!(!episode.begin_at(5_900));
        assert!(episode.begin_at(5_900 + 5_000));
    }
}
