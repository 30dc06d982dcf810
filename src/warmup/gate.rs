//! `preheat gate -- CMD`: runs the web command on a private port, warms it
//! there, and only then opens the real `$PORT` and forwards to it. Routers
//! and probes see the port only when the app is warm. The gate and the app
//! share one fate: signals go to the app, the gate exits with the app's
//! status, and the app gets SIGTERM if the gate dies.

mod app;
mod connect;
mod episode;
mod first_users;
mod forward;
mod idle;
mod pacing;
mod threads;

use crate::config::Config;
use crate::config::duration::{Span, human};
use crate::config::procfile::Procfile;
use crate::config::skip::Skip;
use crate::exit;
use crate::release::signals;
use crate::telemetry::{Telemetry, Value};
use crate::warmup::boot::{self, boot_log};
use crate::warmup::portwatch;
use crate::warmup::requests::{self, Target};
use app::{App, AppCommand};
use first_users::{FirstUsers, WarmFigures};
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
    let tel = Arc::new(Telemetry::from_env());
    let code = run_traced(args, &tel);
    // The forwarding threads are gone by now; a clone still held elsewhere just skips the wait.
    if let Ok(tel) = Arc::try_unwrap(tel) {
        tel.shutdown();
    }
    code
}

fn run_traced(args: &[String], tel: &Arc<Telemetry>) -> u8 {
    let started = Instant::now();
    let log = Log(crate::warmup::dyno_name::this_dyno());
    let mut span = tel.span("preheat gate");
    span.attr("preheat.dyno", log.0.as_str());
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
        Err(code) => {
            span.fail(&format!(
                "the app exited (status {code}) before it bound its port"
            ));
            tel.end(span);
            return code;
        }
    };
    log.say(&format!(
        "app bound port {private} after {}",
        human(started.elapsed())
    ));
    span.event(
        "app bound",
        &[("preheat.elapsed_s", started.elapsed().as_secs_f64().into())],
    );
    let warmed = match no_warmup {
        Some(reason) => {
            log.say(&format!("{reason}; opening at the bind"));
            Ok((true, WarmFigures::new()))
        }
        None => warm(&mut app, upstream, &config, started, &log, tel, &span),
    };
    let warm_figures = match warmed {
        Ok((warm, figures)) => {
            span.event("warm", &[("preheat.warmup.converged", warm.into())]);
            figures
        }
        Err(code) => {
            span.fail(&format!("the app exited (status {code}) while it warmed"));
            tel.end(span);
            return code;
        }
    };
    let window = (
        config.warmup.first_users,
        config.warmup.first_users_window,
        warm_figures,
    );
    open_and_forward(
        &mut app,
        public,
        upstream,
        started,
        window,
        &log,
        (tel, span),
    )
}

/// Opens `$PORT` and forwards to the app until it exits; returns its status.
fn open_and_forward(
    app: &mut Supervisor,
    public: u16,
    upstream: SocketAddr,
    started: Instant,
    (limit, window, warm): (u32, Duration, WarmFigures),
    log: &Log,
    (tel, mut span): (&Arc<Telemetry>, crate::telemetry::Span),
) -> u8 {
    let (threads, warning) = threads::count();
    let (idle, idle_warning) = idle::limit();
    for line in [warning, idle_warning].into_iter().flatten() {
        log.say(&line);
    }
    let listeners = match forward::bind_public(public, threads) {
        Ok(listeners) => listeners,
        Err(error) => {
            log.say(&format!(
                "could not open port {public}: {error}; stopping the app"
            ));
            span.fail(&format!("could not open port {public}: {error}"));
            tel.end(span);
            app.app.stop();
            return exit::FAILED;
        }
    };
    let open_ms = started.elapsed().as_millis();
    log.say(&format!(
        "port {public} open after {}; forwarding to {upstream} on {threads} thread{}{}",
        human(started.elapsed()),
        if threads == 1 { "" } else { "s" },
        crate::output::figures(&[
            ("event", &"gate_open"),
            ("dyno", &log.0),
            ("port", &public),
            ("open_ms", &open_ms),
            ("threads", &threads),
        ])
    ));
    span.event("open", &[("server.port", public.into())]);
    let gate_span = span.context();
    // Export runs on its own thread: opening never waits for it.
    tel.end(span);
    tel.flush();
    let first_users = Arc::new(FirstUsers::new(limit, window, warm, Instant::now()));
    let mut closing: Option<(u8, Instant)> = None;
    let thread_log = log.clone();
    let shared = forward::Shared::new(upstream, idle, move |line| thread_log.say(line))
        .with_first_users(Arc::clone(&first_users));
    let outcome = forward::run(listeners, shared, |open| {
        let stopping = closing.is_some() || app.passed.is_some();
        first_users_line(&first_users, stopping, log, tel, gate_span);
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

/// The first-user line, once the window is over (or the gate stops early
/// and some user came). The same figures go out as a histogram per path and,
/// since the gate's span ended at the open, as a child span of it whose
/// attributes are the line's figures and whose events are the paths.
fn first_users_line(
    first_users: &FirstUsers,
    stopping: bool,
    log: &Log,
    tel: &Telemetry,
    gate_span: Option<crate::telemetry::SpanContext>,
) {
    let Some((tally, window)) = first_users.finished(Instant::now(), stopping) else {
        return;
    };
    let line = tally.line(&log.0, window);
    log.say(&line);
    if !tel.is_on() {
        return;
    }
    let mut span = tel.child_of(gate_span, "preheat gate first users");
    let figures = crate::output::parse_figures(&line).unwrap_or_default();
    for (key, value) in figures.iter().filter(|(k, _)| k != "event" && k != "dyno") {
        let value = value
            .parse::<i64>()
            .map_or_else(|_| Value::from(value), Value::from);
        span.attr(&format!("preheat.first_users.{key}"), value);
    }
    for (method, path, status, took) in tally.per_path() {
        let attrs = [
            ("http.request.method", Value::from(method)),
            ("url.path", Value::from(path)),
            ("http.response.status_code", Value::from(status)),
        ];
        for one in took {
            tel.histogram(
                "preheat.first_user.duration",
                "s",
                one.as_secs_f64(),
                &attrs,
            );
        }
        let first = took.first().map_or(0.0, Duration::as_secs_f64);
        let hits = i64::try_from(took.len()).unwrap_or(i64::MAX);
        let mut event = attrs.to_vec();
        event.extend([
            ("preheat.first_users.hits", Value::from(hits)),
            ("preheat.first_users.first_s", Value::from(first)),
        ]);
        span.event("path", &event);
    }
    tel.end(span);
    tel.flush();
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
    tel: &Arc<Telemetry>,
    gate_span: &crate::telemetry::Span,
) -> Result<(bool, WarmFigures), u8> {
    let opens_by = started + config.warmup.gate_timeout;
    if Instant::now() >= opens_by {
        log.say("bound after gate_timeout; opening without a warm-up");
        return Ok((false, WarmFigures::new()));
    }
    let Ok(base) = url::Url::parse(&format!("http://{upstream}/")) else {
        log.say("could not build the local URL; opening without a warm-up");
        return Ok((false, WarmFigures::new()));
    };
    let thread_tel = Arc::clone(tel);
    let parent = gate_span.context();
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
            let mut span = thread_tel.child_of(parent, "preheat warm-up");
            crate::telemetry::set_request_traceparent(thread_tel.traceparent(&span));
            let report = requests::run_until_deadline(&target, &warmup, deadline, &|line| {
                boot_log(&thread_log.0, line);
            });
            crate::telemetry::set_request_traceparent(None);
            crate::warmup::traced::record(&thread_tel, &mut span, &report);
            thread_tel.end(span);
            let line = crate::warmup::traced::verdict_line(&report, &thread_log.0);
            let _ = done.send((
                line,
                report.deadline_hit,
                (report.warm(), report.fastest_ok()),
            ));
        });
    if let Err(error) = spawned {
        log.say(&format!(
            "could not start the warm-up ({error}); opening now"
        ));
        return Ok((false, WarmFigures::new()));
    }
    loop {
        match report.recv_timeout(TICK) {
            Ok((verdict, deadline_hit, warm)) => {
                log.say(&verdict);
                if deadline_hit && deadline == opens_by {
                    log.say(&timed_out);
                }
                return Ok(warm);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                log.say("the warm-up ended without a verdict; opening now");
                return Ok((false, WarmFigures::new()));
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
            return Ok((false, WarmFigures::new()));
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
/// gunicorn): passed on to the app as they come, as a wrapper should. All but
/// SIGQUIT (a stop) go to the app's main process only, the server's master:
/// gunicorn's and puma's workers take SIGHUP's default action, which is to die
/// mid-request.
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
                if *signal == Signal::SIGQUIT {
                    self.app.signal(*signal);
                    self.log
                        .say(&format!("{} passed on to the app", signal.as_str()));
                } else {
                    let pid = self.app.signal_main(*signal);
                    self.log.say(&format!(
                        "{} passed on to the app's main process (pid {pid})",
                        signal.as_str()
                    ));
                }
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
