//! `[confirm] rollback = true`, end to end: `preheat await-live` against the
//! stand-in Platform API, a real local server standing in for the router
//! (its answers keyed on the release whose slug is current) and a real
//! webhook receiver that checks the HMAC signature, all on 127.0.0.1.

#![allow(unused_crate_dependencies)]

mod support;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::platform_api::{APP, PlatformApi, State, run_preheat};
use support::{HttpServer, Run, Seen, app};

const SECRET: &str = "whsec-rollback-7a6b5c4d";

/// The slug the stand-in serves now: the current release's.
fn current_slug(state: &Mutex<State>) -> u64 {
    let state = state.lock().expect("stand-in state");
    state
        .releases
        .iter()
        .find(|r| r.current)
        .map_or(0, |r| r.slug)
}

/// The router: `/checkout` answers 500 while the slug of `broken` is current;
/// everything else 200. `delay` makes every answer slow (a cold app).
fn router(api: &PlatformApi, broken: u64, delay: Duration) -> HttpServer {
    let state = Arc::clone(&api.state);
    HttpServer::start(move |seen, _| {
        std::thread::sleep(delay);
        if seen.path.starts_with("/checkout") && current_slug(&state) == broken {
            (500, vec![], "Internal Server Error".to_string())
        } else {
            (200, vec![], "ok".to_string())
        }
    })
}

fn receiver() -> HttpServer {
    HttpServer::start(|seen, _| {
        if verify(seen) {
            (200, vec![], "ok".to_string())
        } else {
            (401, vec![], "bad signature".to_string())
        }
    })
}

fn verify(seen: &Seen) -> bool {
    let Some(signature) = seen.header("Preheat-Signature") else {
        return false;
    };
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(seen.body.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

fn toml(web: &HttpServer, hook: &HttpServer) -> String {
    format!(
        "[warmup]\npaths = [\"/\", \"/checkout\"]\nurl = \"{}\"\ndeadline = \"5s\"\n\n[confirm]\ndeadline = \"20s\"\nrollback = true\n\n[notify]\nwebhook = \"{}\"\n",
        web.url(""),
        hook.url("/hook")
    )
}

/// v42 is live; v43 finishes its release phase 100 ms in.
fn deploying_v43() -> PlatformApi {
    let api = PlatformApi::start(42, 2);
    api.state().add_release(43, "pending", false);
    api.after(Duration::from_millis(100), |state| state.succeed(43));
    api
}

fn await_live(api: &PlatformApi, version: &str, toml: &str) -> Run {
    let dir = app(&[("preheat.toml", toml)]);
    run_preheat(
        api,
        dir.path(),
        &["await-live", version],
        &[("HEROKU_APP_NAME", APP), ("PREHEAT_WEBHOOK_SECRET", SECRET)],
    )
}

/// The one webhook body, after checking its signature.
fn webhook(hook: &HttpServer) -> Value {
    let posts: Vec<Seen> = hook
        .requests()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(verify(&posts[0]), "the webhook is signed");
    serde_json::from_str(&posts[0].body).expect("a JSON body")
}

#[test]
fn a_release_that_answers_500_through_the_router_is_rolled_back() {
    let api = deploying_v43();
    let web = router(&api, 43, Duration::ZERO);
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    println!("{out}");
    assert_eq!(run.code, Some(1), "{out}");
    // The rollback as `heroku rollback` sends it: the id of v42.
    let (v42_id, v44) = {
        let state = api.state();
        assert_eq!(state.rollbacks.len(), 1, "{:?}", state.rollbacks);
        let v42 = state
            .releases
            .iter()
            .find(|r| r.version == 42)
            .expect("v42");
        assert_eq!(state.rollbacks[0], serde_json::json!({ "release": v42.id }));
        let v44 = state.releases.iter().find(|r| r.version == 44).cloned();
        (v42.id.clone(), v44.expect("the rollback release"))
    };
    assert!(!v42_id.is_empty());
    assert_eq!(v44.description, "Rollback to v42");
    assert_eq!(v44.slug, 42, "the old slug");
    assert_eq!(v44.status, "succeeded", "its release phase ran again");
    assert!(v44.current);
    let line = out
        .lines()
        .find(|l| l.contains("rolled back v43 → v42: "))
        .unwrap_or_else(|| panic!("no rollback line:\n{out}"));
    assert!(
        line.contains("/checkout answered 500 on ")
            && line.contains(" requests through the router"),
        "{line}"
    );
    assert!(
        line.contains("| event=rollback from=43 to=42 release=44"),
        "{line}"
    );
    // N of N: every request to /checkout in the failing rounds was wrong.
    let counts = line
        .split("/checkout answered 500 on ")
        .nth(1)
        .and_then(|rest| rest.split(" requests").next())
        .expect("counts");
    let (wrong, total) = counts.split_once(" of ").expect("N of M");
    assert_eq!(wrong, total, "{line}");
    let body = webhook(&hook);
    assert_eq!(body["outcome"], "rolled_back", "{body}");
    assert_eq!(body["version"], 43);
    assert_eq!(body["rollback"]["from"], 43);
    assert_eq!(body["rollback"]["to"], 42);
    assert_eq!(body["rollback"]["release"], 44);
    assert!(
        body["rollback"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("/checkout answered 500 on ")),
        "{body}"
    );
    assert!(
        body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("rolled back v43 → v42") && !t.contains("event=")),
        "{body}"
    );
    println!(
        "webhook body: {}",
        serde_json::to_string_pretty(&body).expect("json")
    );
}

#[test]
fn a_rollback_whose_answer_is_lost_is_sent_once_and_still_followed() {
    let api = deploying_v43();
    api.state().lose_rollback_answer = true;
    let web = router(&api, 43, Duration::ZERO);
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    println!("{out}");
    assert_eq!(run.code, Some(1), "{out}");
    // A 503 after the API made the release: a retry would roll back twice.
    assert_eq!(api.state().rollbacks.len(), 1, "{out}");
    assert!(
        out.contains("| event=rollback from=43 to=42 release=44"),
        "the rollback Heroku made is followed to the end:\n{out}"
    );
    assert_eq!(webhook(&hook)["outcome"], "rolled_back");
}

#[test]
fn a_rollback_release_that_fails_is_not_rolled_back_again() {
    // v44 is a rollback to v42, and it too answers 500.
    let api = PlatformApi::start(43, 2);
    {
        let mut state = api.state();
        state.add_release(44, "pending", false);
        if let Some(v44) = state.releases.last_mut() {
            v44.description = "Rollback to v42".to_string();
            v44.slug = 42;
        }
    }
    api.after(Duration::from_millis(100), |state| state.succeed(44));
    let web = router(&api, 42, Duration::ZERO);
    let hook = receiver();
    let run = await_live(&api, "44", &toml(&web, &hook));
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("Not rolled back: v44 is itself a rollback (to v42); preheat never rolls back a rollback"),
        "{out}"
    );
    assert!(api.state().rollbacks.is_empty());
    let body = webhook(&hook);
    assert_eq!(body["outcome"], "failed", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("/checkout answered 500")),
        "{body}"
    );
    assert!(
        body["rollback"]["refused"]
            .as_str()
            .is_some_and(|r| r.contains("never rolls back a rollback")),
        "{body}"
    );
}

#[test]
fn a_superseded_release_is_not_rolled_back() {
    let api = deploying_v43();
    // A newer deploy enters its release phase while v43 is being warmed: on the
    // router's first /checkout, so no clock decides whether it came in time.
    let state = Arc::clone(&api.state);
    let web = HttpServer::start(move |seen, _| {
        if seen.path.starts_with("/checkout") {
            let mut state = state.lock().expect("stand-in state");
            if !state.releases.iter().any(|r| r.version == 44) {
                state.add_release(44, "pending", false);
            }
            (500, vec![], "Internal Server Error".to_string())
        } else {
            (200, vec![], "ok".to_string())
        }
    });
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains(
            "Not rolled back: v44 superseded v43; preheat rolls back only the current release"
        ),
        "{out}"
    );
    assert!(api.state().rollbacks.is_empty());
    let body = webhook(&hook);
    assert_eq!(body["outcome"], "failed", "{body}");
}

#[test]
fn a_slow_but_correct_release_is_not_rolled_back() {
    let api = deploying_v43();
    // Every answer is right and slow: cold, not broken.
    let web = router(&api, 0, Duration::from_millis(150));
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("is live and warm"), "{out}");
    assert!(!out.contains("rolled back"), "{out}");
    assert!(api.state().rollbacks.is_empty());
    assert_eq!(webhook(&hook)["outcome"], "warm");
}

#[test]
fn without_the_write_scope_the_rollback_is_refused_and_the_failure_reported() {
    let api = deploying_v43();
    api.state().scopes = vec!["read"];
    let web = router(&api, 43, Duration::ZERO);
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("Not rolled back: the token in PREHEAT_API_TOKEN lacks the `write` scope"),
        "{out}"
    );
    assert!(
        out.contains("heroku authorizations:create --scope write"),
        "{out}"
    );
    // The POST was tried, refused with 403, and no release was made.
    let posts = api
        .requests()
        .into_iter()
        .filter(|s| s.method == "POST" && s.path.ends_with("/releases"))
        .count();
    assert_eq!(posts, 1);
    assert!(api.state().releases.iter().all(|r| r.version <= 43));
    let body = webhook(&hook);
    assert_eq!(body["outcome"], "failed", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("/checkout answered 500")),
        "{body}"
    );
    assert!(
        body["rollback"]["refused"]
            .as_str()
            .is_some_and(|r| r.contains("`write` scope")),
        "{body}"
    );
}

#[test]
fn web_dynos_that_crash_on_the_release_are_rolled_back() {
    let api = deploying_v43();
    // v43's dynos crash once they have booted, and stay crashed.
    api.after(Duration::from_millis(250), |state| {
        for dyno in state.dynos.iter_mut().filter(|d| d.version == 43) {
            dyno.state = "crashed";
            dyno.up_at = None;
        }
    });
    let web = router(&api, 0, Duration::ZERO);
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("rolled back v43 → v42: web.1, web.2 crashed twice on v43"),
        "{out}"
    );
    assert_eq!(webhook(&hook)["outcome"], "rolled_back");
}

/// `web.1` on v43 as the stand-in holds it, set to `state` (`None`: it stays).
fn set_web1(state: &mut State, to: &'static str, up_in: Option<Duration>) {
    if let Some(dyno) = state
        .dynos
        .iter_mut()
        .find(|d| d.name == "web.1" && d.version == 43)
    {
        dyno.state = to;
        dyno.up_at = up_in.map(|d| std::time::Instant::now() + d);
    }
}

/// The dyno-list polls after the first: what `web.1` is on each.
fn script_web1(api: &PlatformApi, steps: &[(&'static str, Option<Duration>)]) {
    let mut state = api.state();
    state.on_dyno_list.push_back(Box::new(|_| {}));
    for &(to, up_in) in steps {
        state
            .on_dyno_list
            .push_back(Box::new(move |s: &mut State| set_web1(s, to, up_in)));
    }
}

#[test]
fn a_dyno_that_crashes_once_and_comes_back_is_not_rolled_back() {
    let api = deploying_v43();
    // Heroku restarts a crashed dyno at once: crashed on one poll, then starting.
    script_web1(
        &api,
        &[
            ("crashed", None),
            ("starting", Some(Duration::from_millis(100))),
        ],
    );
    let web = router(&api, 0, Duration::ZERO);
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("web.1 crashed v43"),
        "the crash was seen:\n{out}"
    );
    assert!(api.state().rollbacks.is_empty(), "{out}");
    assert_eq!(webhook(&hook)["outcome"], "warm");
}

#[test]
fn a_dyno_that_crashes_again_after_its_restart_is_rolled_back() {
    let api = deploying_v43();
    script_web1(
        &api,
        &[("crashed", None), ("starting", None), ("crashed", None)],
    );
    let web = router(&api, 0, Duration::ZERO);
    let hook = receiver();
    let run = await_live(&api, "43", &toml(&web, &hook));
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("rolled back v43 → v42: web.1 crashed twice on v43"),
        "{out}"
    );
    let body = webhook(&hook);
    assert_eq!(body["outcome"], "rolled_back");
    assert_eq!(api.state().rollbacks.len(), 1, "{out}");
}

#[test]
fn a_dyno_that_crashed_and_is_not_up_by_the_deadline_is_rolled_back() {
    let api = deploying_v43();
    // Crashed once, then starting for good (a boot that never binds).
    script_web1(&api, &[("crashed", None), ("starting", None)]);
    rolled_back_at_a_two_second_deadline(&api);
}

#[test]
fn a_crashed_dyno_is_rolled_back_when_the_deadline_passes_during_a_dyno_list() {
    let api = deploying_v43();
    script_web1(&api, &[("crashed", None)]);
    // The next list is answered only after the 2 s deadline: a slow API.
    api.state().on_dyno_list.push_back(Box::new(|_| {
        std::thread::sleep(Duration::from_secs(3));
    }));
    rolled_back_at_a_two_second_deadline(&api);
}

/// await-live v43 with a 2 s deadline rolls back, for `web.1` crashed and not up.
fn rolled_back_at_a_two_second_deadline(api: &PlatformApi) {
    let web = router(api, 0, Duration::ZERO);
    let hook = receiver();
    let toml = toml(&web, &hook).replace("deadline = \"20s\"", "deadline = \"2s\"");
    let run = await_live(api, "43", &toml);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains(
            "rolled back v43 → v42: web.1 crashed on v43 and was not up by the 2.0s deadline"
        ),
        "{out}"
    );
    assert_eq!(webhook(&hook)["outcome"], "rolled_back");
}
