//! `preheat audit` as users run it: on the fixture log (tests/fixtures/audit,
//! exit codes, the report, --json), and end to end on a real gunicorn app
//! behind a log shim (`tests/python/router_log.py`) that writes the router's
//! and the dyno manager's lines, after `preheat warm` warmed some paths.

#![allow(unused_crate_dependencies)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use support::{eventually, free_port, venv_bin};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn audit(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_preheat"))
        .arg("audit")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run preheat audit");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or_default()).expect("write");
    drop(input);
    child.wait_with_output().expect("wait")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_fixture_report_exit_1_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("audit.json");
    let log = fixtures().join("audit/heroku.log");
    let app = fixtures().join("audit");
    let out = audit(
        &[
            log.to_str().expect("utf-8"),
            "--dir",
            app.to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
        ],
        None,
    );
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("paths = [\"/\", \"/reports\", \"/search\"]"),
        "{report}"
    );
    assert!(report.contains("/reports: 2 of 3 cold"), "{report}");
    assert!(
        report.contains("left out 2 of preheat's own requests"),
        "{report}"
    );
    for line in report.lines() {
        assert!(line.chars().count() <= 80, "over 80 columns: {line}");
    }
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("json");
    assert_eq!(figures["cold_users"], 4);
    assert_eq!(
        figures["suggested_paths"],
        serde_json::json!(["/", "/reports", "/search"])
    );
    let cold: Vec<u64> = figures["boots"]
        .as_array()
        .expect("boots")
        .iter()
        .map(|b| b["cold"].as_u64().expect("cold"))
        .collect();
    assert_eq!(cold, vec![1, 2, 1]);
}

#[test]
fn stdin_a_log_with_no_router_lines_and_a_missing_file() {
    let out = audit(
        &["-"],
        Some(b"2026-03-01T12:00:00+00:00 app[web.1]: hello\n"),
    );
    let report = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains("heroku logs --source heroku -n 1500"),
        "{report}"
    );
    let out = audit(&["/nonexistent/heroku.log"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("/nonexistent/heroku.log"));
    let out = audit(&["--window", "soon"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// gunicorn, one sync worker, `app.py` behind the log shim.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str, request_id: Option<&str>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let id = request_id.map_or(String::new(), |id| format!("X-Request-ID: {id}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: shop.example.com\r\n{id}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
}

#[test]
fn end_to_end_audit_finds_the_path_the_warm_up_left_out() {
    let Some(bin) = venv_bin() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let log = work.path().join("heroku.log");
    std::fs::write(
        work.path().join("preheat.toml"),
        "[warmup]\npaths = [\"/\", \"/dashboard\"]\n",
    )
    .expect("toml");
    let port = free_port();
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let _server = Server(
        Command::new(bin.join("gunicorn"))
            .args(["--bind", &format!("127.0.0.1:{port}"), "--workers", "1"])
            .args(["--worker-class", "sync", "--graceful-timeout", "1"])
            .arg("--config")
            .arg(python.join("router_log.py"))
            .arg("--chdir")
            .arg(&python)
            .arg("router_log:app")
            .env("APP_DIR", fixtures().join("workers"))
            .env("ROUTER_LOG", &log)
            .env("COLD_MS", "400")
            .env("WARM_MS", "3")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gunicorn"),
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("State changed"))
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "gunicorn did not come up"
    );
    // The boot warmer's requests carry X-Preheat-Warmup; the shim, like the
    // router, never sees them.
    let warm = Command::new(env!("CARGO_BIN_EXE_preheat"))
        .args(["warm", "--port", &port.to_string(), "--dir"])
        .arg(work.path())
        .output()
        .expect("preheat warm");
    assert!(warm.status.success(), "{}", text(&warm));
    // The first users: two warmed paths, one the warm-up left out, and
    // one of preheat's own requests through the router (left out).
    get(port, "/", None);
    get(port, "/dashboard?tab=1", None);
    get(port, "/reports", None);
    get(port, "/own", Some("preheat-0000000000000000deadbeef"));
    // Steady traffic, after the 2 s window.
    std::thread::sleep(Duration::from_millis(2500));
    for _ in 0..6 {
        for path in ["/", "/dashboard", "/reports"] {
            get(port, path, None);
        }
    }
    let json = work.path().join("audit.json");
    let out = audit(
        &[
            log.to_str().expect("utf-8"),
            "--window",
            "2s",
            "--dir",
            work.path().to_str().expect("utf-8"),
            "--json",
            json.to_str().expect("utf-8"),
        ],
        None,
    );
    let report = text(&out);
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(1), "{report}");
    let figures: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("json");
    assert_eq!(figures["lines"]["preheat_requests"], 1, "{report}");
    assert_eq!(figures["boots"][0]["users"], 3, "{report}");
    assert_eq!(figures["boots"][0]["cold"], 1, "{report}");
    let cold: Vec<&str> = figures["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter(|p| p["cold"].as_u64() > Some(0))
        .map(|p| p["path"].as_str().expect("path"))
        .collect();
    assert_eq!(cold, vec!["/reports"], "{report}");
    assert_eq!(
        figures["suggested_paths"],
        serde_json::json!(["/", "/dashboard", "/reports"]),
        "{report}"
    );
}
