//! The app-side connection. A listener being replaced (a restart, a
//! re-exec) refuses for a moment, so a refused connect is retried for up to
//! [`RETRY_FOR`] before the client is closed.

use super::pacing;
use socket2::Socket;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

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
        let attempt = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
        match attempt.connect(upstream).await {
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
