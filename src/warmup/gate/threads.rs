//! How many threads forward: one per core the dyno may use
//! (`available_parallelism` honours cgroup CPU quotas), capped, and
//! `PREHEAT_GATE_THREADS` to override. Each thread has its own listener
//! (`SO_REUSEPORT`) and its own event loop, so a connection never changes
//! thread and nothing on the hot path is shared but a counter.

use std::io;

/// The most forwarding threads: past this, more threads only add memory.
pub(crate) const MAX: usize = 16;
pub(crate) const VARIABLE: &str = "PREHEAT_GATE_THREADS";

/// The number of forwarding threads, and a line to log when the override
/// was not understood.
pub(crate) fn count() -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    choose(std::env::var(VARIABLE).ok().as_deref(), cores)
}

fn choose(value: Option<&str>, cores: usize) -> (usize, Option<String>) {
    let default = cores.clamp(1, MAX);
    match value.map(str::trim) {
        None | Some("") => (default, None),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX).contains(&n) => (n, None),
            _ => (
                default,
                Some(format!(
                    "{VARIABLE}={text} is not a thread count from 1 to {MAX}; forwarding on {default} (one per core)"
                )),
            ),
        },
    }
}

/// Starts a forwarding thread with a small stack (it only runs an event loop).
pub(crate) fn spawn(index: usize, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(format!("gate-{index}"))
        .stack_size(256 * 1024)
        .spawn(work)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_core_capped_and_overridden() {
        assert_eq!(choose(None, 1).0, 1);
        assert_eq!(choose(None, 4).0, 4);
        assert_eq!(choose(None, 96).0, MAX);
        assert_eq!(choose(Some("3"), 1), (3, None));
        let (n, warning) = choose(Some("zero"), 2);
        assert_eq!(n, 2);
        assert!(warning.is_some_and(|line| line.contains("PREHEAT_GATE_THREADS=zero")));
        assert!(choose(Some("0"), 2).1.is_some());
    }
}
