//! `preheat warm`: on demand (`--port`, `--url`) and at boot (`--boot`, the
//! detached warmer that the exec.d program leaves behind on every web process).

use crate::config::Config;
use crate::config::duration::human;
use crate::config::procfile::Procfile;
use crate::config::skip::Skip;
use crate::exit;
use crate::output;
use crate::warmup::portwatch;
use crate::warmup::requests::{self, Target};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long `preheat warm --port` waits for something to listen.
const PORT_LOOKUP: Duration = Duration::from_secs(2);

/// The app directory at launch: `$CNB_APP_DIR` when set, else the working directory.
pub(crate) fn app_dir() -> PathBuf {
    std::env::var_os("CNB_APP_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Why the boot warm-up will not run, if it will not.
pub(crate) fn boot_off_reason(dir: &Path) -> Result<(Config, u16), String> {
    match Skip::from_env() {
        Ok(skip) if skip.warmup => return Err("skipped (PREHEAT_SKIP=warmup)".to_string()),
        Ok(_) => {}
        Err(error) => return Err(error.to_string().lines().next().unwrap_or("").to_string()),
    }
    let config = Config::load_dir(dir).map_err(|e| {
        format!(
            "not warming: {} ({})",
            e.title(),
            e.to_string().lines().next().unwrap_or("")
        )
    })?;
    if !config.warmup.enabled {
        return Err("off ([warmup] enabled = false)".to_string());
    }
    if let Ok(Some(procfile)) = Procfile::read(dir)
        && procfile.gated_web().is_some()
    {
        return Err(
            "stands aside: web runs through `preheat gate`, which warms the app before it opens the port"
                .to_string(),
        );
    }
    let port = std::env::var("PORT").unwrap_or_default();
    if port.is_empty() {
        return Err("PORT is not set, so there is nothing to warm".to_string());
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("PORT={port} is not a port number; not warming"))?;
    Ok((config, port))
}

/// One log line from the boot warmer. A closed log stream must not crash it.
pub(crate) fn boot_log(name: &str, line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "preheat: {name} {}", crate::redact::scrub(line));
}

/// `preheat warm --boot`: always exits 0; every way it ends leaves a log line.
pub(crate) fn boot(dir: &Path) -> u8 {
    // Own session: the app's process group and terminal signals are not ours.
    let _ = nix::unistd::setsid();
    let started = Instant::now();
    let name = crate::warmup::dyno_name::this_dyno();
    let (config, port) = match boot_off_reason(dir) {
        Ok(found) => found,
        Err(reason) => {
            boot_log(&name, &format!("boot warm-up {reason}"));
            return exit::OK;
        }
    };
    let deadline = started + config.warmup.deadline;
    let Some(addr) = portwatch::wait_for_listen(port, deadline) else {
        boot_log(
            &name,
            &format!(
                "not warmed: nothing listened on port {port} within {} ([warmup] deadline)",
                crate::config::duration::Span(config.warmup.deadline)
            ),
        );
        return exit::OK;
    };
    boot_log(
        &name,
        &format!(
            "port {port} bound after {}; warming {addr}",
            human(started.elapsed())
        ),
    );
    let Ok(base) = url::Url::parse(&format!("http://{addr}/")) else {
        boot_log(&name, "not warmed: could not build the local URL");
        return exit::OK;
    };
    let target = Target {
        base,
        host: requests::default_host(&config.warmup),
    };
    let report = requests::run_until_deadline(&target, &config.warmup, deadline, &|line| {
        boot_log(&name, line);
    });
    boot_log(&name, &report.verdict());
    exit::OK
}

/// Where `--port` reaches the app: the family that listens (v4, else v6),
/// asked of the kernel (portwatch); 127.0.0.1 when nothing listens within a moment.
fn local_address(port: u16) -> SocketAddr {
    portwatch::wait_for_listen(port, Instant::now() + PORT_LOOKUP)
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// `preheat warm --port P | --url U`: a smoke test; exit 1 when a request failed.
pub(crate) fn now(dir: &Path, port: Option<u16>, url: Option<&str>) -> u8 {
    output::header("preheat warm");
    let config = match Config::load_dir(dir) {
        Ok(config) => config,
        Err(error) => {
            output::error(&error.user_block(crate::config::ReadBy::Command));
            return exit::USAGE;
        }
    };
    let port = port.or_else(|| std::env::var("PORT").ok()?.parse().ok());
    let target = match (port, url) {
        (_, Some(url)) => match url::Url::parse(url) {
            Ok(mut base) if matches!(base.scheme(), "http" | "https") => {
                if !base.path().ends_with('/') {
                    let path = format!("{}/", base.path());
                    base.set_path(&path);
                }
                Target { base, host: None }
            }
            _ => {
                output::error(&format!(
                    "`{url}` is not an http(s) URL.\n\nPass the app's base URL, like `--url https://myapp.herokuapp.com`."
                ));
                return exit::USAGE;
            }
        },
        (Some(port), None) => match url::Url::parse(&format!("http://{}/", local_address(port))) {
            Ok(base) => Target {
                base,
                host: requests::default_host(&config.warmup),
            },
            Err(_) => return exit::USAGE,
        },
        (None, None) => {
            output::error(
                "Nothing to warm: pass `--port P` or `--url U`, or set PORT.\n\nFor example: `preheat warm --port 5000`.",
            );
            return exit::USAGE;
        }
    };
    output::bullet(&format!(
        "Warming {}{}",
        target.base,
        target
            .host
            .as_deref()
            .map(|h| format!(" (Host: {h})"))
            .unwrap_or_default()
    ));
    let deadline = Instant::now() + config.warmup.deadline;
    let report = requests::run(&target, &config.warmup, deadline, &|line| {
        output::sub_bullet(line);
    });
    let verdict = report.verdict();
    if report.warm() {
        output::bullet(&verdict);
        exit::OK
    } else if report.all_ok() {
        // Every answer was right, only uneven: a warning, not a failed smoke test.
        output::warning(&format!(
            "{verdict}\n\nSome requests were still much slower than the fastest for their path: a worker may still be cold, or the page's latency varies. Raise `[warmup] max_rounds` if it needs more rounds."
        ));
        exit::OK
    } else {
        output::error(&format!(
            "{verdict}\n\nThe requests above did not meet their expectations ([warmup] expect_status / expect_body)."
        ));
        exit::FAILED
    }
}
