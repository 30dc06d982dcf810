//! The exec.d program (`exec.d/web/preheat-boot-warmup`). The CNB launcher runs
//! it before every `web` process and waits for EOF on fd 3, with no timeout.
//! So it writes its TOML, closes fd 3, starts the detached warmer and exits 0
//! at once. A non-zero exit would abort the app's launch, so it never fails.

use crate::warmup::boot;
use std::fs::File;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// The launcher's output pipe.
const LAUNCHER_FD: i32 = 3;

/// Entry point of the `preheat-boot-warmup` binary.
#[must_use]
pub fn main() -> ExitCode {
    let dir = boot::app_dir();
    let name = crate::warmup::dyno_name::this_dyno();
    let decision = boot::boot_off_reason(&dir);
    let env = if decision.is_ok() {
        "PREHEAT_BOOT_WARMUP = \"started\"\n"
    } else {
        ""
    };
    // Closing fd 3 before the warmer starts is what keeps the launcher from waiting on it.
    if let Err(error) = write_and_close_fd3(env) {
        boot::boot_log(&name, &format!("could not write exec.d output: {error}"));
    }
    match decision {
        Ok(_) => {
            let preheat = preheat_binary();
            let spawned = Command::new(&preheat)
                .args(["warm", "--boot", "--dir"])
                .arg(&dir)
                .stdin(Stdio::null())
                .spawn();
            if let Err(error) = spawned {
                boot::boot_log(
                    &name,
                    &format!(
                        "boot warm-up not started: could not run {}: {error}",
                        preheat.display()
                    ),
                );
            }
        }
        Err(reason) => boot::boot_log(&name, &format!("boot warm-up {reason}")),
    }
    ExitCode::SUCCESS
}

/// `<layer>/bin/preheat`, next to `<layer>/exec.d/web/<this>`; else `preheat` on PATH.
fn preheat_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            Some(
                exe.parent()?
                    .parent()?
                    .parent()?
                    .join("bin")
                    .join("preheat"),
            )
        })
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("preheat"))
}

fn write_and_close_fd3(toml: &str) -> std::io::Result<()> {
    // Run by hand, outside a launcher, fd 3 is not there; nothing to write.
    if std::fs::symlink_metadata(format!("/proc/self/fd/{LAUNCHER_FD}")).is_err() {
        return Ok(());
    }
    // SAFETY: the CNB spec hands exec.d programs fd 3 as their output pipe, we
    // just checked that it is open, and nothing else in this process owns it.
    // The `OwnedFd` takes ownership, so fd 3 is closed when `file` is dropped.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(LAUNCHER_FD) };
    let mut file = File::from(fd);
    file.write_all(toml.as_bytes())?;
    file.flush()
}
