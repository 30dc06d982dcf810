//! The gate under faults, with real servers and real sockets on loopback:
//! reload signals sent to the gate while requests flow (real gunicorn and
//! puma masters with workers), file descriptors running out, and slow
//! clients beside a normal one.

#![allow(unused_crate_dependencies)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{app, eventually, free_port, preheat, venv_bin};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gate")
}

/// `preheat gate -- command`, its output kept; stopped when dropped.
struct Gate {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Gate {
    fn start(prefix: &[&str], command: &[String], env: &[(&str, &str)]) -> Self {
        let dir = app(&[("preheat.toml", "[warmup]\npaths = [\"/\"]\n")]);
        let port = free_port();
        let mut cmd = Command::new(prefix.first().copied().unwrap_or("env"));
        cmd.args(prefix.iter().skip(1))
            .arg(preheat().get_program())
            .arg("gate")
            .arg("--")
            .args(command)
            .current_dir(dir.path())
            .env("PORT", port.to_string())
            .env("DYNO", "web.1")
            .env_remove("PREHEAT_SKIP")
            .env_remove("CNB_APP_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().expect("start the gate");
        let output = support::capture_output(&mut child);
        let gate = Self {
            child,
            port,
            output,
            _dir: dir,
        };
        assert!(
            eventually(Duration::from_secs(30), || gate
                .log()
                .contains("open after")),
            "the gate never opened: {}",
            gate.log()
        );
        gate
    }

    fn log(&self) -> String {
        self.output.lock().expect("lock").clone()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `GET path` on a fresh connection, `Connection: close`; the status line.
fn fetch(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer);
    if text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.0 200") {
        Ok(text.lines().next().unwrap_or("").to_string())
    } else {
        Err(format!("answer: {text:?}"))
    }
}

/// Requests through the gate, one after another, until stopped; the count
/// of answers and the failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match fetch(addr, "/") {
                            Ok(_) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(error) => failures.lock().expect("lock").push(error),
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failures,
            threads,
        }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            let _ = thread.join();
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

/// Sends each signal to the gate during a steady request loop through it,
/// waiting `settle` after each; asserts no request failed.
fn signals_under_load(gate: &Gate, signals: &[&str], settle: Duration) {
    let load = Load::start(gate.addr(), 4);
    std::thread::sleep(Duration::from_millis(500));
    for signal in signals {
        gate.signal(signal);
        std::thread::sleep(settle);
    }
    let (ok, failures) = load.finish();
    assert!(ok > 100, "only {ok} requests went through: {}", gate.log());
    assert!(
        failures.is_empty(),
        "{} of {} requests failed across {signals:?}: {:?}\n{}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)],
        gate.log()
    );
    for signal in signals {
        assert!(
            gate.log()
                .contains(&format!("SIG{signal} passed on to the app's main process")),
            "{}",
            gate.log()
        );
    }
}

#[test]
fn gunicorn_hup_and_usr2_through_the_gate_lose_no_request() {
    let Some(bin) = venv_bin() else { return };
    let command = [
        bin.join("gunicorn").display().to_string(),
        "--bind".to_string(),
        "127.0.0.1:$PORT".to_string(),
        "--workers".to_string(),
        "2".to_string(),
        "--chdir".to_string(),
        fixtures().display().to_string(),
        "wsgi:app".to_string(),
    ];
    // One argument: run with `bash -c`, so $PORT is the private port.
    let gate = Gate::start(&[], &[command.join(" ")], &[]);
    signals_under_load(&gate, &["HUP", "HUP", "USR2"], Duration::from_millis(1500));
}

/// Debian's puma (`.ci/run` installs it); under `scripts/test` a missing puma fails.
fn puma() -> Option<PathBuf> {
    let found = ["/usr/bin/puma", "/usr/local/bin/puma"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var("PREHEAT_REQUIRE_RUBY").as_deref() != Ok("1"),
            "PREHEAT_REQUIRE_RUBY=1 but puma is not installed"
        );
        eprintln!("note: no puma; .ci/run installs it");
    }
    found
}

#[test]
fn puma_phased_restart_through_the_gate_loses_no_request() {
    let Some(puma) = puma() else { return };
    let command = format!(
        "{} --workers 2 --threads 2:4 --bind tcp://127.0.0.1:$PORT --dir {} {}",
        puma.display(),
        fixtures().display(),
        fixtures().join("config.ru").display()
    );
    let gate = Gate::start(&[], &[command], &[]);
    // Puma's workers boot before it says so; give the cluster a moment.
    std::thread::sleep(Duration::from_secs(2));
    signals_under_load(&gate, &["USR1"], Duration::from_secs(4));
}

fn gate_app(options: &[&str]) -> Vec<String> {
    let mut args = vec![
        "python3".to_string(),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python/gate_app.py")
            .display()
            .to_string(),
    ];
    args.extend(options.iter().map(ToString::to_string));
    args
}

/// A keep-alive `GET /small` on `stream`; whether it was answered in `wait`.
fn small(stream: &mut TcpStream, wait: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(wait));
    if stream
        .write_all(b"GET /small HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut got = Vec::new();
    let mut buffer = [0; 4096];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
        }
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n")
            && got.len() >= end + 4 + 1024
        {
            return got.starts_with(b"HTTP/1.1 200");
        }
    }
    false
}

#[test]
fn out_of_file_descriptors_new_clients_wait_then_are_served() {
    let gate = Gate::start(
        &["prlimit", "--nofile=160:160", "--"],
        &gate_app(&["--cold", "0"]),
        &[],
    );
    let mut held = Vec::new();
    let mut waiting = None;
    for _ in 0..400 {
        let mut stream = TcpStream::connect(gate.addr()).expect("the backlog takes it");
        if small(&mut stream, Duration::from_millis(1500)) {
            held.push(stream);
        } else {
            waiting = Some(stream);
            break;
        }
    }
    let mut waiting = waiting.unwrap_or_else(|| {
        panic!(
            "{} connections and the gate never ran out: {}",
            held.len(),
            gate.log()
        )
    });
    assert!(held.len() > 20, "ran out after {} connections", held.len());
    assert!(
        eventually(Duration::from_secs(5), || gate
            .log()
            .contains("out of file descriptors")),
        "{}",
        gate.log()
    );
    // The waiting client was not reset: once descriptors are free, it is served.
    drop(held);
    let mut answer = Vec::new();
    let mut buffer = [0; 4096];
    let _ = waiting.set_read_timeout(Some(Duration::from_secs(10)));
    while !(answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.len() > 1024) {
        match waiting.read(&mut buffer) {
            Ok(0) => panic!("closed without an answer: {}", gate.log()),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(error) => panic!("the waiting client: {error}: {}", gate.log()),
        }
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", gate.log());
    for _ in 0..20 {
        let mut fresh = TcpStream::connect(gate.addr()).expect("connect");
        assert!(small(&mut fresh, Duration::from_secs(5)), "{}", gate.log());
    }
    let log = gate.log();
    assert_eq!(
        log.matches("out of file descriptors").count(),
        1,
        "one line per episode: {log}"
    );
}

fn p50(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn latencies(addr: SocketAddr, count: usize) -> Vec<Duration> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    (0..count)
        .map(|_| {
            let start = Instant::now();
            assert!(small(&mut stream, Duration::from_secs(5)));
            start.elapsed()
        })
        .collect()
}

#[test]
fn slow_clients_slow_nobody_else() {
    let gate = Gate::start(&[], &gate_app(&["--cold", "0"]), &[]);
    let before = p50(&mut latencies(gate.addr(), 200));
    // Fifty that dribble a request a byte at a time, fifty that ask for 5 MB
    // and never read it.
    let stop = Arc::new(AtomicBool::new(false));
    let mut slow = Vec::new();
    for i in 0..100 {
        let stop = stop.clone();
        let addr = gate.addr();
        slow.push(std::thread::spawn(move || {
            let Ok(mut stream) = TcpStream::connect(addr) else {
                return;
            };
            if i % 2 == 0 {
                for byte in b"GET /small HTTP/1.1\r\nHost: localhost\r\n".iter().cycle() {
                    if stop.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            } else {
                let _ =
                    stream.write_all(b"GET /bytes?n=5000000 HTTP/1.1\r\nHost: localhost\r\n\r\n");
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    let during = p50(&mut latencies(gate.addr(), 200));
    stop.store(true, Ordering::Relaxed);
    for thread in slow {
        let _ = thread.join();
    }
    // Generous: a shared machine moves these by milliseconds.
    assert!(
        during <= before * 5 + Duration::from_millis(20),
        "p50 {before:?} alone, {during:?} beside slow clients"
    );
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let gate = Gate::start(
        &[],
        &gate_app(&["--cold", "0"]),
        &[("PREHEAT_GATE_IDLE_TIMEOUT", "1s")],
    );
    let mut stream = TcpStream::connect(gate.addr()).expect("connect");
    assert!(small(&mut stream, Duration::from_secs(5)));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let start = Instant::now();
    let mut buffer = [0; 16];
    let end = stream.read(&mut buffer);
    assert!(matches!(end, Ok(0)), "{end:?}");
    let idle = start.elapsed();
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
}
