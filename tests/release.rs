//! `preheat release` end to end: real bash steps, real process groups, a real
//! HTTP server on 127.0.0.1.

#![allow(unused_crate_dependencies)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{HttpServer, Run, app, eventually, marker, preheat, processes_with};

fn release(dir: &Path, env: &[(&str, &str)]) -> Run {
    let mut command = preheat();
    command
        .arg("release")
        .current_dir(dir)
        .env_remove("PREHEAT_SKIP");
    for (k, v) in env {
        command.env(k, v);
    }
    Run::from(command.output().expect("run preheat release"))
}

/// Runs `preheat release`, asserting that a process carrying `mark` really
/// started while it ran, so a later "nothing left" check means something.
fn release_watching(dir: &Path, mark: &str) -> Run {
    let child = preheat()
        .arg("release")
        .current_dir(dir)
        .env_remove("PREHEAT_SKIP")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn preheat release");
    assert!(
        eventually(Duration::from_secs(10), || !processes_with(mark).is_empty()),
        "the step never started a process marked {mark}"
    );
    Run::from(child.wait_with_output().expect("wait"))
}

#[test]
fn runs_migrations_then_prime_steps_in_declared_order() {
    let app = app(&[(
        "preheat.toml",
        r#"
[[prime]]
name = "p1"
run = "echo p1 >> order.txt"

[[migrate]]
name = "m1"
run = "echo m1 >> order.txt; echo migrating users"

[[migrate]]
name = "m2"
run = "echo m2 >> order.txt"

[[prime]]
name = "p2"
run = "echo p2 >> order.txt"
"#,
    )]);
    let run = release(app.path(), &[("HEROKU_RELEASE_VERSION", "v42")]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let order = std::fs::read_to_string(app.path().join("order.txt")).expect("order");
    assert_eq!(order, "m1\nm2\np1\np2\n");
    assert!(out.contains("## preheat release v42"), "{out}");
    assert!(
        out.contains("      migrating users"),
        "child output is indented: {out}"
    );
    assert!(out.contains("- m1: done ("), "{out}");
    assert!(out.contains("ran      migrate m1"), "{out}");
    assert!(out.contains("- Done (finished in"), "{out}");
    assert!(
        out.contains("Boot warm-up: every `web` process warms itself on localhost as it starts (exec.d), before users reach it: / on every web process at boot"),
        "{out}"
    );
    assert!(
        out.contains("Fleet confirmation: off (add [notify]"),
        "{out}"
    );
}

#[test]
fn a_failing_migration_aborts_before_any_prime_step() {
    let app = app(&[(
        "preheat.toml",
        r#"
[[migrate]]
name = "schema"
run = "echo boom >&2; exit 7"

[[prime]]
name = "cache"
run = "touch primed"
"#,
    )]);
    let run = release(app.path(), &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        !app.path().join("primed").exists(),
        "prime step must not start"
    );
    assert!(
        out.contains("The migration schema failed: exited with status 7"),
        "{out}"
    );
    assert!(out.contains("      boom"), "{out}");
    assert!(out.contains("not run  prime   cache"), "{out}");
}

#[test]
fn an_optional_step_fails_and_the_run_goes_on() {
    let app = app(&[(
        "preheat.toml",
        r#"
[[prime]]
name = "flaky"
run = "exit 3"
required = false

[[prime]]
name = "after"
run = "touch after"
"#,
    )]);
    let run = release(app.path(), &[]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(app.path().join("after").exists());
    assert!(
        out.contains("! Optional step flaky failed (exited with status 3)"),
        "{out}"
    );
    assert!(out.contains("failed   prime   flaky"), "{out}");
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let mark = marker("timeout");
    let app = app(&[(
        "preheat.toml",
        &format!(
            r#"
[[migrate]]
name = "hangs"
run = "(exec -a {mark} sleep 600) & exec -a {mark}-parent sleep 600"
timeout = "1s"
"#
        ),
    )]);
    let started = Instant::now();
    let run = release_watching(app.path(), &mark);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly"
    );
    assert!(out.contains("hangs failed: timed out after 1s"), "{out}");
    assert!(
        processes_with(&mark).is_empty(),
        "left behind: {:?}",
        processes_with(&mark)
    );
}

#[test]
fn escaped_descendants_are_stopped_too() {
    let mark = marker("escaped");
    let app = app(&[(
        "preheat.toml",
        &format!(
            r#"
[[migrate]]
name = "daemonizes"
run = "setsid bash -c 'exec -a {mark} sleep 600' < /dev/null > /dev/null 2>&1 & sleep 1"
"#
        ),
    )]);
    let run = release_watching(app.path(), &mark);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(
        processes_with(&mark).is_empty(),
        "left behind: {:?}",
        processes_with(&mark)
    );
}

#[test]
fn sigterm_to_preheat_reaches_the_step_and_aborts() {
    let mark = marker("sigterm");
    let app = app(&[(
        "preheat.toml",
        &format!(
            r#"
[[migrate]]
name = "long"
run = "trap 'echo got-term > term.txt; exit 0' TERM; (exec -a {mark} sleep 600) & touch ready; while true; do sleep 0.05; done"
"#
        ),
    )]);
    let child = preheat()
        .arg("release")
        .current_dir(app.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(eventually(Duration::from_secs(10), || app
        .path()
        .join("ready")
        .exists()));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let started = Instant::now();
    let run = Run::from(child.wait_with_output().expect("wait"));
    let out = run.all();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(run.code, Some(143), "{out}");
    assert!(
        app.path().join("term.txt").exists(),
        "the step saw SIGTERM: {out}"
    );
    assert!(
        out.contains("preheat received SIGTERM while long was running"),
        "{out}"
    );
    assert!(
        processes_with(&mark).is_empty(),
        "left behind: {:?}",
        processes_with(&mark)
    );
}

#[test]
fn sigterm_exit_code_is_143() {
    let app = app(&[(
        "preheat.toml",
        "[[migrate]]\nname = \"wait\"\nrun = \"touch ready; sleep 600\"\n",
    )]);
    let child = preheat()
        .arg("release")
        .current_dir(app.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(eventually(Duration::from_secs(10), || app
        .path()
        .join("ready")
        .exists()));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(130));
}

#[test]
fn only_if_env_skips_with_a_warning() {
    let app = app(&[(
        "preheat.toml",
        r#"
[[migrate]]
name = "schema"
run = "touch migrated"
only_if_env = ["DATABASE_URL"]
"#,
    )]);
    let run = release(app.path(), &[("DATABASE_URL", "")]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(!app.path().join("migrated").exists());
    assert!(
        out.contains("! Skipping schema: DATABASE_URL is not set (only_if_env)."),
        "{out}"
    );
    assert!(out.contains("skipped  migrate schema"), "{out}");

    let run = release(app.path(), &[("DATABASE_URL", "postgres://localhost/x")]);
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert!(app.path().join("migrated").exists());
}

#[test]
fn preheat_skip_skips_whole_phases() {
    let app = app(&[(
        "preheat.toml",
        "[[migrate]]\nrun = \"touch migrated\"\n[[prime]]\nrun = \"touch primed\"\n",
    )]);
    let run = release(app.path(), &[("PREHEAT_SKIP", "migrate,warmup")]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(!app.path().join("migrated").exists());
    assert!(app.path().join("primed").exists());
    assert!(
        out.contains("Migrations: skipped (PREHEAT_SKIP=migrate)"),
        "{out}"
    );
    assert!(
        out.contains("Boot warm-up: skipped for this release (PREHEAT_SKIP=warmup)"),
        "{out}"
    );

    let run = release(app.path(), &[("PREHEAT_SKIP", "migrations")]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.all().contains("`migrations`, which is not a phase"));
}

#[test]
fn the_deadline_stops_the_release_with_124() {
    let app = app(&[(
        "preheat.toml",
        "[release]\ndeadline = \"1s\"\n[[migrate]]\nname = \"slow\"\nrun = \"sleep 30\"\n",
    )]);
    let run = release(app.path(), &[]);
    let out = run.all();
    assert_eq!(run.code, Some(124), "{out}");
    assert!(
        out.contains("The release deadline of 1s passed while slow was running"),
        "{out}"
    );
}

#[test]
fn http_step_retries_on_503_then_succeeds() {
    let server = HttpServer::start(|_, index| match index {
        0 => (
            503,
            vec![("Retry-After", "1".to_string())],
            "warming".into(),
        ),
        1 => (429, vec![("Retry-After", "0".to_string())], String::new()),
        _ => (202, vec![], "queued".into()),
    });
    let app = app(&[(
        "preheat.toml",
        &format!(
            r#"
[[prime]]
name = "search index"
http = {{ method = "POST", url = "{}", headers = {{ Authorization = "Bearer ${{SEARCH_TOKEN}}" }}, body = "{{\"all\":true}}" }}
expect_status = [200, 202]
retries = 3
"#,
            server.url("/reindex")
        ),
    )]);
    let run = release(app.path(), &[("SEARCH_TOKEN", "tok-abcdef123")]);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let seen = server.requests();
    assert_eq!(seen.len(), 3, "{out}");
    assert!(
        seen.iter()
            .all(|r| r.method == "POST" && r.path == "/reindex")
    );
    assert_eq!(
        seen[0].header("Authorization"),
        Some("Bearer tok-abcdef123")
    );
    assert_eq!(seen[0].body, "{\"all\":true}");
    // Retry-After: 1 was honoured.
    assert!(seen[1].at.duration_since(seen[0].at) >= Duration::from_millis(900));
    assert!(out.contains("→ 503 Service Unavailable"), "{out}");
    assert!(out.contains("→ 202 Accepted"), "{out}");
    assert!(!out.contains("tok-abcdef123"), "token leaked: {out}");
}

#[test]
fn http_step_gives_up_with_a_clear_message() {
    let server =
        HttpServer::start(|_, _| (503, vec![("Retry-After", "0".to_string())], "down".into()));
    let app = app(&[(
        "preheat.toml",
        &format!(
            "[[prime]]\nname = \"cdn purge\"\nhttp = {{ url = \"{}\" }}\nretries = 2\n",
            server.url("/purge")
        ),
    )]);
    let run = release(app.path(), &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert_eq!(server.requests().len(), 3);
    assert!(
        out.contains(
            "The prime step cdn purge failed: got HTTP 503 Service Unavailable after 3 attempts"
        ),
        "{out}"
    );
}

#[test]
fn http_step_does_not_retry_a_404() {
    let server = HttpServer::start(|_, _| (404, vec![], "nope".into()));
    let app = app(&[(
        "preheat.toml",
        &format!(
            "[[prime]]\nname = \"x\"\nhttp = {{ url = \"{}\" }}\nretries = 3\n",
            server.url("/x")
        ),
    )]);
    let run = release(app.path(), &[]);
    assert_eq!(run.code, Some(1), "{}", run.all());
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn secrets_never_show_in_the_output() {
    let server =
        HttpServer::start(|_, _| (500, vec![], "error for postgres://app:s3cr3tpw@db/x".into()));
    let app = app(&[(
        "preheat.toml",
        &format!(
            r#"
[[migrate]]
name = "schema"
run = "echo connecting to $DATABASE_URL"

[[prime]]
name = "hook"
http = {{ url = "http://hook:{port}pw-xyz@127.0.0.1:{port}/h", headers = {{ X-Api-Key = "${{HOOK_KEY}}" }} }}
required = false
"#,
            port = server.port
        ),
    )]);
    let run = release(
        app.path(),
        &[
            (
                "DATABASE_URL",
                "postgres://app:s3cr3tpw@db.example.com:5432/x",
            ),
            ("HOOK_KEY", "key-0987654321"),
        ],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("connecting to postgres://app:********@db.example.com"),
        "{out}"
    );
    for secret in [
        "s3cr3tpw",
        "key-0987654321",
        &format!("{}pw-xyz", server.port),
    ] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    assert_eq!(
        server.requests()[0].header("X-Api-Key"),
        Some("key-0987654321")
    );
}

#[test]
fn a_missing_variable_is_named() {
    let app = app(&[(
        "preheat.toml",
        "[[prime]]\nname = \"search\"\nhttp = { url = \"${SEARCH_URL}/reindex\" }\n",
    )]);
    let run = release(app.path(), &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("environment variable `SEARCH_URL` is not set"),
        "{out}"
    );
}

#[test]
fn a_bad_config_is_exit_2() {
    let app = app(&[(
        "preheat.toml",
        "[[migrate]]\nrun = \"x\"\ntimeout = \"soon\"\n",
    )]);
    let run = release(app.path(), &[]);
    assert_eq!(run.code, Some(2), "{}", run.all());
    assert!(run.all().contains("preheat.toml:3:11"), "{}", run.all());
}

#[test]
fn sigterm_stops_a_slow_http_step_at_once() {
    let server = HttpServer::start(|_, _| {
        std::thread::sleep(Duration::from_secs(20));
        (200, vec![], String::new())
    });
    let app = app(&[(
        "preheat.toml",
        &format!(
            "[[prime]]\nname = \"slow hook\"\nhttp = {{ url = \"{}\", timeout = \"60s\" }}\n",
            server.url("/slow")
        ),
    )]);
    let child = preheat()
        .arg("release")
        .current_dir(app.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(eventually(Duration::from_secs(10), || !server
        .requests()
        .is_empty()));
    let signalled = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let run = Run::from(child.wait_with_output().expect("wait"));
    assert_eq!(run.code, Some(143), "{}", run.all());
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?}",
        signalled.elapsed()
    );
    assert!(
        run.all()
            .contains("preheat received SIGTERM while slow hook was running"),
        "{}",
        run.all()
    );
}
