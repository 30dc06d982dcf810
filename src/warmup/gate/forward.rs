//! The public side of the gate: dual-stack listeners on `$PORT`, and each
//! connection passed to the app byte for byte. Bytes move socket → pipe →
//! socket with `splice`, so they never enter this process; pipes are shared
//! between bursts, so an idle connection costs two sockets and a little
//! bookkeeping. One thread per core (`threads`), each with its own
//! `SO_REUSEPORT` listener and event loop (tokio's current-thread runtime):
//! a connection lives and dies on the thread that accepted it. A connection
//! that breaks is reset on both sides and touches no other.

use super::first_users::{Conn, FirstUsers};
use super::{connect, episode::Episode, idle, pacing, threads};
use nix::errno::Errno;
use nix::fcntl::{OFlag, SpliceFFlags, splice};
use nix::sys::socket::MsgFlags;
use socket2::{Domain, SockRef, Socket, Type};
use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// What the supervisor wants after a tick.
pub(crate) enum Tick {
    Accept,
    StopAccepting,
    Exit(u8),
}

/// Binds `count` listeners on `[::]:port` with IPv6-only off, so IPv4 and
/// IPv6 clients both reach them; on `0.0.0.0:port` where IPv6 is not
/// available. More than one share the port with `SO_REUSEPORT`, and the
/// kernel spreads new connections across them.
pub(crate) fn bind_public(port: u16, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let all = |addr: SocketAddr, domain| {
        (0..count.max(1))
            .map(|_| bind(addr, domain, count > 1))
            .collect::<io::Result<Vec<_>>>()
    };
    match all(
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        Domain::IPV6,
    ) {
        Ok(listeners) => Ok(listeners),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Err(error),
        Err(_) => all(
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
            Domain::IPV4,
        ),
    }
}

fn bind(addr: SocketAddr, domain: Domain, shared: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(domain, Type::STREAM.cloexec(), None)?;
    if domain == Domain::IPV6 {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// What every forwarding thread reads; it lives as long as the process.
pub(crate) struct Shared {
    upstream: SocketAddr,
    idle: Duration,
    say: Box<dyn Fn(&str) + Send + Sync>,
    live: AtomicUsize,
    accepting: AtomicBool,
    out_of_fds: Episode,
    refusing: Episode,
    first_users: Option<Arc<FirstUsers>>,
}

impl Shared {
    pub(crate) fn new(
        upstream: SocketAddr,
        idle: Duration,
        say: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Self {
            upstream,
            idle,
            say: Box::new(say),
            live: AtomicUsize::new(0),
            accepting: AtomicBool::new(true),
            out_of_fds: Episode::default(),
            refusing: Episode::default(),
            first_users: None,
        }
    }

    /// Times the first users of this window (see `first_users`).
    pub(crate) fn with_first_users(mut self, first_users: Arc<FirstUsers>) -> Self {
        self.first_users = Some(first_users);
        self
    }
}

/// Accepts on every listener (one thread each) and forwards to the app until
/// `tick` says `Exit`. `tick` runs every [`TICK`] on this thread with the
/// number of open connections.
pub(crate) fn run(
    listeners: Vec<std::net::TcpListener>,
    shared: Shared,
    mut tick: impl FnMut(usize) -> Tick,
) -> io::Result<u8> {
    // Leaked once per process: threads and connections borrow it without counting.
    let shared: &'static Shared = Box::leak(Box::new(shared));
    let mut listeners = listeners.into_iter();
    let first = listeners
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no listener"))?;
    for (index, listener) in listeners.enumerate() {
        threads::spawn(index + 1, move || {
            if let Ok(runtime) = runtime() {
                runtime.block_on(async move {
                    if let Ok(listener) = TcpListener::from_std(listener) {
                        accept(listener, shared).await;
                    }
                    // Its connections keep flowing until the process exits.
                    std::future::pending::<()>().await;
                });
            }
        })?;
    }
    runtime()?.block_on(async move {
        tokio::spawn(accept(TcpListener::from_std(first)?, shared));
        loop {
            tokio::time::sleep(TICK).await;
            match tick(shared.live.load(Ordering::Relaxed)) {
                Tick::Accept => {}
                // Each thread drops its listener: new connections are refused.
                Tick::StopAccepting => shared.accepting.store(false, Ordering::Relaxed),
                Tick::Exit(code) => return Ok(code),
            }
        }
    })
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
}

/// One thread's accept loop, until the gate stops accepting. It takes the
/// app-side socket before the client (see `pacing`).
async fn accept(listener: TcpListener, shared: &'static Shared) {
    let mut reserve = None;
    while shared.accepting.load(Ordering::Relaxed) {
        let socket = match reserve.take() {
            Some(socket) => socket,
            None => match pacing::reserve(shared.upstream) {
                Ok(socket) => socket,
                // This thread's spare pipes are descriptors too: give them up first.
                Err(error) if pacing::exhausted(&error) && drop_spare_pipes() => continue,
                Err(error) => {
                    out_of_fds(shared, &error);
                    tokio::time::sleep(pacing::PAUSE).await;
                    continue;
                }
            },
        };
        match tokio::time::timeout(TICK, listener.accept()).await {
            Ok(Ok((client, _))) => {
                shared.live.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection(client, socket, shared, Live(&shared.live)));
                // The new connection first; the next reserve after it.
                tokio::task::yield_now().await;
            }
            Ok(Err(error)) => {
                reserve = Some(socket);
                out_of_fds(shared, &error);
                // Out of descriptors, or a client gone before we took it: wait
                // a moment rather than spin; the backlog keeps the others.
                tokio::time::sleep(pacing::PAUSE).await;
            }
            Err(_) => reserve = Some(socket),
        }
    }
}

fn out_of_fds(shared: &Shared, error: &io::Error) {
    if pacing::exhausted(error) && shared.out_of_fds.begin() {
        (shared.say)(&pacing::line(error));
    }
}

/// Counts a connection as open until it is dropped.
struct Live(&'static AtomicUsize);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The first-user hook: a connection accepted inside the window gets a
/// watch, and its bytes go through userspace until the watch stops. Outside
/// the window this is one atomic load, and bytes stay zero-copy.
fn watch(shared: &Shared) -> Option<Box<Watch>> {
    let first_users = shared.first_users.as_ref()?;
    // Boxed: only connections of the window pay for it.
    first_users.watching().then(|| {
        Box::new(Watch {
            conn: Mutex::new(Conn::new()),
            to: Arc::clone(first_users),
        })
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
        // A keep-alive connection from the window goes back to splice when it ends.
        let Ok(mut conn) = self.conn.lock() else {
            return false;
        };
        if !self.to.watching() {
            conn.end();
            self.to.add(conn.take());
            return false;
        }
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

async fn connection(client: TcpStream, reserve: Socket, shared: &'static Shared, _live: Live) {
    let watch = watch(shared);
    let _ = client.set_nodelay(true);
    let refused = || {
        if shared.refusing.begin() {
            (shared.say)(&format!(
                "the app refused a connection on {}; retrying each for up to {}s before closing its client",
                shared.upstream,
                connect::RETRY_FOR.as_secs()
            ));
        }
    };
    let Ok(app) = connect::app_side(reserve, shared.upstream, refused).await else {
        reset(&client);
        return;
    };
    shared.refusing.end();
    let _ = app.set_nodelay(true);
    let activity = idle::Activity::default();
    // Pinned here and passed on by reference: an `async fn` that takes a
    // future by value stores it twice, and this task lives as long as the
    // connection (its size is the gate's memory per open connection).
    let mut up = pin!(pump(
        &client,
        &app,
        &activity,
        watch.as_deref().map(|w| (w, true)),
        true
    ));
    let mut down = pin!(pump(
        &app,
        &client,
        &activity,
        watch.as_deref().map(|w| (w, false)),
        false
    ));
    let mut work = pin!(both(up.as_mut(), down.as_mut()));
    let forwarded = idle::within(shared.idle, &activity, work.as_mut()).await;
    // `None`: idle for the timeout; dropping both closes them in order.
    if let Some(Err(_)) = forwarded {
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
    mut up: Pin<&mut impl Future<Output = io::Result<()>>>,
    mut down: Pin<&mut impl Future<Output = io::Result<()>>>,
) -> io::Result<()> {
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
///
/// Each burst is first read into this thread's buffer and written straight
/// on: two system calls for a small request or answer, and a read shorter
/// than the buffer proves the socket empty, so no third call finds that out.
/// A read that fills the buffer means a big transfer: the rest of that burst
/// goes socket → pipe → socket with `splice`. A watch sees every byte read.
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    activity: &idle::Activity,
    mut watch: Option<(&Watch, bool)>,
    mut eager: bool,
) -> io::Result<()> {
    let mut splicing = false;
    // No splice between these two (a sandboxed kernel): copy only.
    let mut can_splice = true;
    loop {
        activity.touch();
        // `eager`: a new client's request is usually there already; read it
        // before the event loop has said so.
        let eager_read = std::mem::take(&mut eager);
        if !eager_read {
            from.readable().await?;
        }
        if splicing {
            match splice_burst(from, to, activity).await {
                Ok(Burst::End) => break,
                Ok(Burst::Moved) => {}
                Ok(Burst::Over) => splicing = false,
                Err(error)
                    if matches!(
                        error.raw_os_error().map(Errno::from_raw),
                        Some(Errno::EINVAL | Errno::EMFILE | Errno::ENFILE)
                    ) =>
                {
                    // EINVAL: never here; EMFILE/ENFILE: no pipe to be had now.
                    can_splice &= error.raw_os_error() != Some(Errno::EINVAL as i32);
                    splicing = false;
                }
                Err(error) => return Err(error),
            }
            continue;
        }
        let copied =
            BUFFER.with_borrow_mut(|buffer| copy_once(from, to, buffer, watch, eager_read));
        match copied? {
            Copied::Nothing => {}
            Copied::End => break,
            Copied::Moved {
                full,
                left,
                stopped,
            } => {
                if let Some(left) = left {
                    write_all(to, &left, activity).await?;
                }
                if stopped {
                    watch = None;
                }
                splicing = full && can_splice && watch.is_none();
            }
        }
    }
    match SockRef::from(to).shutdown(Shutdown::Write) {
        Err(error) if error.kind() != io::ErrorKind::NotConnected => Err(error),
        _ => Ok(()),
    }
}

/// The read buffer of this thread's connections. A burst is read, shown to
/// the watch and written on without an `.await` in between, so one buffer
/// serves them all; only what `to` does not take at once is kept.
const BUFFER_SIZE: usize = 64 * 1024;

thread_local! {
    static BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; BUFFER_SIZE].into_boxed_slice());
}

enum Copied {
    /// The readiness was stale: nothing to read.
    Nothing,
    End,
    Moved {
        /// The read filled the buffer: more is likely waiting.
        full: bool,
        /// What `to` did not take yet.
        left: Option<Vec<u8>>,
        /// The watch stopped watching.
        stopped: bool,
    },
}

fn copy_once(
    from: &TcpStream,
    to: &TcpStream,
    buffer: &mut [u8],
    watch: Option<(&Watch, bool)>,
    eager: bool,
) -> io::Result<Copied> {
    let mut got = None;
    let mut recv = || nix::sys::socket::recv(from.as_raw_fd(), buffer, MsgFlags::empty());
    let read = if eager {
        // Past tokio's readiness, which does not know yet; its event comes later
        // and finds the socket empty, which the loop takes in its stride.
        match recv() {
            Ok(n) => {
                got = Some(n);
                Ok(n)
            }
            Err(Errno::EAGAIN) => return Ok(Copied::Nothing),
            Err(error) => Err(io::Error::from(error)),
        }
    } else {
        from.try_io(Interest::READABLE, || {
            let n = recv().map_err(io::Error::from)?;
            got = Some(n);
            if n > 0 && n < BUFFER_SIZE {
                // A stream socket returns less than asked only when it had no more:
                // its readiness is cleared now, instead of by one more empty read.
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(n)
            }
        })
    };
    let n = match (got, read) {
        (Some(n), _) => n,
        (None, Err(error)) if error.kind() == io::ErrorKind::WouldBlock => {
            return Ok(Copied::Nothing);
        }
        (None, Err(error)) => return Err(error),
        (None, Ok(_)) => return Ok(Copied::Nothing),
    };
    if n == 0 {
        return Ok(Copied::End);
    }
    let bytes = &buffer[..n];
    let stopped = watch.is_some_and(|(w, from_client)| !w.see(from_client, bytes));
    let sent = match to.try_write(bytes) {
        Ok(sent) => sent,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(error) => return Err(error),
    };
    Ok(Copied::Moved {
        full: n == BUFFER_SIZE,
        left: (sent < n).then(|| bytes[sent..].to_vec()),
        stopped,
    })
}

/// Writes all of `bytes` as fast as `to` takes them.
async fn write_all(to: &TcpStream, mut bytes: &[u8], activity: &idle::Activity) -> io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                activity.touch();
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// What one splice of a big transfer did.
enum Burst {
    End,
    Moved,
    /// The socket is empty: the burst is over.
    Over,
}

/// Moves what `from` has into a pipe and on to `to`, at most [`CHUNK`].
async fn splice_burst(
    from: &TcpStream,
    to: &TcpStream,
    activity: &idle::Activity,
) -> io::Result<Burst> {
    let pipe = take_pipe()?;
    let moved = match from.try_io(Interest::READABLE, || {
        Ok(splice(from, None, &pipe.write, None, CHUNK, flags())?)
    }) {
        Ok(0) => {
            give_back(pipe);
            return Ok(Burst::End);
        }
        Ok(n) => n,
        // A short splice does not prove the socket empty (the pipe can run out
        // of slots first), so the burst ends only here.
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
            give_back(pipe);
            return Ok(Burst::Over);
        }
        Err(error) => return Err(error),
    };
    let mut sent = 0;
    while sent < moved {
        to.writable().await?;
        match to.try_io(Interest::WRITABLE, || {
            Ok(splice(&pipe.read, None, to, None, moved - sent, flags())?)
        }) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                sent += n;
                activity.touch();
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    give_back(pipe);
    Ok(Burst::Moved)
}

/// A pipe for `splice`, empty whenever it is not in a connection's hands. One
/// dropped with bytes still in it (a transfer that broke) is closed.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

/// Keeps an emptied pipe for the next burst.
fn give_back(pipe: Pipe) {
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < SPARE_PIPES {
            spare.push(pipe);
        }
    });
}

/// Most spare pipes kept for the next burst of bytes.
const SPARE_PIPES: usize = 64;

thread_local! {
    /// Empty pipes. A splice takes one and gives it back once its bytes are
    /// all passed on, so an idle keep-alive connection holds no pipe, and the
    /// kernel's per-user pipe budget goes to bytes in flight.
    static SPARE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// Closes this thread's spare pipes; `false` when it had none.
fn drop_spare_pipes() -> bool {
    SPARE.with_borrow_mut(|spare| {
        let had = !spare.is_empty();
        spare.clear();
        had
    })
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

fn flags() -> SpliceFFlags {
    SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection's task is the gate's memory per open connection: 10,000
    /// idle keep-alive connections are 10,000 of these. An `async fn` that
    /// takes a future by value stores it twice; this catches that coming back.
    #[test]
    fn a_connection_task_stays_small() {
        let runtime = runtime().expect("a runtime");
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let address = listener.local_addr().expect("address");
            let _client = TcpStream::connect(address).await.expect("connect");
            let (accepted, _) = listener.accept().await.expect("accept");
            let shared: &'static Shared =
                Box::leak(Box::new(Shared::new(address, idle::DEFAULT, |_| {})));
            let reserve = pacing::reserve(address).expect("a socket");
            let task = connection(accepted, reserve, shared, Live(&shared.live));
            let size = std::mem::size_of_val(&task);
            // 1,152 bytes in a release build and 1,176 in a test build; about
            // 3,440 when `both` and `idle::within` took their futures by value.
            assert!(size <= 2048, "the connection task is {size} bytes");
        });
    }
}
