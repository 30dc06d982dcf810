//! `preheat gate -- CMD`: real processes and real sockets. The app is
//! `tests/python/gate_app.py` (standard-library Python) with a real cold start:
//! its first request for a page costs about 0.3 s of PBKDF2.

#![allow(unused_crate_dependencies)]

mod support;

use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};
use support::{app, eventually, free_port, preheat};

/// The cold-window test runs alone; the others may share the machine.
static TIMING: RwLock<()> = RwLock::new(());

/// PBKDF2 rounds of a page's cold start: about 0.3 s.
const COLD: &str = "300000";

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    TIMING
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The real interpreter (not a version manager's shim), so the app starts in ms.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs the gate tests' app (.ci/run installs it)");
        assert!(out.status.success(), "python3 failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// `python3 gate_app.py OPTIONS`, as arguments.
fn app_command(options: &[&str]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/gate_app.py");
    let mut args = vec![python().display().to_string(), script.display().to_string()];
    args.extend(options.iter().map(ToString::to_string));
    args
}

/// A web process: `preheat gate -- app` (or the app alone), its output kept.
struct Web {
    child: Child,
    port: u16,
    started: Instant,
    output: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Web {
    fn gated(toml: &str, options: &[&str]) -> Self {
        let mut command = preheat();
        command.arg("gate").arg("--").args(app_command(options));
        Self::start(command, &[("preheat.toml", toml)])
    }

    fn bare(options: &[&str]) -> Self {
        let args = app_command(options);
        let mut command = Command::new(&args[0]);
        command.args(&args[1..]);
        Self::start(command, &[])
    }

    fn start(mut command: Command, files: &[(&str, &str)]) -> Self {
        let dir = app(files);
        let port = free_port();
        command
            .current_dir(dir.path())
            .env("PORT", port.to_string())
            .env("DYNO", "web.1")
            .env_remove("PREHEAT_SKIP")
            .env_remove("CNB_APP_DIR")
            .env_remove("HEROKU_APP_DEFAULT_DOMAIN_NAME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().expect("start the web process");
        let output = support::capture_output(&mut child);
        Self {
            child,
            port,
            started,
            output,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        self.output.lock().expect("lock").clone()
    }

    /// Whether the output shows `text` within a few seconds (it is read on
    /// other threads, so it can lag behind what the processes did).
    fn shows(&self, text: &str) -> bool {
        eventually(Duration::from_secs(5), || self.log().contains(text))
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn is_open(&self) -> bool {
        TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1)).is_ok()
    }

    fn wait_open(&self) {
        assert!(
            eventually(Duration::from_secs(20), || self.is_open()),
            "port {} never opened:\n{}",
            self.port,
            self.log()
        );
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "still running after {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The app, the gate's only child.
    fn app_pid(&self) -> i32 {
        let pid = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .expect("children of the gate");
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the gate has a child")
    }

    fn signal(&self, signal: &str) {
        signal_pid(i32::try_from(self.child.id()).expect("pid"), signal);
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal_pid(pid: i32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

fn alive(pid: i32) -> bool {
    // A zombie has exited; only its parent has not looked yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Reads one response: the head, then `Content-Length` bytes or all until EOF.
fn read_response(stream: &mut TcpStream) -> io::Result<Response> {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut response = Response {
        status,
        head,
        body: Vec::new(),
    };
    match response
        .header("Content-Length")
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(length) => {
            stream.take(length).read_to_end(&mut response.body)?;
        }
        None => {
            stream.read_to_end(&mut response.body)?;
        }
    }
    Ok(response)
}

/// One request on a fresh connection.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    read_response(&mut stream)
}

fn get(port: u16, path: &str) -> io::Result<Response> {
    request(port, "GET", path, b"")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut text, b| {
            let _ = write!(text, "{b:02x}");
            text
        })
}

/// From the moment the web command starts, `GET /` on a fresh connection
/// every 20 ms, for half a second after the first answer (a cold start
/// shows in the first answers; a longer window only adds machine noise). Returns how long each
/// answered request took, then the steady-state median of 20 more.
fn poll_cold_window(web: &Web) -> (Vec<Duration>, Duration) {
    let mut answered = Vec::new();
    let mut first_answer = None;
    while web.started.elapsed() < Duration::from_secs(20)
        && first_answer.is_none_or(|at: Instant| at.elapsed() < Duration::from_millis(500))
    {
        let sent = Instant::now();
        if let Ok(response) = get(web.port, "/") {
            assert_eq!(response.status, 200, "{}", web.log());
            answered.push(sent.elapsed());
            first_answer.get_or_insert(sent);
        }
        std::thread::sleep(Duration::from_millis(20).saturating_sub(sent.elapsed()));
    }
    let mut steady: Vec<Duration> = (0..20)
        .map(|_| {
            let sent = Instant::now();
            get(web.port, "/").expect("steady request");
            sent.elapsed()
        })
        .collect();
    steady.sort();
    (answered, steady[steady.len() / 2])
}

#[test]
fn no_answer_in_the_cold_window_is_cold_with_the_gate_and_one_is_without() {
    let _alone = TIMING
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let options = ["--cold", COLD];

    let gated = Web::gated("", &options);
    let (answered, median) = poll_cold_window(&gated);
    let limit = median.mul_f64(1.5) + Duration::from_millis(15);
    assert!(answered.len() >= 15, "{answered:?}\n{}", gated.log());
    let slowest = answered.iter().max().copied().unwrap_or_default();
    assert!(
        slowest <= limit,
        "with the gate, an answer took {slowest:?} (limit {limit:?}, steady median {median:?}): {answered:?}\n{}",
        gated.log()
    );
    assert!(gated.shows("gate: warm in"), "{}", gated.log());
    drop(gated);

    let bare = Web::bare(&options);
    let (answered, median) = poll_cold_window(&bare);
    let limit = median.mul_f64(1.5) + Duration::from_millis(15);
    assert!(
        answered.iter().any(|took| *took > limit),
        "without the gate, no answer was cold (limit {limit:?}): {answered:?}"
    );
}

#[test]
fn twenty_megabytes_each_way_arrive_intact() {
    let _shared = shared();
    let web = Web::gated("", &[]);
    web.wait_open();

    let upload: Vec<u8> = (0..20_000_000_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let response = request(web.port, "POST", "/upload", &upload).expect("upload");
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        format!("{} 20000000", hex(&upload))
    );

    let response = get(web.port, "/bytes?n=20000000").expect("download");
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 20_000_000);
    assert_eq!(
        response.header("X-Sha256"),
        Some(hex(&response.body).as_str())
    );
}

#[test]
fn a_half_close_reaches_the_app_and_the_answer_still_comes_back() {
    let _shared = shared();
    let web = Web::gated("", &[]);
    web.wait_open();
    let mut stream = TcpStream::connect(web.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = vec![7_u8; 300_000];
    stream
        .write_all(b"POST /halfclose HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("head");
    stream.write_all(&body).expect("body");
    // The app reads until our end of stream; only then does it answer.
    stream.shutdown(Shutdown::Write).expect("half-close");
    let response = read_response(&mut stream).expect("answer after the half-close");
    assert_eq!(String::from_utf8_lossy(&response.body), hex(&body));
}

#[test]
fn an_upgraded_connection_carries_frames_both_ways() {
    let _shared = shared();
    let web = Web::gated("", &[]);
    web.wait_open();
    let mut stream = TcpStream::connect(web.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /upgrade HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: preheat-echo\r\n\r\n")
        .expect("upgrade request");
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("101 head");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let read_frame = |stream: &mut TcpStream| {
        let mut length = [0; 4];
        stream.read_exact(&mut length).expect("frame length");
        let mut payload = vec![0; u32::from_be_bytes(length) as usize];
        stream.read_exact(&mut payload).expect("frame payload");
        payload
    };
    let send_frame = |stream: &mut TcpStream, payload: &[u8]| {
        let length = u32::try_from(payload.len()).expect("small frame");
        stream
            .write_all(&length.to_be_bytes())
            .expect("send length");
        stream.write_all(payload).expect("send payload");
    };
    assert_eq!(read_frame(&mut stream), b"hello from the app");
    let big = vec![9_u8; 100_000];
    for frame in [&b"one"[..], b"two frames", &big] {
        send_frame(&mut stream, frame);
        let mut reversed = frame.to_vec();
        reversed.reverse();
        assert_eq!(read_frame(&mut stream), reversed);
    }
    send_frame(&mut stream, b"");
    assert_eq!(read_frame(&mut stream), b"bye");
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("the app's end of stream");
    assert!(rest.is_empty());
}

#[test]
fn broken_connections_break_alone() {
    let _shared = shared();
    let web = Web::gated("", &[]);
    web.wait_open();
    // A download in flight on another connection must not notice anything.
    let mut bystander = TcpStream::connect(web.addr()).expect("connect");
    bystander
        .write_all(b"GET /bytes?n=5000000 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");

    // The app closes mid-response: the client sees the same short body and end of stream.
    let started = Instant::now();
    let response = get(web.port, "/abort").expect("head of the aborted response");
    assert_eq!(response.header("Content-Length"), Some("1000000"));
    assert_eq!(response.body.len(), 100_000);
    assert!(started.elapsed() < Duration::from_secs(5));

    // The client aborts mid-request: the app hears of it and carries on.
    let mut aborting = TcpStream::connect(web.addr()).expect("connect");
    aborting
        .write_all(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000\r\n\r\n")
        .expect("head");
    aborting
        .write_all(&vec![1; 1_000_000])
        .expect("part of the body");
    socket2::SockRef::from(&aborting)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(aborting);
    assert!(
        eventually(Duration::from_secs(5), || {
            get(web.port, "/stats")
                .is_ok_and(|r| String::from_utf8_lossy(&r.body).contains("\"aborted_uploads\": 1"))
        }),
        "the app never saw the aborted upload"
    );

    let response = read_response(&mut bystander).expect("the bystander's download");
    assert_eq!(response.body.len(), 5_000_000);
    assert_eq!(
        response.header("X-Sha256"),
        Some(hex(&response.body).as_str())
    );
    assert_eq!(get(web.port, "/small").expect("after").status, 200);
}

#[test]
fn a_thousand_concurrent_connections_are_all_answered() {
    let _shared = shared();
    // This process holds a thousand sockets too.
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let web = Web::gated("", &[]);
    web.wait_open();
    let mut streams: Vec<TcpStream> = (0..1000)
        .map(|i| TcpStream::connect(web.addr()).unwrap_or_else(|e| panic!("connection {i}: {e}")))
        .collect();
    for stream in &mut streams {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream
            .write_all(b"GET /small HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("request");
    }
    let answered = streams
        .iter_mut()
        .map(read_response)
        .filter(|r| {
            r.as_ref()
                .is_ok_and(|r| r.status == 200 && r.body.len() == 1024)
        })
        .count();
    assert_eq!(answered, 1000, "{}", web.log());
}

#[test]
fn the_gate_exits_with_the_apps_status() {
    let _shared = shared();
    let mut web = Web::gated("", &[]);
    web.wait_open();
    signal_pid(web.app_pid(), "KILL");
    let status = web.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(137), "{}", web.log());
    assert!(
        web.shows("gate: the app was stopped by SIGKILL; the gate exits 137"),
        "{}",
        web.log()
    );

    let mut web = Web::gated("", &[]);
    web.wait_open();
    let _ = get(web.port, "/exit?code=3");
    assert_eq!(web.wait_exit(Duration::from_secs(10)).code(), Some(3));
}

#[test]
fn sigkill_to_the_gate_ends_the_app() {
    let _shared = shared();
    let mut web = Web::gated("", &[]);
    web.wait_open();
    let app = web.app_pid();
    assert!(alive(app));
    web.signal("KILL");
    web.wait_exit(Duration::from_secs(5));
    assert!(
        eventually(Duration::from_secs(5), || !alive(app)),
        "the app outlived the gate"
    );
}

#[test]
fn sigterm_drains_open_connections_then_exits() {
    let _shared = shared();
    let mut web = Web::gated("", &["--graceful"]);
    web.wait_open();
    let mut in_flight = TcpStream::connect(web.addr()).expect("connect");
    in_flight
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    in_flight
        .write_all(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    std::thread::sleep(Duration::from_millis(300));
    web.signal("TERM");
    assert!(
        eventually(Duration::from_secs(1), || !web.is_open()),
        "the gate still accepts after SIGTERM"
    );
    let response = read_response(&mut in_flight).expect("the request in flight");
    assert_eq!(response.body, b"slow done\n");
    assert_eq!(web.wait_exit(Duration::from_secs(10)).code(), Some(0));
    assert!(
        web.shows("gate: SIGTERM received; passed on to the app"),
        "{}",
        web.log()
    );
    assert!(
        web.shows("open ones keep flowing until the app exits"),
        "{}",
        web.log()
    );
}

#[test]
fn an_app_that_never_gets_warm_is_opened_at_gate_timeout() {
    let _shared = shared();
    let mut web = Web::gated("[warmup]\ngate_timeout = \"2s\"\n", &["--never-warm"]);
    assert!(
        eventually(Duration::from_secs(10), || web
            .log()
            .contains("gate: app bound")),
        "{}",
        web.log()
    );
    assert!(!web.is_open(), "open before gate_timeout");
    web.wait_open();
    let opened = web.started.elapsed();
    assert!(
        (Duration::from_millis(1900)..Duration::from_secs(8)).contains(&opened),
        "opened after {opened:?}"
    );
    assert!(
        web.shows("gate: gate_timeout (2s) reached while warming; opening anyway"),
        "{}",
        web.log()
    );
    assert_eq!(get(web.port, "/small").expect("through").status, 200);
    web.signal("TERM");
    assert_eq!(web.wait_exit(Duration::from_secs(10)).code(), Some(143));
}

#[test]
fn an_app_that_never_binds_leaves_the_port_closed() {
    let _shared = shared();
    let mut web = Web::gated("[warmup]\ngate_timeout = \"1s\"\n", &["--never-bind"]);
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        assert!(!web.is_open(), "the port opened:\n{}", web.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        web.shows("gate_timeout passed and the app has not bound port"),
        "{}",
        web.log()
    );
    web.signal("TERM");
    assert_eq!(web.wait_exit(Duration::from_secs(10)).code(), Some(143));
}

#[test]
fn port_in_the_procfile_command_means_the_private_port() {
    let _shared = shared();
    // As the platform runs a Procfile entry: `bash -c`, which expands $PORT to
    // the public port before the gate starts. The gate runs the Procfile's text
    // itself, so the app's own `$PORT` argument is the private port.
    let web_command = format!(
        "{} gate -- {} -m http.server $PORT --bind 127.0.0.1",
        env!("CARGO_BIN_EXE_preheat"),
        python().display()
    );
    let procfile = format!("web: {web_command}\n");
    let mut command = Command::new("bash");
    command.arg("-c").arg(&web_command);
    let web = Web::start(command, &[("Procfile", &procfile)]);
    web.wait_open();
    assert_eq!(get(web.port, "/").expect("through the gate").status, 200);
    assert!(
        web.shows("-m http.server $PORT --bind 127.0.0.1` on private port"),
        "{}",
        web.log()
    );
    let log = web.log();
    assert!(!log.contains("already listens on the public port"), "{log}");
}

#[test]
fn reload_signals_pass_through_to_the_app() {
    let _shared = shared();
    let web = Web::gated("", &[]);
    web.wait_open();
    web.signal("HUP");
    // The app's line can come before the gate's own, which is written after the signal.
    assert!(
        eventually(Duration::from_secs(5), || {
            let log = web.log();
            log.contains("gate_app got SIGHUP") && log.contains("gate: SIGHUP passed on to the app")
        }),
        "{}",
        web.log()
    );
    assert_eq!(get(web.port, "/small").expect("still open").status, 200);
}
