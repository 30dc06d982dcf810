//! Heroku Fir, end to end against the stand-in Platform API: the detached
//! dyno behind `launcher` on a `cnb` stack (bare on Cedar), Fir dyno names
//! (`web-12a34b56d-e78f9`) in await-live, rolling restart and the boot
//! warmer, and scheduling without dyno-metadata variables.

#![allow(unused_crate_dependencies)]

mod support;

use serde_json::Value;
use std::path::Path;

use std::time::Duration;
use support::platform_api::{
    APP, APP_ID, CLEARED, PlatformApi, run_preheat, web_app, with_watchdog,
};
use support::{HttpServer, Run, Seen, SlowServer, app, preheat};

/// `preheat ARGS` against the stand-in, with no dyno metadata unless `env` adds it.
fn run(api: &PlatformApi, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_preheat(api, dir, args, env)
}

/// A preheat.toml that turns the fleet confirmation on, warming `web`.
fn confirm_toml(web: &HttpServer) -> String {
    format!(
        "[warmup]\npaths = [\"/\"]\nurl = \"{}\"\ndeadline = \"5s\"\n\n[confirm]\ndeadline = \"30s\"\n",
        web.url("")
    )
}

fn calls(api: &PlatformApi, method: &str, path: &str) -> Vec<Seen> {
    api.requests()
        .into_iter()
        .filter(|s| s.method == method && s.path.split('?').next() == Some(path))
        .collect()
}

fn created(api: &PlatformApi) -> Vec<Value> {
    api.state().created.clone()
}

#[test]
fn the_detached_dyno_runs_through_launcher_on_cnb_and_bare_on_cedar() {
    let web = web_app();
    let dir = app(&[("preheat.toml", &confirm_toml(&web))]);
    for (api, expected) in [
        (
            PlatformApi::start_fir(41, 1),
            "launcher preheat await-live 42",
        ),
        (PlatformApi::start(41, 1), "preheat await-live 42"),
    ] {
        api.state().add_release(42, "pending", false);
        let run = run(
            &api,
            dir.path(),
            &["release"],
            &[("HEROKU_APP_NAME", APP), ("HEROKU_RELEASE_VERSION", "42")],
        );
        let out = run.all();
        assert_eq!(run.code, Some(0), "{out}");
        let bodies = created(&api);
        assert_eq!(bodies.len(), 1, "{out}");
        assert_eq!(bodies[0]["command"], expected, "{out}");
        assert_eq!(bodies[0]["type"], "run:detached");
        assert_eq!(bodies[0]["attach"], false);
        assert!(
            out.contains(&format!(
                "Fleet confirmation: scheduled `{expected}` on detached dyno run.1001"
            )),
            "{out}"
        );
        // The stack is asked once, the way the Heroku CLI asks it.
        let asked = calls(&api, "GET", &format!("/apps/{APP}"));
        assert_eq!(asked.len(), 1, "{out}");
        assert_eq!(
            asked[0].header("Accept"),
            Some("application/vnd.heroku+json; version=3.sdk")
        );
    }
}

#[test]
fn without_dyno_metadata_the_app_comes_from_heroku_app_id_and_the_release_from_release_id() {
    let api = PlatformApi::start_fir(41, 2);
    api.state().add_release(42, "pending", false);
    let id = api
        .state()
        .releases
        .iter()
        .find(|r| r.version == 42)
        .map(|r| r.id.clone())
        .expect("v42");
    let web = web_app();
    let dir = app(&[
        ("preheat.toml", &confirm_toml(&web)),
        ("release_id", &format!("{id}\n")),
    ]);
    let file = dir.path().join("release_id");
    let file = file.to_str().expect("utf-8 path");
    let run = run(
        &api,
        dir.path(),
        &["release"],
        &[("HEROKU_APP_ID", APP_ID), ("PREHEAT_RELEASE_ID_FILE", file)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains(&format!("App: {APP_ID} (from HEROKU_APP_ID)")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Release: v42 (HEROKU_RELEASE_VERSION is not set; release id {id} from {file}, GET /apps/{APP_ID}/releases/{id})"
        )),
        "{out}"
    );
    assert_eq!(
        calls(&api, "GET", &format!("/apps/{APP_ID}/releases/{id}")).len(),
        1
    );
    let posted = calls(&api, "POST", &format!("/apps/{APP_ID}/dynos"));
    assert_eq!(posted.len(), 1, "{out}");
    let body = &created(&api)[0];
    assert_eq!(body["command"], "launcher preheat await-live 42");
    // The detached dyno finds the app the same way.
    assert_eq!(body["env"]["HEROKU_APP_ID"], APP_ID);
}

#[test]
fn without_any_version_source_the_newest_pending_release_is_used() {
    let api = PlatformApi::start(40, 1);
    {
        let mut state = api.state();
        state.add_release(41, "failed", false);
        state.add_release(42, "pending", false);
    }
    let web = web_app();
    let dir = app(&[("preheat.toml", &confirm_toml(&web))]);
    let run = run(&api, dir.path(), &["release"], &[("HEROKU_APP_NAME", APP)]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains(
            "Release: v42 (the newest pending release, as HEROKU_RELEASE_VERSION is not set and "
        ),
        "{out}"
    );
    assert!(out.contains("no-release-id does not exist)"), "{out}");
    let listed = calls(&api, "GET", &format!("/apps/{APP}/releases"));
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].header("Range"),
        Some("version ..; order=desc, max=10")
    );
    assert_eq!(created(&api)[0]["command"], "preheat await-live 42");
}

#[test]
fn when_nothing_names_the_release_the_one_line_reason_says_what_is_missing() {
    let api = PlatformApi::start(41, 1);
    let web = web_app();
    let dir = app(&[("preheat.toml", &confirm_toml(&web))]);
    let run = run(&api, dir.path(), &["release"], &[("HEROKU_APP_NAME", APP)]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Fleet confirmation"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let line = lines[0];
    assert!(
        line.contains("not scheduled: no release version (HEROKU_RELEASE_VERSION is not set, "),
        "{line}"
    );
    assert!(
        line.contains("no-release-id does not exist, none of the 10 newest releases is pending)"),
        "{line}"
    );
    assert!(line.contains("boot warm-up alone applies"), "{line}");
    assert!(created(&api).is_empty());

    // Without an app either, nothing is asked at all.
    let api = PlatformApi::start(41, 1);
    let run = self::run(&api, dir.path(), &["release"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("not scheduled: no app (neither HEROKU_APP_NAME nor HEROKU_APP_ID is set)"),
        "{out}"
    );
    assert!(api.requests().is_empty());
}

#[test]
fn await_live_follows_fir_dynos_that_come_back_under_new_names() {
    let api = PlatformApi::start_fir(41, 2);
    api.state().add_release(42, "pending", false);
    let old: Vec<String> = api.state().dynos.iter().map(|d| d.name.clone()).collect();
    api.after(Duration::from_millis(200), |state| state.succeed(42));
    let web = web_app();
    let dir = app(&[("preheat.toml", &confirm_toml(&web))]);
    // As the detached dyno runs it: the app from HEROKU_APP_ID, no HEROKU_APP_NAME.
    let run = run(
        &api,
        dir.path(),
        &["await-live", "42"],
        &[("HEROKU_APP_ID", APP_ID)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("2/2 up on v42"), "{out}");
    let new: Vec<String> = api.state().dynos.iter().map(|d| d.name.clone()).collect();
    assert!(new.iter().all(|n| !old.contains(n)), "{old:?} {new:?}");
    for name in &new {
        assert!(name.starts_with("web-") && name.len() == 19, "{name}");
        assert!(out.contains(name.as_str()), "{name} not shown:\n{out}");
    }
    assert!(out.contains("is live and warm"), "{out}");
}

#[test]
fn rolling_restart_on_fir_waits_for_each_replacement_and_never_two_down() {
    let api = PlatformApi::start_fir(42, 3);
    api.state().boot = Duration::from_millis(250);
    let old: Vec<String> = api.state().dynos.iter().map(|d| d.name.clone()).collect();
    let web = web_app();
    let dir = app(&[("preheat.toml", &confirm_toml(&web))]);
    let run = run(
        &api,
        dir.path(),
        &["restart", "--rolling"],
        &[("HEROKU_APP_NAME", APP)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let restarts = api.state().restarts.clone();
    let names: Vec<String> = restarts.iter().map(|r| r.name.clone()).collect();
    let mut sorted = old.clone();
    sorted.sort();
    assert_eq!(names, sorted, "{out}");
    for restart in &restarts {
        assert!(restart.others_down.is_empty(), "{restart:?}\n{out}");
    }
    assert_eq!(api.state().max_web_down, 1, "{out}");
    for pair in restarts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(250),
            "{out}"
        );
    }
    let now: Vec<String> = api.state().dynos.iter().map(|d| d.name.clone()).collect();
    for (before, after) in old.iter().zip(&now) {
        assert_ne!(before, after);
        assert!(
            out.contains(&format!("{before}: replaced by {after}, up after")),
            "{out}"
        );
    }
    assert!(
        out.contains("Restarted 3 `web` dynos one at a time"),
        "{out}"
    );
}

/// `preheat warm --boot` as exec.d leaves it behind, on a dyno with `HOSTNAME` and maybe `DYNO`.
fn boot_log(env: &[(&str, &str)]) -> String {
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    let dir = app(&[(
        "preheat.toml",
        "[warmup]\npaths = [\"/\"]\ndeadline = \"10s\"\n",
    )]);
    let mut command = preheat();
    command
        .args(["warm", "--boot", "--dir"])
        .arg(dir.path())
        .current_dir(dir.path());
    for name in CLEARED {
        command.env_remove(name);
    }
    command.env("PORT", server.port.to_string());
    for (k, v) in env {
        command.env(k, v);
    }
    let run = with_watchdog(command, Duration::from_secs(20));
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(!server.requests().is_empty(), "{}", run.all());
    run.all()
}

#[test]
fn the_boot_warmer_names_a_fir_dyno_by_its_hostname() {
    let out = boot_log(&[("HOSTNAME", "web-12a34b56d-e78f9")]);
    assert!(
        out.contains("preheat: web-12a34b56d-e78f9 warm in"),
        "{out}"
    );
    // DYNO, when dyno metadata sets it, wins.
    let out = boot_log(&[("HOSTNAME", "web-12a34b56d-e78f9"), ("DYNO", "web.1")]);
    assert!(out.contains("preheat: web.1 warm in"), "{out}");
    // A hostname that is no dyno name (a container id) is not shown as one.
    let out = boot_log(&[("HOSTNAME", "3f2a9c1b7d4e")]);
    assert!(out.contains("preheat: web warm in"), "{out}");
}

#[test]
fn rolling_restart_on_fir_does_not_wait_for_a_replaced_dyno_to_leave_the_list() {
    // The replaced pods stay listed as `down` far longer than the test runs.
    let api = PlatformApi::start_fir(42, 2);
    {
        let mut state = api.state();
        state.boot = Duration::from_millis(150);
        state.fir_linger = Duration::from_mins(10);
    }
    let web = web_app();
    let dir = app(&[("preheat.toml", &confirm_toml(&web))]);
    let run = run(
        &api,
        dir.path(),
        &["restart", "--rolling"],
        &[("HEROKU_APP_NAME", APP)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert_eq!(api.state().restarts.len(), 2, "{out}");
    assert!(
        api.state()
            .restarts
            .iter()
            .all(|r| r.others_down.is_empty()),
        "{out}"
    );
    assert!(out.matches(": replaced by ").count() >= 2, "{out}");
    assert!(!out.contains("waiting for"), "{out}");
    assert!(
        out.contains("Restarted 2 `web` dynos one at a time"),
        "{out}"
    );
}
