//! `preheat rehearse`: a local dress rehearsal of a deploy. Validates
//! `preheat.toml` as the build does, runs the Procfile's release command as
//! release phase would, boots the `web` command as N local dynos that warm
//! themselves as the exec.d program makes them (or through `preheat gate`),
//! and sends each dyno its first users as the router would.

mod dotenv;
mod dynos;
mod json;
mod prepare;
mod report;
mod require_warm;
mod users;

use crate::config::procfile::gated_command;
use crate::exit;
use crate::output;
use crate::release::signals;
use dynos::{Boot, FleetPlan};
use prepare::Checked;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) struct Options {
    pub(crate) dynos: u16,
    pub(crate) compare: bool,
    pub(crate) boot_timeout: Duration,
    /// `--json FILE`: write the figures there.
    pub(crate) json: Option<PathBuf>,
    /// `--require-warm`: fail when a first user of a warmed dyno was cold.
    pub(crate) require_warm: bool,
    /// `--path`: the paths first users request; default every `[warmup]` GET path.
    pub(crate) paths: Vec<String>,
}

#[derive(Debug)]
pub(crate) enum RehearsalError {
    Stopped(i32),
    Dyno(String),
}

/// Steady-state requests per dyno: enough for a median across the workers.
fn steady_count(burst: usize) -> usize {
    burst.saturating_mul(2).max(10)
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
    } = match prepare::check_and_release(dir) {
        Ok(checked) => checked,
        Err(code) => return code,
    };

    // 3 and 4. Boot the dynos: the web command as written, the gate included.
    let gated = gated_command(&web);
    let warm_on = config.warmup.enabled;
    let host = users::host(config.warmup.host.as_deref(), &env);
    announce(options.dynos, &web, gated.is_some(), warm_on, &host);
    let (path, paths) = first_user_paths(&config, &options.paths);
    let burst = users::burst_size(users::web_concurrency(&env));
    let plan = FleetPlan {
        dir,
        env: &env,
        dynos: options.dynos,
        boot_timeout: options.boot_timeout,
        warm_deadline: config.warmup.deadline,
        host: &host.name,
        path: &path,
        more_paths: &paths,
        require_warm: options.require_warm,
        burst,
        steady: steady_count(burst),
    };
    let context = report::Context {
        release: release_took,
        host: &host.name,
        path: &path,
        burst,
        gated: gated.is_some(),
    };
    let warm = match plan.run(&Boot {
        command: &web,
        warmer: warm_on && gated.is_none(),
        gated: gated.is_some(),
    }) {
        Ok(measured) => measured,
        Err(error) => return failed(&error),
    };
    let mut problem = report::failure(&context, &warm, "after the warm-up");
    // A failing first user ends the rehearsal: a cold run would fail the same way.
    let cold = if options.compare && problem.is_none() {
        match cold_run(&plan, gated.unwrap_or(&web), gated.is_some()) {
            Ok(measured) => {
                problem = report::failure(&context, &measured, "cold");
                Some(measured)
            }
            Err(error) => return failed(&error),
        }
    } else {
        None
    };
    report::print(&context, &warm, cold.as_deref());
    if let Some(file) = &options.json {
        let run = json::Run {
            ok: problem.is_none(),
            web: &web,
            host_from: host.from,
        };
        if let Err(message) = json::write(file, &run, &context, &warm, cold.as_deref()) {
            output::error(&message);
            return exit::FAILED;
        }
    }
    if let Some(problem) = problem {
        output::error(&problem);
        return exit::FAILED;
    }
    if options.require_warm && !require_warm(&path, &warm) {
        return exit::FAILED;
    }
    bullet_stream::global::print::all_done(&Some(started));
    exit::OK
}

/// The paths first users request: `--path`, else every `[warmup]` GET path
/// (`/` when there is none); the first, and the rest.
fn first_user_paths(config: &crate::config::Config, given: &[String]) -> (String, Vec<String>) {
    let mut paths: Vec<String> = if given.is_empty() {
        config
            .warmup
            .requests
            .iter()
            .filter(|r| r.method == crate::config::Method::Get)
            .map(|r| r.path.clone())
            .collect()
    } else {
        given.to_vec()
    };
    paths.dedup();
    let path = if paths.is_empty() {
        "/".to_string()
    } else {
        paths.remove(0)
    };
    paths.retain(|p| *p != path);
    (path, paths)
}

/// `--require-warm`: one line per path of each warmed dyno; `false` when a
/// first user was cold.
fn require_warm(path: &str, warm: &[dynos::Measured]) -> bool {
    let verdicts = require_warm::judge(path, warm);
    output::bullet("First users judged by the cold rule (--require-warm)");
    for verdict in &verdicts {
        output::sub_bullet(&verdict.line());
    }
    let cold: Vec<&require_warm::PathVerdict> = verdicts.iter().filter(|v| v.cold > 0).collect();
    if verdicts.is_empty() {
        output::error(
            "--require-warm: no dyno was warmed ([warmup] is off?), so there is nothing to judge.\n\nTurn `[warmup]` on, or drop --require-warm.",
        );
        return false;
    }
    if cold.is_empty() {
        return true;
    }
    let mut paths: Vec<&str> = cold.iter().map(|v| v.path.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    output::error(&format!(
        "--require-warm: first users met {}.\n\nReal users would wait on the first request to {}. Add {} to `[warmup] paths` in preheat.toml (or make the warm-up reach every worker) so that each dyno is warm before the router sends users.",
        if paths.len() == 1 {
            "a cold page"
        } else {
            "cold pages"
        },
        paths.join(", "),
        if paths.len() == 1 { "it" } else { "them" },
    ));
    false
}

/// `--compare`: the same dynos again, cold, and without the gate if there was one.
fn cold_run(
    plan: &FleetPlan,
    command: &str,
    gated: bool,
) -> Result<Vec<dynos::Measured>, RehearsalError> {
    output::bullet(&if gated {
        format!("Booting the same dynos again without the gate: `{command}` (--compare)")
    } else {
        "Booting the same dynos again without the warm-up (--compare)".to_string()
    });
    plan.run(&Boot {
        command,
        warmer: false,
        gated: false,
    })
}

/// What is about to boot, and which Host the first users send.
fn announce(dynos: u16, web: &str, gated: bool, warm_on: bool, host: &users::Host) {
    output::bullet(&format!(
        "Booting {dynos} web dyno{}: `{web}`{}",
        if dynos == 1 { "" } else { "s" },
        if gated {
            ", which the gate warms before it opens the port"
        } else if warm_on {
            ", each warming itself at boot"
        } else {
            " ([warmup] is off)"
        }
    ));
    match host.from {
        Some(from) => output::sub_bullet(&format!(
            "First users send Host: {} (from {from})",
            host.name
        )),
        None => output::sub_bullet(&format!(
            "First users send Host: {} (no `[warmup] host` or HEROKU_APP_DEFAULT_DOMAIN_NAME; set one to rehearse with your app's domain)",
            host.name
        )),
    }
}

pub(crate) fn stopped(signal: i32) -> u8 {
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
