//! `examples/rails` on real puma (cluster mode, 3 workers × 2 threads),
//! Debian's Rails 6.1 and a real `PostgreSQL` database (fresh per test):
//! rehearsed end to end, plain and gated, and warmed directly to check the
//! four faults a real Rails app showed the warm-up (redirects, failing
//! rounds, the Host in failure lines, `preload_app!` on and off) and the
//! cold rule under queueing. Without Ruby, Rails or puma these tests skip,
//! except under `scripts/test` (`PREHEAT_REQUIRE_RUBY=1`), where they fail.

#![allow(unused_crate_dependencies)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Database, Run, free_port, pg_url, preheat, psql, strip_ansi};

const DOMAIN: &str = "preheat-rails-example.herokuapp.com";
const PATHS: [&str; 3] = ["/", "/posts/1", "/about"];

/// Whether Ruby, Rails, puma and pg load; a failure under `PREHEAT_REQUIRE_RUBY=1`.
fn ruby_ready() -> bool {
    let loads = Command::new("ruby")
        .args([
            "-e",
            "require 'rails'; require 'active_record'; require 'pg'; require 'puma'",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let bundler = Command::new("bundle")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if loads && bundler {
        return true;
    }
    assert!(
        std::env::var("PREHEAT_REQUIRE_RUBY").as_deref() != Ok("1"),
        "PREHEAT_REQUIRE_RUBY=1 but ruby with rails, pg and puma (and bundler) is missing: apt-get install ruby ruby-rails puma ruby-pg"
    );
    eprintln!("note: skipping a Rails test: no ruby-rails/puma/ruby-pg here");
    false
}

/// A copy of examples/rails, without what a run leaves behind.
fn rails_copy() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read dir").flatten() {
            let name = entry.file_name();
            if ["Gemfile.lock", "log", "tmp", ".bundle"]
                .iter()
                .any(|skip| name == *skip)
            {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                copy(&path, &to.join(&name));
            } else {
                std::fs::copy(&path, to.join(&name)).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rails"),
        dir.path(),
    );
    dir
}

fn num(value: &serde_json::Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

/// `first render: worker PID PATH MSms (STATUS)` lines: per worker, its
/// first render of each path and how long it took.
fn first_renders(out: &str) -> BTreeMap<u32, BTreeMap<String, u64>> {
    let mut workers: BTreeMap<u32, BTreeMap<String, u64>> = BTreeMap::new();
    for line in out.lines() {
        let Some((_, rest)) = line.split_once("first render: worker ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(pid), Some(path), Some(ms)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let (Ok(pid), Ok(ms)) = (pid.parse(), ms.trim_end_matches("ms").parse()) else {
            continue;
        };
        workers.entry(pid).or_default().insert(path.to_string(), ms);
    }
    workers
}

fn rehearse(app: &Path, db: &Database, json: &Path) -> (Run, serde_json::Value) {
    let output = preheat()
        .arg("rehearse")
        .arg(app)
        .args(["--dynos", "1", "--compare", "--json"])
        .arg(json)
        .env("DATABASE_URL", &db.url)
        .env_remove("PREHEAT_SKIP")
        .output()
        .expect("run preheat rehearse");
    let run = Run::from(output);
    let out = run.all();
    assert_eq!(run.code, Some(0), "{out}");
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("--json file")).expect("JSON");
    (run, figures)
}

/// The warm and cold dynos' figures, every first user answered 200.
fn dynos(figures: &serde_json::Value) -> (&serde_json::Value, &serde_json::Value) {
    let (warm, cold) = (&figures["warm"][0], &figures["cold"][0]);
    for dyno in [warm, cold] {
        let users = dyno["first_users"].as_array().expect("first_users");
        assert_eq!(users.len(), 6, "2 x WEB_CONCURRENCY=3: {dyno}");
        for user in users {
            assert_eq!(
                user["status"], 200,
                "every first user gets the page: {dyno}"
            );
        }
    }
    (warm, cold)
}

#[test]
fn rehearses_the_rails_example_on_puma_and_postgres() {
    if !ruby_ready() {
        return;
    }
    let Some(server) = pg_url() else { return };
    let db = Database::create(&server, &format!("preheat_rails_{}", std::process::id()));
    let app = rails_copy();
    let json = app.path().join("figures.json");
    let (run, figures) = rehearse(app.path(), &db, &json);
    let out = run.all();

    // Release phase: the Rails migration under the lock, then the runner.
    assert!(out.contains("schema: took the migration lock"), "{out}");
    assert!(out.contains("CreatePosts: migrated"), "{out}");
    assert!(out.contains("posts: 20"), "{out}");
    assert_eq!(psql(&db.url, "SELECT count(*) FROM posts").trim(), "20");
    assert!(
        psql(&db.url, "SELECT version FROM schema_migrations").contains("20260101000000"),
        "the migration is recorded"
    );
    assert!(out.contains("Workers: 3"), "puma in cluster mode: {out}");
    assert!(
        out.contains(&format!("First users send Host: {DOMAIN}")),
        "{out}"
    );
    // The boot warmer followed /old-posts to /posts and said so.
    assert!(out.contains("redirected: /old-posts → /posts"), "{out}");

    let (warm, cold) = dynos(&figures);
    assert_eq!(warm["warm_up"], "done", "{warm}");
    // Every worker rendered every path once: three workers, each with a cold
    // first render (its ERB templates compiled, its first query) per path.
    let renders = first_renders(&out);
    let warmed: Vec<_> = renders
        .values()
        .filter(|paths| PATHS.iter().all(|p| paths.contains_key(*p)))
        .collect();
    assert!(warmed.len() >= 3, "3 warmed workers: {renders:?}\n{out}");
    eprintln!(
        "first renders per worker (ms), warmed by preheat, then the cold run (users only): {renders:?}"
    );

    // Warm: two users per worker, so half queue behind another request; the
    // limit allows that and a loaded 2-core box, and stays far below a cold
    // puma worker (a first render of ~150-300 ms per path).
    let steady = num(warm, "steady_median_ms");
    let limit = 2.0 * steady + 100.0;
    let warm_worst = num(warm, "first_worst_ms");
    let cold_worst = num(cold, "first_worst_ms");
    eprintln!(
        "first users: warm worst {warm_worst}ms median {}ms (steady {steady}ms); cold worst {cold_worst}ms median {}ms",
        num(warm, "first_median_ms"),
        num(cold, "first_median_ms")
    );
    assert!(
        warm_worst <= limit,
        "a warm first user waited {warm_worst}ms, over {limit}ms:\n{out}"
    );
    // Cold by the product's one rule (src/cold.rs: past max(2 × warm, warm +
    // 25 ms)). The warm limit above (2 × steady + 100 ms) is a margin for a
    // loaded box; a cold puma render here is 90-130 ms, so "past that margin"
    // failed on a quiet machine although the cold run was 6x the warm one.
    assert!(
        cold_worst >= 2.0 * warm_worst && cold_worst > (2.0 * warm_worst).max(warm_worst + 25.0),
        "--compare shows the cold start: cold {cold_worst}ms, warm {warm_worst}ms:\n{out}"
    );
}

#[test]
fn the_gated_rails_example_gives_no_cold_answer_from_boot() {
    if !ruby_ready() {
        return;
    }
    let Some(server) = pg_url() else { return };
    let db = Database::create(
        &server,
        &format!("preheat_rails_gated_{}", std::process::id()),
    );
    let app = rails_copy();
    std::fs::copy(
        app.path().join("Procfile.gated"),
        app.path().join("Procfile"),
    )
    .expect("Procfile");
    let json = app.path().join("figures.json");
    let (run, figures) = rehearse(app.path(), &db, &json);
    let out = run.all();
    assert!(
        out.contains("which the gate warms before it opens the port"),
        "{out}"
    );
    assert_eq!(figures["gated"], true);
    let (warm, cold) = dynos(&figures);
    assert_eq!(warm["warm_up"], "gate", "{warm}");
    let (warm_worst, cold_worst) = (num(warm, "first_worst_ms"), num(cold, "first_worst_ms"));
    eprintln!("gated: first users worst {warm_worst}ms; without the gate {cold_worst}ms");
    assert!(
        warm_worst * 2.0 < cold_worst,
        "the gate opens warm: {warm_worst}ms vs {cold_worst}ms without it:\n{out}"
    );
}

/// puma started directly (as the Procfile does), its output collected.
struct Puma {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Puma {
    fn start(app: &Path, db: &Database, preload: bool) -> Self {
        let port = free_port();
        let log = app.join("puma.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = Command::new("bundle")
            .args(["exec", "puma", "-C", "config/puma.rb"])
            .current_dir(app)
            .env("PORT", port.to_string())
            .env("WEB_CONCURRENCY", "3")
            .env("RAILS_MAX_THREADS", "2")
            .env("RAILS_ENV", "production")
            .env("HEROKU_APP_DEFAULT_DOMAIN_NAME", DOMAIN)
            .env("PRELOAD_APP", if preload { "true" } else { "false" })
            .env("DATABASE_URL", &db.url)
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("start puma");
        let puma = Self { child, port, log };
        let by = Instant::now() + Duration::from_mins(1);
        while puma.log().matches("booted in").count() < 3 {
            assert!(Instant::now() < by, "puma did not boot:\n{}", puma.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        puma
    }

    fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn workers(&self) -> BTreeSet<u32> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("(PID: ")?.1.split_once(')')?.0.parse().ok())
            .collect()
    }
}

impl Drop for Puma {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0)),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// A migrated, seeded copy of the example and its database.
fn prepared(name: &str) -> Option<(tempfile::TempDir, Database)> {
    if !ruby_ready() {
        return None;
    }
    let server = pg_url()?;
    let db = Database::create(
        &server,
        &format!("preheat_rails_{name}_{}", std::process::id()),
    );
    let app = rails_copy();
    for step in [["db:migrate", ""], ["runner", "db/seeds.rb"]] {
        let out = Command::new("bin/rails")
            .args(step.iter().filter(|a| !a.is_empty()))
            .current_dir(app.path())
            .env("RAILS_ENV", "production")
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("bin/rails");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some((app, db))
}

fn warm(app: &Path, port: u16, host: Option<&str>, toml: Option<&str>) -> String {
    if let Some(toml) = toml {
        std::fs::write(app.join("preheat.toml"), toml).expect("preheat.toml");
    }
    let mut command = preheat();
    command
        .args(["warm", "--port", &port.to_string(), "--dir"])
        .arg(app)
        .env("WEB_CONCURRENCY", "3")
        .env("RAILS_MAX_THREADS", "2")
        .env_remove("HEROKU_APP_DEFAULT_DOMAIN_NAME");
    if let Some(host) = host {
        command.env("HEROKU_APP_DEFAULT_DOMAIN_NAME", host);
    }
    let out = command.output().expect("preheat warm");
    strip_ansi(&format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Fault 4: the warm-up reaches every puma worker, with `preload_app!` and
/// with `preload_app! false` (each worker then boots the app itself).
#[test]
fn every_puma_worker_is_warmed_with_and_without_preload_app() {
    let Some((app, db)) = prepared("preload") else {
        return;
    };
    for preload in [true, false] {
        let puma = Puma::start(app.path(), &db, preload);
        let out = warm(app.path(), puma.port, Some(DOMAIN), None);
        assert!(out.contains("warm in"), "preload {preload}:\n{out}");
        let workers = puma.workers();
        assert_eq!(workers.len(), 3, "{}", puma.log());
        let renders = first_renders(&puma.log());
        for worker in &workers {
            for path in PATHS {
                assert!(
                    renders.get(worker).is_some_and(|r| r.contains_key(path)),
                    "preload_app! {preload}: worker {worker} never rendered {path}: {renders:?}\n{out}"
                );
            }
        }
        eprintln!("preload_app! {preload}: first renders per worker (ms): {renders:?}");
        eprintln!(
            "{}",
            out.lines().find(|l| l.contains("warm in")).unwrap_or("")
        );
    }
}

/// Faults 1 and 3 on the real app: the wrong forwarded scheme (`force_ssl`'s
/// 301 to https) and the wrong Host (`HostAuthorization`'s 403) each fail the
/// warm-up with a line saying what was sent and what to set.
#[test]
fn a_wrong_scheme_or_host_is_named_not_counted_as_warm() {
    let Some((app, db)) = prepared("faults") else {
        return;
    };
    let puma = Puma::start(app.path(), &db, true);
    let scheme = warm(
        app.path(),
        puma.port,
        Some(DOMAIN),
        Some(
            "[warmup]\ndeadline = \"10s\"\n[[warmup.request]]\npath = \"/posts\"\nheaders = { X-Forwarded-Proto = \"http\" }\n",
        ),
    );
    assert!(scheme.contains("NOT warm"), "{scheme}");
    assert!(
        scheme.contains(&format!(
            "redirects to https://{DOMAIN}/posts, the same page on https: the app did not take X-Forwarded-Proto: http"
        )),
        "{scheme}"
    );
    let host = warm(
        app.path(),
        puma.port,
        None,
        Some("[warmup]\npaths = [\"/about\"]\ndeadline = \"10s\"\n"),
    );
    assert!(host.contains("NOT warm"), "{host}");
    assert!(
        host.contains("/about 403 ×12 ")
            && host.contains(&format!(
                "sent Host: 127.0.0.1:{}, X-Forwarded-Proto: https",
                puma.port
            )),
        "{host}"
    );
}

/// Issue 20 part 2 on puma, 3 workers × 2 threads: an app already warm
/// converges in 2 rounds with 6 requests in flight on this machine's cores.
#[test]
fn a_warm_puma_converges_in_two_rounds() {
    let Some((app, db)) = prepared("queue") else {
        return;
    };
    let puma = Puma::start(app.path(), &db, true);
    let toml = "[warmup]\npaths = [\"/\", \"/posts/1\", \"/about\"]\ndeadline = \"30s\"\n";
    let first = warm(app.path(), puma.port, Some(DOMAIN), Some(toml));
    assert!(first.contains("warm in"), "{first}");
    let mut two = 0;
    let tries = 3;
    for _ in 0..tries {
        let again = warm(app.path(), puma.port, Some(DOMAIN), None);
        let verdict = again
            .lines()
            .find(|l| l.contains("warm in"))
            .unwrap_or("")
            .to_string();
        eprintln!("already warm: {verdict}");
        if verdict.contains("(2 rounds, converged") {
            two += 1;
        }
    }
    // On a 2-core box shared with other builds, a Ruby GC pause or a compile
    // can still make one request of a round stand out; one try in three must
    // converge in 2 rounds (each verdict is printed for the record).
    assert!(
        two >= 1,
        "a warm puma took more than 2 rounds in {} of {tries}",
        tries - two
    );
}

/// Fault 2 on the real app: a gate whose warm-up fails (the wrong Host, so
/// every answer is `HostAuthorization`'s 403) backs off and keeps trying past
/// `max_rounds` until `gate_timeout`, then opens as before.
#[test]
fn a_failing_gate_warm_up_keeps_trying_until_gate_timeout_then_opens() {
    let Some((app, db)) = prepared("backoff") else {
        return;
    };
    std::fs::write(
        app.path().join("preheat.toml"),
        "[warmup]\npaths = [\"/about\"]\ngate_timeout = \"20s\"\ndeadline = \"60s\"\n",
    )
    .expect("preheat.toml");
    let port = free_port();
    let log = app.path().join("gate.log");
    let file = std::fs::File::create(&log).expect("log");
    let started = Instant::now();
    let mut gate = preheat()
        .args([
            "gate",
            "--",
            "bundle",
            "exec",
            "puma",
            "-C",
            "config/puma.rb",
        ])
        .current_dir(app.path())
        .env("CNB_APP_DIR", app.path())
        .env("PORT", port.to_string())
        .env("DYNO", "web.1")
        .env("WEB_CONCURRENCY", "3")
        .env("RAILS_MAX_THREADS", "2")
        .env("RAILS_ENV", "production")
        .env("DATABASE_URL", &db.url)
        .env_remove("HEROKU_APP_DEFAULT_DOMAIN_NAME")
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("preheat gate");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    while !read().contains("gate: port ") || !read().contains(" open after ") {
        assert!(started.elapsed() < Duration::from_mins(1), "{}", read());
        std::thread::sleep(Duration::from_millis(100));
    }
    let opened = started.elapsed();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(gate.id()).unwrap_or(0)),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = gate.wait();
    let out = read();
    eprintln!("opened after {opened:?}");
    // 2 × WEB_CONCURRENCY=3 × RAILS_MAX_THREADS=2 at once.
    assert!(out.contains("/about 403 ×12 "), "{out}");
    assert!(out.contains("sent Host: 127.0.0.1:"), "{out}");
    // It was still trying when gate_timeout came: before, all 5 rounds ran
    // in ~100 ms and the gate opened straight after the verdict.
    assert!(out.contains("gave up at the warm-up deadline"), "{out}");
    assert!(
        out.contains("gate_timeout (20s) reached while warming; opening anyway"),
        "{out}"
    );
    assert!(
        opened >= Duration::from_secs(19),
        "opened after {opened:?}: {out}"
    );
}
