//! The last step of `preheat release`: schedule the fleet confirmation, a
//! detached one-off dyno that runs `preheat await-live <version>` once the
//! release phase is over. It never fails the release: without a token it says
//! so in one line, and a failed request is a warning.

use crate::config::Config;
use crate::config::duration::{Span, human};
use crate::config::skip::Skip;
use crate::output;
use crate::platform::release_version::{self, Unscheduled};
use crate::platform::{self, SetupError, Token};
use std::time::{Duration, Instant};

/// How long the release waits for the Platform API, retries included.
const SCHEDULE_BUDGET: Duration = Duration::from_secs(20);

/// Variables that name the commit, passed on to the detached dyno.
const COMMIT_VARS: [&str; 3] = [
    "SOURCE_VERSION",
    "HEROKU_BUILD_COMMIT",
    "HEROKU_SLUG_COMMIT",
];

/// Schedules `preheat await-live` when configured; prints one
/// `Fleet confirmation: …` line, and a warning when the request failed.
pub(crate) fn schedule(config: &Config, skip: Skip) {
    let line = match plan(config, skip) {
        Ok(line) | Err(Unscheduled::Line(line)) => line,
        Err(Unscheduled::Warning(warning)) => {
            output::sub_bullet("Fleet confirmation: not scheduled; boot warm-up alone applies");
            output::warning(&format!(
                "Could not schedule the fleet confirmation (`preheat await-live`).\n\n{warning}\n\nThe release goes on: every web dyno still warms itself at boot."
            ));
            return;
        }
    };
    output::sub_bullet(&format!("Fleet confirmation: {line}"));
}

fn plan(config: &Config, skip: Skip) -> Result<String, Unscheduled> {
    if config.notify.is_none() && config.confirm.is_none() {
        return Err(Unscheduled::Line(
            "off (add [notify] to preheat.toml to hear when the release is live and warm)"
                .to_string(),
        ));
    }
    let confirm = config.confirm_settings();
    if !confirm.enabled {
        return Err(Unscheduled::Line(
            "off ([confirm] enabled = false)".to_string(),
        ));
    }
    if skip.notify {
        return Err(Unscheduled::Line(
            "skipped for this release (PREHEAT_SKIP=notify)".to_string(),
        ));
    }
    let Some(token) = Token::from_env() else {
        return Err(Unscheduled::Line(
            "not scheduled: no Platform API token (PREHEAT_API_TOKEN or HEROKU_API_KEY), so boot warm-up alone applies".to_string(),
        ));
    };
    let (app, app_source) = match platform::app_and_source(None) {
        Ok(found) => found,
        Err(SetupError::NoApp) => {
            return Err(Unscheduled::Line(
                "not scheduled: no app (neither HEROKU_APP_NAME nor HEROKU_APP_ID is set), so boot warm-up alone applies".to_string(),
            ));
        }
        Err(error) => return Err(Unscheduled::Warning(error.to_string())),
    };
    if app_source != "HEROKU_APP_NAME" {
        output::sub_bullet(&format!("App: {app} (from {app_source})"));
    }
    let poll =
        platform::poll_interval(&confirm).map_err(|e| Unscheduled::Warning(e.to_string()))?;
    let api = platform::connect(token, app.clone(), poll)
        .map_err(|e| Unscheduled::Warning(e.to_string()))?;
    let deadline = Instant::now() + SCHEDULE_BUDGET;
    let version = release_version::find(&api, deadline)?;
    let mut env: serde_json::Map<String, serde_json::Value> = COMMIT_VARS
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok().filter(|v| !v.trim().is_empty())?;
            Some(((*name).to_string(), serde_json::Value::String(value)))
        })
        .collect();
    // The detached dyno must find the app the way this one did, with or without dyno metadata.
    env.insert(app_source.to_string(), serde_json::Value::String(app));
    let detached = api
        .run_detached(
            &format!("preheat await-live {version}"),
            confirm.time_to_live,
            &env,
            deadline,
        )
        .map_err(|e| Unscheduled::Warning(e.to_string()))?;
    let (dyno, command) = (detached.dyno, detached.command);
    Ok(format!(
        "scheduled `{command}` on detached dyno {} (polls every {}, gives up after {}; `heroku logs --dyno {}` shows it)",
        dyno.name,
        human(poll),
        Span(confirm.deadline),
        dyno.name
    ))
}
