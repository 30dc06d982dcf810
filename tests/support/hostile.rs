//! Hostile HTTP servers on 127.0.0.1, one per way a server can misbehave, and
//! a runner that measures a child's wall time and peak RSS (GNU time's `%M`,
//! from wait4), so a test can prove preheat ends on time in bounded memory.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The ways a server misbehaves (issue 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hostile {
    /// A chunked body that never ends.
    EndlessBody,
    /// A 100 MB body, with its `Content-Length`.
    HundredMegabytes,
    /// 1 MB of header lines before the body.
    MegabyteOfHeaders,
    /// A status line that is not HTTP.
    GarbageStatus,
    /// Accepts the connection, reads the request, never answers.
    Silent,
    /// A valid answer, one byte a second.
    OneByteASecond,
    /// Headers and 64 KB of a 10 MB body, then a TCP reset.
    ResetMidBody,
    /// `302` to itself, forever.
    RedirectLoop,
    /// Plain HTTP behind an `https://` URL.
    PlainHttpOnTls,
}

impl Hostile {
    pub(crate) const ALL: [Hostile; 9] = [
        Hostile::EndlessBody,
        Hostile::HundredMegabytes,
        Hostile::MegabyteOfHeaders,
        Hostile::GarbageStatus,
        Hostile::Silent,
        Hostile::OneByteASecond,
        Hostile::ResetMidBody,
        Hostile::RedirectLoop,
        Hostile::PlainHttpOnTls,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Hostile::EndlessBody => "endless body",
            Hostile::HundredMegabytes => "100 MB body",
            Hostile::MegabyteOfHeaders => "1 MB of headers",
            Hostile::GarbageStatus => "garbage status line",
            Hostile::Silent => "accepts, never answers",
            Hostile::OneByteASecond => "one byte a second",
            Hostile::ResetMidBody => "reset mid-body",
            Hostile::RedirectLoop => "redirect loop",
            Hostile::PlainHttpOnTls => "TLS port speaking plain HTTP",
        }
    }
}

/// A hostile server; it stops, and closes every connection, when dropped.
pub(crate) struct HostileServer {
    pub(crate) port: u16,
    pub(crate) scenario: Hostile,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    sent: Arc<AtomicU64>,
}

impl HostileServer {
    /// Answers with `status` where the scenario sends a status at all.
    pub(crate) fn start(scenario: Hostile, status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile server");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        {
            let (stop, connections, sent) = (stop.clone(), connections.clone(), sent.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (stop, sent) = (stop.clone(), sent.clone());
                    std::thread::spawn(move || {
                        let mut conn = Conn { stream, stop, sent };
                        conn.serve(scenario, status);
                    });
                }
            });
        }
        Self {
            port,
            scenario,
            stop,
            connections,
            sent,
        }
    }

    /// The URL to point preheat at: `https://` for the plain-HTTP-on-TLS case.
    pub(crate) fn url(&self, path: &str) -> String {
        let scheme = if self.scenario == Hostile::PlainHttpOnTls {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Bytes the server managed to write (the client read at least up to the socket buffers).
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Conn {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

const MB: usize = 1 << 20;

impl Conn {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Reads up to the end of the request head (or 64 KB, or EOF, or 5 s).
    fn read_head(&mut self) {
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while head.len() < 64 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Writes all of `bytes`, retrying on the write timeout until stopped;
    /// `false` once the client is gone.
    fn send(&mut self, bytes: &[u8]) -> bool {
        let _ = self
            .stream
            .set_write_timeout(Some(Duration::from_millis(200)));
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.stopped() {
                return false;
            }
            match self.stream.write(rest) {
                Ok(0) => return false,
                Ok(n) => {
                    self.sent.fetch_add(n as u64, Ordering::SeqCst);
                    rest = &rest[n..];
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Holds the connection open until the client closes it or the server stops.
    fn hold(&mut self) {
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(100)));
        let mut buf = [0u8; 4096];
        while !self.stopped() {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }

    fn serve(&mut self, scenario: Hostile, status: u16) {
        let line = format!("HTTP/1.1 {status} Hostile\r\n");
        match scenario {
            Hostile::EndlessBody => {
                self.read_head();
                let head =
                    format!("{line}Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
                let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
                if self.send(head.as_bytes()) {
                    while self.send(chunk.as_bytes()) {}
                }
            }
            Hostile::HundredMegabytes => {
                self.read_head();
                let head = format!(
                    "{line}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                    100 * MB
                );
                let block = vec![b'x'; 64 * 1024];
                if self.send(head.as_bytes()) {
                    for _ in 0..(100 * MB / block.len()) {
                        if !self.send(&block) {
                            return;
                        }
                    }
                    self.hold();
                }
            }
            Hostile::MegabyteOfHeaders => {
                self.read_head();
                let mut head = line.into_bytes();
                let pad = "y".repeat(1000);
                for i in 0..(MB / 1024) {
                    head.extend_from_slice(format!("X-Pad-{i:04}: {pad}\r\n").as_bytes());
                }
                head.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
                if self.send(&head) {
                    self.hold();
                }
            }
            Hostile::GarbageStatus => {
                self.read_head();
                if self.send(b"\x16\x03\x01 SURE 2OO \xff\xfe garbage\r\nthis is not http\r\n\r\n")
                {
                    self.hold();
                }
            }
            Hostile::Silent => {
                self.read_head();
                self.hold();
            }
            Hostile::OneByteASecond => {
                self.read_head();
                let answer = format!("{line}Content-Length: 5\r\n\r\nhello");
                for byte in answer.as_bytes() {
                    if !self.send(&[*byte]) {
                        return;
                    }
                    for _ in 0..10 {
                        if self.stopped() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                self.hold();
            }
            Hostile::ResetMidBody => {
                // The request stays unread: closing a socket with unread
                // data makes the kernel send a reset instead of a FIN.
                std::thread::sleep(Duration::from_millis(50));
                let head = format!("{line}Content-Length: {}\r\n\r\n", 10 * MB);
                if self.send(head.as_bytes()) {
                    let _ = self.send(&vec![b'x'; 64 * 1024]);
                }
            }
            Hostile::RedirectLoop => {
                self.read_head();
                let _ = self.send(
                    b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = self.stream.shutdown(Shutdown::Write);
                self.hold();
            }
            Hostile::PlainHttpOnTls => {
                // The TLS ClientHello arrives as if it were a request.
                std::thread::sleep(Duration::from_millis(20));
                let _ = self.stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let _ = self.stream.read(&mut buf);
                if self.send(format!("{line}Content-Length: 2\r\n\r\nok").as_bytes()) {
                    self.hold();
                }
            }
        }
    }
}

/// A child run under GNU time: how it ended, what it said, how long it took,
/// and its peak resident set size.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) code: Option<i32>,
    pub(crate) output: String,
    pub(crate) elapsed: Duration,
    /// The whole peak (`ru_maxrss`): the debug binary's own code is ~12 MB of it.
    pub(crate) peak_rss_kb: u64,
    /// Peak `RssAnon` (heap, stacks, buffers: what grows with what a server
    /// sends), sampled every 2 ms; 0 when the child ended before a sample.
    pub(crate) peak_anon_kb: u64,
}

impl Measured {
    pub(crate) fn peak_rss_mb(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)] // KB counts of a test child fit in f64
        let kb = self.peak_rss_kb as f64;
        kb / 1024.0
    }
}

const GNU_TIME: &str = "/usr/bin/time";

/// Runs `command` under `/usr/bin/time -f %M` (wait4's `ru_maxrss`, exact for
/// this one child) in its own process group; kills the group at `limit`.
pub(crate) fn measure(command: &Command, limit: Duration) -> Measured {
    assert!(
        Path::new(GNU_TIME).is_file(),
        "{GNU_TIME} (GNU time) is missing: install the `time` package (.ci/run does)"
    );
    let report = tempfile::NamedTempFile::new().expect("rss report file");
    let mut wrapped = Command::new(GNU_TIME);
    wrapped
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    std::os::unix::process::CommandExt::process_group(&mut wrapped, 0);
    let started = Instant::now();
    let child = wrapped
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn under GNU time");
    let group = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let mut peak_anon_kb = 0;
    let received = loop {
        match rx.recv_timeout(Duration::from_millis(2)) {
            Ok(output) => break Some(output),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if started.elapsed() < limit => {
                // GNU time's one child is the measured command.
                for pid in children(group) {
                    peak_anon_kb = peak_anon_kb.max(status_kb(pid, "RssAnon:").unwrap_or(0));
                }
            }
            Err(_) => break None,
        }
    };
    let Some(output) = received else {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .status();
        panic!("{command:?} did not finish within {limit:?}: a hang");
    };
    let elapsed = started.elapsed();
    let output = output.expect("wait for the child");
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    let peak_rss_kb = text
        .lines()
        .rev()
        .find_map(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from GNU time: {text:?}"));
    Measured {
        code: output.status.code(),
        output: super::strip_ansi(&format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )),
        elapsed,
        peak_rss_kb,
        peak_anon_kb,
    }
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A `kB` field of `/proc/<pid>/status`.
pub(crate) fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs one measured child per scenario at once, each against its own
/// server; returns them in scenario order.
pub(crate) fn each_scenario(
    scenarios: &[(Hostile, u16)],
    run: impl Fn(&HostileServer) -> Measured + Sync,
) -> Vec<(Hostile, u16, Measured, u64)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|&(scenario, status)| {
                let run = &run;
                scope.spawn(move || {
                    let server = HostileServer::start(scenario, status);
                    let measured = run(&server);
                    let sent = server.sent();
                    (scenario, status, measured, sent)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("scenario thread"))
            .collect()
    })
}

/// One line per scenario, for the test log and docs/hostile-input.md.
pub(crate) fn report(target: &str, results: &[(Hostile, u16, Measured, u64)]) {
    for (scenario, status, measured, sent) in results {
        println!(
            "hostile: {target} | {} ({status}) | exit {:?} | {:.1}s | peak RSS {:.1} MB (anon {:.1} MB) | server wrote {:.1} MB",
            scenario.name(),
            measured.code,
            measured.elapsed.as_secs_f64(),
            measured.peak_rss_mb(),
            {
                #[allow(clippy::cast_precision_loss)]
                let mb = measured.peak_anon_kb as f64 / 1024.0;
                mb
            },
            {
                #[allow(clippy::cast_precision_loss)]
                let mb = *sent as f64 / 1_048_576.0;
                mb
            }
        );
    }
}
