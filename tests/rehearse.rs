//! `preheat rehearse` end to end: the example app, a failing release, crashes,
//! a dyno that never binds, and Ctrl-C; nothing may be left running.

#![allow(unused_crate_dependencies)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Run, app, eventually, example_copy, preheat, processes_with};

fn rehearse(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = preheat();
    command
        .arg("rehearse")
        .arg(dir)
        .args(args)
        .env_remove("PREHEAT_SKIP");
    for (k, v) in env {
        command.env(k, v);
    }
    Run::from(command.output().expect("run preheat rehearse"))
}

/// The figures `--json FILE` wrote.
fn figures(file: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(file).expect("read the --json file");
    serde_json::from_str(&text).expect("--json writes JSON")
}

fn num(value: &serde_json::Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

#[test]
fn rehearses_the_example_and_warm_first_requests_beat_cold_ones() {
    let (dir, web) = example_copy();
    let web_path = web.display().to_string();
    let json = dir.path().join("figures.json");
    let run = rehearse(
        dir.path(),
        &[
            "--dynos",
            "2",
            "--compare",
            "--json",
            &json.display().to_string(),
        ],
        &[("PREHEAT_EXAMPLE_BIN", &web_path), ("COLD_MS", "600")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    // The release really ran, with its real output.
    assert!(dir.path().join("db/schema.txt").is_file());
    assert!(out.contains("migrating to version 2"), "{out}");
    assert!(out.contains("Release phase passed"), "{out}");
    // The dynos' output is prefixed, and each warmed itself.
    assert!(out.contains("web.1 | listening on port"), "{out}");
    assert!(out.contains("web.2 | preheat: web.2 warm in"), "{out}");
    // No domain is configured, and rehearse says which Host it used.
    assert!(
        out.contains(
            "First users send Host: localhost (no `[warmup] host` or HEROKU_APP_DEFAULT_DOMAIN_NAME"
        ),
        "{out}"
    );
    // The report lists every dyno, warm and cold, with its first users' statuses.
    assert!(out.contains("- Rehearsal report"), "{out}");
    assert!(
        out.contains("first users    worst   median   steady"),
        "{out}"
    );
    for dyno in ["web.1", "web.2"] {
        assert_eq!(
            out.matches(&format!("  - {dyno} ")).count(),
            2,
            "{dyno} in both tables: {out}"
        );
        assert!(
            out.contains(&format!("{dyno}: the slowest first user waits ")),
            "{out}"
        );
    }
    assert_eq!(out.matches("2×200").count(), 4, "{out}");
    // The same figures, as JSON.
    let figures = figures(&json);
    assert_eq!(figures["schema"], 1);
    assert_eq!(figures["ok"], true);
    assert_eq!(figures["host"], "localhost");
    assert_eq!(
        figures["burst"], 2,
        "WEB_CONCURRENCY is unset: two first users"
    );
    let (warm, cold) = (
        figures["warm"].as_array().expect("warm"),
        figures["cold"].as_array().expect("cold"),
    );
    assert_eq!((warm.len(), cold.len()), (2, 2));
    for (w, c) in warm.iter().zip(cold) {
        assert_eq!(w["warm_up"], "done", "{w}");
        assert_eq!(c["warm_up"], "off", "{c}");
        for user in w["first_users"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(c["first_users"].as_array().into_iter().flatten())
        {
            assert_eq!(user["status"], 200, "{user}");
        }
        let (warm_worst, cold_worst) = (num(w, "first_worst_ms"), num(c, "first_worst_ms"));
        assert!(
            warm_worst < cold_worst,
            "warm {warm_worst}ms should beat cold {cold_worst}ms"
        );
        assert!(
            cold_worst >= 500.0,
            "the cold first user pays the cold start: {cold_worst}ms"
        );
        assert!(num(w, "first_median_ms") <= warm_worst);
    }
    assert!(processes_with(&web_path).is_empty(), "dynos left running");
}

/// A web process (Python's standard library) that records every request's
/// headers and client port in `seen.jsonl`, and answers 400 to any Host but
/// `$STRICT_HOST` when that is set, as Django's `ALLOWED_HOSTS` does.
const RECORDING_SERVER: &str = r#"
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        with open("seen.jsonl", "a") as seen:
            seen.write(json.dumps({"headers": {k.lower(): v for k, v in self.headers.items()}, "port": self.client_address[1]}) + "\n")
        strict = os.environ.get("STRICT_HOST")
        status = 400 if strict and self.headers.get("Host") != strict else 200
        body = b"hello" if status == 200 else b"Bad Request (400)"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// The users' requests (not the warmer's) as the server saw them.
fn users_seen(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("seen.jsonl"))
        .expect("seen.jsonl")
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("json line"))
        .filter(|r| r["headers"]["x-preheat-warmup"].is_null())
        .collect()
}

#[test]
fn first_users_arrive_as_the_router_sends_them() {
    let app = app(&[
        ("Procfile", "web: exec python3 server.py\n"),
        ("server.py", RECORDING_SERVER),
        (".env", "WEB_CONCURRENCY=3\n"),
        (
            "preheat.toml",
            "[warmup]\nhost = \"shop.example.com\"\npaths = [\"/hello\"]\n",
        ),
    ]);
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let run = rehearse(
        app.path(),
        &["--dynos", "1"],
        &[("STRICT_HOST", "shop.example.com")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("First users send Host: shop.example.com (from [warmup] host)"),
        "{out}"
    );
    assert!(out.contains("6×200"), "two first users per worker: {out}");
    let seen = users_seen(app.path());
    // 6 first users, then 12 steady-state requests.
    assert_eq!(seen.len(), 18, "{seen:?}");
    let mut ids = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for request in &seen {
        let h = &request["headers"];
        assert_eq!(h["host"], "shop.example.com", "{h}");
        assert_eq!(h["x-forwarded-proto"], "https", "{h}");
        assert_eq!(h["x-forwarded-port"], "443", "{h}");
        assert!(
            h["x-forwarded-for"]
                .as_str()
                .is_some_and(|f| f.starts_with("203.0.113.")),
            "{h}"
        );
        let start: u128 = h["x-request-start"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("X-Request-Start in ms");
        assert!(start >= before_ms, "{h}");
        ids.insert(
            h["x-request-id"]
                .as_str()
                .expect("X-Request-Id")
                .to_string(),
        );
        ports.insert(request["port"].as_u64().expect("port"));
    }
    assert_eq!(ids.len(), seen.len(), "a fresh X-Request-Id per request");
    assert_eq!(ports.len(), seen.len(), "a fresh connection per request");
}

#[test]
fn a_first_user_turned_away_by_a_strict_host_check_fails_the_rehearsal() {
    let app = app(&[
        ("Procfile", "web: exec python3 server.py\n"),
        ("server.py", RECORDING_SERVER),
        ("preheat.toml", "[warmup]\npaths = [\"/orders\"]\n"),
    ]);
    let json = app.path().join("figures.json");
    let run = rehearse(
        app.path(),
        &[
            "--dynos",
            "1",
            "--compare",
            "--json",
            &json.display().to_string(),
        ],
        &[
            ("STRICT_HOST", "shop.example.com"),
            ("HEROKU_APP_DEFAULT_DOMAIN_NAME", ""),
        ],
    );
    let out = run.all();
    // A fast 400 is an error page, never a fast first request.
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("2×400"), "{out}");
    assert!(!out.contains("faster"), "{out}");
    for needle in [
        "web.1's first users did not get the page (after the warm-up): 2 of 2 got 400",
        "for GET /orders with Host: localhost.",
        "ALLOWED_HOSTS",
        "config.hosts",
        "SECURE_PROXY_SSL_HEADER",
        "rehearse sent `Host: localhost`. Set `[warmup] host`",
    ] {
        assert!(out.contains(needle), "missing {needle:?}: {out}");
    }
    assert!(
        !out.contains("Without warm-up (--compare)"),
        "no cold run after a failure: {out}"
    );
    let figures = figures(&json);
    assert_eq!(figures["ok"], false);
    assert_eq!(figures["warm"][0]["first_users"][0]["status"], 400);
}

#[test]
fn a_failing_release_stops_the_rehearsal_before_any_dyno_boots() {
    let app = app(&[
        (
            "Procfile",
            "web: exec sleep 600\nrelease: preheat release\n",
        ),
        (
            "preheat.toml",
            "[[migrate]]\nname = \"schema\"\nrun = \"echo no database >&2; exit 4\"\n",
        ),
    ]);
    let run = rehearse(app.path(), &[], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(
        out.contains("The migration schema failed: exited with status 4"),
        "{out}"
    );
    assert!(
        out.contains("Release phase failed: `preheat release` exited with status 1"),
        "{out}"
    );
    assert!(out.contains("this release would be aborted"), "{out}");
    assert!(!out.contains("Booting"), "{out}");
}

#[test]
fn a_crashing_dyno_fails_the_rehearsal() {
    let app = app(&[(
        "Procfile",
        "web: echo cannot connect to redis >&2; exit 3\n",
    )]);
    let run = rehearse(app.path(), &["--dynos", "1"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(out.contains("web.1 | cannot connect to redis"), "{out}");
    assert!(
        out.contains("web.1 crashed: its web process exited with status 3"),
        "{out}"
    );
}

#[test]
fn a_dyno_that_never_binds_fails_and_is_stopped() {
    let mark = support::marker("never-binds");
    let app = app(&[("Procfile", &format!("web: exec -a {mark} sleep 600\n"))]);
    let started = Instant::now();
    let run = rehearse(app.path(), &["--dynos", "2", "--boot-timeout", "1s"], &[]);
    let out = run.all();
    assert_eq!(run.code, Some(1), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        out.contains("never bound its port: nothing listened on PORT="),
        "{out}"
    );
    assert!(
        processes_with(&mark).is_empty(),
        "left running: {:?}",
        processes_with(&mark)
    );
}

#[test]
fn dotenv_is_loaded_like_heroku_local() {
    let (dir, web) = example_copy();
    std::fs::write(
        dir.path().join(".env"),
        "GREETING=hello-from-dotenv\nCOLD_MS=100\n",
    )
    .expect(".env");
    std::fs::write(
        dir.path().join("Procfile"),
        "web: echo \"greeting=$GREETING\"; exec bin/web\nrelease: preheat release\n",
    )
    .expect("Procfile");
    let web_path = web.display().to_string();
    let run = rehearse(
        dir.path(),
        &["--dynos", "1"],
        &[("PREHEAT_EXAMPLE_BIN", &web_path)],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(out.contains("Loaded 2 variable(s) from .env"), "{out}");
    assert!(out.contains("web.1 | greeting=hello-from-dotenv"), "{out}");
}

#[test]
fn ctrl_c_stops_everything() {
    let (dir, web) = example_copy();
    let web_path = web.display().to_string();
    // The dynos take a long time to boot, so the interrupt lands mid-rehearsal.
    let child = preheat()
        .arg("rehearse")
        .arg(dir.path())
        .env("PREHEAT_EXAMPLE_BIN", &web_path)
        .env("BOOT_MS", "30000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(
        eventually(Duration::from_secs(20), || processes_with(&web_path).len()
            >= 2),
        "dynos never started"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    let run = Run::from(child.wait_with_output().expect("wait"));
    let out = run.all();
    assert_eq!(run.code, Some(130), "{out}");
    assert!(out.contains("Rehearsal stopped by SIGINT"), "{out}");
    assert!(
        processes_with(&web_path).is_empty(),
        "left running: {:?}",
        processes_with(&web_path)
    );
    // The warmers are gone too.
    assert!(
        processes_with(&format!("warm\0--boot\0--dir\0{}", dir.path().display())).is_empty(),
        "warmers left running"
    );
}

/// Issue 13, item 5: rehearse runs `web: preheat gate -- CMD` as written, and
/// `--compare` runs the bare CMD.
#[test]
fn a_gated_web_command_is_rehearsed_with_its_gate_and_compared_without() {
    let (dir, web) = example_copy();
    std::fs::write(
        dir.path().join("Procfile"),
        "web: preheat gate -- bin/web\nrelease: preheat release\n",
    )
    .expect("Procfile");
    let web_path = web.display().to_string();
    let json = dir.path().join("figures.json");
    let run = rehearse(
        dir.path(),
        &[
            "--dynos",
            "1",
            "--compare",
            "--json",
            &json.display().to_string(),
        ],
        &[("PREHEAT_EXAMPLE_BIN", &web_path), ("COLD_MS", "600")],
    );
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    assert!(
        out.contains("Booting 1 web dyno: `preheat gate -- bin/web`, which the gate warms before it opens the port"),
        "{out}"
    );
    assert!(
        out.contains("Booting the same dynos again without the gate: `bin/web` (--compare)"),
        "{out}"
    );
    assert!(out.contains("Without the gate (--compare):"), "{out}");
    // The report shows the gate's own first-user line, read from the dyno's output.
    let gate_line = out
        .lines()
        .find(|l| l.contains("web.1 gate: first ") && !l.contains("preheat: "))
        .unwrap_or_else(|| panic!("no first-user line in the report:\n{out}"));
    assert!(
        gate_line.contains("| event=first_users dyno=web.1 users="),
        "{gate_line}"
    );
    assert!(
        gate_line.contains(" cold=0 ") && gate_line.contains(" not_warmed=0 "),
        "{gate_line}"
    );
    let figures = figures(&json);
    assert_eq!(figures["gated"], true);
    let (warm, cold) = (&figures["warm"][0], &figures["cold"][0]);
    assert_eq!(warm["warm_up"], "gate", "{warm}");
    assert_eq!(cold["warm_up"], "off", "{cold}");
    for user in warm["first_users"].as_array().into_iter().flatten() {
        assert_eq!(user["status"], 200, "{user}");
    }
    let (warm_worst, cold_worst) = (num(warm, "first_worst_ms"), num(cold, "first_worst_ms"));
    assert!(
        cold_worst >= 500.0,
        "without the gate the first user pays the cold start: {cold_worst}ms"
    );
    assert!(
        warm_worst * 3.0 < cold_worst,
        "the gate opens warm: {warm_worst}ms vs {cold_worst}ms cold"
    );
    assert!(processes_with(&web_path).is_empty(), "dynos left running");
}
