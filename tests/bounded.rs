//! The warmer never harms the dyno: against real hostile sockets (an endless
//! body, a 100 MB body, endless headers, a server that accepts and never
//! answers) `preheat warm --port` ends on time and its memory stays small.
//!
//! Memory is the child's anonymous RSS (heap, stacks, buffers: what grows
//! with what the app sends), sampled from /proc every millisecond while it
//! runs. Its total `VmHWM` is printed too, but the debug test binary alone maps
//! about 12 MB of its own code; `scripts/bench` measures the release
//! binary's total peak.

#![allow(unused_crate_dependencies)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{app, preheat, strip_ansi};

/// The most anonymous memory the warmer may use, whatever the app sends.
const MAX_ANON_KB: u64 = 8 * 1024;

/// A real socket server whose every connection gets `answer(stream)`.
fn hostile(answer: fn(TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

/// Reads the request head, so the warmer is past sending.
fn read_request(stream: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `head`, then `total` bytes of body (or forever), until the warmer hangs up.
fn stream_body(mut stream: TcpStream, head: &str, total: Option<u64>) {
    read_request(&mut stream);
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0u64;
    while total.is_none_or(|t| sent < t) {
        if stream.write_all(&chunk).is_err() {
            return;
        }
        sent += chunk.len() as u64;
    }
}

struct Run {
    code: Option<i32>,
    took: Duration,
    anon_kb: u64,
    hwm_kb: u64,
    text: String,
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `preheat warm --port` with `toml`, sampling its memory until it exits.
fn warm(port: u16, toml: &str) -> Run {
    let dir = app(&[("preheat.toml", toml)]);
    let started = Instant::now();
    let mut child = preheat()
        .args(["warm", "--port", &port.to_string(), "--dir"])
        .arg(dir.path())
        .env_remove("WEB_CONCURRENCY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (mut anon_kb, mut hwm_kb) = (0, 0);
    let code = loop {
        anon_kb = anon_kb.max(status_kb(child.id(), "RssAnon:").unwrap_or(0));
        hwm_kb = hwm_kb.max(status_kb(child.id(), "VmHWM:").unwrap_or(0));
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the warmer is still running"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    Run {
        code,
        took: started.elapsed(),
        anon_kb,
        hwm_kb,
        text: strip_ansi(&reader.join().expect("stderr reader")),
    }
}

fn assert_small(run: &Run) {
    assert!(run.anon_kb > 0, "no memory sample: {}", run.text);
    assert!(
        run.anon_kb <= MAX_ANON_KB,
        "anonymous RSS peaked at {} KB (VmHWM {} KB): {}",
        run.anon_kb,
        run.hwm_kb,
        run.text
    );
    eprintln!(
        "peak anonymous RSS {} KB, VmHWM {} KB, {:?}",
        run.anon_kb, run.hwm_kb, run.took
    );
}

#[test]
fn an_endless_body_is_not_read_past_the_status() {
    let port = hostile(|stream| stream_body(stream, "HTTP/1.1 200 OK\r\n\r\n", None));
    let run = warm(port, "[warmup]\npaths = [\"/\"]\ndeadline = \"10s\"\n");
    assert_eq!(run.code, Some(0), "{}", run.text);
    assert!(run.text.contains("/ 200 ×4 "), "{}", run.text);
    assert!(run.took < Duration::from_secs(8), "took {:?}", run.took);
    assert_small(&run);
}

#[test]
fn an_endless_body_is_searched_only_up_to_the_cap() {
    let port = hostile(|stream| stream_body(stream, "HTTP/1.1 200 OK\r\n\r\n", None));
    let toml = "[warmup]\ndeadline = \"10s\"\nmax_rounds = 2\n\n[[warmup.request]]\npath = \"/\"\nexpect_body = \"needle\"\n";
    let run = warm(port, toml);
    assert_eq!(run.code, Some(1), "{}", run.text);
    assert!(
        run.text.contains("/ 200 ×4 ")
            && run.text.contains(
                "(body does not contain \"needle\" in its first 1 MB; sent Host: 127.0.0.1:"
            ),
        "{}",
        run.text
    );
    assert_small(&run);
}

#[test]
fn a_100_mb_body_is_not_read() {
    let port = hostile(|stream| {
        stream_body(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n",
            Some(100 * 1024 * 1024),
        );
    });
    let run = warm(
        port,
        "[warmup]\npaths = [\"/\", \"/big\"]\ndeadline = \"10s\"\n",
    );
    assert_eq!(run.code, Some(0), "{}", run.text);
    assert!(run.text.contains("/big 200 ×4 "), "{}", run.text);
    assert_small(&run);
}

#[test]
fn endless_headers_stop_at_the_cap() {
    let port = hostile(|stream| {
        stream_body(stream, "HTTP/1.1 200 OK\r\nX-Endless: ", None);
    });
    let run = warm(
        port,
        "[warmup]\npaths = [\"/\"]\ndeadline = \"10s\"\nmax_rounds = 2\n",
    );
    assert_eq!(run.code, Some(1), "{}", run.text);
    assert!(
        run.text.contains("/ --- ×4 ")
            && run
                .text
                .contains("(response headers over 64 KB; stopped reading; sent Host: 127.0.0.1:"),
        "{}",
        run.text
    );
    assert_small(&run);
}

#[test]
fn a_server_that_never_answers_ends_at_the_deadline() {
    let port = hostile(|mut stream| {
        read_request(&mut stream);
        std::thread::sleep(Duration::from_secs(30));
    });
    let run = warm(port, "[warmup]\npaths = [\"/\"]\ndeadline = \"2s\"\n");
    assert_eq!(run.code, Some(1), "{}", run.text);
    assert!(
        run.text
            .contains("(no answer before the warm-up deadline; sent Host: 127.0.0.1:"),
        "{}",
        run.text
    );
    assert!(run.text.contains("NOT warm in 2"), "{}", run.text);
    assert!(
        run.text.contains("gave up at the warm-up deadline"),
        "{}",
        run.text
    );
    assert!(
        run.took >= Duration::from_secs(2) && run.took < Duration::from_secs(4),
        "took {:?}",
        run.took
    );
    assert_small(&run);
}
