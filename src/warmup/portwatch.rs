//! Sees the moment a web process binds its port, without touching the app.
//!
//! It asks the kernel's socket diagnostics for LISTEN sockets (`sockdiag`),
//! which costs the same however many connections the namespace holds; where
//! that is refused, it reads the socket tables in /proc.
//!
//! The kernel lists every socket in `/proc/net/tcp` and `/proc/net/tcp6`; a
//! LISTEN entry on the port is the bind. Reading those files every few ms
//! never touches the app, where a connect probe is a connection that the app
//! accepts and logs as an error or an empty request. Each read costs the
//! kernel time per socket in the namespace, so the pause between reads grows
//! when a read is slow (see `pause_after`). Probes are the fallback
//! only when `/proc` cannot be read.

use crate::warmup::sockdiag::SockDiag;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// How often the kernel is asked: the warm-up starts within this of the
/// bind. At 2 ms the watcher cost 3.5 % of a core while it waited; at 5 ms
/// about 2 %, and the bench's bind-to-request p50 stays near 3 ms.
const WATCH_EVERY: Duration = Duration::from_millis(5);
/// Watching uses at most 1/this of a core.
const MAX_CPU_SHARE_INVERSE: u32 = 10;
/// How often the probe fallback connects.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// The kernel's `TCP_LISTEN` state, as `/proc/net/tcp*` print it.
const LISTEN: &str = "0A";

const TABLES: [(&str, Family); 2] = [
    ("/proc/net/tcp", Family::V4),
    ("/proc/net/tcp6", Family::V6),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// Waits until something listens on `port` and returns the loopback address
/// to send the warm-up to: 127.0.0.1 when IPv4 listens, else `[::1]`.
/// `None` when `deadline` passes first.
pub(crate) fn wait_for_listen(port: u16, deadline: Instant) -> Option<SocketAddr> {
    let mut buffer = String::new();
    let mut diag = SockDiag::open().ok();
    loop {
        let started = Instant::now();
        let seen = if let Some(Ok(found)) = diag.as_mut().map(|diag| diag.listeners(port)) {
            // IPv4 first, as with /proc.
            Ok(found.into_iter().map(reachable).min_by_key(IpAddr::is_ipv6))
        } else {
            // sock_diag refused (a sandbox): /proc from now on.
            diag = None;
            scan(port, &mut buffer)
        };
        match seen {
            Ok(Some(ip)) => return Some(SocketAddr::new(ip, port)),
            Ok(None) => {}
            Err(_) => return probe_until(port, deadline),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        thread::sleep(pause_after(started.elapsed(), WATCH_EVERY).min(left));
    }
}

/// The pause after a look that took `look`. A /proc read makes the kernel
/// write out every socket of the namespace, so with many sockets it costs
/// ~1 ms or more; the pause then grows so that watching stays under a tenth
/// of one core. Otherwise it is `every`.
fn pause_after(look: Duration, every: Duration) -> Duration {
    every.max(look.saturating_mul(MAX_CPU_SHARE_INVERSE - 1))
}

/// One look at the socket tables. `Err` only when neither table can be read.
fn scan(port: u16, buffer: &mut String) -> io::Result<Option<IpAddr>> {
    let mut readable = false;
    let mut last_error = None;
    for (path, family) in TABLES {
        buffer.clear();
        match std::fs::File::open(path).and_then(|mut file| file.read_to_string(buffer)) {
            Ok(_) => readable = true,
            Err(error) => {
                last_error = Some(error);
                continue;
            }
        }
        if let Some(ip) = listener(buffer, family, port) {
            return Ok(Some(ip));
        }
    }
    match (readable, last_error) {
        (false, Some(error)) => Err(error),
        _ => Ok(None),
    }
}

/// The address to connect to for the first LISTEN entry on `port` in one table.
fn listener(table: &str, family: Family, port: u16) -> Option<IpAddr> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1)?;
        let state = fields.nth(1)?;
        if state != LISTEN {
            return None;
        }
        let (ip_hex, port_hex) = local.split_once(':')?;
        if u16::from_str_radix(port_hex, 16).ok()? != port {
            return None;
        }
        connect_address(ip_hex, family)
    })
}

/// The address in `ip_hex`, made reachable (`reachable`).
fn connect_address(ip_hex: &str, family: Family) -> Option<IpAddr> {
    match family {
        Family::V4 => Some(reachable(IpAddr::V4(Ipv4Addr::from(word(
            ip_hex.get(0..8)?,
        )?)))),
        Family::V6 => {
            let mut octets = [0u8; 16];
            for (i, chunk) in octets.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip_hex.get(i * 8..i * 8 + 8)?)?);
            }
            Some(reachable(IpAddr::V6(Ipv6Addr::from(octets))))
        }
    }
}

/// Where to reach a listener bound to `ip`: its own address when it is a
/// specific one, the family's loopback when it is a wildcard.
fn reachable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// One 32-bit word as the kernel prints it: hex of the value in host byte
/// order, so the bytes in memory (network order) come back with `to_ne_bytes`.
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

/// The fallback without `/proc`: connect on both families until one answers.
fn probe_until(port: u16, deadline: Instant) -> Option<SocketAddr> {
    let candidates = [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ];
    loop {
        for addr in candidates {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if TcpStream::connect_timeout(&addr, left.min(Duration::from_secs(1))).is_ok() {
                return Some(addr);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        thread::sleep(PROBE_EVERY.min(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0\n   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0\n   2: 0100007F:1F91 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0000000000000000 20 4 30 10 -1\n";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4 1 0000000000000000 100 0 0 10 0\n   1: 0000000000000000FFFF00000100007F:1F93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5 1 0000000000000000 100 0 0 10 0\n   2: 00000000000000000000000001000000:1F94 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 6 1 0000000000000000 100 0 0 10 0\n";

    #[test]
    fn finds_ipv4_listeners_and_maps_wildcards_to_loopback() {
        assert_eq!(
            listener(TCP, Family::V4, 8080),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            listener(TCP, Family::V4, 80),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
    }

    #[test]
    fn an_established_socket_is_not_a_bind() {
        assert_eq!(listener(TCP, Family::V4, 8081), None);
        assert_eq!(listener(TCP, Family::V4, 9999), None);
    }

    #[test]
    fn finds_ipv6_wildcard_mapped_and_loopback_listeners() {
        assert_eq!(
            listener(TCP6, Family::V6, 8082),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            listener(TCP6, Family::V6, 8083),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            listener(TCP6, Family::V6, 8084),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let table = "header\n\n  0: zz:yy 0A\n 1: 0100007F 00 0A\n 2: 0100007F:1F90\n";
        assert_eq!(listener(table, Family::V4, 8080), None);
    }

    #[test]
    fn the_pause_keeps_watching_under_a_tenth_of_a_core() {
        assert_eq!(
            pause_after(Duration::from_micros(100), WATCH_EVERY),
            WATCH_EVERY
        );
        assert_eq!(
            pause_after(Duration::from_millis(2), WATCH_EVERY),
            Duration::from_millis(18)
        );
    }

    #[test]
    fn the_proc_tables_show_a_real_bind() {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        let mut buffer = String::new();
        assert_eq!(
            scan(port, &mut buffer).expect("readable /proc"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        drop(socket);
        assert_eq!(scan(port, &mut buffer).expect("readable /proc"), None);
    }

    #[test]
    fn sees_a_real_ipv4_bind() {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        let found = wait_for_listen(port, Instant::now() + Duration::from_secs(2));
        assert_eq!(found, Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
    }

    #[test]
    fn sees_a_real_ipv6_bind() {
        let socket = TcpListener::bind("[::1]:0").expect("IPv6 loopback");
        let port = socket.local_addr().expect("addr").port();
        let found = wait_for_listen(port, Instant::now() + Duration::from_secs(2));
        assert_eq!(found, Some(SocketAddr::from((Ipv6Addr::LOCALHOST, port))));
    }

    #[test]
    fn nothing_listening_ends_at_the_deadline() {
        let socket = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        drop(socket);
        assert_eq!(
            wait_for_listen(port, Instant::now() + Duration::from_millis(50)),
            None
        );
    }
}
