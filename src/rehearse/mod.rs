//! `preheat rehearse`: a local dress rehearsal of a deploy. Validates
//! `preheat.toml` as the build does, runs the Procfile's release command as
//! release phase would, boots the `web` command as N local dynos that warm
//! themselves as the exec.d program makes them, and reports what the first
//! users would have waited.

mod dotenv;
use dotenv::dotenv;

use crate::config::Config;
use crate::config::duration::human;
use crate::config::plan;
use crate::config::procfile::Procfile;
use crate::exit;
use crate::output;
use crate::release::process::{self, Outcome};
use crate::release::signals;
use nix::unistd::Pid;
use std::net::{SocketAddr, TcpListener, TcpStream};

/// The most of a first response that a rehearsal reads before it stops the clock.
const BODY_CAP: u64 = 64 * 1024 * 1024;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub(crate) struct Options {
    pub(crate) dynos: u16,
    pub(crate) compare: bool,
    pub(crate) boot_timeout: Duration,
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
    /// The warmer ended before the port opened: it gave up at its deadline.
    warm_gave_up: bool,
}

/// What steps 1 and 2 leave for the boot.
struct Checked {
    config: Config,
    /// The Procfile's `web:` command.
    web: String,
    /// `.env`, as `heroku local` reads it.
    env: Vec<(String, String)>,
    release_took: Duration,
}

/// What a fleet of dynos measured.
struct Measured {
    name: String,
    bound_after: Duration,
    warmed_after: Option<Duration>,
    warm_gave_up: bool,
    first: Duration,
    steady: Duration,
}

#[derive(Debug)]
enum RehearsalError {
    Stopped(i32),
    Dyno(String),
}

pub(crate) fn run(dir: &Path, options: &Options) -> u8 {
    let started = Instant::now();
    if let Err(error) = signals::install() {
        output::error(&format!("Could not install signal handlers: {error}"));
        return exit::FAILED;
    }
    output::header(&format!("preheat rehearse {}", dir.display()));
    // Every process gets the same absolute app dir, whatever its working directory.
    let dir = match dir.canonicalize() {
        Ok(dir) => dir,
        Err(error) => {
            output::error(&format!(
                "Cannot rehearse {}: {error}\n\nPass the app's directory, e.g. `preheat rehearse examples/getting-started`.",
                dir.display()
            ));
            return exit::USAGE;
        }
    };
    let dir = dir.as_path();

    let Checked {
        config,
        web,
        env,
        release_took,
    } = match check_and_release(dir) {
        Ok(checked) => checked,
        Err(code) => return code,
    };

    // 3 and 4. Boot the dynos, each with its boot warmer.
    let warm_on = config.warmup.enabled;
    output::bullet(&format!(
        "Booting {} web dyno{}: `{web}`{}",
        options.dynos,
        if options.dynos == 1 { "" } else { "s" },
        if warm_on {
            ", each warming itself at boot"
        } else {
            " ([warmup] is off)"
        }
    ));
    let path = config
        .warmup
        .requests
        .first()
        .map_or_else(|| "/".to_string(), |r| r.path.clone());
    let plan = FleetPlan {
        dir,
        web: &web,
        env: &env,
        options,
        path: &path,
        warm_deadline: config.warmup.deadline,
    };
    let warm = match plan.run(warm_on) {
        Ok(measured) => measured,
        Err(error) => return failed(&error),
    };
    let cold = if options.compare {
        output::bullet("Booting the same dynos again without the warm-up (--compare)");
        match plan.run(false) {
            Ok(measured) => Some(measured),
            Err(error) => return failed(&error),
        }
    } else {
        None
    };
    report(release_took, &path, &warm, cold.as_deref());
    bullet_stream::global::print::all_done(&Some(started));
    exit::OK
}

/// Steps 1 and 2: the build's check, then release phase. `Err` is the exit code.
fn check_and_release(dir: &Path) -> Result<Checked, u8> {
    // 1. The build's check.
    let config = match Config::load_dir(dir) {
        Ok(config) => config,
        Err(error) => {
            output::error(&error.user_block(crate::config::ReadBy::Rehearse));
            return Err(exit::USAGE);
        }
    };
    plan::print(&config);
    let procfile = match Procfile::read(dir) {
        Ok(Some(procfile)) => procfile,
        Ok(None) => {
            output::error(&format!(
                "There is no Procfile in {}.\n\nA rehearsal boots the Procfile's `web:` command; add one, e.g. `web: bin/server`.",
                dir.display()
            ));
            return Err(exit::USAGE);
        }
        Err(error) => {
            output::error(&error.to_string());
            return Err(exit::USAGE);
        }
    };
    let Some(web) = procfile.get("web").map(str::to_string) else {
        output::error(
            "The Procfile has no `web:` entry, so there is nothing to boot.\n\nAdd one, e.g. `web: bin/server`.",
        );
        return Err(exit::USAGE);
    };
    let env = dotenv(dir).map_err(|message| {
        output::error(&message);
        exit::USAGE
    })?;

    // 2. Release phase.
    let release_started = Instant::now();
    let release_cmd = procfile.get("release").map_or_else(
        || {
            output::warning("The Procfile has no `release:` entry, so Heroku would run no release phase. Rehearsing `preheat release` anyway.");
            "preheat release".to_string()
        },
        str::to_string,
    );
    output::bullet(&format!("Release phase: `{release_cmd}`"));
    let mut command = bash(&release_cmd, dir, &env);
    command.env("HEROKU_RELEASE_VERSION", "rehearsal");
    let stream: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(output::stream_line);
    let outcome = process::run(command, None, &stream);
    let release_took = release_started.elapsed();
    match outcome {
        Ok(Outcome::Exited(status)) if status.success() => {
            output::sub_bullet(&format!("Release phase passed ({})", human(release_took)));
        }
        Ok(Outcome::Exited(status)) => {
            output::error(&format!(
                "Release phase failed: `{release_cmd}` {}.\n\nOn Heroku this release would be aborted and the new code would never go live. Its output is above.",
                process::describe(status)
            ));
            return Err(exit::FAILED);
        }
        Ok(Outcome::Interrupted(signal)) => return Err(stopped(signal)),
        Ok(Outcome::TimedOut(_)) => return Err(exit::DEADLINE),
        Err(error) => {
            output::error(&format!("Could not run the release command: {error}"));
            return Err(exit::FAILED);
        }
    }

    Ok(Checked {
        config,
        web,
        env,
        release_took,
    })
}

fn stopped(signal: i32) -> u8 {
    output::error(&format!(
        "Rehearsal stopped by {}; every process it started was stopped.",
        signals::name(signal)
    ));
    128 + u8::try_from(signal).unwrap_or(0)
}

fn failed(error: &RehearsalError) -> u8 {
    match error {
        RehearsalError::Stopped(signal) => stopped(*signal),
        RehearsalError::Dyno(message) => {
            output::error(message);
            exit::FAILED
        }
    }
}

/// `bash -c <command>` in the app dir, with `.env` and `preheat` on PATH.
fn bash(command_line: &str, dir: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new("bash");
    command.arg("-c").arg(command_line).current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
    {
        let path = std::env::var("PATH").unwrap_or_default();
        command.env("PATH", format!("{}:{path}", bin.display()));
    }
    command
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

/// Streams a child's stdout and stderr, each line prefixed `web.1 | `.
fn follow(child: &mut Child, name: &str) {
    let prefix = format!("{name} | ");
    let print: Arc<dyn Fn(&str) + Send + Sync> =
        Arc::new(move |line: &str| output::stream_line(&format!("{prefix}{line}")));
    // Nobody waits for these readers; they end with the child's pipes.
    let (done, _) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        process::spawn_reader(out, Arc::clone(&print), done.clone());
    }
    if let Some(err) = child.stderr.take() {
        process::spawn_reader(err, print, done);
    }
}

/// What every boot of the local dynos shares.
struct FleetPlan<'a> {
    dir: &'a Path,
    web: &'a str,
    env: &'a [(String, String)],
    options: &'a Options,
    /// The first user's request path.
    path: &'a str,
    warm_deadline: Duration,
}

impl FleetPlan<'_> {
    /// Boots the dynos, waits for them (and their warmers), measures them, and
    /// always stops them before it returns.
    fn run(&self, warm: bool) -> Result<Vec<Measured>, RehearsalError> {
        let mut dynos = Vec::new();
        let result = self
            .boot(warm, &mut dynos)
            .and_then(|()| wait_for_fleet(&mut dynos, self.options, self.warm_deadline))
            .and_then(|()| measure(&dynos, self.path));
        stop_fleet(&mut dynos);
        result
    }

    /// Starts each dyno's web process and, when `warm`, its boot warmer.
    fn boot(&self, warm: bool, dynos: &mut Vec<Dyno>) -> Result<(), RehearsalError> {
        let (dir, web, env) = (self.dir, self.web, self.env);
        let preheat = std::env::current_exe()
            .map_err(|e| RehearsalError::Dyno(format!("Could not find the preheat binary: {e}")))?;
        for i in 1..=self.options.dynos {
            let name = format!("web.{i}");
            let port = free_port()?;
            let mut command = bash(web, dir, env);
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
            follow(&mut child, &name);
            // The warmer is what the exec.d program starts: `preheat warm --boot`.
            let warmer = if warm {
                let mut warmer = Command::new(&preheat);
                warmer
                    .args(["warm", "--boot", "--dir"])
                    .arg(dir)
                    .current_dir(dir)
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .env("PORT", port.to_string())
                    .env("DYNO", &name)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                let mut warmer = warmer.spawn().map_err(|e| {
                    RehearsalError::Dyno(format!("Could not start {name}'s warmer: {e}"))
                })?;
                follow(&mut warmer, &name);
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
            });
        }
        Ok(())
    }
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

/// Waits until every dyno is bound and every warmer is done; a crash or a
/// dyno that never binds ends the rehearsal.
fn wait_for_fleet(
    dynos: &mut [Dyno],
    options: &Options,
    warm_deadline: Duration,
) -> Result<(), RehearsalError> {
    let boot_deadline = Instant::now() + options.boot_timeout;
    let warm_until = Instant::now() + options.boot_timeout + warm_deadline;
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
                        human(options.boot_timeout)
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
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }

    Ok(())
}

/// The first user of each dyno, then its steady state.
fn measure(dynos: &[Dyno], path: &str) -> Result<Vec<Measured>, RehearsalError> {
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_mins(1))
        .build()
        .map_err(|e| RehearsalError::Dyno(format!("Could not set up HTTP: {e}")))?;
    let mut measured = Vec::new();
    for dyno in dynos {
        let first = time_get(&client, dyno, path)?;
        let mut samples = Vec::new();
        for _ in 0..10 {
            samples.push(time_get(&client, dyno, path)?);
        }
        samples.sort();
        measured.push(Measured {
            name: dyno.name.clone(),
            bound_after: dyno.bound_after.unwrap_or_default(),
            warmed_after: dyno
                .warmed_after
                .map(|w| w.saturating_sub(dyno.bound_after.unwrap_or_default())),
            warm_gave_up: dyno.warm_gave_up,
            first,
            steady: samples[samples.len() / 2],
        });
    }
    Ok(measured)
}

fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn time_get(
    client: &reqwest::blocking::Client,
    dyno: &Dyno,
    path: &str,
) -> Result<Duration, RehearsalError> {
    let url = format!("http://127.0.0.1:{}{path}", dyno.port);
    let started = Instant::now();
    let response = client.get(&url).send().map_err(|e| {
        RehearsalError::Dyno(format!(
            "{} did not answer GET {path}: {}",
            dyno.name,
            crate::release::httpstep::describe_error(&e)
        ))
    })?;
    // Time to the last byte, read through a small buffer: an endless body
    // costs time (the client's timeout ends it), never memory.
    let _ = std::io::copy(
        &mut std::io::Read::take(response, BODY_CAP),
        &mut std::io::sink(),
    );
    Ok(started.elapsed())
}

fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.1}ms")
    } else {
        human(duration)
    }
}

fn report(release: Duration, path: &str, warm: &[Measured], cold: Option<&[Measured]>) {
    output::bullet("Rehearsal report");
    output::sub_bullet(&format!("Release phase: {}", human(release)));
    output::sub_bullet(&format!(
        "{:<7} {:>8} {:>9} {:>14} {:>9}   (first user: GET {path})",
        "dyno", "bind", "warm-up", "first request", "steady"
    ));
    for m in warm {
        output::sub_bullet(&format!(
            "{:<7} {:>8} {:>9} {:>14} {:>9}",
            m.name,
            ms(m.bound_after),
            match (m.warmed_after, m.warm_gave_up) {
                (_, true) => "gave up".to_string(),
                (Some(after), false) => ms(after),
                (None, false) => "off".to_string(),
            },
            ms(m.first),
            ms(m.steady)
        ));
    }
    if warm.iter().any(|m| m.warm_gave_up) {
        output::warning(
            "A warmer gave up before its dyno bound the port: raise `[warmup] deadline` above the app's boot time.",
        );
    }
    let Some(cold) = cold else {
        return;
    };
    output::sub_bullet("Without warm-up (--compare):");
    for m in cold {
        output::sub_bullet(&format!(
            "{:<7} {:>8} {:>9} {:>14} {:>9}",
            m.name,
            ms(m.bound_after),
            "off",
            ms(m.first),
            ms(m.steady)
        ));
    }
    for (w, c) in warm.iter().zip(cold) {
        let factor = c.first.as_secs_f64() / w.first.as_secs_f64().max(1e-6);
        output::sub_bullet(&format!(
            "{}: first user waits {} warm vs {} cold ({factor:.0}x faster)",
            w.name,
            ms(w.first),
            ms(c.first)
        ));
    }
}
