//! The getting-started example: a tiny web app with a real cold start.
//!
//! - Boot: it reads the schema that its migration (`bin/migrate`) wrote and
//!   refuses to start without it, like an app whose tables do not exist yet.
//! - Cold start: the first request to each page builds that page's cache
//!   (standing in for code loading, template compilation and connection
//!   pools), which costs `COLD_MS` of CPU (default 800). Later requests to
//!   that page answer from the cache and only pay the per-request render,
//!   `RENDER_MS` of CPU (default 5), like a typical warm web page.
//!
//! Only the standard library is used, so no other runtime is needed.

// Examples see every dependency of the package; this one uses none.
#![allow(unused_crate_dependencies)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// Burns CPU for `cost`: the honest stand-in for the work a cold page does.
fn build_page(path: &str, cost: Duration) -> String {
    let started = Instant::now();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    while started.elapsed() < cost {
        for byte in path.bytes().cycle().take(10_000) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{path} rendered (cache key {hash:016x})")
}

struct App {
    name: String,
    schema: String,
    featured: String,
    cold: Duration,
    render: Duration,
    pages: Mutex<HashMap<String, Arc<Mutex<Option<String>>>>>,
}

impl App {
    fn page(&self, path: &str) -> String {
        let slot = {
            let mut pages = self
                .pages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(pages.entry(path.to_string()).or_default())
        };
        // Concurrent first requests wait for the one that builds the page.
        let mut page = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cached = page
            .get_or_insert_with(|| build_page(path, self.cold))
            .clone();
        drop(page);
        build_page(path, self.render);
        cached
    }

    fn respond(&self, path: &str) -> (u16, String) {
        match path {
            "/" => (
                200,
                format!(
                    "<h1>getting-started on {}</h1><p>schema: {}</p><p>{}</p>",
                    self.name,
                    self.schema,
                    self.page(path)
                ),
            ),
            "/dashboard" => (
                200,
                format!(
                    "<h1>Dashboard</h1><p>featured: {}</p><p>{}</p>",
                    self.featured,
                    self.page(path)
                ),
            ),
            "/health" => (200, "ok".to_string()),
            _ => (404, "not found".to_string()),
        }
    }
}

fn handle(app: &App, stream: TcpStream) {
    let Ok(reader_stream) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reader_stream);
    let mut request_line = String::new();
    // A connection closed without a request (a port probe) costs nothing.
    if reader.read_line(&mut request_line).is_err() || request_line.trim().is_empty() {
        return;
    }
    // Drain the headers; this app needs none of them.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/").split('?').next().unwrap_or("/");
    let started = Instant::now();
    let (status, body) = app.respond(path);
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    println!(
        "{method} {path} {status} {}ms",
        started.elapsed().as_millis()
    );
}

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "5000".to_string());
    let Ok(schema) = std::fs::read_to_string("db/schema.txt") else {
        eprintln!("db/schema.txt is missing: run the migrations first (`preheat release`)");
        std::process::exit(1);
    };
    let schema = schema.lines().next().unwrap_or("").to_string();
    let featured = std::fs::read_to_string("tmp/cache/featured.txt").map_or_else(
        |_| "(cache not primed)".to_string(),
        |s| s.trim().to_string(),
    );
    // Booting: loading code, connecting to services.
    std::thread::sleep(env_ms("BOOT_MS", 300));
    let listener = match TcpListener::bind(("0.0.0.0", port.parse::<u16>().unwrap_or(5000))) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("cannot listen on port {port}: {error}");
            std::process::exit(1);
        }
    };
    let app = Arc::new(App {
        name: std::env::var("DYNO").unwrap_or_else(|_| "web".to_string()),
        schema,
        featured,
        cold: env_ms("COLD_MS", 800),
        render: env_ms("RENDER_MS", 5),
        pages: Mutex::new(HashMap::new()),
    });
    println!("listening on port {port}");
    for stream in listener.incoming().flatten() {
        let app = Arc::clone(&app);
        std::thread::spawn(move || handle(&app, stream));
    }
}
