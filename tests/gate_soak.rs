//! Soak: 2,000 concurrent connections through the gate, each carrying a
//! random size both ways (from 0 to 8 MB, 8 MB^(u²) for a uniform u, so most
//! are small and a few are large: about 0.3 GB in all, to stay near a minute
//! on two shared cores), with half-closes and client aborts
//! mixed in. Every completed transfer's sha256 matches at both ends, and no
//! connection that was not aborted ends in an error. Bounded: it stops by
//! itself in a few minutes at most.

#![allow(unused_crate_dependencies)]

mod support;

use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{app, eventually, free_port, preheat};

const CONNECTIONS: usize = 2000;
const MAX_SIZE: f64 = 8.0 * 1024.0 * 1024.0;

/// xorshift: reproducible sizes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    fn size(&mut self) -> usize {
        let unit = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        let unit = unit * unit;
        (MAX_SIZE.powf(unit) - 1.0) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .take(n)
            .collect()
    }
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

/// Reads one response: (head, body).
fn response(stream: &mut TcpStream) -> Result<(String, Vec<u8>), String> {
    let mut got = Vec::new();
    let mut buffer = vec![0; 65536];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .ok_or("no Content-Length")?;
            let mut body = got[end + 4..].to_vec();
            while body.len() < length {
                let n = stream.read(&mut buffer).map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err(format!("closed after {} of {length} bytes", body.len()));
                }
                body.extend_from_slice(&buffer[..n]);
            }
            return Ok((head, body));
        }
        let n = stream.read(&mut buffer).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the head".to_string());
        }
        got.extend_from_slice(&buffer[..n]);
    }
}

enum Outcome {
    Verified(usize),
    Aborted,
}

fn transfer(addr: SocketAddr, seed: u64, started: Instant) -> Result<Outcome, String> {
    let kind = seed;
    let result = transfer_kind(addr, seed);
    result.map_err(|error| {
        format!(
            "{error} at {:.1}s (seed {kind})",
            started.elapsed().as_secs_f64()
        )
    })
}

fn transfer_kind(addr: SocketAddr, seed: u64) -> Result<Outcome, String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_mins(2)))
        .map_err(|e| e.to_string())?;
    let (up, down) = (rng.size(), rng.size());
    let body = rng.bytes(up);
    let e = |e: std::io::Error| e.to_string();
    match rng.next() % 10 {
        // Abort: half an upload, then a reset.
        0 => {
            let head = format!(
                "POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: {}\r\n\r\n",
                up + 2
            );
            stream.write_all(head.as_bytes()).map_err(e)?;
            stream.write_all(&body[..up / 2]).map_err(e)?;
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            Ok(Outcome::Aborted)
        }
        // Half-close: the body ends where the stream ends.
        1 | 2 => {
            stream
                .write_all(b"POST /halfclose HTTP/1.1\r\nHost: soak\r\n\r\n")
                .map_err(e)?;
            stream.write_all(&body).map_err(e)?;
            stream.shutdown(Shutdown::Write).map_err(e)?;
            let (_, answer) =
                response(&mut stream).map_err(|e| format!("half-close of {up}: {e}"))?;
            if answer != hex(&body).as_bytes() {
                return Err(format!("half-close upload of {up} bytes: digest mismatch"));
            }
            Ok(Outcome::Verified(up))
        }
        // Both ways on one keep-alive connection: an upload, then a download.
        _ => {
            let head =
                format!("POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: {up}\r\n\r\n");
            stream.write_all(head.as_bytes()).map_err(e)?;
            stream.write_all(&body).map_err(e)?;
            let (_, answer) = response(&mut stream).map_err(|e| format!("upload of {up}: {e}"))?;
            if answer != format!("{} {up}", hex(&body)).as_bytes() {
                return Err(format!("upload of {up} bytes: digest mismatch"));
            }
            let ask =
                format!("GET /bytes?n={down} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n");
            stream.write_all(ask.as_bytes()).map_err(e)?;
            let (head, got) =
                response(&mut stream).map_err(|e| format!("download of {down}: {e}"))?;
            let sent = head
                .lines()
                .find_map(|l| l.strip_prefix("X-Sha256: "))
                .unwrap_or("")
                .to_string();
            if got.len() != down || sent != hex(&got) {
                return Err(format!("download of {down} bytes: digest mismatch"));
            }
            Ok(Outcome::Verified(up + down))
        }
    }
}

#[test]
fn two_thousand_connections_of_random_sizes_arrive_intact() {
    if let Ok((_, hard)) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    let dir = app(&[("preheat.toml", "[warmup]\npaths = [\"/small\"]\n")]);
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/gate_app.py");
    let mut gate = preheat()
        .args(["gate", "--", "python3"])
        .arg(script)
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .env("DYNO", "web.1")
        .env_remove("PREHEAT_SKIP")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("gate.log")).expect("log file"))
        .spawn()
        .expect("start the gate");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        eventually(Duration::from_secs(30), || TcpStream::connect(addr).is_ok()),
        "the gate never opened"
    );
    let started = Instant::now();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let totals = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let (failures, totals) = (Arc::clone(&failures), Arc::clone(&totals));
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || match transfer(addr, i as u64 + 1, started) {
                    Ok(Outcome::Verified(bytes)) => {
                        let mut t = totals.lock().expect("lock");
                        t.0 += 1;
                        t.2 += bytes;
                    }
                    Ok(Outcome::Aborted) => totals.lock().expect("lock").1 += 1,
                    Err(error) => failures
                        .lock()
                        .expect("lock")
                        .push(format!("#{i}: {error}")),
                })
                .expect("spawn")
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let (verified, aborted, bytes) = *totals.lock().expect("lock");
    let failures = failures.lock().expect("lock").clone();
    eprintln!(
        "soak: {verified} verified, {aborted} aborted, {} failed, {} MB in {:.1}s",
        failures.len(),
        bytes / 1_000_000,
        started.elapsed().as_secs_f64()
    );
    let _ = Command::new("kill").arg(gate.id().to_string()).status();
    let _ = gate.wait();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert_eq!(verified + aborted, CONNECTIONS);
}
