//! One-off dynos: `POST /apps/{app}/dynos` with `launcher` in front of the
//! command on a `cnb` stack (Fir), as the Heroku CLI does (heroku/cli
//! `src/lib/run/helpers.ts`, `shouldPrependLauncher`). Every path that
//! creates a dyno goes through [`Api::run_detached`].

use super::Dyno;
use super::client::{Api, ApiError, Scope, describe, parse};
use reqwest::Method;
use std::time::{Duration, Instant};

/// The `Accept` the Heroku CLI sends for `GET /apps/{app}` before it creates a
/// dyno (heroku/cli `shouldPrependLauncher`): the SDK variant carries `generation`.
const ACCEPT_SDK: &str = "application/vnd.heroku+json; version=3.sdk";
/// The stack of apps built with Cloud Native Buildpacks (Fir).
pub(crate) const CNB_STACK: &str = "cnb";

/// The part of an app (`GET /apps/{app}`) that preheat reads.
#[derive(Debug, Clone, serde::Deserialize)]
struct AppInfo {
    #[serde(default)]
    stack: Option<Named>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Named {
    #[serde(default)]
    name: String,
}

/// A detached dyno as created: the dyno, and the command it was given.
#[derive(Debug)]
pub(crate) struct Detached {
    pub(crate) dyno: Dyno,
    pub(crate) command: String,
}

impl Api {
    /// The app's stack name (`heroku-24`, or `cnb` on Fir), asked once per client.
    pub(crate) fn stack(&self, deadline: Instant) -> Result<&str, ApiError> {
        if let Some(stack) = self.stack.get() {
            return Ok(stack);
        }
        let path = ["apps", self.app()];
        let response = self.send_as(
            &Method::GET,
            &path,
            None,
            None,
            Scope::Read,
            deadline,
            ACCEPT_SDK,
        )?;
        let app: AppInfo = parse(response, &describe(&Method::GET, &path))?;
        let name = app.stack.map(|s| s.name).unwrap_or_default();
        Ok(self.stack.get_or_init(|| name))
    }

    /// `command` as a one-off dyno must run it: behind `launcher` on a `cnb`
    /// stack, so the buildpack layers (and `preheat`) are on `PATH`, as
    /// `heroku run` does; bare on Cedar stacks.
    pub(crate) fn dyno_command(
        &self,
        command: &str,
        deadline: Instant,
    ) -> Result<String, ApiError> {
        Ok(if self.stack(deadline)? == CNB_STACK {
            format!("launcher {command}")
        } else {
            command.to_string()
        })
    }

    /// `POST /apps/{app}/dynos`: a detached one-off dyno running `command`
    /// (with `launcher` in front on Fir; see [`Api::dyno_command`]).
    pub(crate) fn run_detached(
        &self,
        command: &str,
        time_to_live: Duration,
        env: &serde_json::Map<String, serde_json::Value>,
        deadline: Instant,
    ) -> Result<Detached, ApiError> {
        let command = self.dyno_command(command, deadline)?;
        let path = ["apps", self.app(), "dynos"];
        // `attach: false` is what `heroku run:detached` sends for a detached dyno.
        let body = serde_json::json!({
            "attach": false,
            "command": command,
            "type": "run:detached",
            "time_to_live": time_to_live.as_secs(),
            "env": env,
        });
        let response = self.send(
            &Method::POST,
            &path,
            None,
            Some(&body),
            Scope::Write,
            deadline,
        )?;
        let dyno = parse(response, &describe(&Method::POST, &path))?;
        Ok(Detached { dyno, command })
    }
}
