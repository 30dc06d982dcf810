//! The `preheat` command line.

use crate::config::plan;
use crate::config::procfile::{Procfile, RELEASE_LINE};
use crate::config::{Config, ReadBy};
use crate::exit;
use crate::output;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "preheat",
    version,
    about = "Release phase that a deploy can trust: migrate, prime, then warm every web process before users arrive.",
    long_about = None,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the [[migrate]] then [[prime]] steps and schedule the warm-up (the Procfile `release:` entry)
    Release {
        /// App directory holding preheat.toml
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Validate preheat.toml and print the plan that `release` would run
    Check {
        /// App directory holding preheat.toml
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Warm up a running web process now with the configured requests
    Warm {
        /// Warm http://127.0.0.1:PORT
        #[arg(long, conflicts_with = "url")]
        port: Option<u16>,
        /// Warm this base URL
        #[arg(long)]
        url: Option<String>,
        /// Boot mode, as the exec.d program starts it: wait for $PORT, warm, never fail
        #[arg(long, conflicts_with_all = ["port", "url"])]
        boot: bool,
        /// App directory holding preheat.toml
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Run the web command on a private port and open $PORT only once it is warm (Procfile: `web: preheat gate -- CMD`)
    #[command(arg_required_else_help = true)]
    Gate {
        /// The web command; it gets a private PORT, and runs with `bash -c` as the Procfile wrote it
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CMD"
        )]
        command: Vec<String>,
    },
    /// Wait through the Platform API until VERSION is live on all web dynos, warm it, and notify
    AwaitLive {
        /// Release version, like 42 or v42 (default: `HEROKU_RELEASE_VERSION`)
        version: Option<String>,
        /// Heroku app name or id (default: `HEROKU_APP_NAME`, else `HEROKU_APP_ID`)
        #[arg(long)]
        app: Option<String>,
    },
    /// Restart dynos at a time you choose (for Heroku Scheduler)
    Restart {
        /// Restart one dyno at a time, waiting until each is up and warm
        #[arg(long)]
        rolling: bool,
        /// Process type to restart
        #[arg(long = "type", default_value = "web")]
        process_type: String,
        /// Heroku app name or id (default: `HEROKU_APP_NAME`, else `HEROKU_APP_ID`)
        #[arg(long)]
        app: Option<String>,
    },
    /// Rehearse a deploy locally: release steps, then N local dynos that warm themselves
    Rehearse {
        /// App directory
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Number of local web dynos
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
        dynos: u16,
        /// Also boot without warm-up and compare first-request latency
        #[arg(long)]
        compare: bool,
        /// How long a dyno may take to bind its port, like Heroku's boot timeout
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        boot_timeout: std::time::Duration,
        /// Also write the figures as JSON to this file (schema in docs/rehearse.md)
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Fail when any first user of a warmed dyno was cold (for CI)
        #[arg(long)]
        require_warm: bool,
        /// A path first users request, each with its burst (repeatable; default every [warmup] path)
        #[arg(long = "path", value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Read Heroku's logs (`heroku logs … | preheat audit`): who waited on a cold dyno, and what to warm
    Audit {
        /// A log file, or `-` for stdin (the default)
        file: Option<PathBuf>,
        /// App directory holding preheat.toml (its `[warmup]` paths)
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Also write every figure as JSON to this file (schema in docs/audit.md)
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// The window after each boot in which users are judged
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        window: std::time::Duration,
        /// Assets left out: comma-separated suffixes and `/`prefixes ("" keeps all)
        #[arg(long, default_value = crate::audit::DEFAULT_ASSETS, hide_default_value = true)]
        assets: String,
    },
    /// The steps of the Heroku classic buildpack (its bin/detect and bin/compile call them)
    #[command(hide = true)]
    Classic {
        #[command(subcommand)]
        step: ClassicStep,
    },
}

#[derive(Subcommand)]
enum ClassicStep {
    /// Exit 0 when preheat applies to the app in the build dir
    Detect { build_dir: PathBuf },
    /// Validate preheat.toml and print the plan, as the CNB build does
    Compile { build_dir: PathBuf },
    /// Exit 0 when the Procfile's web runs through `preheat gate`
    WebGated { build_dir: PathBuf },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::config::duration::parse(text)
}

/// Entry point of the `preheat` binary.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are not errors.
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = error.print();
            return exit::code(code);
        }
    };
    // Build and release-phase output keeps Heroku's style; every command people run by
    // hand (and any new one) gets plain text off a terminal or under NO_COLOR.
    output::init(
        if matches!(
            cli.command,
            Command::Release { .. }
                | Command::Classic { .. }
                | Command::Gate { .. }
                | Command::AwaitLive { .. }
                | Command::Restart { .. }
        ) {
            output::Style::Heroku
        } else {
            output::Style::Interactive
        },
    );
    let code = match cli.command {
        Command::Release { dir } => crate::release::run(&dir, &crate::platform::fleet::schedule),
        Command::Check { dir } => check(&dir),
        Command::Warm {
            port,
            url,
            boot,
            dir,
        } => {
            if boot {
                crate::warmup::boot::boot(&dir)
            } else {
                crate::warmup::boot::now(&dir, port, url.as_deref())
            }
        }
        Command::Gate { command } => crate::warmup::gate::run(&command),
        Command::AwaitLive { version, app } => {
            crate::platform::await_live::run(version.as_deref(), app.as_deref())
        }
        Command::Restart {
            rolling,
            process_type,
            app,
        } => crate::platform::restart::run(rolling, &process_type, app.as_deref()),
        Command::Rehearse {
            dir,
            dynos,
            compare,
            boot_timeout,
            json,
            require_warm,
            paths,
        } => crate::rehearse::run(
            &dir,
            &crate::rehearse::Options {
                dynos,
                compare,
                boot_timeout,
                json,
                require_warm,
                paths,
            },
        ),
        Command::Audit {
            file,
            dir,
            json,
            window,
            assets,
        } => crate::audit::run(&crate::audit::Options {
            file,
            dir,
            json,
            window,
            assets,
        }),
        Command::Classic { step } => match step {
            ClassicStep::Detect { build_dir } => crate::buildpack::classic::detect(&build_dir),
            ClassicStep::Compile { build_dir } => crate::buildpack::classic::compile(&build_dir),
            ClassicStep::WebGated { build_dir } => crate::buildpack::classic::gated(&build_dir),
        },
    };
    exit::code(code)
}

fn check(dir: &std::path::Path) -> u8 {
    output::header("preheat check");
    let config = match Config::load_dir(dir) {
        Ok(config) => config,
        Err(error) => {
            output::error(&error.user_block(ReadBy::Command));
            return exit::USAGE;
        }
    };
    plan::print(&config);
    match Procfile::read(dir) {
        Ok(procfile) => {
            if procfile
                .as_ref()
                .is_some_and(Procfile::release_runs_preheat)
            {
                output::bullet("Procfile runs `preheat release` in release phase");
            } else {
                output::warning(&format!(
                    "The Procfile has no `release:` entry that runs preheat. Add:\n\n    {RELEASE_LINE}\n"
                ));
            }
            if let Some(procfile) = &procfile {
                plan::print_gate(&config, procfile);
            }
        }
        Err(error) => {
            output::error(&error.to_string());
            return exit::USAGE;
        }
    }
    if config.runs_project_toml() {
        output::bullet("project.toml is valid (no preheat.toml)");
    } else {
        output::bullet("preheat.toml is valid");
    }
    exit::OK
}
