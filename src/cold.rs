//! The one rule for "cold", shared by the warm-up's convergence, the gate's
//! first-user line, `preheat audit` and `rehearse --require-warm`: an answer is
//! cold when it took longer than `max(2 × warm, warm + 25 ms)`, where `warm` is
//! the best estimate of that path's warm answer (the fastest seen, or a steady
//! median). A leaf module: it uses nothing else in the crate.

use std::time::Duration;

/// Absolute slack, so that a 2 ms page answering in 9 ms still counts as warm.
pub(crate) const SLACK: Duration = Duration::from_millis(25);

/// The slowest a warm answer may be, given the path's warm figure.
pub(crate) fn warm_bound(warm: Duration) -> Duration {
    (warm * 2).max(warm + SLACK)
}

/// Whether an answer that `took` this long was cold, against the path's warm figure.
pub(crate) fn is_cold(took: Duration, warm: Duration) -> bool {
    took > warm_bound(warm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_twice_the_warm_figure_or_25_ms_more() {
        assert_eq!(
            warm_bound(Duration::from_millis(4)),
            Duration::from_millis(29)
        );
        assert_eq!(
            warm_bound(Duration::from_millis(100)),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn cold_is_strictly_past_the_bound() {
        let warm = Duration::from_millis(10);
        assert!(!is_cold(Duration::from_millis(35), warm));
        assert!(is_cold(Duration::from_millis(36), warm));
    }
}
