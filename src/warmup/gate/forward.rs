//! The public side of the gate: a dual-stack listener on `$PORT`, and each
//! connection passed to the app byte for byte. Bytes move socket → pipe →
//! socket with `splice`, so they never enter this process; pipes are shared
//! between bursts, so an idle connection costs two sockets and a little
//! bookkeeping. One thread, one
//! event loop (tokio's current-thread runtime); a connection that breaks is
//! reset on both sides and touches no other.

use super::first_users::{Conn, FirstUsers};
use nix::errno::Errno;
use nix::fcntl::{OFlag, SpliceFFlags, splice};
use socket2::{Domain, SockRef, Socket, Type};
use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::os::fd::OwnedFd;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpStream};

/// How often the supervisor looks at the app and at signals.
pub(crate) const TICK: Duration = Duration::from_millis(20);
/// The most one splice moves; a pipe holds it when `PIPE_SIZE` was granted,
/// and a smaller pipe just moves less at a time.
const CHUNK: usize = 256 * 1024;
const PIPE_SIZE: i32 = 256 * 1024;
/// The kernel caps this at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;
/// The fallback's buffer, only where `splice` is not supported.
const COPY_BUFFER: usize = 16 * 1024;

/// What the supervisor wants after a tick.
pub(crate) enum Tick {
    Accept,
    StopAccepting,
    Exit(u8),
}

/// Binds `[::]:port` with IPv6-only off, so IPv4 and IPv6 clients both reach
/// it; `0.0.0.0:port` where IPv6 is not available.
pub(crate) fn bind_public(port: u16) -> io::Result<std::net::TcpListener> {
    match bind(
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        Domain::IPV6,
    ) {
        Ok(listener) => Ok(listener),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Err(error),
        Err(_) => bind(
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
            Domain::IPV4,
        ),
    }
}

fn bind(addr: SocketAddr, domain: Domain) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(domain, Type::STREAM.cloexec(), None)?;
    if domain == Domain::IPV6 {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Accepts and forwards to `upstream` until `tick` says `Exit`. `tick` runs
/// every [`TICK`] with the number of open connections.
pub(crate) fn run(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    first_users: &Arc<FirstUsers>,
    mut tick: impl FnMut(usize) -> Tick,
) -> io::Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    runtime.block_on(async move {
        let live = Arc::new(AtomicUsize::new(0));
        let mut listener = Some(TcpListener::from_std(listener)?);
        let mut last_tick = Instant::now();
        loop {
            if let Some(open) = &listener {
                match tokio::time::timeout(TICK, open.accept()).await {
                    Ok(Ok((client, _))) => {
                        live.fetch_add(1, Ordering::SeqCst);
                        let watch = watch(first_users);
                        tokio::spawn(connection(client, upstream, Live(Arc::clone(&live)), watch));
                    }
                    // Out of file descriptors, or a connection gone before we took it:
                    // wait a moment rather than spin; the backlog keeps the others.
                    Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                    Err(_) => {}
                }
            } else {
                tokio::time::sleep(TICK).await;
            }
            if last_tick.elapsed() < TICK {
                continue;
            }
            last_tick = Instant::now();
            match tick(live.load(Ordering::SeqCst)) {
                Tick::Accept => {}
                // Dropping the listener closes the port: new connections are refused.
                Tick::StopAccepting => listener = None,
                Tick::Exit(code) => return Ok(code),
            }
        }
    })
}

/// Counts a connection as open until it is dropped.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The first-user hook: a connection accepted inside the window gets a
/// watch, and its bytes go through userspace until the watch stops. Outside
/// the window this is one atomic load, and bytes stay zero-copy.
fn watch(first_users: &Arc<FirstUsers>) -> Option<Watch> {
    first_users.watching().then(|| Watch {
        conn: Mutex::new(Conn::new()),
        to: Arc::clone(first_users),
    })
}

/// One connection's first-user watch, shared by its two directions.
struct Watch {
    conn: Mutex<Conn>,
    to: Arc<FirstUsers>,
}

impl Watch {
    /// Feeds bytes that just arrived; `false` once the watch stopped.
    fn see(&self, from_client: bool, bytes: &[u8]) -> bool {
        let Ok(mut conn) = self.conn.lock() else {
            return false;
        };
        let at = Instant::now();
        let going = if from_client {
            conn.client(bytes, at)
        } else {
            conn.app(bytes, at)
        };
        self.to.add(conn.take());
        going
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(conn) = self.conn.get_mut() {
            conn.end();
            self.to.add(conn.take());
        }
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, _live: Live, watch: Option<Watch>) {
    let _ = client.set_nodelay(true);
    let Ok(app) = TcpStream::connect(upstream).await else {
        reset(&client);
        return;
    };
    let _ = app.set_nodelay(true);
    let (up, down) = (
        watch.as_ref().map(|w| (w, true)),
        watch.as_ref().map(|w| (w, false)),
    );
    if both(pump(&client, &app, up), pump(&app, &client, down))
        .await
        .is_err()
    {
        reset(&client);
        reset(&app);
    }
}

/// Closing after this sends a reset, as the broken side did.
fn reset(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Runs both directions at once; the first error ends both.
async fn both(
    up: impl Future<Output = io::Result<()>>,
    down: impl Future<Output = io::Result<()>>,
) -> io::Result<()> {
    let mut up = pin!(up);
    let mut down = pin!(down);
    let (mut up_done, mut down_done) = (false, false);
    poll_fn(|cx| {
        if !up_done && let Poll::Ready(result) = up.as_mut().poll(cx) {
            if result.is_err() {
                return Poll::Ready(result);
            }
            up_done = true;
        }
        if !down_done && let Poll::Ready(result) = down.as_mut().poll(cx) {
            if result.is_err() {
                return Poll::Ready(result);
            }
            down_done = true;
        }
        if up_done && down_done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// One direction: everything `from` sends goes to `to`; at its end of stream,
/// `to` is shut down for writing while the other direction keeps flowing.
/// With a watch, bytes are copied and shown to it until it stops.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    mut watch: Option<(&Watch, bool)>,
) -> io::Result<()> {
    let mut way = if watch.is_some() {
        Way::copy()
    } else {
        Way::Splice(None)
    };
    loop {
        let moved = match way.fill(from).await {
            // No splice between these two (a sandboxed kernel), or no pipe to be
            // had (out of file descriptors): copy instead.
            Err(error)
                if way.is_splice()
                    && matches!(
                        error.raw_os_error().map(Errno::from_raw),
                        Some(Errno::EINVAL | Errno::EMFILE | Errno::ENFILE)
                    ) =>
            {
                way = Way::copy();
                continue;
            }
            other => other?,
        };
        if moved == 0 {
            break;
        }
        let stopped = match (&watch, &way) {
            (Some((w, from_client)), Way::Copy { buffer }) => {
                !w.see(*from_client, &buffer[..moved])
            }
            _ => false,
        };
        way.drain(to, moved).await?;
        way.release();
        if stopped {
            watch = None;
            way = Way::Splice(None);
        }
    }
    way.release();
    match SockRef::from(to).shutdown(Shutdown::Write) {
        Err(error) if error.kind() != io::ErrorKind::NotConnected => Err(error),
        _ => Ok(()),
    }
}

/// A pipe for `splice`, empty whenever it is not in a connection's hands.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

/// Most spare pipes kept for the next burst of bytes.
const SPARE_PIPES: usize = 64;

thread_local! {
    /// Empty pipes. A direction takes one when bytes arrive and gives it back
    /// once they are all passed on, so an idle keep-alive connection holds no
    /// pipe, and the kernel's per-user pipe budget goes to bytes in flight.
    static SPARE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

fn take_pipe() -> io::Result<Pipe> {
    if let Some(pipe) = SPARE.with_borrow_mut(Vec::pop) {
        return Ok(pipe);
    }
    let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
    // Bigger than the default 64 KiB: fewer wake-ups per megabyte. Only pipes
    // with bytes in flight exist, so the kernel's per-user budget holds.
    let _ = nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
    Ok(Pipe { read, write })
}

/// How bytes cross: through a pipe in the kernel, or a buffer here.
enum Way {
    Splice(Option<Pipe>),
    Copy { buffer: Vec<u8> },
}

impl Way {
    fn copy() -> Self {
        Self::Copy {
            buffer: vec![0; COPY_BUFFER],
        }
    }

    fn is_splice(&self) -> bool {
        matches!(self, Self::Splice(_))
    }

    /// Gives an emptied pipe back for the next connection that has bytes.
    fn release(&mut self) {
        if let Self::Splice(slot) = self
            && let Some(pipe) = slot.take()
        {
            SPARE.with_borrow_mut(|spare| {
                if spare.len() < SPARE_PIPES {
                    spare.push(pipe);
                }
            });
        }
    }

    /// Takes what `from` has (the pipe or buffer is empty); 0 at end of stream.
    async fn fill(&mut self, from: &TcpStream) -> io::Result<usize> {
        loop {
            from.readable().await?;
            let result = match self {
                Self::Splice(slot) => {
                    let pipe = match slot {
                        Some(pipe) => pipe,
                        None => slot.insert(take_pipe()?),
                    };
                    from.try_io(Interest::READABLE, || {
                        Ok(splice(from, None, &pipe.write, None, CHUNK, flags())?)
                    })
                }
                Self::Copy { buffer } => from.try_read(buffer),
            };
            match result {
                // Readiness can be stale: the pipe is still empty, so give it back while we wait.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => self.release(),
                other => return other,
            }
        }
    }

    /// Gives all `len` bytes taken to `to`, as fast as it accepts them.
    async fn drain(&mut self, to: &TcpStream, len: usize) -> io::Result<()> {
        let mut sent = 0;
        while sent < len {
            to.writable().await?;
            let result = match self {
                Self::Splice(Some(pipe)) => to.try_io(Interest::WRITABLE, || {
                    Ok(splice(&pipe.read, None, to, None, len - sent, flags())?)
                }),
                Self::Splice(None) => return Err(io::ErrorKind::BrokenPipe.into()),
                Self::Copy { buffer } => to.try_write(&buffer[sent..len]),
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE
}
