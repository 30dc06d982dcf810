//! The app-side connection. A listener being replaced (a restart, a
//! re-exec) refuses for a moment, so a refused connect is retried for up to
//! [`RETRY_FOR`] before the client is closed.

use super::pacing;
use socket2::Socket;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long a refused app-side connect is retried.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(2);
const FIRST_WAIT: Duration = Duration::from_millis(5);
const LONGEST_WAIT: Duration = Duration::from_millis(100);

/// Connects `reserve` to the app, retrying refusals with fresh sockets.
/// `refused` runs once per connection that met a refusal.
pub(crate) async fn app_side(
    reserve: Socket,
    upstream: SocketAddr,
    refused: impl FnOnce(),
) -> io::Result<TcpStream> {
    let mut socket = reserve;
    let mut refused = Some(refused);
    let mut wait = FIRST_WAIT;
    let mut since: Option<Instant> = None;
    loop {
        match connect(socket, upstream).await {
            Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
                if let Some(say) = refused.take() {
                    say();
                }
                let first = *since.get_or_insert_with(Instant::now);
                if first.elapsed() + wait > RETRY_FOR {
                    return Err(error);
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
                socket = pacing::reserve(upstream)?;
            }
            other => return other,
        }
    }
}

/// A loopback connect completes inside the call: then the stream is used at
/// once, without waiting a turn of the event loop to learn it is writable.
async fn connect(socket: Socket, upstream: SocketAddr) -> io::Result<TcpStream> {
    match socket.connect(&upstream.into()) {
        Ok(()) => TcpStream::from_std(socket.into()),
        Err(error) if error.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {
            let stream = TcpStream::from_std(socket.into())?;
            stream.writable().await?;
            match stream.take_error()? {
                Some(error) => Err(error),
                None => Ok(stream),
            }
        }
        Err(error) => Err(error),
    }
}
