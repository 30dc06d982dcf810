//! Steps 3 and 4: boot the `web` command as N local dynos (each with the boot
//! warmer that exec.d would start, unless the gate warms it), wait until they
//! are bound and warm, send each its first users, and always stop them.

use super::RehearsalError;
use super::prepare::bash;
use super::users::{Answer, Users};
use crate::config::duration::human;
use crate::output;
use crate::release::process;
use crate::release::signals;
use nix::unistd::Pid;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How a dyno got warm before its first users.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WarmUp {
    /// No warm-up: `[warmup]` is off, or this is the cold `--compare` run.
    Off,
    /// `preheat gate` warmed the app before it opened the port.
    Gate,
    /// The boot warmer finished this long after the bind.
    Done(Duration),
    /// The boot warmer ended before the port opened: it gave up at its deadline.
    GaveUp,
}

/// What one dyno measured.
pub(crate) struct Measured {
    pub(crate) name: String,
    pub(crate) bound_after: Duration,
    pub(crate) warm_up: WarmUp,
    /// The burst of first users, in the order they were sent.
    pub(crate) first: Vec<Answer>,
    pub(crate) steady: Vec<Answer>,
    /// Warm bursts of the same size on the first path, per rank the slowest
    /// of three: the warm figure that `--require-warm` judges the first users against.
    pub(crate) warm_burst: Vec<Answer>,
    /// The other paths' first users (`--path`, else every `[warmup]` path).
    pub(crate) more: Vec<PathUsers>,
    /// The gate's own first-user line (`event=first_users`), when gated.
    pub(crate) gate_line: Option<String>,
}

/// One more path's burst of first users, and a warm burst of the same size after.
pub(crate) struct PathUsers {
    pub(crate) path: String,
    pub(crate) first: Vec<Answer>,
    pub(crate) warm: Vec<Answer>,
}

impl Measured {
    pub(crate) fn worst(&self) -> Duration {
        self.first.iter().map(|a| a.took).max().unwrap_or_default()
    }

    pub(crate) fn first_median(&self) -> Duration {
        median(&self.first)
    }

    pub(crate) fn steady_median(&self) -> Duration {
        median(&self.steady)
    }
}

/// The upper median of the answers' latencies.
fn median(answers: &[Answer]) -> Duration {
    let mut took: Vec<Duration> = answers.iter().map(|a| a.took).collect();
    took.sort();
    took.get(took.len() / 2).copied().unwrap_or_default()
}

/// One local "dyno": the web process and, when warming, its boot warmer.
struct Dyno {
    name: String,
    port: u16,
    started: Instant,
    web: Child,
    warmer: Option<Child>,
    bound_after: Option<Duration>,
    warmed_after: Option<Duration>,
    warm_gave_up: bool,
    gate_line: GateLine,
}

/// One boot of the fleet: which command, and whether a boot warmer runs.
pub(crate) struct Boot<'a> {
    pub(crate) command: &'a str,
    pub(crate) warmer: bool,
    /// The command is `preheat gate -- CMD`, which warms before it opens.
    pub(crate) gated: bool,
}

/// What every boot of the local dynos shares.
pub(crate) struct FleetPlan<'a> {
    pub(crate) dir: &'a Path,
    pub(crate) env: &'a [(String, String)],
    pub(crate) dynos: u16,
    pub(crate) boot_timeout: Duration,
    pub(crate) warm_deadline: Duration,
    /// The first users' `Host` and path.
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    /// More paths that get a burst each, after `path`.
    pub(crate) more_paths: &'a [String],
    /// `--require-warm`: also send the warm bursts it judges against.
    pub(crate) require_warm: bool,
    /// First users per dyno, all at once.
    pub(crate) burst: usize,
    /// Steady-state requests per dyno, one after another.
    pub(crate) steady: usize,
}

impl FleetPlan<'_> {
    /// Boots the dynos, waits for them (and their warmers), measures them, and
    /// always stops them before it returns.
    pub(crate) fn run(&self, boot: &Boot) -> Result<Vec<Measured>, RehearsalError> {
        let mut dynos = Vec::new();
        let result = self
            .boot(boot, &mut dynos)
            .and_then(|()| self.wait(&mut dynos))
            .map(|()| {
                dynos
                    .iter()
                    .map(|dyno| self.measure(dyno, boot.gated))
                    .collect()
            });
        stop_fleet(&mut dynos);
        // The gate says its first-user line as it stops (SIGTERM), so read it after.
        result.map(|mut measured: Vec<Measured>| {
            for (m, dyno) in measured.iter_mut().zip(&dynos) {
                m.gate_line = dyno.gate_line.take();
            }
            measured
        })
    }

    /// Starts each dyno's web process and, when asked, its boot warmer.
    fn boot(&self, boot: &Boot, dynos: &mut Vec<Dyno>) -> Result<(), RehearsalError> {
        let preheat = std::env::current_exe()
            .map_err(|e| RehearsalError::Dyno(format!("Could not find the preheat binary: {e}")))?;
        for i in 1..=self.dynos {
            let name = format!("web.{i}");
            let port = free_port()?;
            let mut command = bash(boot.command, self.dir, self.env);
            command
                .env("PORT", port.to_string())
                .env("DYNO", &name)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let started = Instant::now();
            let mut child = command
                .spawn()
                .map_err(|e| RehearsalError::Dyno(format!("Could not start {name}: {e}")))?;
            let gate_line = follow(&mut child, &name);
            // The warmer is what the exec.d program starts: `preheat warm --boot`.
            let warmer = if boot.warmer {
                let mut warmer = Command::new(&preheat);
                warmer
                    .args(["warm", "--boot", "--dir"])
                    .arg(self.dir)
                    .current_dir(self.dir)
                    .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .env("PORT", port.to_string())
                    .env("DYNO", &name)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut warmer = warmer.spawn().map_err(|e| {
                    RehearsalError::Dyno(format!("Could not start {name}'s warmer: {e}"))
                })?;
                let _ = follow(&mut warmer, &name);
                Some(warmer)
            } else {
                None
            };
            dynos.push(Dyno {
                name,
                port,
                started,
                web: child,
                warmer,
                bound_after: None,
                warmed_after: None,
                warm_gave_up: false,
                gate_line,
            });
        }
        Ok(())
    }

    /// Waits until every dyno is bound and every warmer is done; a crash or a
    /// dyno that never binds ends the rehearsal.
    fn wait(&self, dynos: &mut [Dyno]) -> Result<(), RehearsalError> {
        let boot_deadline = Instant::now() + self.boot_timeout;
        let warm_until = boot_deadline + self.warm_deadline;
        loop {
            if let Some(signal) = signals::received() {
                return Err(RehearsalError::Stopped(signal));
            }
            let mut pending = false;
            for dyno in &mut *dynos {
                if let Ok(Some(status)) = dyno.web.try_wait() {
                    return Err(RehearsalError::Dyno(format!(
                        "{} crashed: its web process {}.\n\nOn Heroku this dyno would crash on boot too. Its output is above, prefixed `{} |`.",
                        dyno.name,
                        process::describe(status),
                        dyno.name
                    )));
                }
                if dyno.bound_after.is_none() {
                    if accepts(dyno.port) {
                        dyno.bound_after = Some(dyno.started.elapsed());
                    } else if Instant::now() >= boot_deadline {
                        return Err(RehearsalError::Dyno(format!(
                            "{} never bound its port: nothing listened on PORT={} within {}.\n\nThe web command must listen on $PORT; Heroku stops a dyno that does not bind within 60s.",
                            dyno.name,
                            dyno.port,
                            human(self.boot_timeout)
                        )));
                    } else {
                        pending = true;
                    }
                }
                if dyno.warmed_after.is_none()
                    && let Some(warmer) = dyno.warmer.as_mut()
                {
                    if matches!(warmer.try_wait(), Ok(Some(_))) || Instant::now() >= warm_until {
                        dyno.warm_gave_up = dyno.bound_after.is_none();
                        dyno.warmed_after = Some(dyno.started.elapsed());
                    } else {
                        pending = true;
                    }
                }
            }
            if !pending {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `--require-warm`'s warm figure for `users`; nothing without it.
    fn warm_bursts(&self, users: &Users<'_>) -> Vec<Answer> {
        if self.require_warm {
            warm_bursts(users, self.burst)
        } else {
            Vec::new()
        }
    }

    /// The dyno's burst of first users, then its steady state.
    fn measure(&self, dyno: &Dyno, gated: bool) -> Measured {
        let users = Users {
            address: SocketAddr::from(([127, 0, 0, 1], dyno.port)),
            host: self.host,
            path: self.path,
        };
        let first = users.burst(self.burst);
        let steady = users.steady(self.steady, self.burst);
        let warm_burst = self.warm_bursts(&users);
        let more = self
            .more_paths
            .iter()
            .map(|path| {
                let users = Users {
                    address: users.address,
                    host: self.host,
                    path,
                };
                let first = users.burst(self.burst);
                PathUsers {
                    path: path.clone(),
                    first,
                    warm: self.warm_bursts(&users),
                }
            })
            .collect();
        let bound_after = dyno.bound_after.unwrap_or_default();
        let warm_up = match (dyno.warmed_after, dyno.warm_gave_up) {
            (_, true) => WarmUp::GaveUp,
            (Some(after), false) => WarmUp::Done(after.saturating_sub(bound_after)),
            (None, false) if gated => WarmUp::Gate,
            (None, false) => WarmUp::Off,
        };
        Measured {
            name: dyno.name.clone(),
            bound_after,
            warm_up,
            first,
            steady,
            gate_line: None,
            warm_burst,
            more,
        }
    }
}

/// Warm bursts after the first one: for each rank (the i-th fastest user),
/// the slowest of three, so that a busy machine's noise widens the warm
/// figure instead of passing for a cold start. Sorted fastest first.
fn warm_bursts(users: &Users<'_>, burst: usize) -> Vec<Answer> {
    let mut ranks: Vec<Answer> = Vec::new();
    for _ in 0..3 {
        let mut answers = users.burst(burst);
        answers.sort_by_key(|a| a.took);
        if ranks.is_empty() {
            ranks = answers;
        } else {
            for (rank, answer) in ranks.iter_mut().zip(answers) {
                if answer.took > rank.took {
                    *rank = answer;
                }
            }
        }
    }
    ranks
}

fn free_port() -> Result<u16, RehearsalError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RehearsalError::Dyno(format!("Could not find a free port: {e}")))
}

fn pgid(child: &Child) -> Pid {
    #[allow(clippy::cast_possible_wrap)] // pids fit in i32 on Linux
    Pid::from_raw(child.id() as i32)
}

/// The gate's first-user line, as the dyno's output showed it.
struct GateLine {
    line: Arc<std::sync::Mutex<Option<String>>>,
    readers: std::sync::mpsc::Receiver<()>,
}

impl GateLine {
    /// Once the dyno is stopped: waits (briefly) for its output to be read.
    fn take(&self) -> Option<String> {
        for _ in 0..2 {
            if self.readers.recv_timeout(Duration::from_secs(2)).is_err() {
                break;
            }
        }
        self.line.lock().ok()?.take()
    }
}

/// Streams a child's stdout and stderr, each line prefixed `web.1 | `, and
/// keeps the gate's first-user line.
fn follow(child: &mut Child, name: &str) -> GateLine {
    let prefix = format!("{name} | ");
    let line = Arc::new(std::sync::Mutex::new(None));
    let kept = Arc::clone(&line);
    let print: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |line: &str| {
        if line.contains("event=first_users")
            && let Ok(mut kept) = kept.lock()
        {
            *kept = Some(line.trim_end().to_string());
        }
        output::stream_line(&format!("{prefix}{line}"));
    });
    let (done, readers) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        process::spawn_reader(out, Arc::clone(&print), done.clone());
    }
    if let Some(err) = child.stderr.take() {
        process::spawn_reader(err, print, done);
    }
    GateLine { line, readers }
}

fn stop_fleet(dynos: &mut [Dyno]) {
    for dyno in dynos {
        if let Some(warmer) = dyno.warmer.as_mut() {
            // Our own helper holds nothing worth a grace period, and it may not
            // have reached its setsid() yet, so signal the process itself.
            let _ = warmer.kill();
            let _ = warmer.wait();
        }
        process::stop(pgid(&dyno.web));
        let _ = dyno.web.wait();
    }
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}
