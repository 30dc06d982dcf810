//! `preheat gate -- CMD`: runs the web command on a private port, warms it
//! there, and only then opens the real `$PORT` and forwards to it. Routers
//! and probes see the port only when the app is warm. The gate and the app
//! share one fate: signals go to the app, the gate exits with the app's
//! status, and the app gets SIGTERM if the gate dies.

mod app;
mod forward;

use crate::config::Config;
use crate::config::duration::{Span, human};
use crate::config::procfile::Procfile;
use crate::config::skip::Skip;
use crate::exit;
use crate::release::signals;
use crate::warmup::boot::{self, boot_log};
use crate::warmup::portwatch;
use crate::warmup::requests::{self, Target};
use app::{App, AppCommand};
use forward::{TICK, Tick};
use nix::sys::signal::Signal;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// After the app exits, how long its last bytes get to reach their clients.
const FLUSH: Duration = Duration::from_secs(2);

/// The gate's log: `preheat: web.1 gate: …`, like the boot warmer's.
#[derive(Clone)]
struct Log(String);

impl Log {
    fn say(&self, line: &str) {
        boot_log(&self.0, &format!("gate: {line}"));
    }
}

/// Entry point of `preheat gate`; returns the app's exit status.
pub(crate) fn run(args: &[String]) -> u8 {
    let started = Instant::now();
    let log = Log(crate::warmup::dyno_name::this_dyno());
    let nofile = app::raise_fd_limit();
    let public = match public_port() {
        Ok(port) => port,
        Err(problem) => {
            log.say(&problem);
            return exit::USAGE;
        }
    };
    if let Err(error) = signals::install() {
        log.say(&format!("could not watch for SIGTERM ({error}); going on"));
    }
    let dir = boot::app_dir();
    let (config, no_warmup) = settings(&dir, &log);
    let procfile_web = Procfile::read(&dir).ok().flatten();
    let command = AppCommand::resolve(args, procfile_web.as_ref().and_then(Procfile::gated_web));
    if let Some(arg) = command.names_port(public) {
        log.say(&format!(
            "`{arg}` holds the public port {public}: if the app binds it, the gate cannot hold it. Let the app read PORT when it starts (quote it in the Procfile: '$PORT')."
        ));
    }
    let private = match app::private_port() {
        Ok(port) => port,
        Err(error) => {
            log.say(&format!("could not find a free private port: {error}"));
            return exit::FAILED;
        }
    };
    let mut app = match App::spawn(&command, private, nofile) {
        Ok(app) => Supervisor::new(app, log.clone()),
        Err(error) => {
            log.say(&format!(
                "could not start `{}`: {error}",
                command.describe()
            ));
            return app::spawn_failure_code(&error);
        }
    };
    let gate_timeout = config.warmup.gate_timeout;
    log.say(&format!(
        "started `{}` on private port {private}; port {public} opens when it is warm (gate_timeout {})",
        command.describe(),
        Span(gate_timeout)
    ));
    let opens_by = started + gate_timeout;

    let upstream = match wait_for_bind(&mut app, private, public, opens_by, &log) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    log.say(&format!(
        "app bound port {private} after {}",
        human(started.elapsed())
    ));
    let warmed = match no_warmup {
        Some(reason) => {
            log.say(&format!("{reason}; opening at the bind"));
            Ok(())
        }
        None => warm(&mut app, upstream, &config, started, &log),
    };
    if let Err(code) = warmed {
        return code;
    }

    open_and_forward(&mut app, public, upstream, started, &log)
}

/// Opens `$PORT` and forwards to the app until it exits; returns its status.
fn open_and_forward(
    app: &mut Supervisor,
    public: u16,
    upstream: SocketAddr,
    started: Instant,
    log: &Log,
) -> u8 {
    let listener = match forward::bind_public(public) {
        Ok(listener) => listener,
        Err(error) => {
            log.say(&format!(
                "could not open port {public}: {error}; stopping the app"
            ));
            app.app.stop();
            return exit::FAILED;
        }
    };
    log.say(&format!(
        "port {public} open after {}; forwarding to {upstream}",
        human(started.elapsed())
    ));
    let mut closing: Option<(u8, Instant)> = None;
    let outcome = forward::run(listener, upstream, |open| {
        if let Some((code, since)) = closing {
            return if open == 0 || since.elapsed() >= FLUSH {
                Tick::Exit(code)
            } else {
                Tick::StopAccepting
            };
        }
        match app.poll() {
            State::Running => Tick::Accept,
            State::Stopping => {
                if app.newly_stopping() {
                    log.say(&format!(
                        "port {public} closed to new connections; the {open} open ones keep flowing until the app exits"
                    ));
                }
                Tick::StopAccepting
            }
            State::Exited(code) => {
                closing = Some((code, Instant::now()));
                Tick::StopAccepting
            }
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            log.say(&format!(
                "could not forward connections: {error}; stopping the app"
            ));
            app.app.stop();
            exit::FAILED
        }
    }
}

/// The public `$PORT`, which the gate holds until the app is warm.
fn public_port() -> Result<u16, String> {
    match std::env::var("PORT") {
        Ok(port) if !port.is_empty() => port.parse::<u16>().map_err(|_| {
            format!("PORT={port} is not a port number; the gate needs the port to open")
        }),
        _ => Err(
            "PORT is not set: the gate opens $PORT when the app is warm, so run it where the platform sets PORT (or set it yourself)"
                .to_string(),
        ),
    }
}

/// The `[warmup]` settings, and why there will be no warm-up, if there will
/// be none. A bad `preheat.toml` (the build would have caught it) never stops
/// the app from starting: the defaults apply.
fn settings(dir: &Path, log: &Log) -> (Config, Option<String>) {
    let config = Config::load_dir(dir).unwrap_or_else(|error| {
        log.say(&format!(
            "preheat.toml is invalid ({}); gating with the defaults",
            error.to_string().lines().next().unwrap_or("")
        ));
        Config::defaults()
    });
    let reason = match Skip::from_env() {
        Ok(skip) if skip.warmup => Some("warm-up skipped (PREHEAT_SKIP=warmup)".to_string()),
        _ if !config.warmup.enabled => Some("warm-up off ([warmup] enabled = false)".to_string()),
        _ => None,
    };
    (config, reason)
}

/// Waits until the app listens on its private port; `Err` holds the exit
/// status when the app ended first.
fn wait_for_bind(
    app: &mut Supervisor,
    private: u16,
    public: u16,
    opens_by: Instant,
    log: &Log,
) -> Result<SocketAddr, u8> {
    let (mut said_public, mut said_timeout) = (false, false);
    loop {
        match app.poll() {
            State::Exited(code) => return Err(code),
            State::Stopping => {
                std::thread::sleep(TICK);
                continue;
            }
            State::Running => {}
        }
        if let Some(addr) = portwatch::wait_for_listen(private, Instant::now() + TICK) {
            return Ok(addr);
        }
        if !said_public && portwatch::wait_for_listen(public, Instant::now()).is_some() {
            said_public = true;
            log.say(&format!(
                "something already listens on the public port {public}, not on the private port {private}: the app must read PORT when it starts for the gate to hold the port"
            ));
        }
        if !said_timeout && Instant::now() >= opens_by {
            said_timeout = true;
            log.say(&format!(
                "gate_timeout passed and the app has not bound port {private}; port {public} stays closed until it does"
            ));
        }
    }
}

/// Warms the app on its private port, up to `gate_timeout` from the start.
fn warm(
    app: &mut Supervisor,
    upstream: SocketAddr,
    config: &Config,
    started: Instant,
    log: &Log,
) -> Result<(), u8> {
    let opens_by = started + config.warmup.gate_timeout;
    if Instant::now() >= opens_by {
        log.say("bound after gate_timeout; opening without a warm-up");
        return Ok(());
    }
    let Ok(base) = url::Url::parse(&format!("http://{upstream}/")) else {
        log.say("could not build the local URL; opening without a warm-up");
        return Ok(());
    };
    let target = Target {
        base,
        host: requests::default_host(&config.warmup),
    };
    let warmup = config.warmup.clone();
    let deadline = opens_by.min(started + warmup.deadline);
    let timed_out = format!(
        "gate_timeout ({}) reached while warming; opening anyway",
        Span(config.warmup.gate_timeout)
    );
    let (done, report) = mpsc::channel();
    let thread_log = log.clone();
    // A thread, so the app's exit or a signal is seen while it warms.
    let spawned = std::thread::Builder::new()
        .name("warm-up".to_string())
        .spawn(move || {
            let report = requests::run_until_deadline(&target, &warmup, deadline, &|line| {
                boot_log(&thread_log.0, line);
            });
            let _ = done.send((report.verdict(), report.deadline_hit));
        });
    if let Err(error) = spawned {
        log.say(&format!(
            "could not start the warm-up ({error}); opening now"
        ));
        return Ok(());
    }
    loop {
        match report.recv_timeout(TICK) {
            Ok((verdict, deadline_hit)) => {
                log.say(&verdict);
                if deadline_hit && deadline == opens_by {
                    log.say(&timed_out);
                }
                return Ok(());
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                log.say("the warm-up ended without a verdict; opening now");
                return Ok(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        match app.poll() {
            State::Exited(code) => return Err(code),
            State::Stopping => return Err(app.wait()),
            State::Running => {}
        }
        if Instant::now() >= opens_by {
            log.say(&timed_out);
            return Ok(());
        }
    }
}

enum State {
    Running,
    /// A SIGTERM or SIGINT was passed on; the app is on its way out.
    Stopping,
    Exited(u8),
}

/// Signals that servers use for reloads and worker counts (puma, unicorn,
/// gunicorn): passed on to the app as they come, as a wrapper should.
const RELAYED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
];

/// Watches the app and passes signals on to its group: SIGTERM and SIGINT
/// (after which the gate closes), and the [`RELAYED`] ones.
struct Supervisor {
    app: App,
    log: Log,
    passed: Option<i32>,
    announced: bool,
    relayed: Vec<(Signal, Arc<AtomicBool>)>,
}

impl Supervisor {
    fn new(app: App, log: Log) -> Self {
        let relayed = RELAYED
            .into_iter()
            .filter_map(|signal| {
                let flag = Arc::new(AtomicBool::new(false));
                signal_hook::flag::register(signal as i32, Arc::clone(&flag)).ok()?;
                Some((signal, flag))
            })
            .collect();
        Self {
            app,
            log,
            passed: None,
            announced: false,
            relayed,
        }
    }

    fn poll(&mut self) -> State {
        if let Some(status) = self.app.exited() {
            let code = app::exit_code(status);
            let how = match std::os::unix::process::ExitStatusExt::signal(&status) {
                Some(signal) => format!("was stopped by {}", signals::name(signal)),
                None => format!("exited with status {code}"),
            };
            self.log
                .say(&format!("the app {how}; the gate exits {code}"));
            return State::Exited(code);
        }
        for (signal, flag) in &self.relayed {
            if flag.swap(false, Ordering::SeqCst) {
                self.app.signal(*signal);
                self.log
                    .say(&format!("{} passed on to the app", signal.as_str()));
            }
        }
        if let Some(number) = signals::received()
            && self.passed != Some(number)
        {
            self.passed = Some(number);
            if let Ok(signal) = Signal::try_from(number) {
                self.app.signal(signal);
            }
            self.log.say(&format!(
                "{} received; passed on to the app",
                signals::name(number)
            ));
        }
        if self.passed.is_some() {
            State::Stopping
        } else {
            State::Running
        }
    }

    /// True the first time it is asked after a signal was passed on.
    fn newly_stopping(&mut self) -> bool {
        !std::mem::replace(&mut self.announced, true)
    }

    /// Waits for the app to exit (after a signal was passed on).
    fn wait(&mut self) -> u8 {
        loop {
            if let State::Exited(code) = self.poll() {
                return code;
            }
            std::thread::sleep(TICK);
        }
    }
}
