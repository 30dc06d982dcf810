//! First users as the Heroku router sends them: the app's `Host`, the
//! `X-Forwarded-*` headers, a fresh `X-Request-Id` and `X-Request-Start`, and
//! every request on a fresh connection, so that they spread over the app's
//! workers instead of pinning one keep-alive connection to one worker.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DOMAIN_VAR: &str = "HEROKU_APP_DEFAULT_DOMAIN_NAME";
/// The Host when the app's domain is unknown.
pub(crate) const FALLBACK_HOST: &str = "localhost";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The Heroku router's own limit for a response to start.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The `Host` every first user sends, and where it came from (`None`: the fallback).
#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) from: Option<&'static str>,
}

/// `[warmup] host`, else `HEROKU_APP_DEFAULT_DOMAIN_NAME` as the dyno sees it
/// (`.env` over the environment, as rehearse starts the dynos), else `localhost`.
pub(crate) fn host(configured: Option<&str>, dotenv: &[(String, String)]) -> Host {
    if let Some(name) = configured.filter(|h| !h.is_empty()) {
        return Host {
            name: name.to_string(),
            from: Some("[warmup] host"),
        };
    }
    if let Some((_, name)) = dotenv
        .iter()
        .rev()
        .find(|(key, value)| key == DOMAIN_VAR && !value.is_empty())
    {
        return Host {
            name: name.clone(),
            from: Some(".env HEROKU_APP_DEFAULT_DOMAIN_NAME"),
        };
    }
    match std::env::var(DOMAIN_VAR) {
        Ok(name) if !name.is_empty() => Host {
            name,
            from: Some("HEROKU_APP_DEFAULT_DOMAIN_NAME"),
        },
        _ => Host {
            name: FALLBACK_HOST.to_string(),
            from: None,
        },
    }
}

/// `WEB_CONCURRENCY` as the dyno sees it; 1 when unset or not a number.
pub(crate) fn web_concurrency(dotenv: &[(String, String)]) -> u32 {
    let value = dotenv
        .iter()
        .rev()
        .find(|(key, _)| key == "WEB_CONCURRENCY")
        .map(|(_, value)| value.clone())
        .or_else(|| std::env::var("WEB_CONCURRENCY").ok());
    crate::warmup::requests::workers(value.as_deref())
}

/// Most first users sent at once: one thread each.
const MAX_BURST: usize = 256;

/// How many first users arrive at once: two per worker, at least two (and
/// at most 256, whatever `WEB_CONCURRENCY` says).
pub(crate) fn burst_size(web_concurrency: u32) -> usize {
    usize::try_from(web_concurrency)
        .unwrap_or(usize::MAX)
        .saturating_mul(2)
        .clamp(2, MAX_BURST)
}

/// What one user got.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: Option<u16>,
    pub(crate) took: Duration,
    /// The `Location` of a redirect.
    pub(crate) location: Option<String>,
    /// Why there is no status: the connection failed or timed out.
    pub(crate) problem: Option<String>,
}

impl Answer {
    /// A 2xx or 3xx, except a redirect to the same page on https: the app
    /// did not trust `X-Forwarded-Proto`, so the user never saw the page.
    pub(crate) fn ok(&self, host: &str, path: &str) -> bool {
        match self.status {
            Some(200..=299) => true,
            Some(300..=399) => !self.is_ssl_redirect(host, path),
            _ => false,
        }
    }

    pub(crate) fn is_ssl_redirect(&self, host: &str, path: &str) -> bool {
        self.location
            .as_deref()
            .is_some_and(|l| l == format!("https://{host}{path}"))
    }
}

/// Where and how the users are sent.
pub(crate) struct Users<'a> {
    pub(crate) address: SocketAddr,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
}

impl Users<'_> {
    /// `count` users at once, each on its own connection, released together.
    pub(crate) fn burst(&self, count: usize) -> Vec<Answer> {
        let barrier = Barrier::new(count);
        thread::scope(|scope| {
            let handles: Vec<_> = (0..count)
                .map(|n| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        self.send(n)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle.join().unwrap_or_else(|_| Answer {
                        status: None,
                        took: Duration::ZERO,
                        location: None,
                        problem: Some("the request thread failed".to_string()),
                    })
                })
                .collect()
        })
    }

    /// `count` users one after another, each on a fresh connection.
    pub(crate) fn steady(&self, count: usize, first: usize) -> Vec<Answer> {
        (0..count).map(|n| self.send(first + n)).collect()
    }

    /// One GET as the router sends it; user `n` gets its own client address.
    pub(crate) fn send(&self, n: usize) -> Answer {
        let started = Instant::now();
        match self.exchange(n) {
            Ok((status, location)) => Answer {
                status: Some(status),
                took: started.elapsed(),
                location,
                problem: None,
            },
            Err(error) => Answer {
                status: None,
                took: started.elapsed(),
                location: None,
                problem: Some(error.to_string()),
            },
        }
    }

    fn exchange(&self, n: usize) -> std::io::Result<(u16, Option<String>)> {
        let mut stream = TcpStream::connect_timeout(&self.address, CONNECT_TIMEOUT)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        stream.write_all(self.request(n).as_bytes())?;
        read_response(&mut stream)
    }

    fn request(&self, n: usize) -> String {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!(
            "GET {path} HTTP/1.1\r\n\
             Host: {host}\r\n\
             User-Agent: preheat-rehearse/{version}\r\n\
             Accept: */*\r\n\
             X-Forwarded-Proto: https\r\n\
             X-Forwarded-Port: 443\r\n\
             X-Forwarded-For: {client}\r\n\
             X-Request-Id: {id}\r\n\
             X-Request-Start: {start_ms}\r\n\
             Connection: close\r\n\r\n",
            path = self.path,
            host = self.host,
            version = env!("CARGO_PKG_VERSION"),
            client = client_address(n),
            id = request_id(),
        )
    }
}

/// A documentation address (RFC 5737 TEST-NET-3) per user.
fn client_address(n: usize) -> String {
    format!("203.0.113.{}", n % 254 + 1)
}

/// A random UUID (version 4), as the router's request ids look.
pub(crate) fn request_id() -> String {
    // Each RandomState is freshly seeded, so two hashes give 128 random bits.
    let word = || {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(0);
        hasher.finish()
    };
    let (high, low) = (word(), word());
    let high = (high & !0xf000) | 0x4000;
    let low = (low & !(0xc << 60)) | (0x8 << 60);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// The most of a first response that a rehearsal reads before it stops the clock.
const BODY_CAP: usize = 64 * 1024 * 1024;

/// Reads the status line and headers, then the body to its end, in small
/// chunks: the whole response path runs, and nothing large is kept.
fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, Option<String>)> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the connection closed before a complete response",
            ));
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > 64 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "response headers over 64 KB",
            ));
        }
    };
    let text = String::from_utf8_lossy(&head[..head_end]);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response")
        })?;
    let header = |name: &str| {
        text.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let location = header("location");
    let length = header("content-length").and_then(|l| l.parse::<usize>().ok());
    let chunked = header("transfer-encoding").is_some_and(|t| t.contains("chunked"));
    let mut body = head.len() - head_end;
    let mut tail = head[head_end..].to_vec();
    loop {
        // An endless body costs time only up to the cap, and never memory.
        if body >= BODY_CAP
            || length.is_some_and(|l| body >= l)
            || (chunked && tail.ends_with(b"0\r\n\r\n"))
        {
            break;
        }
        let read = match stream.read(&mut chunk) {
            Ok(read) if read > 0 => read,
            // The end, or a body cut short: the status is what counts, and the
            // time it took is already spent.
            _ => break,
        };
        body += read;
        tail.extend_from_slice(&chunk[..read]);
        let keep = tail.len().saturating_sub(5);
        tail.drain(..keep);
    }
    Ok((status, location))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_fresh_version_4_uuids() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn the_burst_is_two_users_per_worker_and_at_least_two() {
        assert_eq!(burst_size(1), 2);
        assert_eq!(burst_size(3), 6);
        assert_eq!(burst_size(u32::MAX), 256);
    }

    #[test]
    fn the_configured_host_wins_then_dotenv() {
        let dotenv = vec![(DOMAIN_VAR.to_string(), "from-env.example".to_string())];
        let h = host(Some("shop.example"), &dotenv);
        assert_eq!(
            (h.name.as_str(), h.from),
            ("shop.example", Some("[warmup] host"))
        );
        let h = host(None, &dotenv);
        assert_eq!(h.name, "from-env.example");
        assert_eq!(
            web_concurrency(&[("WEB_CONCURRENCY".into(), "3".into())]),
            3
        );
    }

    #[test]
    fn a_redirect_to_the_same_page_on_https_is_not_ok() {
        let answer = |status, location: &str| Answer {
            status: Some(status),
            took: Duration::ZERO,
            location: Some(location.to_string()),
            problem: None,
        };
        assert!(!answer(301, "https://shop.example/").ok("shop.example", "/"));
        assert!(answer(302, "/login").ok("shop.example", "/"));
        assert!(!answer(400, "").ok("shop.example", "/"));
        assert!(answer(200, "").ok("shop.example", "/"));
    }
}
