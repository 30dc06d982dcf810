//! The app behind the gate: which command runs, on which private port, and
//! how its end becomes the gate's exit status. The app runs in its own
//! process group and gets SIGTERM if the gate dies, whatever kills it.

use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit, rlim_t, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};

/// Characters that make the shell turn a Procfile word into something else.
const SHELL_CHARS: [char; 10] = ['$', '\'', '"', '\\', '`', '*', '?', '[', '~', '{'];

/// How the app's command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppCommand {
    /// `bash -c`, like a Procfile entry, so `$PORT` is read with the private port.
    Shell(String),
    /// The arguments as given, already expanded by whoever ran the gate.
    Exec(Vec<String>),
}

impl AppCommand {
    /// The platform runs `web: preheat gate -- CMD` with `bash -c`, so `$PORT`
    /// in CMD reaches us already expanded to the *public* port. When the
    /// Procfile's gated web command is what our arguments came from, run its
    /// text with `bash -c` instead, as the platform would have; `$PORT` then
    /// means the private port. A single argument is a shell command too (so
    /// `preheat gate -- 'gunicorn -b :$PORT app:app'` works anywhere); more
    /// than one are run as they are.
    pub(crate) fn resolve(args: &[String], procfile_web: Option<&str>) -> Self {
        if let Some(text) = procfile_web
            && written_as(text, args)
        {
            return Self::Shell(text.to_string());
        }
        match args {
            [one] => Self::Shell(one.clone()),
            _ => Self::Exec(args.to_vec()),
        }
    }

    /// The command as a log line shows it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Shell(text) => text.clone(),
            Self::Exec(args) => args.join(" "),
        }
    }

    /// An argument that holds the public port's number, when arguments run as
    /// given: the app would try to bind the public port itself.
    pub(crate) fn names_port(&self, port: u16) -> Option<&str> {
        let Self::Exec(args) = self else {
            return None;
        };
        let port = port.to_string();
        args.iter()
            .find(|arg| {
                arg.match_indices(&port).any(|(at, _)| {
                    let before = arg[..at].chars().next_back();
                    let after = arg[at + port.len()..].chars().next();
                    !before.is_some_and(|c| c.is_ascii_digit())
                        && !after.is_some_and(|c| c.is_ascii_digit())
                })
            })
            .map(String::as_str)
    }
}

/// Whether `args` are what the shell made of `text`: as many words, each the
/// same or one the shell could have changed.
fn written_as(text: &str, args: &[String]) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    words.len() == args.len()
        && words
            .iter()
            .zip(args)
            .all(|(word, arg)| word == arg || word.contains(SHELL_CHARS))
}

/// The running app.
pub(crate) struct App {
    child: Child,
    pgid: Pid,
}

impl App {
    /// Starts `command` with `PORT=private`, in its own process group, with
    /// SIGTERM as its parent-death signal. `nofile` is the open-files limit to
    /// give it back, since the gate raised its own. Call it from the main
    /// thread: the kernel sends the signal when the *thread* that forked ends.
    pub(crate) fn spawn(
        command: &AppCommand,
        private: u16,
        nofile: Option<(rlim_t, rlim_t)>,
    ) -> io::Result<Self> {
        let mut cmd = match command {
            AppCommand::Shell(text) => {
                let mut cmd = Command::new("bash");
                cmd.arg("-c").arg(text);
                cmd
            }
            AppCommand::Exec(args) => {
                let (program, rest) = args
                    .split_first()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command"))?;
                let mut cmd = Command::new(program);
                cmd.args(rest);
                cmd
            }
        };
        cmd.env("PORT", private.to_string()).process_group(0);
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the forked child before exec, where only
        // async-signal-safe calls are allowed. prctl, getppid and setrlimit are
        // plain system calls; nothing allocates, locks or touches shared state
        // (errors are built from a raw errno, without allocating).
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                // Had the gate died before that, no signal would ever come.
                if nix::unistd::getppid() != parent {
                    return Err(Errno::ESRCH.into());
                }
                if let Some((soft, hard)) = nofile {
                    let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        #[allow(clippy::cast_possible_wrap)] // pids fit in i32 on Linux
        let pgid = Pid::from_raw(child.id() as i32);
        Ok(Self { child, pgid })
    }

    /// Sends `signal` to the app's whole process group.
    pub(crate) fn signal(&self, signal: Signal) {
        let _ = killpg(self.pgid, signal);
    }

    /// Sends `signal` to the app's main process only (the server's master,
    /// which `bash -c` becomes for a simple command); returns its pid.
    pub(crate) fn signal_main(&self, signal: Signal) -> Pid {
        let _ = nix::sys::signal::kill(self.pgid, signal);
        self.pgid
    }

    /// The app's status once it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten()?;
        // Whatever the leader left behind in its group goes with it.
        self.signal(Signal::SIGTERM);
        Some(status)
    }

    /// Stops the app's group (SIGTERM, then SIGKILL after a grace period).
    pub(crate) fn stop(&mut self) {
        crate::release::process::stop(self.pgid);
        let _ = self.child.try_wait();
    }
}

/// The gate's exit status for the app's: its code, or 128 + the signal.
pub(crate) fn exit_code(status: ExitStatus) -> u8 {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    u8::try_from(code & 0xff).unwrap_or(1)
}

/// How a shell reports a command it could not start: 127 not found, 126 not runnable.
pub(crate) fn spawn_failure_code(error: &io::Error) -> u8 {
    match error.kind() {
        io::ErrorKind::NotFound => 127,
        io::ErrorKind::PermissionDenied => 126,
        _ => 1,
    }
}

/// The app's private port: free on loopback now (the kernel picks it).
pub(crate) fn private_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Raises the open-files limit to its hard limit, so a thousand connections
/// (two sockets each, and pipes while data flows) fit. Returns the limits as
/// they were, for the app.
pub(crate) fn raise_fd_limit() -> Option<(rlim_t, rlim_t)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).ok()?;
    }
    Some((soft, hard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_procfile_text_runs_when_our_arguments_came_from_it() {
        let procfile = "gunicorn -b 0.0.0.0:$PORT app:app";
        assert_eq!(
            AppCommand::resolve(
                &args(&["gunicorn", "-b", "0.0.0.0:5000", "app:app"]),
                Some(procfile)
            ),
            AppCommand::Shell(procfile.to_string())
        );
        // Something else than the Procfile's web command runs as given.
        assert_eq!(
            AppCommand::resolve(&args(&["python3", "-m", "http.server"]), Some(procfile)),
            AppCommand::Exec(args(&["python3", "-m", "http.server"]))
        );
        assert_eq!(
            AppCommand::resolve(&args(&["bin/web --port $PORT"]), None),
            AppCommand::Shell("bin/web --port $PORT".to_string())
        );
    }

    #[test]
    fn an_argument_with_the_public_port_is_found() {
        let command =
            AppCommand::Exec(args(&["gunicorn", "-b", "[::]:5000", "--timeout", "50000"]));
        assert_eq!(command.names_port(5000), Some("[::]:5000"));
        assert_eq!(command.names_port(500), None);
        assert_eq!(
            AppCommand::Shell("x 5000".to_string()).names_port(5000),
            None
        );
    }

    #[test]
    fn exit_status_maps_like_a_shell() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(15)), 143);
        assert_eq!(
            spawn_failure_code(&io::Error::from(io::ErrorKind::NotFound)),
            127
        );
    }
}
