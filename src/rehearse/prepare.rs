//! Steps 1 and 2 of a rehearsal: the build's check of `preheat.toml` and the
//! Procfile, then release phase, run as Heroku runs it.

use super::dotenv::dotenv;
use super::stopped;
use crate::config::Config;
use crate::config::duration::human;
use crate::config::plan;
use crate::config::procfile::Procfile;
use crate::exit;
use crate::output;
use crate::release::process::{self, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What steps 1 and 2 leave for the boot.
pub(crate) struct Checked {
    pub(crate) config: Config,
    /// The Procfile's `web:` command.
    pub(crate) web: String,
    /// `.env`, as `heroku local` reads it.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) release_took: Duration,
}

/// Steps 1 and 2: the build's check, then release phase. `Err` is the exit code.
pub(crate) fn check_and_release(dir: &Path) -> Result<Checked, u8> {
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

/// `bash -c <command>` in the app dir, with `.env` and `preheat` on PATH.
pub(crate) fn bash(command_line: &str, dir: &Path, env: &[(String, String)]) -> Command {
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
