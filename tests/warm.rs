//! Boot warm-up: the exec.d program run exactly as the CNB launcher runs it
//! (fd 3 a pipe read to EOF, stdout and stderr files), the detached warmer it
//! leaves behind, real slow-start HTTP servers, and `preheat warm`.

#![allow(unused_crate_dependencies)]

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::launch::{Built, assert_converged, read, run_exec_d, verdict_counts, wait_for_log};
use support::{SlowServer, app, eventually, preheat, processes_with, strip_ansi, user_request};

#[test]
fn exec_d_returns_at_once_and_the_warmer_warms_a_slow_start_server() {
    let built = Built::new(
        r#"
[warmup]
paths = ["/", "/dashboard"]
host = "myapp.example.com"
deadline = "20s"

[[warmup.request]]
path = "/api/ping"
method = "POST"
headers = { X-Warm = "yes" }
body = "{}"
"#,
    );
    // The app binds its port half a second after launch; its first request takes ~1 s.
    let server = SlowServer::start(Duration::from_millis(500), Duration::from_secs(1), 200);
    let log = built.log("web1");
    let port = server.port.to_string();
    let launch = run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[("PORT", port.as_str()), ("DYNO", "web.1")],
        &log,
    );
    assert_eq!(launch.code, Some(0));
    assert!(
        launch.eof_after < Duration::from_millis(200),
        "fd 3 reached EOF after {:?}",
        launch.eof_after
    );
    assert_eq!(launch.toml.trim(), "PREHEAT_BOOT_WARMUP = \"started\"");
    // Warming goes on after the launcher moved on.
    assert!(
        !read(&log).contains("warm in"),
        "warming had not finished at EOF"
    );

    let out = wait_for_log(&log, "warm in", Duration::from_secs(20));
    assert!(out.contains("preheat: web.1 warm in"), "{out}");
    assert!(out.contains("preheat: web.1 port "), "{out}");
    let rounds = assert_converged(&out, 3);
    assert!(out.contains("preheat: web.1 /dashboard 200 ×4 "), "{out}");
    assert!(
        out.contains("preheat: web.1 POST /api/ping 200 ×4 "),
        "{out}"
    );

    let seen = server.requests();
    let mut paths: Vec<(String, String)> = seen
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    paths.sort();
    for path in ["/", "/dashboard", "/api/ping"] {
        let count = paths.iter().filter(|(_, p)| p == path).count();
        assert_eq!(count, 4 * rounds, "{path}: {paths:?}");
    }
    paths.dedup();
    assert_eq!(
        paths,
        vec![
            ("GET".to_string(), "/".to_string()),
            ("GET".to_string(), "/dashboard".to_string()),
            ("POST".to_string(), "/api/ping".to_string()),
        ]
    );
    for request in &seen {
        assert_eq!(request.header("Host"), Some("myapp.example.com"));
        assert_eq!(request.header("X-Forwarded-Proto"), Some("https"));
    }
    let ping = seen.iter().find(|r| r.path == "/api/ping").expect("ping");
    assert_eq!(ping.header("X-Warm"), Some("yes"));
    assert_eq!(ping.body, "{}");

    // A user arriving now does not pay the cold start.
    let (status, took) = user_request(server.port, "/dashboard");
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_millis(500),
        "user request took {took:?}"
    );
}

#[test]
fn the_host_header_defaults_to_the_heroku_domain() {
    let built = Built::new("[warmup]\npaths = [\"/\"]\ndeadline = \"10s\"\n");
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    let log = built.log("host");
    let port = server.port.to_string();
    run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[
            ("PORT", port.as_str()),
            ("HEROKU_APP_DEFAULT_DOMAIN_NAME", "myapp-1234.herokuapp.com"),
        ],
        &log,
    );
    wait_for_log(&log, "warm in", Duration::from_secs(10));
    assert_eq!(
        server.requests()[0].header("Host"),
        Some("myapp-1234.herokuapp.com")
    );
}

#[test]
fn three_dynos_each_warm_themselves() {
    let built = Built::new("[warmup]\npaths = [\"/\", \"/dashboard\"]\ndeadline = \"20s\"\n");
    let servers: Vec<SlowServer> = (0..3)
        .map(|i| SlowServer::start(Duration::from_millis(200 * i), Duration::from_secs(1), 200))
        .collect();
    let logs: Vec<PathBuf> = (1..=3).map(|i| built.log(&format!("web{i}"))).collect();
    for (i, server) in servers.iter().enumerate() {
        let port = server.port.to_string();
        let dyno = format!("web.{}", i + 1);
        let launch = run_exec_d(
            &built.exec_d(),
            built.app.path(),
            &[("PORT", port.as_str()), ("DYNO", &dyno)],
            &logs[i],
        );
        assert_eq!(launch.code, Some(0));
    }
    for (i, (server, log)) in servers.iter().zip(&logs).enumerate() {
        let out = wait_for_log(log, "warm in", Duration::from_secs(20));
        assert!(
            out.contains(&format!("preheat: web.{} warm in", i + 1)),
            "{out}"
        );
        let rounds = assert_converged(&out, 2);
        let mut paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths.len(), 2 * 4 * rounds);
        paths.sort();
        paths.dedup();
        assert_eq!(paths, vec!["/", "/dashboard"]);
        let (_, took) = user_request(server.port, "/");
        assert!(
            took < Duration::from_millis(500),
            "web.{} user request took {took:?}",
            i + 1
        );
    }
}

#[test]
fn a_port_that_never_opens_is_logged_and_the_warmer_exits_by_its_deadline() {
    let built = Built::new("[warmup]\ndeadline = \"1s\"\n");
    let port = support::free_port().to_string();
    let log = built.log("closed");
    let launch = run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[("PORT", port.as_str())],
        &log,
    );
    assert_eq!(launch.code, Some(0));
    let out = wait_for_log(&log, "not warmed", Duration::from_secs(5));
    assert!(
        out.contains(&format!(
            "not warmed: nothing listened on port {port} within 1s"
        )),
        "{out}"
    );
    // The warmer runs the installed binary, whose path is unique to this test.
    let installed = built
        .layers
        .path()
        .join("preheat/bin/preheat")
        .display()
        .to_string();
    assert!(
        eventually(Duration::from_secs(3), || processes_with(&installed)
            .is_empty()),
        "the warmer is still running"
    );
}

#[test]
fn an_app_that_answers_500_is_logged_without_a_crash() {
    let built = Built::new("[warmup]\npaths = [\"/\"]\ndeadline = \"3s\"\n");
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 500);
    let port = server.port.to_string();
    let log = built.log("five-hundred");
    run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[("PORT", port.as_str()), ("DYNO", "web.2")],
        &log,
    );
    let out = wait_for_log(&log, "NOT warm", Duration::from_secs(10));
    assert!(out.contains("preheat: web.2 / 500"), "{out}");
    assert!(
        out.contains("(expected 2xx/3xx; sent Host: 127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("preheat: web.2 NOT warm in"), "{out}");
    // Failing rounds back off (250 ms, doubling) and keep trying until the
    // deadline, past max_rounds (5): a few rounds in 3 s, not a tight loop.
    assert!(out.contains("not converged: / failed; 0/"), "{out}");
    assert!(out.contains("; gave up at the warm-up deadline"), "{out}");
    assert!(out.contains("preheat: web.2 NOT warm in 3"), "{out}");
    let rounds = out.matches("preheat: web.2 / 500 ×4 ").count();
    assert!((3..=6).contains(&rounds), "{rounds} rounds:\n{out}");
    assert!(!out.contains("panicked"), "{out}");
}

#[test]
fn preheat_skip_and_enabled_false_turn_it_off() {
    let built = Built::new("");
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    let port = server.port.to_string();
    let log = built.log("skip");
    let launch = run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[("PORT", port.as_str()), ("PREHEAT_SKIP", "warmup")],
        &log,
    );
    assert_eq!(launch.code, Some(0));
    assert_eq!(launch.toml, "");
    assert!(
        read(&log).contains("preheat: web boot warm-up skipped (PREHEAT_SKIP=warmup)"),
        "{}",
        read(&log)
    );

    let off = Built::new("[warmup]\nenabled = false\n");
    let log = off.log("off");
    let launch = run_exec_d(
        &off.exec_d(),
        off.app.path(),
        &[("PORT", port.as_str())],
        &log,
    );
    assert_eq!(launch.code, Some(0));
    assert!(
        read(&log).contains("boot warm-up off ([warmup] enabled = false)"),
        "{}",
        read(&log)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.requests().is_empty(), "nothing was warmed");
}

#[test]
fn the_boot_warmer_stands_aside_when_web_runs_through_the_gate() {
    let built = Built::new("");
    std::fs::write(
        built.app.path().join("Procfile"),
        "web: preheat gate -- bin/web\nrelease: preheat release\n",
    )
    .expect("Procfile");
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    let port = server.port.to_string();
    let log = built.log("gated");
    let launch = run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[("PORT", port.as_str())],
        &log,
    );
    assert_eq!(launch.code, Some(0));
    assert!(
        read(&log).contains("boot warm-up stands aside: web runs through `preheat gate`"),
        "{}",
        read(&log)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.requests().is_empty(), "nothing was warmed twice");
}

#[test]
fn a_missing_port_is_logged() {
    let built = Built::new("");
    let log = built.log("noport");
    let launch = run_exec_d(&built.exec_d(), built.app.path(), &[], &log);
    assert_eq!(launch.code, Some(0));
    assert!(
        read(&log).contains("PORT is not set, so there is nothing to warm"),
        "{}",
        read(&log)
    );
}

#[test]
fn no_preheat_toml_warms_the_root_path() {
    let built = Built::new("");
    std::fs::remove_file(built.app.path().join("preheat.toml")).expect("rm");
    let server = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    let port = server.port.to_string();
    let log = built.log("defaults");
    run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[("PORT", port.as_str())],
        &log,
    );
    let out = wait_for_log(&log, "warm in", Duration::from_secs(10));
    let rounds = assert_converged(&out, 1);
    assert_eq!(server.requests().len(), 4 * rounds);
    assert!(server.requests().iter().all(|r| r.path == "/"));
}

#[test]
fn warm_now_is_a_smoke_test() {
    let app = app(&[("preheat.toml", "[warmup]\npaths = [\"/\", \"/health\"]\n")]);
    let ok = SlowServer::start(Duration::ZERO, Duration::ZERO, 200);
    std::thread::sleep(Duration::from_millis(100));
    let out = preheat()
        .args(["warm", "--port", &ok.port.to_string(), "--dir"])
        .arg(app.path())
        .env("WEB_CONCURRENCY", "3")
        .output()
        .expect("run");
    let text = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    // 2 × WEB_CONCURRENCY = 6 at once per path.
    assert!(text.contains("rounds, converged; "), "{text}");
    let (rounds, ok_count, all) = verdict_counts(&text);
    assert!((2..=5).contains(&rounds), "{text}");
    assert_eq!((ok_count, all), (2 * 6 * rounds, 2 * 6 * rounds), "{text}");
    assert_eq!(ok.requests().len(), 2 * 6 * rounds);
    assert!(text.contains("/health 200 ×6 "), "{text}");

    let bad = SlowServer::start(Duration::ZERO, Duration::ZERO, 503);
    std::thread::sleep(Duration::from_millis(100));
    let out = preheat()
        .args([
            "warm",
            "--url",
            &format!("http://127.0.0.1:{}", bad.port),
            "--dir",
        ])
        .arg(app.path())
        .output()
        .expect("run");
    let text = strip_ansi(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NOT warm"), "{text}");

    let out = preheat()
        .args(["warm", "--dir"])
        .arg(app.path())
        .env_remove("PORT")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
