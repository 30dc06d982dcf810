//! The Platform API side, end to end: `preheat await-live`, `preheat restart`
//! and the scheduling at the end of `preheat release`, against a stateful
//! stand-in Platform API, a real web server and a real webhook receiver, all
//! on 127.0.0.1. `PREHEAT_API_POLL_MS=50` (the test-only knob) keeps it fast.

#![allow(unused_crate_dependencies)]

mod support;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::fmt::Write as _;
use std::path::Path;

use std::time::{Duration, Instant};
use support::platform_api::{
    APP, CLEARED, PlatformApi, TOKEN, assert_no_token, run_preheat, web_app, with_watchdog,
};
use support::{HttpServer, Run, Seen, app, preheat};

const SECRET: &str = "whsec-test-5e4d3c2b1a09";

/// `preheat ARGS` against the stand-in, as the app `HEROKU_APP_NAME=my-app`.
fn run(api: &PlatformApi, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut with_app = vec![("HEROKU_APP_NAME", APP)];
    with_app.extend_from_slice(env);
    run_preheat(api, dir, args, &with_app)
}

/// A webhook receiver that verifies `Preheat-Signature` and answers 401 when it does not match.
fn receiver() -> HttpServer {
    HttpServer::start(|seen, _| {
        if verify(seen, SECRET) {
            (200, vec![], "ok".to_string())
        } else {
            (401, vec![], "bad signature".to_string())
        }
    })
}

/// How a receiver checks the signature: HMAC-SHA256 of the raw body, base64.
fn verify(seen: &Seen, secret: &str) -> bool {
    let Some(signature) = seen.header("Preheat-Signature") else {
        return false;
    };
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(seen.body.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

fn preheat_toml(web: &HttpServer, hook: Option<&HttpServer>, extra: &str) -> String {
    let mut text = format!(
        "[warmup]\npaths = [\"/\", \"/dashboard\"]\nurl = \"{}\"\ndeadline = \"5s\"\n\n[confirm]\ndeadline = \"30s\"\n",
        web.url("")
    );
    if let Some(hook) = hook {
        let _ = write!(text, "\n[notify]\nwebhook = \"{}\"\n", hook.url("/hook"));
    }
    text.push_str(extra);
    text
}

fn only_posts(server: &HttpServer) -> Vec<Seen> {
    server
        .requests()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect()
}

fn json(seen: &Seen) -> Value {
    serde_json::from_str(&seen.body).expect("a JSON body")
}

fn api_calls(api: &PlatformApi, method: &str, fragment: &str) -> Vec<Seen> {
    api.requests()
        .into_iter()
        .filter(|s| {
            s.method == method && s.path.split('?').next().unwrap_or("").ends_with(fragment)
        })
        .collect()
}

/// Every API request: version 3 and the bearer token; polls no faster than
/// the poll interval; the dyno list follows `Next-Range`.
fn assert_polite_and_paginated(api: &PlatformApi) {
    // Every API request: version 3, the bearer token.
    let requests = api.requests();
    assert!(!requests.is_empty());
    for seen in &requests {
        assert_eq!(
            seen.header("Accept"),
            Some("application/vnd.heroku+json; version=3")
        );
        assert_eq!(
            seen.header("Authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    // Polls no faster than the poll interval.
    let polls = api_calls(api, "GET", "/releases/42");
    assert!(polls.len() >= 2, "{polls:?}");
    for pair in polls.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(45));
    }
    // The dyno list is paginated: the first page asks `id ..`, the next follow Next-Range.
    let lists = api_calls(api, "GET", "/dynos");
    assert!(
        lists
            .iter()
            .any(|s| s.header("Range") == Some("id ..; max=1000"))
    );
    assert!(
        lists
            .iter()
            .any(|s| s.header("Range").is_some_and(|r| r.starts_with("id ]"))),
        "Next-Range was not followed: {lists:?}"
    );
}

#[test]
fn await_live_waits_for_the_release_and_every_web_dyno_then_warms_and_notifies() {
    let api = PlatformApi::start(41, 2);
    {
        let mut state = api.state();
        state.add_dyno("worker.1", "up", 41);
        state.add_release(42, "pending", false);
        // One dyno per page, so the client must follow Next-Range.
        state.page_size = 1;
    }
    api.after(Duration::from_millis(250), |state| state.succeed(42));
    let web = web_app();
    let hook = receiver();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let started = Instant::now();
    let run = run(
        &api,
        dir.path(),
        &["await-live", "v42"],
        &[
            ("PREHEAT_WEBHOOK_SECRET", SECRET),
            ("SOURCE_VERSION", "0a1b2c3d4e5f"),
        ],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("## preheat await-live v42 (my-app)"), "{out}");
    assert!(
        out.contains("v42: pending: release phase still running"),
        "{out}"
    );
    assert!(out.contains("v42 succeeded and is current"), "{out}");
    assert!(out.contains("2/2 up on v42"), "{out}");
    assert!(
        out.contains("- my-app v42 is live and warm: live at +") && out.contains(", warm at +"),
        "{out}"
    );

    assert_polite_and_paginated(&api);

    // The warm-up went through the public URL, after every web dyno was up.
    let all_up = api.state().all_up_at.expect("the dynos came up");
    let warm = web.requests();
    let paths: Vec<&str> = warm.iter().map(|s| s.path.as_str()).collect();
    assert!(
        paths.contains(&"/") && paths.contains(&"/dashboard"),
        "{paths:?}"
    );
    assert!(
        warm.iter().all(|s| s.at >= all_up),
        "warmed before the dynos were up"
    );
    assert!(
        warm.iter()
            .all(|s| s.header("X-Preheat-Warmup") == Some("1"))
    );

    // One notification, signed, with the whole story.
    let posts = only_posts(&hook);
    assert_eq!(posts.len(), 1, "{posts:?}");
    let notice = &posts[0];
    assert!(notice.at >= *warm.iter().map(|s| &s.at).max().expect("a warm request"));
    assert!(verify(notice, SECRET), "the signature does not verify");
    assert_eq!(notice.header("Content-Type"), Some("application/json"));
    let body = json(notice);
    assert_eq!(body["app"], APP);
    assert_eq!(body["version"], 42);
    assert_eq!(body["outcome"], "warm");
    assert_eq!(body["commit"], "0a1b2c3d4e5f");
    assert!(body["reason"].is_null());
    assert!(body["timings"]["live_after_seconds"].as_f64().is_some());
    assert!(
        body["timings"]["warm_after_seconds"].as_f64()
            >= body["timings"]["live_after_seconds"].as_f64()
    );
    let dynos = body["dynos"].as_array().expect("dynos");
    assert_eq!(dynos.len(), 2, "only web dynos: {dynos:?}");
    assert!(
        dynos
            .iter()
            .all(|d| d["type"] == "web" && d["state"] == "up" && d["version"] == 42)
    );
    let text = body["text"].as_str().expect("Slack text");
    assert!(
        text.starts_with("my-app v42 is live and warm: live at +"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_failed_release_stops_the_wait_and_is_reported() {
    let api = PlatformApi::start(41, 1);
    api.state().add_release(42, "pending", false);
    api.after(Duration::from_millis(200), |state| state.fail(42));
    let web = web_app();
    let hook = receiver();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let run = run(
        &api,
        dir.path(),
        &["await-live", "42"],
        &[("PREHEAT_WEBHOOK_SECRET", SECRET)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("release v42 failed"), "{out}");
    assert!(out.contains("heroku releases:output v42"), "{out}");
    assert!(
        api_calls(&api, "GET", "/dynos").is_empty(),
        "no dyno polling after a failure"
    );
    assert!(
        web.requests().is_empty(),
        "nothing is warmed after a failure"
    );
    let posts = only_posts(&hook);
    assert_eq!(posts.len(), 1);
    let body = json(&posts[0]);
    assert_eq!(body["outcome"], "failed");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("release v42 failed")),
        "{body}"
    );
    assert!(body["timings"]["live_after_seconds"].is_null());
    // Without SOURCE_VERSION, the commit comes from the release description.
    assert_eq!(body["commit"], format!("{:07x}", 42 * 4_099));
}

#[test]
fn a_superseded_release_stops_the_wait_and_names_the_newer_one() {
    let api = PlatformApi::start(41, 1);
    api.state().add_release(42, "pending", false);
    api.after(Duration::from_millis(150), |state| {
        state.succeed(42);
        state.add_release(43, "succeeded", true);
        state.succeed(43);
    });
    let web = web_app();
    let hook = receiver();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let run = run(
        &api,
        dir.path(),
        &["await-live", "v42"],
        &[("PREHEAT_WEBHOOK_SECRET", SECRET)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("v42 succeeded, but v43 replaced it"), "{out}");
    assert!(
        out.contains("superseded by v43 before it was live"),
        "{out}"
    );
    // The newest release was asked for with a descending version Range.
    let lists = api_calls(&api, "GET", "/releases");
    assert!(
        lists
            .iter()
            .any(|s| s.header("Range") == Some("version ..; order=desc, max=1")),
        "{lists:?}"
    );
    assert!(web.requests().is_empty());
    let body = json(&only_posts(&hook)[0]);
    assert_eq!(body["outcome"], "failed");
    assert_eq!(body["superseded_by"], 43);
}

#[test]
fn rate_limited_429_waits_for_retry_after_then_succeeds() {
    let api = PlatformApi::start(42, 1);
    api.inject(
        "GET",
        "/releases/42",
        (
            429,
            vec![
                ("Retry-After", "1".to_string()),
                ("RateLimit-Remaining", "0".to_string()),
            ],
            r#"{"id":"rate_limit","message":"Your account reached the API rate limit. Please wait a few minutes before making new requests."}"#.to_string(),
        ),
    );
    let web = web_app();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, None, ""))]);
    let run = run(&api, dir.path(), &["await-live", "42"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("rate-limited (429, 0 requests left); waiting 1.0s"),
        "{out}"
    );
    let polls = api_calls(&api, "GET", "/releases/42");
    assert!(polls.len() >= 2);
    let gap = polls[1].at - polls[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, not after Retry-After"
    );
    assert!(out.contains("my-app v42 is live and warm"), "{out}");
}

#[test]
fn server_errors_are_retried() {
    let api = PlatformApi::start(42, 1);
    for _ in 0..2 {
        api.inject(
            "GET",
            "/dynos",
            (
                503,
                vec![],
                r#"{"id":"unavailable","message":"API is temporarily unavailable."}"#.to_string(),
            ),
        );
    }
    let web = web_app();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, None, ""))]);
    let run = run(&api, dir.path(), &["await-live", "42"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(api_calls(&api, "GET", "/dynos").len() >= 3);
}

#[test]
fn unauthorized_401_says_what_to_do_and_never_shows_the_token() {
    let api = PlatformApi::start(42, 1);
    // The stand-in expects another token, and echoes what it got in its
    // error message: preheat must scrub it.
    api.state().token = "tok-the-right-one-0000".to_string();
    let web = web_app();
    let hook = receiver();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let run = run(
        &api,
        dir.path(),
        &["await-live", "42"],
        &[("PREHEAT_WEBHOOK_SECRET", SECRET)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(2), "{out}");
    assert!(out.contains("401 unauthorized"), "{out}");
    assert!(
        out.contains("The Platform API did not accept the token in PREHEAT_API_TOKEN"),
        "{out}"
    );
    assert!(
        out.contains("heroku authorizations:create --scope write"),
        "{out}"
    );
    assert!(
        out.contains("********"),
        "the echoed token is masked: {out}"
    );
    assert_eq!(api.requests().len(), 1, "a 401 is not retried");
    let posts = only_posts(&hook);
    assert_eq!(posts.len(), 1);
    assert_no_token(&posts[0].body);
    assert_eq!(json(&posts[0])["outcome"], "failed");
}

#[test]
fn the_token_from_heroku_api_key_is_used_and_never_shown() {
    let api = PlatformApi::start(42, 1);
    let web = web_app();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, None, ""))]);
    let mut command = preheat();
    command.args(["await-live", "v42"]).current_dir(dir.path());
    for name in CLEARED {
        command.env_remove(name);
    }
    command
        .env("PREHEAT_API_URL", api.url())
        .env("HEROKU_API_KEY", TOKEN)
        .env("HEROKU_APP_NAME", APP)
        .env("PREHEAT_API_POLL_MS", "50");
    let run = with_watchdog(command, Duration::from_secs(30));
    let out = run.all();
    assert_no_token(&out);
    assert_eq!(run.code, Some(0), "{out}");
}

#[test]
fn a_dyno_that_never_comes_up_times_out_with_exit_124() {
    let api = PlatformApi::start(42, 2);
    {
        let mut state = api.state();
        let dyno = state
            .dynos
            .iter_mut()
            .find(|d| d.name == "web.2")
            .expect("web.2");
        dyno.state = "crashed";
    }
    let web = web_app();
    let hook = receiver();
    let dir = app(&[(
        "preheat.toml",
        &preheat_toml(&web, Some(&hook), "").replace("deadline = \"30s\"", "deadline = \"2s\""),
    )]);
    let run = run(
        &api,
        dir.path(),
        &["await-live", "42"],
        &[("PREHEAT_WEBHOOK_SECRET", SECRET)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(124), "{out}");
    assert!(
        out.contains("1/2 up on v42: web.1 up v42, web.2 crashed v42"),
        "{out}"
    );
    assert!(
        out.contains("gave up at the 2.0s deadline, waiting for every web dyno"),
        "{out}"
    );
    let body = json(&only_posts(&hook)[0]);
    assert_eq!(body["outcome"], "timeout");
    assert_eq!(body["dynos"][1]["state"], "crashed");
}

#[test]
fn the_deadline_during_a_dyno_list_names_the_wait() {
    let api = PlatformApi::start(42, 2);
    api.state().on_dyno_list.push_back(Box::new(|state| {
        if let Some(dyno) = state.dynos.iter_mut().find(|d| d.name == "web.2") {
            dyno.state = "starting";
            dyno.up_at = None;
        }
    }));
    // The second list is answered only after the 2 s deadline.
    api.state().on_dyno_list.push_back(Box::new(|_| {
        std::thread::sleep(Duration::from_secs(3));
    }));
    let web = web_app();
    let dir = app(&[(
        "preheat.toml",
        &preheat_toml(&web, None, "").replace("deadline = \"30s\"", "deadline = \"2s\""),
    )]);
    let run = run(&api, dir.path(), &["await-live", "42"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(124), "{out}");
    assert!(
        out.contains(
            "gave up at the 2.0s deadline, waiting for every web dyno to be up on v42 (GET /apps/my-app/dynos was unanswered)"
        ),
        "{out}"
    );
}

#[test]
fn warm_up_retries_while_the_router_answers_from_old_dynos() {
    let api = PlatformApi::start(42, 1);
    // The first answers come from dynos that are going away.
    let web = HttpServer::start(|_, index| {
        if index < 3 {
            (503, vec![], "Application error".to_string())
        } else {
            (200, vec![], "ok".to_string())
        }
    });
    let dir = app(&[("preheat.toml", &preheat_toml(&web, None, ""))]);
    let run = run(&api, dir.path(), &["await-live", "42"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("retrying, the router may still answer from old dynos"),
        "{out}"
    );
    assert!(out.contains("is live and warm"), "{out}");
    assert!(web.requests().len() >= 4);
}

#[test]
fn under_preboot_the_warm_up_goes_on_through_the_switch_over() {
    let api = PlatformApi::start(42, 1);
    api.state().preboot = true;
    let web = web_app();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, None, ""))]);
    let started = Instant::now();
    let run = run(&api, dir.path(), &["await-live", "42"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("Preboot is on"), "{out}");
    // 36 polls of 50 ms: the switch-over window under the test knob.
    assert!(started.elapsed() >= Duration::from_millis(1800));
    assert!(web.requests().len() > 10, "{}", web.requests().len());
}

#[test]
fn await_live_without_a_token_is_a_usage_error() {
    let api = PlatformApi::start(42, 1);
    let dir = app(&[]);
    let run = run(
        &api,
        dir.path(),
        &["await-live", "42"],
        &[("PREHEAT_API_TOKEN", "")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(2), "{out}");
    assert!(out.contains("No Platform API token"), "{out}");
    assert!(api.requests().is_empty());
    let run = self::run(&api, dir.path(), &["await-live", "latest"], &[]);
    assert_eq!(run.code, Some(2));
    assert!(run.all().contains("like `42` or `v42`"));
}

#[test]
fn rolling_restart_restarts_one_dyno_at_a_time_and_never_two_down() {
    let api = PlatformApi::start(42, 3);
    {
        let mut state = api.state();
        state.add_dyno("worker.1", "up", 42);
        state.boot = Duration::from_millis(250);
    }
    let web = web_app();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, None, ""))]);
    let run = run(&api, dir.path(), &["restart", "--rolling"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let restarts = api.state().restarts.clone();
    let names: Vec<&str> = restarts.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["web.1", "web.2", "web.3"], "{out}");
    for restart in &restarts {
        assert!(
            restart.others_down.is_empty(),
            "{} restarted while {:?} were down",
            restart.name,
            restart.others_down
        );
    }
    assert_eq!(api.state().max_web_down, 1);
    // Each restart waited for the previous dyno's boot, and a warm answer in between.
    let warm = web.requests();
    for pair in restarts.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(250));
        assert!(
            warm.iter().any(|s| s.at > pair[0].at && s.at < pair[1].at),
            "no warm-up between {} and {}",
            pair[0].name,
            pair[1].name
        );
    }
    assert!(warm.iter().any(|s| s.at > restarts[2].at));
    assert!(
        out.contains("Restarted 3 `web` dynos one at a time"),
        "{out}"
    );
    assert!(
        api_calls(&api, "DELETE", "/dynos").is_empty(),
        "no restart-all"
    );
}

#[test]
fn rolling_restart_of_a_single_dyno_app_warms_it_after() {
    let api = PlatformApi::start(42, 1);
    let web = web_app();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, None, ""))]);
    let run = run(
        &api,
        dir.path(),
        &["restart", "--rolling", "--type", "web"],
        &[],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let restarts = api.state().restarts.clone();
    assert_eq!(restarts.len(), 1);
    let boot = api.state().boot;
    let warm = web.requests();
    assert!(!warm.is_empty());
    assert!(
        warm.iter().all(|s| s.at >= restarts[0].at + boot),
        "warmed before it was up"
    );
    assert!(out.contains("web.1: up again after"), "{out}");
}

#[test]
fn plain_restart_restarts_every_dyno_at_once() {
    let api = PlatformApi::start(42, 2);
    let dir = app(&[]);
    let run = run(&api, dir.path(), &["restart"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert_eq!(api_calls(&api, "DELETE", "/apps/my-app/dynos").len(), 1);
    assert_eq!(api.state().restarts.len(), 2);
    let run = self::run(&api, dir.path(), &["restart", "--type", "worker"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(
        run.all()
            .contains("preheat restart --rolling --type worker")
    );
}

#[test]
fn restart_is_refused_when_the_token_lacks_the_write_scope() {
    let api = PlatformApi::start(42, 2);
    api.state().scopes = vec!["read"];
    let dir = app(&[]);
    let run = run(&api, dir.path(), &["restart", "--rolling"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(2), "{out}");
    assert!(out.contains("403 forbidden"), "{out}");
    assert!(out.contains("needs the `write` scope"), "{out}");
    assert!(out.contains("no dyno was restarted"), "{out}");
    assert!(api.state().restarts.is_empty());
}

#[test]
fn release_schedules_a_detached_await_live_dyno() {
    let api = PlatformApi::start(41, 1);
    api.state().add_release(42, "pending", false);
    let web = web_app();
    let hook = receiver();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let run = run(
        &api,
        dir.path(),
        &["release"],
        &[
            ("HEROKU_RELEASE_VERSION", "v42"),
            ("HEROKU_BUILD_COMMIT", "feedface"),
        ],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains(
            "Fleet confirmation: scheduled `preheat await-live 42` on detached dyno run.1001"
        ),
        "{out}"
    );
    let created = api.state().created.clone();
    assert_eq!(created.len(), 1);
    let body = &created[0];
    assert_eq!(body["type"], "run:detached");
    assert_eq!(body["command"], "preheat await-live 42");
    // [confirm] deadline 30s + 5m.
    assert_eq!(body["time_to_live"], 330);
    assert_eq!(body["env"]["HEROKU_BUILD_COMMIT"], "feedface");
    assert!(body["env"].get("PREHEAT_API_TOKEN").is_none());
    assert!(
        only_posts(&hook).is_empty(),
        "release itself never notifies"
    );
}

#[test]
fn release_without_a_token_says_so_in_one_line() {
    let api = PlatformApi::start(41, 1);
    let web = web_app();
    let hook = receiver();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let run = run(
        &api,
        dir.path(),
        &["release"],
        &[("HEROKU_RELEASE_VERSION", "42"), ("PREHEAT_API_TOKEN", "")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Fleet confirmation"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("no Platform API token"), "{out}");
    assert!(lines[0].contains("boot warm-up alone applies"), "{out}");
    assert!(api.requests().is_empty());
}

#[test]
fn a_failure_to_schedule_is_a_warning_and_the_release_goes_on() {
    let api = PlatformApi::start(41, 1);
    api.state().scopes = vec!["read"];
    let web = web_app();
    let dir = app(&[(
        "preheat.toml",
        &preheat_toml(&web, None, "").replace("[confirm]\n", "[confirm]\nenabled = true\n"),
    )]);
    let run = run(
        &api,
        dir.path(),
        &["release"],
        &[("HEROKU_RELEASE_VERSION", "42")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("Fleet confirmation: not scheduled"), "{out}");
    assert!(
        out.contains("Could not schedule the fleet confirmation"),
        "{out}"
    );
    assert!(out.contains("needs the `write` scope"), "{out}");
    assert!(out.contains("The release goes on"), "{out}");
    assert!(api.state().created.is_empty());
}

#[test]
fn preheat_skip_notify_skips_the_scheduling() {
    let api = PlatformApi::start(41, 1);
    let web = web_app();
    let hook = receiver();
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let run = run(
        &api,
        dir.path(),
        &["release"],
        &[("HEROKU_RELEASE_VERSION", "42"), ("PREHEAT_SKIP", "notify")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("Fleet confirmation: skipped for this release (PREHEAT_SKIP=notify)"),
        "{out}"
    );
    assert!(api.requests().is_empty());
    // And await-live sends no webhook.
    let run = self::run(
        &api,
        dir.path(),
        &["await-live", "41"],
        &[("PREHEAT_SKIP", "notify")],
    );
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(run.all().contains("Notify: skipped (PREHEAT_SKIP=notify)"));
    assert!(only_posts(&hook).is_empty());
}

#[test]
fn without_a_secret_the_webhook_is_unsigned() {
    let api = PlatformApi::start(42, 1);
    let web = web_app();
    let hook = HttpServer::start(|_, _| (200, vec![], "ok".to_string()));
    let dir = app(&[("preheat.toml", &preheat_toml(&web, Some(&hook), ""))]);
    let run = run(&api, dir.path(), &["await-live", "42"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    let posts = only_posts(&hook);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("Preheat-Signature"), None);
    // A receiver with a secret would refuse it, and a tampered body fails too.
    assert!(!verify(&posts[0], SECRET));
    let mut tampered = posts[0].clone();
    tampered.headers.push((
        "Preheat-Signature".to_string(),
        base64::engine::general_purpose::STANDARD.encode(
            Hmac::<Sha256>::new_from_slice(SECRET.as_bytes())
                .expect("key")
                .chain_update(b"another body")
                .finalize()
                .into_bytes(),
        ),
    ));
    assert!(!verify(&tampered, SECRET));
}
