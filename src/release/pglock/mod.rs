//! The migration lock: a session-level Postgres advisory lock held while a
//! `[[migrate]]` step runs (`lock = "postgres"` in `preheat.toml`), so that two
//! releases never migrate the same database at once.
//!
//! Nothing here runs, and no connection is made, unless a step has a lock.
//!
//! # How the release runner uses it
//!
//! For a step with `step.lock = Some(spec)`, after `only_if_env` said the step
//! runs and before its process starts, `crate::release` calls [`acquire_for`]
//! with the time left before the release deadline, runs the step while the
//! returned [`MigrationLock`] lives, then calls [`MigrationLock::release`]; a
//! lost lock is a warning, since the step has already run. If preheat is
//! killed, the kernel closes the socket, the server ends the session and the
//! lock goes with it: nothing to clean up.
//!
//! # The key
//!
//! One signed 64-bit `pg_advisory_lock` key per app and database: the first 8
//! bytes, big-endian, of SHA-256 over
//! `"preheat-migration-lock/v1\n{app}\n{host}\n{port}\n{dbname}"`, where
//! `{app}` is `$HEROKU_APP_ID`, else `$HEROKU_APP_NAME`, else `preheat`
//! ([`app_identity`]), and host (lower-cased), port and database name come from
//! the URL. The user and the password are never part of it, so a credential
//! rotation between two releases does not split the lock. In `pg_locks` the
//! key shows as `classid` = its high 32 bits, `objid` = its low 32 bits,
//! `objsubid = 1`.
//!
//! # TLS (the `sslmode` URL parameter, as libpq reads it)
//!
//! | `sslmode` | what happens |
//! | --- | --- |
//! | `disable` | plain TCP |
//! | `allow`, `prefer` | TLS when the server offers it, else plain; the certificate is not verified |
//! | `require` | TLS or fail; the certificate is not verified (libpq's meaning of `require`) |
//! | `verify-ca` | TLS; the chain must lead to `sslrootcert` (a PEM file) or, without it, to the Mozilla roots; the host name is not checked |
//! | `verify-full` | as `verify-ca`, and the certificate must name the host |
//! | not given | `require` for any remote host (Heroku Postgres only accepts TLS); plain for `localhost`, a loopback address or a Unix socket |
//!
//! # Poolers
//!
//! A session lock taken through pgbouncer in transaction mode is silently
//! ineffective: the next statement may run on another server connection, and
//! the lock stays with whichever client that connection serves next. preheat
//! therefore connects directly, and warns (through `output::warning`) when the
//! URL looks like a pooler; see [`pooler_warning`].

use crate::config::LockSpec;
use crate::config::duration::{Span, human};
use crate::redact;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long connecting (TCP, TLS and authentication together) may take.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiting release asks for the lock again.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often a waiting release says who it waits for.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// A bound on any one statement, so a dead network cannot hang the release.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// What `pg_stat_activity.application_name` shows for the lock's session.
const APPLICATION_NAME: &str = "preheat migration lock";
const KEY_DOMAIN: &str = "preheat-migration-lock/v1";

// ---- the lock ----

/// A held migration lock. Dropping it also frees the lock (the connection
/// closes); [`MigrationLock::release`] does it politely and reports a lost lock.
pub(crate) struct MigrationLock {
    session: Session,
    key: i64,
    target: String,
    waited: Duration,
}

impl fmt::Debug for MigrationLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationLock")
            .field("target", &self.target)
            .field("key", &self.key)
            .field("pid", &self.session.pid)
            .finish_non_exhaustive()
    }
}

impl MigrationLock {
    /// The backend pid of the session that holds the lock.
    #[cfg(test)]
    pub(crate) fn pid(&self) -> i32 {
        self.session.pid
    }

    #[cfg(test)]
    pub(crate) fn key(&self) -> i64 {
        self.key
    }

    /// How long this release waited for another one.
    #[cfg(test)]
    pub(crate) fn waited(&self) -> Duration {
        self.waited
    }

    /// `db.example.com:5432/d8k2 as pid 4242, after 12.5s`: for a bullet.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("{} as pid {}", self.target, self.session.pid);
        if self.waited >= POLL_EVERY {
            let _ = write!(text, ", after waiting {}", human(self.waited));
        }
        text
    }

    /// Unlocks and closes the connection. An error means the lock was lost
    /// while the step ran (the connection broke): the step has run, but it may
    /// not have been alone.
    pub(crate) fn release(self) -> Result<(), LockError> {
        let MigrationLock {
            session,
            key,
            target,
            ..
        } = self;
        let Session {
            runtime,
            client,
            connection,
            ..
        } = session;
        let unlocked = runtime.block_on(async {
            let row = query_one(&client, "SELECT pg_advisory_unlock($1)", &[&key]).await?;
            row.try_get::<_, bool>(0)
                .map_err(|error| describe_pg_error(&error))
        });
        // Dropping the client sends Terminate; give the connection a moment to send it.
        drop(client);
        runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(2), connection).await;
        });
        match unlocked {
            Ok(true) => Ok(()),
            Ok(false) => Err(LockError::Lost {
                target,
                reason: "the session no longer held it".to_string(),
            }),
            Err(reason) => Err(LockError::Lost { target, reason }),
        }
    }
}

/// Who holds the lock, as `pg_locks` and `pg_stat_activity` tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) pid: i32,
    pub(crate) application_name: Option<String>,
    pub(crate) client_addr: Option<String>,
    /// When its last statement started (for an idle holder, when it took the
    /// lock), else when it connected; in UTC. `None` when this database user
    /// may not see that session's details.
    pub(crate) since: Option<String>,
    pub(crate) for_how_long: Option<Duration>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)?;
        let details: Vec<&str> = [
            self.application_name.as_deref(),
            self.client_addr.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
        if !details.is_empty() {
            write!(f, " ({})", details.join(", from "))?;
        }
        match (&self.since, self.for_how_long) {
            (Some(since), Some(ago)) => write!(f, " since {since}, {} ago", human(ago)),
            (Some(since), None) => write!(f, " since {since}"),
            _ => Ok(()),
        }
    }
}

/// What a waiting release reports, at most every 10 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WaitInfo {
    /// `None` when the holder let go between two looks, or is not visible.
    pub(crate) holder: Option<Holder>,
    pub(crate) waited: Duration,
    pub(crate) timeout: Duration,
}

impl fmt::Display for WaitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.holder {
            Some(holder) => write!(f, "waiting for migration lock held by {holder}")?,
            None => f.write_str("waiting for migration lock held by another session")?,
        }
        write!(
            f,
            " (waited {} of {})",
            human(self.waited),
            Span(self.timeout)
        )
    }
}

// ---- errors ----

#[derive(Debug)]
pub(crate) enum LockError {
    /// `lock_url` names a variable that is not set.
    MissingVar(crate::config::template::MissingVar),
    /// The URL cannot be used; `reason` never quotes it.
    BadUrl { reason: String },
    /// `sslrootcert` could not be read.
    RootCert { path: PathBuf, reason: String },
    /// No answer within the connect timeout.
    ConnectTimeout { target: String, after: Duration },
    /// The connection failed: refused, TLS, authentication, …
    Connect {
        target: String,
        reason: String,
        help: String,
    },
    /// A statement failed while taking the lock.
    Query { target: String, reason: String },
    /// Another session held the lock for all of `lock_timeout`.
    Timeout {
        target: String,
        waited: Duration,
        holder: Option<Box<Holder>>,
    },
    /// The lock was lost while the step ran.
    Lost { target: String, reason: String },
    /// SIGTERM or SIGINT arrived while waiting for the lock.
    Interrupted(i32),
}

impl LockError {
    fn text(&self) -> String {
        match self {
            LockError::MissingVar(missing) => {
                format!("The migration lock has no database URL: {missing}.")
            }
            LockError::BadUrl { reason } => format!(
                "The migration lock's database URL (`lock_url`, by default ${{DATABASE_URL}}) is not usable: {reason}.\n\n\
                 Use a URL like postgres://app@db.example.com:5432/app, with `:password` after the user name and optionally `?sslmode=require`."
            ),
            LockError::RootCert { path, reason } => format!(
                "Could not read the CA certificates in sslrootcert={}: {reason}.\n\n\
                 Point sslrootcert at a readable PEM file, or remove it to use the public roots.",
                path.display()
            ),
            LockError::ConnectTimeout { target, after } => format!(
                "Could not connect to PostgreSQL at {target} for the migration lock: no answer within {}.\n\n\
                 Check the host and port in the URL, that the database is up, and that this dyno can reach it.",
                human(*after)
            ),
            LockError::Connect {
                target,
                reason,
                help,
            } => format!(
                "Could not connect to PostgreSQL at {target} for the migration lock: {reason}.\n\n{help}"
            ),
            LockError::Query { target, reason } => format!(
                "Could not take the migration lock on {target}: {reason}.\n\n\
                 Check that the database user may run SELECT pg_try_advisory_lock(…), and that the connection is direct (not through PgBouncer)."
            ),
            LockError::Timeout {
                target,
                waited,
                holder,
            } => {
                let who = holder.as_ref().map_or_else(
                    || "another session (not visible to this database user)".to_string(),
                    ToString::to_string,
                );
                let kill = holder.as_ref().map_or_else(
                    || "find it in pg_locks (locktype = 'advisory')".to_string(),
                    |h| format!("end it with `heroku pg:kill {}`", h.pid),
                );
                format!(
                    "Gave up waiting for the migration lock on {target} after {}: it is held by {who}.\n\n\
                     Another release is probably still migrating: let it finish, then retry this one (`heroku releases:retry`). \
                     If none is running, that session is stuck: look at it with `heroku pg:ps` and {kill}. \
                     To wait longer, raise `lock_timeout` in preheat.toml.",
                    human(*waited)
                )
            }
            LockError::Interrupted(signal) => format!(
                "preheat received {} while waiting for the migration lock.",
                crate::release::signals::name(*signal)
            ),
            LockError::Lost { target, reason } => format!(
                "Lost the migration lock on {target} while the step ran: {reason}.\n\n\
                 The step has finished, but another release may have migrated at the same time. \
                 Check the database's migration state before the next deploy."
            ),
        }
    }
}

/// Every text passes through [`redact::scrub`]: no password, even from the driver.
impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact::scrub(&self.text()))
    }
}

impl std::error::Error for LockError {}

// ---- entry points ----

/// The app part of the key: `HEROKU_APP_ID`, else `HEROKU_APP_NAME`, else `preheat`.
pub(crate) fn app_identity() -> String {
    app_identity_from(|name| std::env::var(name).ok())
}

fn app_identity_from(lookup: impl Fn(&str) -> Option<String>) -> String {
    ["HEROKU_APP_ID", "HEROKU_APP_NAME"]
        .into_iter()
        .filter_map(lookup)
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "preheat".to_string())
}

/// Takes the lock a step's [`LockSpec`] describes: expands its URL, keys it to
/// this app and waits up to `spec.timeout`, but never longer than `cap` (the
/// time left before the release deadline).
pub(crate) fn acquire_for(
    spec: &LockSpec,
    cap: Duration,
    on_wait: &mut dyn FnMut(WaitInfo),
) -> Result<MigrationLock, LockError> {
    let url = spec.url.expand().map_err(LockError::MissingVar)?;
    acquire(
        &url,
        &app_identity(),
        spec.timeout.min(cap),
        DEFAULT_CONNECT_TIMEOUT,
        on_wait,
    )
}

/// Connects to `url` and takes the advisory lock for `app` and that database,
/// waiting up to `timeout` while another session holds it. `on_wait` hears
/// who holds it as soon as the wait starts, then at most every 10 s.
pub(crate) fn acquire(
    url: &str,
    app: &str,
    timeout: Duration,
    connect_timeout: Duration,
    on_wait: &mut dyn FnMut(WaitInfo),
) -> Result<MigrationLock, LockError> {
    let target = Target::parse(url)?;
    if let Some(password) = &target.password {
        redact::register(password);
    }
    if let Some(warning) = pooler_warning(&target, url, std::env::vars()) {
        crate::output::warning(&warning);
    }
    let key = lock_key(app, &target);
    let session = connect(&target, connect_timeout)?;
    let label = target.label();
    let waited = session.runtime.block_on(wait_for_lock(
        &session.client,
        key,
        timeout,
        on_wait,
        &label,
    ))?;
    Ok(MigrationLock {
        session,
        key,
        target: label,
        waited,
    })
}

async fn wait_for_lock(
    client: &tokio_postgres::Client,
    key: i64,
    timeout: Duration,
    on_wait: &mut dyn FnMut(WaitInfo),
    target: &str,
) -> Result<Duration, LockError> {
    let started = Instant::now();
    let mut last_report: Option<Instant> = None;
    loop {
        if try_lock(client, key)
            .await
            .map_err(|reason| LockError::Query {
                target: target.to_string(),
                reason,
            })?
        {
            return Ok(started.elapsed());
        }
        if let Some(signal) = crate::release::signals::received() {
            return Err(LockError::Interrupted(signal));
        }
        let waited = started.elapsed();
        if waited >= timeout {
            // Best effort: the timeout error is worth more than a failed look-up.
            let holder = lock_holder(client, key).await.unwrap_or(None).map(Box::new);
            return Err(LockError::Timeout {
                target: target.to_string(),
                waited,
                holder,
            });
        }
        if last_report.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
            let holder = lock_holder(client, key).await.unwrap_or(None);
            on_wait(WaitInfo {
                holder,
                waited,
                timeout,
            });
            last_report = Some(Instant::now());
        }
        tokio::time::sleep(POLL_EVERY.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

/// One statement, bounded by [`QUERY_TIMEOUT`]; the error is ready for a message.
async fn query_one(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Row, String> {
    match tokio::time::timeout(QUERY_TIMEOUT, client.query_one(sql, params)).await {
        Err(_) => Err(format!(
            "the server did not answer within {}",
            human(QUERY_TIMEOUT)
        )),
        Ok(Err(error)) => Err(describe_pg_error(&error)),
        Ok(Ok(row)) => Ok(row),
    }
}

async fn try_lock(client: &tokio_postgres::Client, key: i64) -> Result<bool, String> {
    let row = query_one(client, "SELECT pg_try_advisory_lock($1)", &[&key]).await?;
    row.try_get(0).map_err(|error| describe_pg_error(&error))
}

/// The session that holds `key` in this database, if this user can see it.
async fn lock_holder(client: &tokio_postgres::Client, key: i64) -> Result<Option<Holder>, String> {
    let (classid, objid) = key_halves(key);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&classid, &objid];
    let rows = client.query(
        "SELECT l.pid, a.application_name, host(a.client_addr), \
                to_char(COALESCE(a.query_start, a.backend_start) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC', \
                extract(epoch FROM now() - COALESCE(a.query_start, a.backend_start))::float8 \
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted \
           AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         LIMIT 1",
        &params,
    );
    let rows = match tokio::time::timeout(QUERY_TIMEOUT, rows).await {
        Err(_) => return Err("timed out".to_string()),
        Ok(result) => result.map_err(|error| describe_pg_error(&error))?,
    };
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let seconds: Option<f64> = row.try_get(4).unwrap_or(None);
    Ok(Some(Holder {
        pid: row.try_get(0).map_err(|error| describe_pg_error(&error))?,
        application_name: row.try_get(1).unwrap_or(None),
        client_addr: row.try_get(2).unwrap_or(None),
        since: row.try_get(3).unwrap_or(None),
        for_how_long: seconds
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64),
    }))
}

// ---- the key ----

/// See the module documentation: SHA-256 of app and database, first 8 bytes.
fn lock_key(app: &str, target: &Target) -> i64 {
    let mut hasher = Sha256::new();
    hasher.update(KEY_DOMAIN.as_bytes());
    for part in [
        app,
        &target.host.key_part(),
        &target.port.to_string(),
        target.dbname_or_user(),
    ] {
        hasher.update(b"\n");
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// `(classid, objid)`: how `pg_locks` shows a one-`bigint` advisory key.
fn key_halves(key: i64) -> (u32, u32) {
    let bits = key.cast_unsigned();
    (
        u32::try_from(bits >> 32).unwrap_or_default(),
        u32::try_from(bits & 0xFFFF_FFFF).unwrap_or_default(),
    )
}

// ---- the URL ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Tcp(String),
    /// A Unix socket directory (`?host=/var/run/postgresql`).
    Socket(PathBuf),
}

impl Host {
    fn key_part(&self) -> String {
        match self {
            Host::Tcp(name) => name.to_ascii_lowercase(),
            Host::Socket(dir) => dir.display().to_string(),
        }
    }

    fn is_local(&self) -> bool {
        match self {
            Host::Socket(_) => true,
            Host::Tcp(name) => {
                name.eq_ignore_ascii_case("localhost")
                    || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The parts of a `postgres://` URL the lock uses.
#[derive(Clone, PartialEq, Eq)]
struct Target {
    host: Host,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    tls: Tls,
    root_cert: Option<PathBuf>,
}

/// Never prints the password.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("dbname", &self.dbname)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

impl Target {
    fn parse(url: &str) -> Result<Self, LockError> {
        let bad = |reason: String| LockError::BadUrl { reason };
        let url = url.trim();
        if url.is_empty() {
            return Err(bad("it is empty".to_string()));
        }
        // The url crate's errors never quote the input, so no password leaks.
        let parsed = url::Url::parse(url).map_err(|error| bad(format!("{error}")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(bad(format!(
                "its scheme is `{}`, not postgres:// or postgresql://",
                parsed.scheme()
            )));
        }
        let mut host = match parsed.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => Some(Host::Tcp(decode(name))),
            Some(url::Host::Ipv4(ip)) => Some(Host::Tcp(ip.to_string())),
            Some(url::Host::Ipv6(ip)) => Some(Host::Tcp(ip.to_string())),
            _ => None,
        };
        let mut port = parsed.port();
        let mut ssl_mode = None;
        let mut root_cert = None;
        let mut dbname =
            Some(decode(parsed.path().trim_start_matches('/'))).filter(|d| !d.is_empty());
        let mut user = Some(decode(parsed.username())).filter(|u| !u.is_empty());
        for (name, value) in parsed.query_pairs() {
            match name.as_ref() {
                "sslmode" => ssl_mode = Some(value.into_owned()),
                "sslrootcert" => root_cert = Some(PathBuf::from(value.as_ref())),
                "host" if value.starts_with('/') => {
                    host = Some(Host::Socket(PathBuf::from(value.as_ref())));
                }
                "host" if !value.is_empty() => host = Some(Host::Tcp(value.into_owned())),
                "port" => {
                    port = Some(
                        value
                            .parse()
                            .map_err(|_| bad(format!("`port={value}` is not a port number")))?,
                    );
                }
                "dbname" => dbname = Some(value.into_owned()),
                "user" => user = Some(value.into_owned()),
                // Other libpq parameters (application_name, connect_timeout, …) do not matter here.
                _ => {}
            }
        }
        let host = host.unwrap_or_else(|| Host::Tcp("localhost".to_string()));
        let mode = ssl_mode.as_deref().unwrap_or(if host.is_local() {
            "disable"
        } else {
            "require"
        });
        let tls = match mode {
            "disable" => Tls::Disable,
            "allow" | "prefer" => Tls::Prefer,
            "require" => Tls::Require,
            "verify-ca" => Tls::VerifyCa,
            "verify-full" => Tls::VerifyFull,
            other => {
                return Err(bad(format!(
                    "`sslmode={other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        };
        Ok(Self {
            host,
            port: port.unwrap_or(5432),
            user,
            password: parsed.password().map(decode).filter(|p| !p.is_empty()),
            dbname,
            tls,
            root_cert,
        })
    }

    /// The database name as the server will see it: libpq defaults it to the user.
    fn dbname_or_user(&self) -> &str {
        self.dbname
            .as_deref()
            .or(self.user.as_deref())
            .unwrap_or_default()
    }

    /// `host:port/dbname`, for messages: never the user or the password.
    fn label(&self) -> String {
        let place = match &self.host {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]:{}", self.port),
            Host::Tcp(name) => format!("{name}:{}", self.port),
            Host::Socket(dir) => format!("{} (socket, port {})", dir.display(), self.port),
        };
        format!("{place}/{}", self.dbname_or_user())
    }

    fn pg_config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        match &self.host {
            Host::Tcp(name) => config.host(name),
            Host::Socket(dir) => config.host_path(dir),
        };
        config
            .port(self.port)
            .application_name(APPLICATION_NAME)
            .connect_timeout(connect_timeout)
            // The session sits idle for as long as the migration runs: keep NATs from forgetting it.
            .keepalives(true)
            .keepalives_idle(Duration::from_mins(1))
            .ssl_mode(match self.tls {
                Tls::Disable => SslMode::Disable,
                Tls::Prefer => SslMode::Prefer,
                Tls::Require | Tls::VerifyCa | Tls::VerifyFull => SslMode::Require,
            });
        if let Some(user) = &self.user {
            config.user(user);
        }
        if let Some(password) = &self.password {
            config.password(password);
        }
        if let Some(dbname) = &self.dbname {
            config.dbname(dbname);
        }
        config
    }

    fn tls_connector(&self) -> Result<MakeRustlsConnect, LockError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.tls {
            Tls::Disable | Tls::Prefer | Tls::Require => {
                Arc::new(NoCertificateCheck(provider.clone()))
            }
            Tls::VerifyCa | Tls::VerifyFull => {
                let roots = self.root_store()?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|error| LockError::Connect {
                            target: self.label(),
                            reason: format!("cannot set up certificate verification: {error}"),
                            help: "Check sslrootcert, or use sslmode=require.".to_string(),
                        })?;
                if self.tls == Tls::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| LockError::Connect {
                target: self.label(),
                reason: format!("cannot set up TLS: {error}"),
                help: "This is a bug in preheat; use sslmode=disable to work around it."
                    .to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    fn root_store(&self) -> Result<RootCertStore, LockError> {
        let Some(path) = &self.root_cert else {
            return Ok(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            });
        };
        let fail = |reason: String| LockError::RootCert {
            path: path.clone(),
            reason,
        };
        let mut store = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path).map_err(|error| fail(error.to_string()))?;
        for cert in certs {
            let cert = cert.map_err(|error| fail(error.to_string()))?;
            store.add(cert).map_err(|error| fail(error.to_string()))?;
        }
        if store.is_empty() {
            return Err(fail("it holds no PEM certificate".to_string()));
        }
        Ok(store)
    }
}

/// `sslmode=require`: encrypted, but any certificate is accepted (libpq's meaning).
/// Handshake signatures are still checked, so the session key belongs to the
/// certificate the server sent, which SCRAM channel binding then relies on.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must verify, the name need not match.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // rustls checks the chain first and the name last, so a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

// ---- poolers ----

/// Ports that poolers listen on by default: pgbouncer (6432), Supabase's
/// transaction pooler (6543).
const POOLER_PORTS: [u16; 2] = [6432, 6543];

/// A warning when the URL looks like a connection pooler rather than the
/// database: a pooler port or host name, the local pgbouncer of Heroku's
/// pgbouncer buildpack (127.0.0.1:6000), or the value of a Heroku pooler
/// variable (`*_CONNECTION_POOL_URL`, `*_PGBOUNCER`).
fn pooler_warning(
    target: &Target,
    url: &str,
    env: impl Iterator<Item = (String, String)>,
) -> Option<String> {
    let url = url.trim();
    let from_env = env
        .filter(|(name, value)| {
            (name.ends_with("CONNECTION_POOL_URL") || name.ends_with("_PGBOUNCER"))
                && value.trim() == url
        })
        .map(|(name, _)| name)
        .next();
    let reason = if let Some(name) = from_env {
        Some(format!("it is the value of {name}"))
    } else {
        match &target.host {
            Host::Tcp(name) if POOLER_PORTS.contains(&target.port) => Some(format!(
                "port {} on {name} is a PgBouncer port",
                target.port
            )),
            Host::Tcp(name)
                if ["pgbouncer", "pooler"]
                    .iter()
                    .any(|word| name.to_ascii_lowercase().contains(word)) =>
            {
                Some(format!("the host {name} is a connection pooler"))
            }
            Host::Tcp(_) if target.host.is_local() && target.port == 6000 => {
                Some("port 6000 on this dyno is where the pgbouncer buildpack listens".to_string())
            }
            _ => None,
        }
    };
    reason.map(|reason| {
        format!(
            "The migration lock connects through what looks like a connection pooler ({reason}). \
             A session advisory lock taken through PgBouncer in transaction mode is silently ineffective, \
             so two releases could migrate at once. Set `lock_url` in preheat.toml to the database's direct URL, \
             like `lock_url = \"${{DATABASE_URL}}\"` rather than the pooled one."
        )
    })
}

// ---- connecting ----

struct Session {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    /// Drives the socket; ends when the client is dropped or the server goes away.
    connection: tokio::task::JoinHandle<()>,
    pid: i32,
}

fn connect(target: &Target, connect_timeout: Duration) -> Result<Session, LockError> {
    let label = target.label();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| LockError::Connect {
            target: label.clone(),
            reason: format!("cannot start the client: {error}"),
            help:
                "The system is out of resources (threads or file descriptors); retry the release."
                    .to_string(),
        })?;
    let tls = target.tls_connector()?;
    let config = target.pg_config(connect_timeout);
    let timed_out = || LockError::ConnectTimeout {
        target: label.clone(),
        after: connect_timeout,
    };
    let (client, connection, pid) = runtime.block_on(async {
        let (client, connection) =
            match tokio::time::timeout(connect_timeout, config.connect(tls)).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(error)) => return Err(connect_error(&label, &error)),
                Ok(Ok(pair)) => pair,
            };
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        let pid_query = client.query_one("SELECT pg_backend_pid()", &[]);
        let pid: i32 = match tokio::time::timeout(connect_timeout, pid_query).await {
            Err(_) => return Err(timed_out()),
            Ok(Err(error)) => return Err(connect_error(&label, &error)),
            Ok(Ok(row)) => row
                .try_get(0)
                .map_err(|error| connect_error(&label, &error))?,
        };
        // The session idles for as long as the step runs; a server-wide
        // idle_session_timeout (PostgreSQL 14+) must not end it. Older servers
        // reject the setting, which is fine.
        let _ = tokio::time::timeout(
            connect_timeout,
            client.batch_execute("SET idle_session_timeout = 0"),
        )
        .await;
        Ok((client, connection, pid))
    })?;
    Ok(Session {
        runtime,
        client,
        connection,
        pid,
    })
}

/// The driver's error with its causes: tokio-postgres' own `Display` leaves them out.
fn describe_pg_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            let _ = write!(text, " ({detail})");
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

fn io_kind(error: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

fn connect_error(target: &str, error: &tokio_postgres::Error) -> LockError {
    let reason = describe_pg_error(error);
    let code = error.code();
    let help = if code == Some(&SqlState::INVALID_PASSWORD)
        || code == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    {
        "Check the user and password in the URL; on Heroku, `heroku pg:credentials:url` shows the current ones (credentials rotate)."
    } else if code == Some(&SqlState::INVALID_CATALOG_NAME) {
        "Check the database name at the end of the URL."
    } else if code == Some(&SqlState::TOO_MANY_CONNECTIONS) {
        "The lock needs one direct connection and the database has none free. Free some (`heroku pg:ps`, `heroku pg:killall`) or use a plan with more connections."
    } else if reason.contains("does not support TLS") {
        "This server does not offer TLS. For a local or private server without TLS, add `?sslmode=disable` to the URL; Heroku Postgres always offers TLS."
    } else if reason.contains("certificate") {
        "The server's certificate did not verify. Give its CA with `sslrootcert=/path/to/ca.pem`, or use `sslmode=require` (encrypted, not verified: what Heroku Postgres needs)."
    } else if io_kind(error) == Some(std::io::ErrorKind::ConnectionRefused) {
        "Nothing accepts connections there: check the host and port in the URL, and that the database is running."
    } else {
        "Check the URL, and that the database is running and reachable from this dyno."
    };
    LockError::Connect {
        target: target.to_string(),
        reason,
        help: help.to_string(),
    }
}

#[cfg(test)]
mod tests;
