//! OpenTelemetry export, end to end: a real OTLP/HTTP receiver
//! (`tests/python/otlp_receiver.py`, decoding with the official
//! `opentelemetry-proto` package) takes what `preheat release` and a gated
//! gunicorn app (2 workers) send for one release, and the test asserts one
//! trace, the Heroku resource, `TRACEPARENT` in a step and a `traceparent`
//! header on the warm-up requests. Also: endpoints that never answer, refuse
//! or answer slowly stay bounded, and a header secret reaches no output.

#![allow(unused_crate_dependencies)]

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{HttpServer, app, eventually, free_port, preheat, user_request, venv_bin};

const SECRET: &str = "sekrit-otlp-header-value-42";
const TOML: &str = "[[migrate]]\nname = \"schema\"\nrun = \"echo \\\"$TRACEPARENT\\\" > traceparent.txt\"\n\n[warmup]\npaths = [\"/\", \"/dashboard\"]\ndeadline = \"30s\"\n";

fn tests_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// The receiver: a child process writing one JSON line per request.
struct Receiver {
    child: Child,
    out: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Receiver {
    fn start(bin: &Path, mode: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("received.jsonl");
        let portfile = dir.path().join("port");
        let child = Command::new(bin.join("python"))
            .arg(tests_python().join("otlp_receiver.py"))
            .arg(&out)
            .arg(&portfile)
            .args(["--mode", mode, "--delay", "1"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the OTLP receiver");
        assert!(
            eventually(Duration::from_secs(20), || portfile.is_file()),
            "the OTLP receiver did not start (is opentelemetry-proto in the venv? run scripts/test)"
        );
        let port = std::fs::read_to_string(&portfile)
            .expect("port")
            .trim()
            .parse()
            .expect("port number");
        Self {
            child,
            out,
            port,
            _dir: dir,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("receiver line"))
            .collect()
    }

    /// Every span received, with its resource's attributes.
    fn spans(&self) -> Vec<(HashMap<String, String>, Value)> {
        let mut found = Vec::new();
        for entry in self.entries() {
            assert!(
                entry.get("error").is_none(),
                "the receiver could not decode: {entry}"
            );
            if entry["kind"] != "traces" {
                continue;
            }
            for rs in entry["body"]["resourceSpans"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let resource = attributes(&rs["resource"]["attributes"]);
                for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                    for span in ss["spans"].as_array().into_iter().flatten() {
                        found.push((resource.clone(), span.clone()));
                    }
                }
            }
        }
        found
    }

    fn metric_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for entry in self.entries() {
            for rm in entry["body"]["resourceMetrics"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                    for m in sm["metrics"].as_array().into_iter().flatten() {
                        names.push(m["name"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
        }
        names
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attributes(list: &Value) -> HashMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|kv| {
            let v = &kv["value"];
            let text = v["stringValue"]
                .as_str()
                .map(str::to_string)
                .or_else(|| v["intValue"].as_str().map(str::to_string))
                .or_else(|| v["boolValue"].as_bool().map(|b| b.to_string()))
                .or_else(|| v["doubleValue"].as_f64().map(|f| f.to_string()))
                .unwrap_or_default();
            (kv["key"].as_str().unwrap_or_default().to_string(), text)
        })
        .collect()
}

fn named<'a>(
    spans: &'a [(HashMap<String, String>, Value)],
    name: &str,
) -> &'a (HashMap<String, String>, Value) {
    spans
        .iter()
        .find(|(_, s)| s["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no span {name} among {:?}",
                spans
                    .iter()
                    .map(|(_, s)| s["name"].clone())
                    .collect::<Vec<_>>()
            )
        })
}

fn release_env<'a>(endpoint: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-honeycomb-team=sekrit-otlp-header-value-42",
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10000"),
    ];
    env.extend_from_slice(extra);
    env
}

struct Ran {
    all: String,
    took: Duration,
    ok: bool,
}

fn run_release(dir: &Path, env: &[(&str, &str)]) -> Ran {
    let mut command = preheat();
    command.arg("release").current_dir(dir);
    clear(&mut command);
    for (k, v) in env {
        command.env(k, v);
    }
    let started = Instant::now();
    let output = command.output().expect("run preheat release");
    Ran {
        all: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        took: started.elapsed(),
        ok: output.status.success(),
    }
}

/// Nothing from the test runner's own environment steers the export.
fn clear(command: &mut Command) {
    for name in [
        "PREHEAT_SKIP",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_METRICS_EXPORTER",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "TRACEPARENT",
        "HEROKU_APP_ID",
        "HEROKU_APP_NAME",
        "HEROKU_RELEASE_VERSION",
        "HEROKU_DYNO_ID",
        "DYNO",
        "HEROKU_API_KEY",
        "CNB_APP_DIR",
        "HEROKU_APP_DEFAULT_DOMAIN_NAME",
        "WEB_CONCURRENCY",
    ] {
        command.env_remove(name);
    }
}

/// `preheat gate -- gunicorn` (2 sync workers) on a free port; output to a file.
struct Gated {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Gated {
    fn start(bin: &Path, dir: &Path, env: &[(&str, &str)], app_log: &Path) -> Self {
        let log = dir.join("gate.log");
        let file = std::fs::File::create(&log).expect("gate log");
        let mut command = preheat();
        command
            .arg("gate")
            .arg("--")
            .arg(bin.join("gunicorn"))
            .args([
                "--workers",
                "2",
                "--worker-class",
                "sync",
                "--graceful-timeout",
                "2",
            ])
            .arg("--chdir")
            .arg(tests_python())
            .arg("trace_app:app")
            .current_dir(dir);
        clear(&mut command);
        let port = free_port();
        command
            .env("PORT", port.to_string())
            .env("WEB_CONCURRENCY", "2")
            .env("TRACE_APP_LOG", app_log)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start preheat gate");
        Self { child, log, port }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_open(&self, limit: Duration) -> String {
        assert!(
            eventually(limit, || self.log().contains("event=gate_open")),
            "the gate did not open:\n{}",
            self.log()
        );
        self.log()
    }

    /// SIGTERM, then the gate's exit; how long that took.
    fn stop(&mut self) -> Duration {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        started.elapsed()
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one scenario, asserted step by step")]
fn one_release_is_one_trace_across_the_release_and_a_gated_gunicorn() {
    let Some(bin) = venv_bin() else { return };
    let receiver = Receiver::start(&bin, "ok");
    let endpoint = receiver.endpoint();
    let cache = HttpServer::start(|_, _| (200, vec![], "primed".to_string()));
    let toml = format!(
        "{TOML}\n[[prime]]\nname = \"cache\"\nhttp = {{ method = \"POST\", url = \"{}\" }}\n",
        cache.url("/prime")
    );
    let dir = app(&[("preheat.toml", &toml)]);
    let fir = [
        ("HEROKU_APP_ID", "b2f3c4d5-0000-4000-8000-000000000001"),
        ("HEROKU_APP_NAME", "shop"),
        ("HEROKU_RELEASE_VERSION", "v42"),
        ("HEROKU_BUILD_COMMIT", "0123abc"),
    ];
    let mut env = release_env(&endpoint, &fir);
    env.extend([
        ("DYNO", "release.1234"),
        ("HEROKU_DYNO_ID", "dyno-release-id"),
    ]);
    let release = run_release(dir.path(), &env);
    assert!(release.ok, "{}", release.all);
    assert!(
        release
            .all
            .contains("| event=release version=v42 outcome=passed"),
        "{}",
        release.all
    );

    let app_log = dir.path().join("app.jsonl");
    let mut web_env = release_env(&endpoint, &fir);
    web_env.extend([("DYNO", "web.1"), ("HEROKU_DYNO_ID", "dyno-web-id")]);
    let mut gated = Gated::start(&bin, dir.path(), &web_env, &app_log);
    let gate_log = gated.wait_open(Duration::from_mins(1));
    assert!(
        gate_log.contains("event=warmup dyno=web.1 warm=true"),
        "{gate_log}"
    );
    assert!(
        eventually(Duration::from_secs(10), || receiver
            .spans()
            .iter()
            .any(|(_, s)| s["name"] == "preheat gate")),
        "the gate's span did not arrive while the app ran (the export is not on the exit path)"
    );
    gated.stop();

    let spans = receiver.spans();
    let (release_resource, root) = named(&spans, "preheat release");
    let (_, migrate) = named(&spans, "migrate schema");
    let (_, prime) = named(&spans, "prime cache");
    let (web_resource, gate) = named(&spans, "preheat gate");
    let (_, warm) = named(&spans, "preheat warm-up");
    let trace = root["traceId"].as_str().expect("trace id");
    assert_eq!(trace.len(), 32);
    for (_, span) in &spans {
        assert_eq!(
            span["traceId"], trace,
            "every span is in the release's trace: {span}"
        );
    }
    assert!(
        root.get("parentSpanId").is_none_or(|p| p == ""),
        "the root has no parent: {root}"
    );
    assert_eq!(migrate["parentSpanId"], root["spanId"]);
    assert_eq!(
        gate["parentSpanId"], root["spanId"],
        "the web dyno found the root without talking"
    );
    assert_eq!(warm["parentSpanId"], gate["spanId"]);
    let events: Vec<&str> = gate["events"]
        .as_array()
        .expect("gate events")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(events, ["app bound", "warm", "open"]);
    let warm_attrs = attributes(&warm["attributes"]);
    assert_eq!(warm_attrs["preheat.warmup.converged"], "true");
    assert!(
        warm_attrs["preheat.warmup.requests"]
            .parse::<u32>()
            .expect("count")
            >= 4
    );

    // The Heroku conventions, on both dynos.
    assert_eq!(release_resource["service.name"], "shop");
    assert_eq!(release_resource["service.version"], "v42");
    assert_eq!(release_resource["service.instance.id"], "dyno-release-id");
    assert_eq!(
        release_resource["heroku.app.id"],
        "b2f3c4d5-0000-4000-8000-000000000001"
    );
    assert_eq!(release_resource["heroku.release.commit"], "0123abc");
    assert_eq!(release_resource["cloud.provider"], "heroku");
    assert_eq!(web_resource["service.instance.id"], "dyno-web-id");

    // Context went on: into a process step's environment, onto an HTTP
    // step's request and onto the warm-up's requests.
    let traceparent =
        std::fs::read_to_string(dir.path().join("traceparent.txt")).expect("step wrote it");
    assert_eq!(
        traceparent.trim(),
        format!("00-{trace}-{}-01", migrate["spanId"].as_str().expect("id"))
    );
    assert_eq!(prime["parentSpanId"], root["spanId"]);
    let primed = cache.requests();
    assert_eq!(primed.len(), 1, "one POST to the cache");
    assert_eq!(
        primed[0].header("traceparent"),
        Some(format!("00-{trace}-{}-01", prime["spanId"].as_str().expect("id")).as_str())
    );
    let seen = std::fs::read_to_string(&app_log).expect("app log");
    let want = format!("00-{trace}-{}-01", warm["spanId"].as_str().expect("id"));
    let warm_requests: Vec<Value> = seen
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(warm_requests.len() >= 4, "{seen}");
    assert!(
        warm_requests
            .iter()
            .all(|r| r["traceparent"] == want.as_str()),
        "{seen}"
    );

    let metrics = receiver.metric_names();
    for name in [
        "preheat.release.step.duration",
        "preheat.release.duration",
        "preheat.warmup.duration",
        "preheat.warmup.requests",
    ] {
        assert!(
            metrics.iter().any(|m| m == name),
            "no metric {name} in {metrics:?}"
        );
    }
    // The header reached the receiver and no output.
    let headers = &receiver.entries()[0]["headers"];
    assert_eq!(headers["x-honeycomb-team"], SECRET);
    assert!(!release.all.contains(SECRET) && !gated.log().contains(SECRET));
}

#[test]
fn cedar_without_dyno_metadata_exports_json_with_a_derived_or_random_trace() {
    let Some(bin) = venv_bin() else { return };
    let receiver = Receiver::start(&bin, "ok");
    let endpoint = receiver.endpoint();
    let dir = app(&[("preheat.toml", TOML)]);
    // Cedar with HEROKU_RELEASE_VERSION (dyno metadata's app name as the app): derived, repeatable.
    let cedar = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("DYNO", "release.9"),
        ("HEROKU_APP_NAME", "cedar-shop"),
        ("HEROKU_RELEASE_VERSION", "v7"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging"),
    ];
    for _ in 0..2 {
        let ran = run_release(dir.path(), &release_env(&endpoint, &cedar));
        assert!(ran.ok, "{}", ran.all);
    }
    // No metadata at all: a random trace per run.
    let bare = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("DYNO", "release.9"),
    ];
    for _ in 0..2 {
        let ran = run_release(dir.path(), &release_env(&endpoint, &bare));
        assert!(ran.ok, "{}", ran.all);
    }
    let entries = receiver.entries();
    assert!(
        entries
            .iter()
            .all(|e| e["content_type"] == "application/json")
    );
    let roots: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|(_, s)| s["name"] == "preheat release")
        .collect();
    assert_eq!(roots.len(), 4);
    let (r0, s0) = &roots[0];
    assert_eq!(
        s0["traceId"], roots[1].1["traceId"],
        "the same release, the same trace"
    );
    assert_eq!(s0["spanId"], roots[1].1["spanId"]);
    assert_eq!(r0["service.name"], "cedar-shop");
    assert_eq!(r0["service.instance.id"], "release.9");
    assert_eq!(r0["cloud.provider"], "heroku");
    assert_eq!(r0["deployment.environment"], "staging");
    assert!(!r0.contains_key("heroku.app.id"));
    let (r2, s2) = &roots[2];
    assert_eq!(r2["service.name"], "preheat");
    assert!(!r2.contains_key("service.version"));
    assert_ne!(
        s2["traceId"], roots[3].1["traceId"],
        "no release version: a trace per run"
    );
    assert_ne!(s2["traceId"], s0["traceId"]);
}

#[test]
fn bad_endpoints_cost_at_most_two_seconds_and_one_warning_and_leak_no_secret() {
    let Some(bin) = venv_bin() else { return };
    let dir = app(&[("preheat.toml", TOML)]);
    let base = run_release(dir.path(), &[]);
    assert!(base.ok, "{}", base.all);
    assert!(
        !base.all.contains("telemetry"),
        "off means silent: {}",
        base.all
    );
    let blackhole = Receiver::start(&bin, "blackhole");
    let slow = Receiver::start(&bin, "slow");
    let refusing = format!("http://127.0.0.1:{}", free_port());
    let cases = [
        ("black hole", blackhole.endpoint(), true),
        ("refusing", refusing, true),
        ("slow (1 s)", slow.endpoint(), false),
    ];
    for (what, endpoint, warns) in cases {
        let env = release_env(
            &endpoint,
            &[
                ("HEROKU_APP_NAME", "shop"),
                ("HEROKU_RELEASE_VERSION", "v1"),
            ],
        );
        let ran = run_release(dir.path(), &env);
        assert!(ran.ok, "{what}: {}", ran.all);
        // The bound is 2 s; the margin is for a loaded 2-core machine.
        assert!(
            ran.took < base.took + Duration::from_millis(2600),
            "{what}: release took {:?} against {:?} without telemetry",
            ran.took,
            base.took
        );
        assert!(!ran.all.contains(SECRET), "{what}: {}", ran.all);
        let warnings = ran.all.matches("telemetry: ").count();
        if warns {
            assert_eq!(warnings, 1, "{what}: one warning line: {}", ran.all);
        }
    }
    assert!(
        !slow.entries().is_empty(),
        "the slow receiver got the export in the end"
    );

    // The gate opens as it would without telemetry, while the endpoint never answers.
    let app_log = dir.path().join("app.jsonl");
    let hole = blackhole.endpoint();
    let env = release_env(&hole, &[("DYNO", "web.1")]);
    let mut gated = Gated::start(&bin, dir.path(), &env, &app_log);
    let log = gated.wait_open(Duration::from_mins(1));
    let open_ms: u64 = log
        .lines()
        .find(|l| l.contains("event=gate_open"))
        .and_then(|l| l.split(" open_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("open_ms figure");
    assert!(open_ms < 30_000, "{log}");
    let exit = gated.stop();
    assert!(
        exit < Duration::from_secs(6),
        "the gate's exit took {exit:?}"
    );
    assert!(!gated.log().contains(SECRET));
}

/// The gate's first users go out as they are logged: one histogram value per
/// user (`preheat.first_user.duration`, per method, path and status) and a
/// `preheat gate first users` span under the gate's span, whose attributes are
/// the line's figures.
#[test]
fn the_first_users_reach_the_receiver_as_a_histogram_and_a_span() {
    let Some(bin) = venv_bin() else { return };
    let receiver = Receiver::start(&bin, "ok");
    let endpoint = receiver.endpoint();
    let toml = "[warmup]\npaths = [\"/\", \"/dashboard\"]\ndeadline = \"30s\"\nfirst_users = 4\n";
    let dir = app(&[("preheat.toml", toml)]);
    let env = release_env(
        &endpoint,
        &[
            ("HEROKU_APP_ID", "b2f3c4d5-0000-4000-8000-000000000002"),
            ("HEROKU_RELEASE_VERSION", "v7"),
            ("DYNO", "web.1"),
        ],
    );
    let app_log = dir.path().join("app.jsonl");
    let mut gated = Gated::start(&bin, dir.path(), &env, &app_log);
    gated.wait_open(Duration::from_mins(1));
    for path in ["/", "/dashboard", "/reports", "/"] {
        let (status, _) = user_request(gated.port, path);
        assert_eq!(status, 200, "{path}:\n{}", gated.log());
    }
    assert!(
        eventually(Duration::from_secs(20), || gated
            .log()
            .contains("event=first_users")),
        "no first-user line:\n{}",
        gated.log()
    );
    let histogram = || first_user_points(&receiver);
    assert!(
        eventually(Duration::from_secs(20), || histogram()
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>()
            >= 4),
        "the histogram did not count 4 users: {:?}\n{}",
        histogram(),
        gated.log()
    );
    let points = histogram();
    assert_eq!(points.iter().map(|(_, n)| n).sum::<u64>(), 4, "{points:?}");
    let per = |path: &str| -> u64 {
        points
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, n)| n)
            .sum()
    };
    assert_eq!(
        (per("/"), per("/dashboard"), per("/reports")),
        (2, 1, 1),
        "{points:?}"
    );
    let spans = receiver.spans();
    let gate = spans
        .iter()
        .find(|(_, s)| s["name"] == "preheat gate")
        .map(|(_, s)| s["spanId"].clone())
        .expect("the gate span");
    let (_, users) = spans
        .iter()
        .find(|(_, s)| s["name"] == "preheat gate first users")
        .expect("the first-users span");
    assert_eq!(users["parentSpanId"], gate);
    let figures = attributes(&users["attributes"]);
    assert_eq!(
        figures.get("preheat.first_users.users").map(String::as_str),
        Some("4"),
        "{figures:?}"
    );
    assert_eq!(
        figures
            .get("preheat.first_users.not_warmed_paths")
            .map(String::as_str),
        Some("/reports"),
        "{figures:?}"
    );
    let _ = gated.stop();
}

/// `(url.path, count)` of every `preheat.first_user.duration` data point received.
fn first_user_points(receiver: &Receiver) -> Vec<(String, u64)> {
    let mut points = Vec::new();
    for entry in receiver.entries() {
        for rm in entry["body"]["resourceMetrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
                for m in sm["metrics"].as_array().into_iter().flatten() {
                    if m["name"] != "preheat.first_user.duration" {
                        continue;
                    }
                    for point in m["histogram"]["dataPoints"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        let attrs = attributes(&point["attributes"]);
                        let count = point["count"]
                            .as_u64()
                            .or_else(|| point["count"].as_str()?.parse().ok())
                            .unwrap_or(0);
                        points.push((attrs.get("url.path").cloned().unwrap_or_default(), count));
                    }
                }
            }
        }
    }
    points
}
