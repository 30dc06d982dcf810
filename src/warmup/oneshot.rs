//! One warm-up request on a fresh connection, reading only what its check
//! needs, then dropping the connection.
//!
//! A fresh connection lets the kernel (or the server's balancer) hand each
//! request to whichever worker takes it next; a kept-alive one pins them all
//! to one worker. The warmer runs beside the app on the same dyno, so it
//! reads the status and headers (at most `MAX_HEAD`), the body only to look
//! for `expect_body` (at most `MAX_SCAN`), and otherwise at most `DRAIN` of
//! it: whatever the app sends, the warmer's memory stays a few MB.
//! Plain `http://` goes over a bare `TcpStream`; `https://` through reqwest.

use crate::config::{Expect, Method};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The most response-head bytes read before giving up on a response.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most body bytes searched for `expect_body`.
pub(crate) const MAX_SCAN: u64 = 1024 * 1024;
/// Body bytes read when nothing is checked in it: a small page is read to its
/// end, so the app sees a clean close rather than a reset.
const DRAIN: u64 = 64 * 1024;
/// How long that courtesy read may take.
const DRAIN_FOR: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CHUNK: usize = 16 * 1024;

/// A request ready to send, its templates already expanded.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub(crate) url: url::Url,
    pub(crate) method: Method,
    /// Every header but `Content-Length` and `Connection`, which are ours.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<String>,
    pub(crate) expect: Expect,
    pub(crate) expect_body: Option<String>,
}

/// What came back: the status, the time to it, and why the check failed.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) took: Duration,
    pub(crate) problem: Option<String>,
    /// The `Location` of a 3xx answer.
    pub(crate) location: Option<String>,
}

/// Sends warm-up requests; one per target, shared by the threads of a round.
pub(crate) enum Sender {
    Plain,
    Tls(reqwest::blocking::Client),
}

impl Sender {
    pub(crate) fn for_url(base: &url::Url) -> Result<Self, String> {
        if base.scheme() != "https" {
            return Ok(Self::Plain);
        }
        reqwest::blocking::Client::builder()
            // A redirect to https://your-domain must not leave this machine.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map(Self::Tls)
            .map_err(|e| format!("could not set up HTTPS: {e}"))
    }

    /// One request; `Err` when no status came back.
    pub(crate) fn send(&self, request: &Prepared, deadline: Instant) -> Result<Answer, String> {
        match self {
            Self::Plain => plain(request, deadline),
            Self::Tls(client) => tls(client, request, deadline),
        }
    }
}

fn plain(request: &Prepared, deadline: Instant) -> Result<Answer, String> {
    let started = Instant::now();
    let stream = connect(&request.url, deadline)?;
    let _ = stream.set_nodelay(true);
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_write_timeout(Some(left.max(Duration::from_millis(1))));
    (&stream)
        .write_all(&request_bytes(request)?)
        .map_err(|e| describe_io(&e))?;
    let mut reader = Until {
        stream: &stream,
        deadline,
    };
    let (status, framing, rest, location) = read_head(&mut reader, request.method)?;
    let took = started.elapsed();
    let problem = if !request.expect.accepts(status) {
        Some(format!("expected {}", request.expect))
    } else if let Some(needle) = &request.expect_body {
        let mut body = body(framing, &rest, &mut reader);
        scan(&mut body, needle.as_bytes()).err()
    } else {
        let mut courtesy = Until {
            stream: &stream,
            deadline: deadline.min(Instant::now() + DRAIN_FOR),
        };
        let _ = io::copy(
            &mut body(framing, &rest, &mut courtesy).take(DRAIN),
            &mut io::sink(),
        );
        None
    };
    Ok(Answer {
        status,
        took,
        problem,
        location,
    })
}

fn tls(
    client: &reqwest::blocking::Client,
    request: &Prepared,
    deadline: Instant,
) -> Result<Answer, String> {
    let started = Instant::now();
    let Ok(method) = reqwest::Method::from_bytes(request.method.as_str().as_bytes()) else {
        return Err("bad method".to_string());
    };
    let mut builder = client
        .request(method, request.url.clone())
        .timeout(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        )
        .header(reqwest::header::CONNECTION, "close");
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = &request.body {
        builder = builder.body(body.clone());
    }
    let mut response = builder
        .send()
        .map_err(|e| crate::release::httpstep::describe_error(&e))?;
    let status = response.status().as_u16();
    let took = started.elapsed();
    let location = redirect_location(
        status,
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(reqwest::header::HeaderValue::as_bytes),
    );
    let problem = if !request.expect.accepts(status) {
        Some(format!("expected {}", request.expect))
    } else if let Some(needle) = &request.expect_body {
        scan(&mut response, needle.as_bytes()).err()
    } else {
        None
    };
    Ok(Answer {
        status,
        took,
        problem,
        location,
    })
}

/// A 3xx answer's `Location`, as text.
fn redirect_location(status: u16, value: Option<&[u8]>) -> Option<String> {
    (300..400).contains(&status).then_some(())?;
    value.map(|v| String::from_utf8_lossy(v).trim().to_string())
}

/// Connects to the first address of the URL's host that answers.
fn connect(url: &url::Url, deadline: Instant) -> Result<TcpStream, String> {
    let addresses = url
        .socket_addrs(|| None)
        .map_err(|e| format!("could not resolve {}: {e}", url.host_str().unwrap_or("")))?;
    let mut last = format!("no address for {}", url.host_str().unwrap_or(""));
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(timed_out());
        }
        match TcpStream::connect_timeout(&address, left.min(CONNECT_TIMEOUT)) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = describe_io(&error),
        }
    }
    Err(last)
}

/// The request on the wire: HTTP/1.1, `Connection: close`, our framing.
fn request_bytes(request: &Prepared) -> Result<Vec<u8>, String> {
    let url = &request.url;
    let mut target = url.path().to_string();
    if let Some(query) = url.query() {
        target.push('?');
        target.push_str(query);
    }
    let mut head = format!("{} {target} HTTP/1.1\r\n", request.method.as_str());
    if !request
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        let host = url.host_str().unwrap_or("localhost");
        match url.port() {
            Some(port) => {
                let _ = write!(head, "Host: {host}:{port}\r\n");
            }
            None => {
                let _ = write!(head, "Host: {host}\r\n");
            }
        }
    }
    for (name, value) in &request.headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(format!("header `{name}` cannot be sent as it is"));
        }
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let body = request.body.as_deref().unwrap_or("");
    if !body.is_empty() || !matches!(request.method, Method::Get | Method::Head) {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    Ok(bytes)
}

/// How the body after a response head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Status, framing, the body bytes read with the head, a redirect's `Location`.
type Head = (u16, Framing, Vec<u8>, Option<String>);

/// Reads one final (non-1xx) response head, at most `MAX_HEAD` bytes.
fn read_head(reader: &mut impl Read, method: Method) -> Result<Head, String> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 96];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(length)) => {
                let status = response.code.unwrap_or(0);
                if (100..200).contains(&status) && status != 101 {
                    buffer.drain(..length);
                    continue;
                }
                let framing = framing(status, method, response.headers);
                let location = redirect_location(
                    status,
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("location"))
                        .map(|h| h.value),
                );
                return Ok((status, framing, buffer.split_off(length), location));
            }
            Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD => {
                return Err(format!(
                    "response headers over {} KB; stopped reading",
                    MAX_HEAD / 1024
                ));
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err("more than 96 response headers; stopped reading".to_string());
            }
            Err(error) => return Err(format!("not an HTTP response ({error})")),
        }
        let want = chunk
            .len()
            .min(MAX_HEAD - buffer.len().min(MAX_HEAD))
            .max(1);
        match reader.read(&mut chunk[..want]) {
            Ok(0) => return Err("the app closed the connection without an answer".to_string()),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(describe_io(&error)),
        }
    }
}

fn framing(status: u16, method: Method, headers: &[httparse::Header<'_>]) -> Framing {
    if method == Method::Head || matches!(status, 204 | 304) {
        return Framing::Empty;
    }
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
    };
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return Framing::Chunked;
    }
    match value("content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(length) => Framing::Length(length),
        None => Framing::UntilClose,
    }
}

/// The body as a reader: the bytes read with the head, then the stream.
fn body<'a>(framing: Framing, rest: &'a [u8], stream: &'a mut impl Read) -> Box<dyn Read + 'a> {
    let raw = Cursor::new(rest).chain(stream);
    match framing {
        Framing::Empty => Box::new(io::empty()),
        Framing::Length(length) => Box::new(raw.take(length)),
        Framing::UntilClose => Box::new(raw),
        Framing::Chunked => Box::new(Chunked {
            inner: BufReader::with_capacity(CHUNK, raw),
            left: 0,
            started: false,
            done: false,
        }),
    }
}

/// Looks for `needle` in the first `MAX_SCAN` bytes of `body`, holding only
/// one buffer and a needle's length of overlap; `Err` says why it failed.
fn scan(body: &mut impl Read, needle: &[u8]) -> Result<(), String> {
    if needle.is_empty() {
        return Ok(());
    }
    let shown = String::from_utf8_lossy(needle);
    let mut window: Vec<u8> = Vec::with_capacity(CHUNK + needle.len());
    let mut chunk = vec![0u8; CHUNK];
    let mut seen = 0u64;
    while seen < MAX_SCAN {
        let want = usize::try_from(MAX_SCAN - seen).map_or(CHUNK, |left| left.min(CHUNK));
        let n = match body.read(&mut chunk[..want]) {
            Ok(0) => return Err(format!("body does not contain {shown:?}")),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(format!(
                    "body read failed before {shown:?} was found: {}",
                    describe_io(&error)
                ));
            }
        };
        seen += n as u64;
        window.extend_from_slice(&chunk[..n]);
        if window.windows(needle.len()).any(|w| w == needle) {
            return Ok(());
        }
        let keep = needle.len() - 1;
        let cut = window.len().saturating_sub(keep);
        window.drain(..cut);
    }
    Err(format!(
        "body does not contain {shown:?} in its first {} MB",
        MAX_SCAN / (1024 * 1024)
    ))
}

/// A `Transfer-Encoding: chunked` body, decoded as it is read.
struct Chunked<R> {
    inner: R,
    left: u64,
    started: bool,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            if self.started {
                self.line()?; // the CRLF after the previous chunk
            }
            self.started = true;
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: BufRead> Chunked<R> {
    /// One line, at most 1 KB (chunk extensions cannot grow it without bound).
    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        (&mut self.inner).take(1024).read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }
}

/// A stream whose every read ends by `deadline`.
struct Until<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for Until<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

fn timed_out() -> String {
    "no answer before the warm-up deadline".to_string()
}

fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            "the app reset the connection".to_string()
        }
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<(u16, Framing, Vec<u8>), String> {
        read_head(&mut Cursor::new(text.as_bytes().to_vec()), Method::Get)
            .map(|(status, framing, rest, _)| (status, framing, rest))
    }

    #[test]
    fn a_redirect_head_keeps_its_location() {
        let (status, _, _, location) = read_head(
            &mut Cursor::new(
                b"HTTP/1.1 301 Moved\r\nLocation: https://x.test/posts\r\n\r\n".to_vec(),
            ),
            Method::Get,
        )
        .expect("head");
        assert_eq!(
            (status, location.as_deref()),
            (301, Some("https://x.test/posts"))
        );
        assert_eq!(redirect_location(200, Some(b"/elsewhere")), None);
    }

    #[test]
    fn reads_a_head_and_keeps_the_body_bytes_after_it() {
        let (status, framing, rest) =
            head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").expect("head");
        assert_eq!(
            (status, framing, rest),
            (200, Framing::Length(5), b"hello".to_vec())
        );
    }

    #[test]
    fn skips_informational_heads() {
        let (status, framing, _) =
            head("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n")
                .expect("head");
        assert_eq!((status, framing), (404, Framing::Chunked));
    }

    #[test]
    fn an_endless_head_stops_at_the_cap() {
        let endless =
            Cursor::new(b"HTTP/1.1 200 OK\r\nX-Endless: ".to_vec()).chain(io::repeat(b'a'));
        let problem =
            read_head(&mut endless.take(10 * 1024 * 1024), Method::Get).expect_err("too long");
        assert!(problem.contains("over 64 KB"), "{problem}");
        let problem = head("garbage\r\n\r\n").expect_err("not http");
        assert!(problem.contains("not an HTTP response"), "{problem}");
        let problem = head("HTTP/1.1 200 OK\r\n").expect_err("cut short");
        assert!(problem.contains("closed the connection"), "{problem}");
    }

    #[test]
    fn head_requests_and_204_have_no_body() {
        assert_eq!(framing(200, Method::Head, &[]), Framing::Empty);
        assert_eq!(framing(204, Method::Get, &[]), Framing::Empty);
        assert_eq!(framing(200, Method::Get, &[]), Framing::UntilClose);
    }

    #[test]
    fn scan_finds_a_needle_split_across_chunks_and_reads() {
        let text = format!("{}needle{}", "x".repeat(CHUNK - 3), "y".repeat(100));
        assert_eq!(scan(&mut Cursor::new(text.into_bytes()), b"needle"), Ok(()));
        let chunked = b"4\r\nabcn\r\n5;ext=1\r\needle\r\n0\r\n\r\n".to_vec();
        let mut stream = Cursor::new(chunked[10..].to_vec());
        let mut decoded = body(Framing::Chunked, &chunked[..10], &mut stream);
        assert_eq!(scan(&mut decoded, b"needle"), Ok(()));
    }

    #[test]
    fn scan_stops_at_the_cap_of_an_endless_body() {
        let problem = scan(&mut io::repeat(b'x'), b"needle").expect_err("capped");
        assert!(problem.contains("in its first 1 MB"), "{problem}");
        let problem = scan(&mut Cursor::new(b"short".to_vec()), b"needle").expect_err("absent");
        assert_eq!(problem, "body does not contain \"needle\"");
    }

    #[test]
    fn the_request_closes_the_connection_and_refuses_header_injection() {
        let mut request = Prepared {
            url: url::Url::parse("http://[::1]:8080/a/b?c=1").expect("url"),
            method: Method::Post,
            headers: vec![("X-Warm".to_string(), "yes".to_string())],
            body: Some("{}".to_string()),
            expect: Expect::Range(200, 399),
            expect_body: None,
        };
        let bytes = String::from_utf8(request_bytes(&request).expect("bytes")).expect("utf8");
        assert_eq!(
            bytes,
            "POST /a/b?c=1 HTTP/1.1\r\nHost: [::1]:8080\r\nX-Warm: yes\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        request.headers = vec![("X-Bad".to_string(), "a\r\nEvil: 1".to_string())];
        assert!(request_bytes(&request).is_err());
    }
}
