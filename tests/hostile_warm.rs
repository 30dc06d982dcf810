//! Hostile servers against the warmer (`preheat warm`) and the gate
//! (`preheat gate -- CMD`), the two pieces that run beside every web process:
//! each scenario ends within its deadline with a clear line, the warmer's
//! anonymous memory stays ≤ 8 MB, and the gate keeps serving other
//! connections. `-- --nocapture` prints the figures of docs/hostile-input.md.

#![allow(unused_crate_dependencies)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::hostile::{Hostile, HostileServer, each_scenario, measure, report, status_kb};
use support::{app, preheat};

/// What the warmer may allocate, whatever the app sends (issue 16). The debug
/// binary maps ~12 MB of its own code on top; that part does not grow.
const MAX_ANON_MB: f64 = 8.0;
/// The whole peak of the debug binary.
const MAX_TOTAL_MB: f64 = 24.0;

fn scenarios() -> Vec<(Hostile, u16)> {
    let mut list: Vec<(Hostile, u16)> = Hostile::ALL.iter().map(|&h| (h, 200)).collect();
    list.push((Hostile::EndlessBody, 503));
    list.push((Hostile::HundredMegabytes, 503));
    list
}

#[test]
fn the_warmer_ends_on_time_in_8_mb_whatever_the_app_sends() {
    let results = each_scenario(&scenarios(), |server: &HostileServer| {
        let dir = app(&[(
            "preheat.toml",
            "[warmup]\npaths = [\"/\", \"/next\"]\ndeadline = \"4s\"\nmax_rounds = 2\n",
        )]);
        let mut command = preheat();
        command
            .arg("warm")
            .env_remove("WEB_CONCURRENCY")
            .env_remove("PORT")
            .arg("--dir")
            .arg(dir.path());
        if server.scenario == Hostile::PlainHttpOnTls {
            command.args(["--url", &server.url("/")]);
        } else {
            command.args(["--port", &server.port.to_string()]);
        }
        measure(&command, Duration::from_secs(30))
    });
    report("preheat warm", &results);
    for (scenario, status, measured, _) in &results {
        let (name, out) = (scenario.name(), &measured.output);
        assert!(
            measured.elapsed < Duration::from_secs(12),
            "{name} ({status}) took {:?}:\n{out}",
            measured.elapsed
        );
        assert!(!out.contains("panicked"), "{name} ({status}):\n{out}");
        assert!(
            measured.peak_rss_mb() <= MAX_TOTAL_MB,
            "{name} ({status}) peaked at {:.1} MB:\n{out}",
            measured.peak_rss_mb()
        );
        #[allow(clippy::cast_precision_loss)]
        let anon_mb = measured.peak_anon_kb as f64 / 1024.0;
        assert!(
            anon_mb <= MAX_ANON_MB,
            "{name} ({status}) used {anon_mb:.1} MB of anonymous memory:\n{out}"
        );
        // A 200 whose body it does not need is warm (the status is all it
        // reads). A redirect loop is not: a redirect renders nothing, and
        // the warmer follows at most 3. Every other case says what went wrong.
        let warm = *status == 200
            && matches!(
                scenario,
                Hostile::EndlessBody | Hostile::HundredMegabytes | Hostile::ResetMidBody
            );
        if warm {
            assert_eq!(measured.code, Some(0), "{name} ({status}):\n{out}");
        } else {
            assert_eq!(measured.code, Some(1), "{name} ({status}):\n{out}");
            assert!(out.contains("NOT warm"), "{name} ({status}):\n{out}");
        }
        let verdict = out
            .lines()
            .find(|l| l.contains(" ×") || l.contains("NOT warm"))
            .unwrap_or_default();
        println!(
            "hostile: warm line for {name} ({status}): {}",
            verdict.trim()
        );
    }
}

/// The hostile app's paths (`tests/python/hostile_app.py`), one per scenario
/// that reaches an app through the gate; TLS never does (the gate forwards TCP).
const HOSTILE_PATHS: [&str; 8] = [
    "/endless",
    "/100mb",
    "/headers",
    "/garbage",
    "/silent",
    "/trickle",
    "/reset",
    "/redirect",
];

/// `preheat gate -- python3 hostile_app.py` on `port`, its warm-up aimed at
/// `/` and every hostile path; its stderr, collected until it exits.
fn start_gate(port: u16) -> (Child, JoinHandle<String>, tempfile::TempDir) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/hostile_app.py");
    let paths: Vec<String> = std::iter::once("/")
        .chain(HOSTILE_PATHS)
        .map(|p| format!("\"{p}\""))
        .collect();
    let toml = format!(
        "[warmup]\npaths = [{}]\ndeadline = \"4s\"\nmax_rounds = 1\ngate_timeout = \"10s\"\n",
        paths.join(", ")
    );
    let dir = app(&[("preheat.toml", &toml)]);
    let mut gate = preheat()
        .args(["gate", "--", "python3"])
        .arg(&script)
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .env("DYNO", "web.1")
        .env_remove("PREHEAT_SKIP")
        .env_remove("CNB_APP_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start preheat gate");
    let mut stderr = gate.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    (gate, log, dir)
}

/// A client per hostile path that reads a kilobyte now and then for 4 s:
/// the app's bytes pile up against the gate.
fn slow_readers(addr: SocketAddr) -> Vec<JoinHandle<()>> {
    HOSTILE_PATHS
        .iter()
        .map(|path| {
            let path = (*path).to_string();
            std::thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                else {
                    return;
                };
                let _ = write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 1024];
                let until = Instant::now() + Duration::from_secs(4);
                while Instant::now() < until {
                    let _ = stream.read(&mut buf);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect()
}

/// Samples `pid`'s `RssAnon` every 5 ms until the flag drops; the peak, in KB.
fn sample_anon(pid: u32) -> (Arc<AtomicBool>, JoinHandle<u64>) {
    let sampling = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&sampling);
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while flag.load(Ordering::SeqCst) {
            peak = peak.max(status_kb(pid, "RssAnon:").unwrap_or(0));
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    });
    (sampling, sampler)
}

/// The gate in front of a hostile app opens, keeps serving `/` to other
/// clients while hostile answers flow to clients that read slowly or not at
/// all, and its own memory stays small.
#[test]
fn the_gate_survives_a_hostile_app_and_keeps_serving() {
    let port = support::free_port();
    let (mut gate, log, _dir) = start_gate(port);
    let pid = gate.id();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let opened = Instant::now();
    assert!(
        support::eventually(Duration::from_secs(20), || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        }),
        "the gate never opened"
    );
    let opened_after = opened.elapsed();
    let clients = slow_readers(addr);
    let (sampling, sampler) = sample_anon(pid);
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let (status, took) = support::user_request(port, "/");
        assert_eq!(status, 200, "the gate stopped serving other clients");
        slowest = slowest.max(took);
    }
    for client in clients {
        let _ = client.join();
    }
    sampling.store(false, Ordering::SeqCst);
    let anon_kb = sampler.join().expect("sampler");
    let hwm_kb = status_kb(pid, "VmHWM:").unwrap_or(0);
    assert!(
        gate.try_wait().expect("poll the gate").is_none(),
        "the gate died"
    );
    // SIGTERM, as the platform stops a dyno.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = gate.wait().expect("wait for the gate");
    let log = log.join().expect("log");
    println!(
        "hostile: preheat gate | 8 hostile paths | opened after {:.1}s | 20 other requests, slowest {:.0}ms | VmHWM {:.1} MB (peak anon {:.1} MB) | exit {:?}",
        opened_after.as_secs_f64(),
        slowest.as_secs_f64() * 1000.0,
        mb(hwm_kb),
        mb(anon_kb),
        status.code()
    );
    for line in log.lines().filter(|l| l.contains("gate:")) {
        println!("hostile: gate line: {}", support::strip_ansi(line).trim());
    }
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("NOT warm") || log.contains("partly warm"),
        "the gate's warm-up verdict:\n{log}"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "slowest {slowest:?}\n{log}"
    );
    assert!(opened_after < Duration::from_secs(15), "{log}");
    assert!(
        mb(anon_kb) <= MAX_ANON_MB && mb(hwm_kb) <= MAX_TOTAL_MB,
        "gate memory: anon {anon_kb} KB, VmHWM {hwm_kb} KB\n{log}"
    );
}

fn mb(kb: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // KB counts of a test child fit in f64
    let kb = kb as f64;
    kb / 1024.0
}
