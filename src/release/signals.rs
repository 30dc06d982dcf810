//! SIGTERM and SIGINT: the dyno is being stopped. They are recorded, not acted
//! on in the handler, so the runner can stop the running step's group cleanly.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the handlers once; later calls are no-ops.
pub(crate) fn install() -> std::io::Result<()> {
    if RECEIVED.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicUsize::new(0));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        #[allow(clippy::cast_sign_loss)] // signal numbers are small and positive
        signal_hook::flag::register_usize(signal, Arc::clone(&flag), signal as usize)?;
    }
    let _ = RECEIVED.set(flag);
    Ok(())
}

/// The signal received so far, if any.
pub(crate) fn received() -> Option<i32> {
    let value = RECEIVED.get()?.load(Ordering::SeqCst);
    i32::try_from(value).ok().filter(|v| *v != 0)
}

/// Sleeps, waking early when SIGTERM or SIGINT arrives (returns the signal).
pub(crate) fn pause(total: Duration) -> Result<(), i32> {
    let until = Instant::now() + total;
    loop {
        if let Some(signal) = received() {
            return Err(signal);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

pub(crate) fn name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string())
}
