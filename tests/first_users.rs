//! The gate's first-user line, on a real gated gunicorn (2 sync workers from
//! the test venv) running `tests/fixtures/workers/app.py`, whose every worker
//! pays a 500 ms cold start per path. The warm-up requests `/` and
//! `/dashboard`; users also ask for `/reports`, which it never requests. A
//! pipelined connection, an Upgrade and HTTP/2 prior knowledge come first and
//! must count for nothing.

#![allow(unused_crate_dependencies)]

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{app, eventually, free_port, preheat, user_request, venv_bin};

struct Gated {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Gated {
    fn start(bin: &Path, toml: &str) -> Self {
        let dir = app(&[("preheat.toml", toml)]);
        let port = free_port();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workers");
        let web = format!(
            "{} --workers 2 --worker-class sync --chdir {} --bind 127.0.0.1:$PORT app:app",
            bin.join("gunicorn").display(),
            fixtures.display()
        );
        let mut child = preheat()
            .args(["gate", "--", &web])
            .current_dir(dir.path())
            .env("PORT", port.to_string())
            .env("DYNO", "web.1")
            .env("WEB_CONCURRENCY", "2")
            .env("COLD_MS", "500")
            .env("WARM_MS", "2")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start preheat gate");
        let output = support::capture_output(&mut child);
        let gated = Self {
            child,
            port,
            output,
            _dir: dir,
        };
        assert!(
            eventually(Duration::from_mins(1), || gated
                .log()
                .contains("gate: port")),
            "the gate never opened:\n{}",
            gated.log()
        );
        gated
    }

    fn log(&self) -> String {
        self.output.lock().expect("lock").clone()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Sends `bytes` on one connection and reads until the app closes it.
    fn raw(&self, bytes: &[u8]) -> String {
        let mut stream = TcpStream::connect(self.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(bytes).expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// The first-user line, once it is there.
    fn first_users_line(&self) -> String {
        let found = eventually(Duration::from_secs(10), || {
            self.log().contains("event=first_users")
        });
        let log = self.log();
        assert!(found, "no first-user line:\n{log}");
        log.lines()
            .find(|l| l.contains("event=first_users"))
            .expect("line")
            .to_string()
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn figure(line: &str, key: &str) -> String {
    let tail = line.rsplit_once(" | ").expect("figures").1;
    tail.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        .to_string()
}

#[test]
fn the_gate_counts_its_first_users_and_names_the_path_the_warm_up_missed() {
    let Some(bin) = venv_bin() else { return };
    let toml = "[warmup]\npaths = [\"/\", \"/dashboard\"]\ndeadline = \"60s\"\nfirst_users = 8\n";
    let gated = Gated::start(&bin, toml);

    // Not plain request/response: none of these count.
    let pipelined = gated.raw(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /dashboard HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(pipelined.starts_with("HTTP/1.1 200"), "{pipelined}");
    let upgrade = gated
        .raw(b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert!(upgrade.starts_with("HTTP/1.1"), "{upgrade}");
    let _ = gated.raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    // Eight users: warmed paths, a query string, and the path the warm-up missed.
    let mut reports = Vec::new();
    for path in [
        "/",
        "/dashboard?page=2",
        "/reports",
        "/",
        "/dashboard",
        "/reports",
        "/",
        "/",
    ] {
        let (status, took) = user_request(gated.port, path);
        assert_eq!(status, 200, "{path}:\n{}", gated.log());
        if path == "/reports" {
            reports.push(took);
        }
    }

    let line = gated.first_users_line();
    eprintln!("{line}");
    assert!(
        line.starts_with("preheat: web.1 gate: first 8 users after open: p50 "),
        "{line}"
    );
    assert_eq!(figure(&line, "event"), "first_users");
    assert_eq!(figure(&line, "dyno"), "web.1");
    assert_eq!(figure(&line, "users"), "8", "{line}");
    assert_eq!(figure(&line, "cold"), "0", "warmed paths are warm: {line}");
    assert_eq!(figure(&line, "not_warmed"), "1", "{line}");
    assert_eq!(figure(&line, "not_warmed_paths"), "/reports", "{line}");
    assert!(
        line.contains("; 0 cold; not warmed: /reports (first "),
        "{line}"
    );
    assert!(line.contains(", 2 hits)"), "{line}");
    // Its first latency is the worker's cold start (500 ms), as the user saw it.
    let first: u64 = line
        .split("/reports (first ")
        .nth(1)
        .and_then(|rest| rest.split("ms,").next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("first latency in ms: {line}"));
    assert!(first >= 500, "{line}");
    assert!(
        Duration::from_millis(first) <= reports[0],
        "{line} vs {reports:?}"
    );
    let max: u64 = figure(&line, "max_ms").parse().expect("max_ms");
    assert!(max >= first, "{line}");
    // Only one line per window.
    std::thread::sleep(Duration::from_millis(200));
    let _ = user_request(gated.port, "/");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(gated.log().matches("event=first_users").count(), 1);
}

#[test]
fn a_stop_before_the_window_ends_still_prints_the_line() {
    let Some(bin) = venv_bin() else { return };
    let toml = "[warmup]\npaths = [\"/\"]\ndeadline = \"60s\"\n";
    let gated = Gated::start(&bin, toml);
    for _ in 0..3 {
        assert_eq!(user_request(gated.port, "/").0, 200);
    }
    let pid = i32::try_from(gated.child.id()).expect("pid");
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("SIGTERM");
    let line = gated.first_users_line();
    assert_eq!(figure(&line, "users"), "3", "{line}");
    assert_eq!(figure(&line, "not_warmed"), "0", "{line}");
    assert!(line.contains("first 3 users after open"), "{line}");
}
