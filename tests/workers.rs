//! Every worker warm, on a real multi-worker server: gunicorn from the test
//! venv with 3 sync workers running `tests/fixtures/workers/app.py`, whose
//! every worker pays a 500 ms cold start per path. It is booted the way the
//! CNB launcher boots a web process (the installed exec.d program first,
//! then the app), and after the boot warmer's verdict a burst of
//! `2 × workers` users on fresh connections must find every worker warm.
//! The warm-up as it was (one round, one pooled keep-alive connection) must
//! leave a worker cold in the same test, so the test tells the difference.
//! Also: servers bound `[::]` IPv6-only and dual-stack are warmed.

#![allow(unused_crate_dependencies)]

mod support;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::launch::{Built, run_exec_d, verdict_counts, wait_for_log};
use support::{eventually, free_port, venv_bin};

const WORKERS: usize = 3;
/// What a worker's first request for a path costs (`COLD_MS` in app.py).
const COLD: Duration = Duration::from_millis(500);
/// A user request slower than this met a cold worker. Warm ones take a few
/// ms plus queueing behind 1 other request; the margin absorbs a loaded machine.
const COLD_LINE: Duration = Duration::from_millis(250);
const PATHS: [&str; 2] = ["/", "/dashboard"];
const TOML: &str = "[warmup]\npaths = [\"/\", \"/dashboard\"]\ndeadline = \"60s\"\n";

enum Bind {
    V4,
    V6Only,
    DualStack,
}

/// A gunicorn master with its workers; stopped (SIGTERM) when dropped.
struct Gunicorn {
    child: Child,
    marks: tempfile::TempDir,
    log: PathBuf,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workers")
}

impl Gunicorn {
    fn start(bin: &Path, bind: &Bind, port: u16) -> Self {
        Self::start_as(bin, bind, port, &["--worker-class", "sync"], None)
    }

    /// `class`: gunicorn's worker-class arguments (`sync`, `gthread --threads 2`).
    /// `cmd_args`: `GUNICORN_CMD_ARGS`, as a Heroku config var reaches both
    /// gunicorn and the warmer.
    fn start_as(
        bin: &Path,
        bind: &Bind,
        port: u16,
        class: &[&str],
        cmd_args: Option<&str>,
    ) -> Self {
        let marks = tempfile::tempdir().expect("tempdir");
        let log = marks.path().join("gunicorn.log");
        let gunicorn = bin.join("gunicorn");
        let mut command = match bind {
            Bind::V4 => {
                let mut command = Command::new(&gunicorn);
                command.args(["--bind", &format!("127.0.0.1:{port}")]);
                command
            }
            Bind::V6Only | Bind::DualStack => {
                let mut command = Command::new(bin.join("python"));
                let mode = if matches!(bind, Bind::V6Only) {
                    "v6only"
                } else {
                    "dualstack"
                };
                command
                    .arg(fixtures().join("serve6.py"))
                    .arg(port.to_string())
                    .arg(mode)
                    .arg(&gunicorn);
                command
            }
        };
        let child = command
            .args(["--workers", &WORKERS.to_string()])
            .args(class)
            .args(["--graceful-timeout", "2", "--log-level", "info"])
            .arg("--chdir")
            .arg(fixtures())
            .arg("--error-logfile")
            .arg(&log)
            .arg("app:app")
            .env("COLD_MS", COLD.as_millis().to_string())
            .env("WARM_MS", "2")
            .env("MARK_DIR", marks.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("GUNICORN_CMD_ARGS", cmd_args.unwrap_or(""))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gunicorn");
        Self { child, marks, log }
    }

    /// The worker processes: the master's children.
    fn workers(&self) -> Vec<u32> {
        let master = self.child.id().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string));
            if parent.as_deref() == Some(master.as_str()) {
                found.push(pid);
            }
        }
        found
    }

    /// Waits until every worker has booted.
    fn wait_booted(&self) {
        let booted = || {
            std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .matches("Booting worker with pid")
                .count()
        };
        assert!(
            eventually(Duration::from_secs(30), || booted() >= WORKERS),
            "gunicorn did not boot {WORKERS} workers: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Every (worker, path) that has not paid its cold start yet.
    fn cold(&self) -> Vec<(u32, &'static str)> {
        let mut cold = Vec::new();
        for worker in self.workers() {
            for path in PATHS {
                let mark = format!("{worker}{}", path.replace('/', "_"));
                if !self.marks.path().join(mark).exists() {
                    cold.push((worker, path));
                }
            }
        }
        cold
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One user's answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    took: Duration,
    cold: bool,
    worker: String,
}

/// One GET on a fresh connection, `Connection: close`.
fn get(address: SocketAddr, path: &str) -> Answer {
    let started = Instant::now();
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(10)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let took = started.elapsed();
    let header = |name: &str| {
        response
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    Answer {
        status: response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        took,
        cold: header("X-Cold") == "1",
        worker: header("X-Worker"),
    }
}

/// `2 × workers` users at once on each path, each on its own connection.
fn burst(address: SocketAddr) -> Vec<(&'static str, Answer)> {
    let mut all = Vec::new();
    for path in PATHS {
        let gate = Arc::new(Barrier::new(2 * WORKERS));
        let users: Vec<_> = (0..2 * WORKERS)
            .map(|_| {
                let gate = Arc::clone(&gate);
                std::thread::spawn(move || {
                    gate.wait();
                    get(address, path)
                })
            })
            .collect();
        for user in users {
            all.push((path, user.join().expect("user")));
        }
    }
    all
}

/// The warm-up as it was: one round, one GET per path over one pooled
/// keep-alive connection (re-opened only when the server closes it).
fn old_warmup(address: SocketAddr) {
    let mut connection: Option<TcpStream> = None;
    for path in PATHS {
        let mut stream = match connection.take() {
            Some(stream) => stream,
            None => TcpStream::connect(address).expect("connect"),
        };
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"
        )
        .expect("send");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).expect("body");
        if !head.contains("connection: close") {
            connection = Some(stream);
        }
    }
}

/// Boots gunicorn as the launcher would, after the exec.d program, and
/// waits for the boot warmer's verdict; returns the server and the log.
fn boot_warmed(bin: &Path, bind: &Bind) -> (Gunicorn, u16, String, Built) {
    let built = Built::new(TOML);
    let port = free_port();
    let log = built.log("web1");
    let launch = run_exec_d(
        &built.exec_d(),
        built.app.path(),
        &[
            ("PORT", &port.to_string()),
            ("DYNO", "web.1"),
            ("WEB_CONCURRENCY", &WORKERS.to_string()),
        ],
        &log,
    );
    assert_eq!(launch.code, Some(0));
    let server = Gunicorn::start(bin, bind, port);
    let out = wait_for_log(&log, "warm in", Duration::from_mins(1));
    // 2 × WEB_CONCURRENCY = 6 requests at once per path, every one ok, in
    // at least 2 rounds. Whether a round converged depends on this machine's
    // jitter (sync workers queue the second of 2 requests each, see
    // docs/warmup-workers.md), so it is printed, not asserted; what users
    // meet is asserted below.
    let (rounds, ok, all) = verdict_counts(&out);
    assert!(rounds >= 2, "{out}");
    assert_eq!((ok, all), (2 * 6 * rounds, 2 * 6 * rounds), "{out}");
    eprintln!("{}", out.lines().last().unwrap_or_default());
    assert_eq!(server.workers().len(), WORKERS, "{out}");
    (server, port, out, built)
}

#[test]
fn the_boot_warmer_leaves_no_gunicorn_worker_cold() {
    let _one_at_a_time = support::one_at_a_time();
    let Some(bin) = venv_bin() else { return };
    let (server, port, out, _built) = boot_warmed(&bin, &Bind::V4);
    assert!(out.contains(&format!("warming 127.0.0.1:{port}")), "{out}");
    assert_eq!(server.cold(), Vec::new(), "{out}");
    let answers = burst(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    for (path, answer) in &answers {
        assert_eq!(answer.status, 200, "{path}: {answers:?}");
        assert!(
            !answer.cold && answer.took < COLD_LINE,
            "{path} met a cold worker: {answers:?}\n{out}"
        );
    }
    let mut workers: Vec<&str> = answers.iter().map(|(_, a)| a.worker.as_str()).collect();
    workers.sort_unstable();
    workers.dedup();
    eprintln!("burst reached {} workers: {answers:?}", workers.len());
}

#[test]
fn one_pooled_round_as_before_leaves_a_gunicorn_worker_cold() {
    let _one_at_a_time = support::one_at_a_time();
    let Some(bin) = venv_bin() else { return };
    let port = free_port();
    let server = Gunicorn::start(&bin, &Bind::V4, port);
    server.wait_booted();
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    old_warmup(address);
    // One request per path reached one worker: the others are still cold.
    let cold = server.cold();
    assert!(cold.len() >= WORKERS, "{cold:?}");
    let answers = burst(address);
    assert!(
        answers.iter().any(|(_, a)| a.cold && a.took >= COLD_LINE),
        "the burst met no cold worker: {answers:?}"
    );
}

#[test]
fn a_server_bound_ipv6_only_is_warmed() {
    let _one_at_a_time = support::one_at_a_time();
    let Some(bin) = venv_bin() else { return };
    let (server, port, out, _built) = boot_warmed(&bin, &Bind::V6Only);
    assert!(out.contains(&format!("warming [::1]:{port}")), "{out}");
    assert_eq!(server.cold(), Vec::new(), "{out}");
    // It really is IPv6-only: nothing answers on 127.0.0.1.
    assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    let answer = get(SocketAddr::from((Ipv6Addr::LOCALHOST, port)), "/dashboard");
    assert!(!answer.cold && answer.status == 200, "{answer:?}");
}

#[test]
fn a_server_bound_dual_stack_is_warmed() {
    let _one_at_a_time = support::one_at_a_time();
    let Some(bin) = venv_bin() else { return };
    let (server, port, out, _built) = boot_warmed(&bin, &Bind::DualStack);
    assert!(out.contains(&format!("warming [::1]:{port}")), "{out}");
    assert_eq!(server.cold(), Vec::new(), "{out}");
    // Users on either family find it warm.
    for address in [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ] {
        let answer = get(address, "/dashboard");
        assert!(
            !answer.cold && answer.status == 200,
            "{address}: {answer:?}"
        );
    }
}

/// The slowest answer of the last round in `preheat warm`'s lines.
fn last_round_slowest(out: &str) -> (u32, u64) {
    let mut last = (0, 0);
    for line in out.lines() {
        let Some((head, round)) = line.rsplit_once(", round ") else {
            continue;
        };
        let (Ok(round), Some(range)) =
            (round.trim().parse::<u32>(), head.split_whitespace().last())
        else {
            continue;
        };
        let high = range
            .trim_end_matches("ms")
            .rsplit('–')
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if round > last.0 {
            last = (round, high);
        } else if round == last.0 {
            last.1 = last.1.max(high);
        }
    }
    last
}

/// Issue 20 part 2 on gunicorn sync and gthread workers: an app already warm
/// converges in 2 rounds with 6 in flight (the queue is allowed for), and a
/// worker left cold (one killed, so gunicorn starts a fresh one) is caught:
/// the round that met its cold start never converges the warm-up.
#[test]
fn the_cold_rule_tells_queueing_from_a_cold_gunicorn_worker() {
    let _one_at_a_time = support::one_at_a_time();
    let Some(bin) = venv_bin() else { return };
    let app = tempfile::tempdir().expect("tempdir");
    std::fs::write(app.path().join("preheat.toml"), TOML).expect("preheat.toml");
    let warm = |port: u16, cmd_args: Option<&str>| {
        let out = support::preheat()
            .args(["warm", "--port", &port.to_string(), "--dir"])
            .arg(app.path())
            .env("WEB_CONCURRENCY", WORKERS.to_string())
            .env("GUNICORN_CMD_ARGS", cmd_args.unwrap_or(""))
            .env_remove("HEROKU_APP_DEFAULT_DOMAIN_NAME")
            .output()
            .expect("preheat warm");
        support::strip_ansi(&String::from_utf8_lossy(&out.stderr))
            + &support::strip_ansi(&String::from_utf8_lossy(&out.stdout))
    };
    // gthread's threads come from GUNICORN_CMD_ARGS, where the warmer sees
    // them too: a threaded worker takes several requests of a burst at once.
    for (class, cmd_args) in [
        (&["--worker-class", "sync"][..], None),
        (&["--worker-class", "gthread"][..], Some("--threads 2")),
    ] {
        let port = free_port();
        let server = Gunicorn::start_as(&bin, &Bind::V4, port, class, cmd_args);
        server.wait_booted();
        // A sync worker takes one connection at a time, so one warm-up reaches
        // them all. A gthread worker accepts greedily (up to worker_connections),
        // so one of them can take a whole burst and leave another unreached:
        // there, coverage is likely, not certain (docs/warmup-workers.md), and
        // up to three warm-ups are allowed.
        let tries = if cmd_args.is_some() { 3 } else { 1 };
        let warm_all = || {
            let mut out = String::new();
            for n in 1..=tries {
                out = warm(port, cmd_args);
                if server.cold().is_empty() {
                    eprintln!("{class:?}: every worker reached by warm-up {n} of {tries}");
                    break;
                }
            }
            out
        };
        let first = warm_all();
        assert!(first.contains("warm in"), "{class:?}:\n{first}");
        assert_eq!(server.cold(), Vec::new(), "{class:?}:\n{first}");
        let mut two = 0;
        for _ in 0..3 {
            let again = warm(port, cmd_args);
            let verdict = again
                .lines()
                .find(|l| l.contains("warm in"))
                .unwrap_or("")
                .to_string();
            eprintln!("{class:?} already warm: {verdict}");
            two += usize::from(verdict.contains("(2 rounds, converged"));
        }
        assert!(
            two >= 1,
            "{class:?}: a warm gunicorn took more than 2 rounds in {} of 3",
            3 - two
        );

        // A worker left cold: gunicorn replaces a killed worker with a fresh one.
        let victim = server.workers()[0];
        let _ = kill(
            Pid::from_raw(i32::try_from(victim).unwrap_or(0)),
            Signal::SIGKILL,
        );
        assert!(
            eventually(Duration::from_secs(30), || {
                let workers = server.workers();
                workers.len() == WORKERS && !workers.contains(&victim)
            }),
            "gunicorn did not replace its worker"
        );
        let out = warm_all();
        eprintln!(
            "{class:?} after a worker restart: {}",
            out.lines().find(|l| l.contains("warm in")).unwrap_or("")
        );
        assert!(out.contains("rounds, converged"), "{class:?}:\n{out}");
        assert_eq!(
            server.cold(),
            Vec::new(),
            "the new worker was warmed: {out}"
        );
        let (round, slowest) = last_round_slowest(&out);
        assert!(round >= 2, "{out}");
        assert!(
            u128::from(slowest) < COLD.as_millis(),
            "{class:?}: the converged round {round} had a cold answer ({slowest}ms):\n{out}"
        );
    }
}
