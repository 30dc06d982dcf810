//! What the generated-input tests share: how many cases run, a time bound
//! on every parse (a hang fails the case, as a panic does), and a count of
//! the cases that ran, printed for docs/hostile-input.md.

use proptest::test_runner::{Config, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

/// `PREHEAT_FUZZ_CASES=1000000` runs that many cases per generator.
pub(crate) const CASES_VAR: &str = "PREHEAT_FUZZ_CASES";
/// No parse of any input takes this long in a debug build on a loaded box;
/// one that does is a hang.
pub(crate) const CASE_LIMIT: Duration = Duration::from_secs(10);

fn requested() -> Option<u32> {
    std::env::var(CASES_VAR).ok()?.trim().parse().ok()
}

/// A runner for `default` cases, or `PREHEAT_FUZZ_CASES`.
pub(crate) fn runner(default: u32) -> TestRunner {
    with_cases(requested().unwrap_or(default))
}

/// A runner for inputs of a megabyte: a thousandth of `PREHEAT_FUZZ_CASES`.
pub(crate) fn heavy_runner(default: u32) -> TestRunner {
    with_cases(requested().map_or(default, |n| (n / 1000).max(default)))
}

fn with_cases(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        // A failure prints its smallest input; no regression files in src/.
        failure_persistence: None,
        max_shrink_iters: 500,
        ..Config::default()
    })
}

/// Counts the cases one generator ran.
pub(crate) struct Tally {
    name: &'static str,
    cases: AtomicU64,
}

impl Tally {
    pub(crate) const fn new(name: &'static str) -> Self {
        Self {
            name,
            cases: AtomicU64::new(0),
        }
    }

    pub(crate) fn add(&self) {
        self.cases.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.cases.load(Ordering::Relaxed)
    }

    /// Prints `fuzz: <name>: N cases, 0 panics, 0 hangs` (seen with `--nocapture`).
    pub(crate) fn report(&self) {
        println!(
            "fuzz: {}: {} cases, 0 panics, 0 hangs",
            self.name,
            self.get()
        );
    }
}

/// Runs `parse` on its own thread and returns its result. A panic there,
/// or no result within [`CASE_LIMIT`], fails the case with `what`.
pub(crate) fn bounded<T: Send + 'static>(
    what: &str,
    parse: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(parse());
    });
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(value) => {
            let _ = worker.join();
            value
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("{what}: no result within {CASE_LIMIT:?}: a hang")
        }
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the parser panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_parser_fails_the_case() {
        let caught = std::panic::catch_unwind(|| bounded("boom", || panic!("inner")));
        assert!(caught.is_err());
        assert_eq!(bounded("fine", || 7), 7);
    }
}
