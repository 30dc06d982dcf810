//! Child processes that run in their own process group and are always stopped
//! as a whole: on timeout, on SIGTERM/SIGINT, and after they exit, so that no
//! process a step started outlives it.

use crate::release::signals;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a group gets between SIGTERM and SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(5);

/// Why a time limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    StepTimeout,
    Deadline,
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Exited(ExitStatus),
    TimedOut(Limit),
    Interrupted(i32),
}

/// Makes this process the reaper of every process its children leave behind,
/// so orphans of a step can still be found and stopped.
pub(crate) fn become_subreaper() {
    // Best effort: without it, escaped grandchildren go to init instead of us.
    let _ = nix::sys::prctl::set_child_subreaper(true);
}

/// Runs `command` in a new process group, hands each output line to `on_line`,
/// and stops the whole group when it exits, at `limit`, or on a signal.
pub(crate) fn run(
    mut command: Command,
    limit: Option<(Instant, Limit)>,
    on_line: &Arc<dyn Fn(&str) + Send + Sync>,
) -> std::io::Result<Outcome> {
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    #[allow(clippy::cast_possible_wrap)] // pids fit in i32 on Linux
    let pgid = Pid::from_raw(child.id() as i32);

    let (done_tx, done_rx) = mpsc::channel();
    let mut readers = 0;
    if let Some(stdout) = child.stdout.take() {
        readers += 1;
        spawn_reader(stdout, Arc::clone(on_line), done_tx.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        readers += 1;
        spawn_reader(stderr, Arc::clone(on_line), done_tx.clone());
    }
    drop(done_tx);

    let (exit_tx, exit_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = exit_tx.send(child.wait());
    });

    let outcome = loop {
        // Signals are polled; a normal exit wakes us at once.
        let mut wait = Duration::from_millis(50);
        if let Some((at, _)) = limit {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        match exit_rx.recv_timeout(wait) {
            Ok(status) => break Outcome::Exited(status?),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other("lost track of the child process"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(signal) = signals::received() {
            break Outcome::Interrupted(signal);
        }
        if let Some((at, why)) = limit
            && Instant::now() >= at
        {
            break Outcome::TimedOut(why);
        }
    };

    let leader_exited = matches!(outcome, Outcome::Exited(_));
    stop_group(pgid, if leader_exited { None } else { Some(&exit_rx) });
    stop_strays();
    // Output a killed group left in the pipes is still shown; a pipe held open by
    // something we could not stop does not hold up the run.
    for _ in 0..readers {
        if done_rx.recv_timeout(Duration::from_secs(2)).is_err() {
            break;
        }
    }
    Ok(outcome)
}

pub(crate) fn spawn_reader(
    stream: impl Read + Send + 'static,
    on_line: Arc<dyn Fn(&str) + Send + Sync>,
    done: mpsc::Sender<()>,
) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            on_line(&String::from_utf8_lossy(&line));
            line.clear();
        }
        let _ = done.send(());
    });
}

/// Stops a process group whose leader we no longer wait on: SIGTERM, then
/// SIGKILL after [`GRACE`], reaping what it leaves.
pub(crate) fn stop(pgid: Pid) {
    stop_group(pgid, None);
}

/// SIGTERM to the group, SIGKILL after [`GRACE`]. `leader` is the channel that
/// reports the leader's exit while it is still running.
fn stop_group(pgid: Pid, leader: Option<&mpsc::Receiver<std::io::Result<ExitStatus>>>) {
    if killpg(pgid, Signal::SIGTERM) == Err(Errno::ESRCH) {
        return;
    }
    let until = Instant::now() + GRACE;
    let mut leader_done = leader.is_none();
    while Instant::now() < until {
        if leader_done {
            if group_empty(pgid) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        } else {
            leader_done =
                leader.is_some_and(|rx| rx.recv_timeout(Duration::from_millis(20)).is_ok());
        }
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    if !leader_done {
        let _ = leader.map(|rx| rx.recv_timeout(Duration::from_secs(5)));
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !group_empty(pgid) {
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reaps what we can of the group (orphans come to us as subreaper), then asks
/// whether anything is left.
fn group_empty(pgid: Pid) -> bool {
    let group = Pid::from_raw(-pgid.as_raw());
    while let Ok(status) = waitpid(group, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
    killpg(pgid, None) == Err(Errno::ESRCH)
}

/// Descendants that left the group (setsid, setpgid) are re-parented to us as
/// subreaper once their parent is gone; stop them too.
fn stop_strays() {
    let strays = child_pids();
    if strays.is_empty() {
        return;
    }
    for pid in &strays {
        let _ = nix::sys::signal::kill(*pid, Signal::SIGTERM);
    }
    let until = Instant::now() + GRACE;
    loop {
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
        let left = child_pids();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= until {
            for pid in left {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
            let _ = waitpid(None, Some(WaitPidFlag::WNOHANG));
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Our live child processes, read from /proc.
fn child_pids() -> Vec<Pid> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // Fields after the command name: state, ppid, …
                stat.rsplit_once(')').is_some_and(|(_, rest)| {
                    let mut fields = rest.split_whitespace();
                    let state = fields.next();
                    fields.next() == Some(me.as_str()) && state != Some("Z")
                })
            })
        })
        .map(Pid::from_raw)
        .collect()
}

/// "exited with status 3", "was killed by SIGKILL".
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by {}", signals::name(signal)),
        (None, None) => "ended without a status".to_string(),
    }
}
