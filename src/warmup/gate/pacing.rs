//! Accepting while file descriptors run out. Before taking a client, the
//! gate holds the socket its app-side connection will use (the reserve), so
//! it never accepts a client it cannot connect. When no descriptor is free,
//! it stops accepting: new clients wait in the listen backlog instead of
//! being reset, open connections keep flowing, and it retries every
//! [`PAUSE`] until descriptors come back.

use nix::errno::Errno;
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// How long accepting pauses while no descriptor is free.
pub(crate) const PAUSE: Duration = Duration::from_millis(10);

/// Whether `error` means the process or the system is out of descriptors
/// (or of the kernel memory a socket needs).
pub(crate) fn exhausted(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// A socket for one app-side connection, taken before the client is.
pub(crate) fn reserve(upstream: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(upstream), Type::STREAM.cloexec(), None)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The line logged once when an episode starts.
pub(crate) fn line(error: &io::Error) -> String {
    format!(
        "out of file descriptors ({error}); new clients wait in the backlog until one is free, open connections keep flowing"
    )
}
