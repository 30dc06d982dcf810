//! Hostile servers against the release phase's HTTP prime steps, the
//! webhook and the Platform API client: every scenario ends within its
//! deadline with a clear line, and the child's peak RSS stays bounded.
//! `cargo test --test hostile -- --nocapture` prints the figures that
//! docs/hostile-input.md quotes.

#![allow(unused_crate_dependencies)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::hostile::{Hostile, HostileServer, Measured, each_scenario, measure, report};
use support::platform_api::{APP, PlatformApi, TOKEN};
use support::{HttpServer, app, preheat};

/// Peak RSS of the debug `preheat` binary that a hostile server may not exceed.
/// At rest it is about 10 MB; one whole 100 MB body would be ten times this.
const RSS_LIMIT_MB: f64 = 32.0;

/// Every scenario with an error status (its body is read for the message),
/// and the two big bodies with a success status too (their body is not read).
fn scenarios() -> Vec<(Hostile, u16)> {
    let mut list: Vec<(Hostile, u16)> = Hostile::ALL.iter().map(|&h| (h, 503)).collect();
    list.push((Hostile::EndlessBody, 200));
    list.push((Hostile::HundredMegabytes, 200));
    list
}

/// Variables from a developer's shell that would change the run.
fn clean(command: &mut Command) {
    for name in [
        "PREHEAT_SKIP",
        "PREHEAT_API_TOKEN",
        "HEROKU_API_KEY",
        "PREHEAT_API_URL",
        "PREHEAT_API_POLL_MS",
        "HEROKU_APP_NAME",
        "HEROKU_RELEASE_VERSION",
        "HEROKU_APP_DEFAULT_DOMAIN_NAME",
        "PREHEAT_WEBHOOK_SECRET",
        "CNB_APP_DIR",
        "DYNO",
        "PORT",
    ] {
        command.env_remove(name);
    }
}

fn check_bounds(target: &str, results: &[(Hostile, u16, Measured, u64)], within: Duration) {
    report(target, results);
    for (scenario, status, measured, _) in results {
        let name = scenario.name();
        assert!(
            measured.elapsed < within,
            "{target} against {name} ({status}) took {:?}:\n{}",
            measured.elapsed,
            measured.output
        );
        assert!(
            measured.peak_rss_mb() <= RSS_LIMIT_MB,
            "{target} against {name} ({status}) peaked at {:.1} MB:\n{}",
            measured.peak_rss_mb(),
            measured.output
        );
        assert!(
            !measured.output.contains("panicked"),
            "{target} against {name} ({status}) panicked:\n{}",
            measured.output
        );
        assert!(
            !measured.output.contains(TOKEN),
            "the token leaked:\n{}",
            measured.output
        );
    }
}

#[test]
fn http_prime_steps_end_on_time_in_bounded_memory() {
    let results = each_scenario(&scenarios(), |server: &HostileServer| {
        let toml = format!(
            "[release]\ndeadline = \"20s\"\n\n[[prime]]\nname = \"hostile\"\nhttp = {{ url = \"{}\", timeout = \"3s\" }}\n\n[warmup]\nenabled = false\n",
            server.url("/prime")
        );
        let dir = app(&[("preheat.toml", &toml)]);
        let mut command = preheat();
        clean(&mut command);
        command.arg("release").current_dir(dir.path());
        measure(&command, Duration::from_secs(40))
    });
    check_bounds(
        "release (HTTP prime step)",
        &results,
        Duration::from_secs(15),
    );
    for (scenario, status, measured, _) in &results {
        let out = &measured.output;
        let name = scenario.name();
        if *status == 200 && matches!(scenario, Hostile::EndlessBody | Hostile::HundredMegabytes) {
            // A success status is enough; the body is never read.
            assert_eq!(measured.code, Some(0), "{name} (200):\n{out}");
            assert!(out.contains("→ 200"), "{name} (200):\n{out}");
            continue;
        }
        assert_eq!(
            measured.code,
            Some(1),
            "{name} ({status}) must fail the step:\n{out}"
        );
        // One line that says what the server did, on the step's own bullet.
        let line = out
            .lines()
            .find(|l| l.contains("GET ") && l.contains(" → "))
            .unwrap_or_else(|| panic!("{name}: no line for the request:\n{out}"));
        let expected = match scenario {
            Hostile::Silent | Hostile::OneByteASecond => "timed out",
            Hostile::RedirectLoop => "redirect",
            Hostile::PlainHttpOnTls => "the server speaks plain HTTP; use an http:// URL",
            Hostile::GarbageStatus | Hostile::MegabyteOfHeaders => "failed",
            Hostile::EndlessBody | Hostile::HundredMegabytes | Hostile::ResetMidBody => "→ 503",
        };
        assert!(line.contains(expected), "{name} ({status}): {line}\n{out}");
        println!(
            "hostile: release line for {name} ({status}): {}",
            line.trim()
        );
    }
}

/// The release deadline, not the step's 30 s default timeout, ends a prime
/// step against a server that never answers or trickles: exit 124.
#[test]
fn no_hostile_server_holds_a_release_past_its_deadline() {
    let scenarios = [(Hostile::Silent, 200), (Hostile::OneByteASecond, 200)];
    let results = each_scenario(&scenarios, |server: &HostileServer| {
        let toml = format!(
            "[release]\ndeadline = \"3s\"\n\n[[prime]]\nhttp = {{ url = \"{}\" }}\nretries = 3\n",
            server.url("/prime")
        );
        let dir = app(&[("preheat.toml", &toml)]);
        let mut command = preheat();
        clean(&mut command);
        command.arg("release").current_dir(dir.path());
        measure(&command, Duration::from_secs(40))
    });
    check_bounds("release (deadline 3s)", &results, Duration::from_secs(8));
    for (scenario, _, measured, _) in &results {
        let out = &measured.output;
        assert_eq!(measured.code, Some(124), "{}:\n{out}", scenario.name());
        assert!(out.contains("deadline"), "{}:\n{out}", scenario.name());
        assert!(
            measured.elapsed >= Duration::from_secs(3),
            "{}: ended before its deadline:\n{out}",
            scenario.name()
        );
    }
}

/// A Platform API stand-in where v42 is live on one web dyno, and a web app that answers.
fn live_app() -> (PlatformApi, HttpServer) {
    (
        PlatformApi::start(42, 1),
        HttpServer::start(|_, _| (200, vec![], "ok".to_string())),
    )
}

fn await_live(dir: &std::path::Path, api_url: &str) -> Command {
    let mut command = preheat();
    clean(&mut command);
    command
        .args(["await-live", "42"])
        .current_dir(dir)
        .env("PREHEAT_API_URL", api_url)
        .env("PREHEAT_API_TOKEN", TOKEN)
        .env("HEROKU_APP_NAME", APP)
        .env("PREHEAT_API_POLL_MS", "50");
    command
}

#[test]
fn the_webhook_ends_on_time_in_bounded_memory() {
    let results = each_scenario(&scenarios(), |server: &HostileServer| {
        let (api, web) = live_app();
        let toml = format!(
            "[warmup]\nurl = \"{}\"\ndeadline = \"5s\"\n\n[confirm]\ndeadline = \"20s\"\n\n[notify]\nwebhook = \"{}\"\n",
            web.url(""),
            server.url("/hook")
        );
        let dir = app(&[("preheat.toml", &toml)]);
        measure(&await_live(dir.path(), &api.url()), Duration::from_secs(40))
    });
    // Three attempts of at most 2s each (the test knob scales 15s down), plus backoff.
    check_bounds("await-live (webhook)", &results, Duration::from_secs(20));
    for (scenario, status, measured, _) in &results {
        let out = &measured.output;
        let name = scenario.name();
        assert!(out.contains("live and warm"), "{name} ({status}):\n{out}");
        if *status == 200 && matches!(scenario, Hostile::EndlessBody | Hostile::HundredMegabytes) {
            assert_eq!(measured.code, Some(0), "{name} (200):\n{out}");
            assert!(out.contains("answered 200"), "{name} (200):\n{out}");
            continue;
        }
        assert_eq!(measured.code, Some(1), "{name} ({status}):\n{out}");
        assert!(
            out.contains("The notification was not delivered."),
            "{name} ({status}):\n{out}"
        );
        let expected = match scenario {
            Hostile::EndlessBody | Hostile::HundredMegabytes | Hostile::ResetMidBody => {
                "answered 503"
            }
            _ => "Could not reach the webhook at 127.0.0.1:",
        };
        assert!(out.contains(expected), "{name} ({status}):\n{out}");
    }
}

#[test]
fn the_platform_api_client_ends_on_time_in_bounded_memory() {
    let results = each_scenario(&scenarios(), |server: &HostileServer| {
        let dir = app(&[("preheat.toml", "[confirm]\ndeadline = \"8s\"\n")]);
        let base = server.url("");
        measure(&await_live(dir.path(), &base), Duration::from_secs(40))
    });
    check_bounds(
        "await-live (Platform API)",
        &results,
        Duration::from_secs(15),
    );
    for (scenario, status, measured, _) in &results {
        let out = &measured.output;
        let name = scenario.name();
        assert!(
            matches!(measured.code, Some(1 | 124)),
            "{name} ({status}): exit {:?}\n{out}",
            measured.code
        );
        let expected = match (scenario, status) {
            (Hostile::EndlessBody | Hostile::HundredMegabytes, 200) => {
                "the answer is larger than 4 MB"
            }
            (Hostile::EndlessBody | Hostile::HundredMegabytes | Hostile::ResetMidBody, _) => {
                "answered GET /apps/my-app/releases/42 with 503"
            }
            (Hostile::RedirectLoop, _) => "answered GET /apps/my-app/releases/42 with 302",
            _ => "GET /apps/my-app/releases/42",
        };
        assert!(out.contains(expected), "{name} ({status}):\n{out}");
    }
}
