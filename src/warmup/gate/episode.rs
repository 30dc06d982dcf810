//! A fault that lasts a while (descriptors used up, the app refusing) is
//! logged once when it starts, not once per connection.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
pub(crate) struct Episode(AtomicBool);

impl Episode {
    /// True only for the call that starts an episode.
    pub(crate) fn begin(&self) -> bool {
        !self.0.load(Ordering::Relaxed) && !self.0.swap(true, Ordering::Relaxed)
    }

    pub(crate) fn end(&self) {
        if self.0.load(Ordering::Relaxed) {
            self.0.store(false, Ordering::Relaxed);
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
}
