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
//!
//! # Files
//!
//! This file holds the lock and its entry points; `key` derives the key,
//! `target` parses the URL, `tls` follows `sslmode`, `pooler` warns about
//! poolers, and `connect` opens the session and explains driver errors.

mod connect;
mod key;
mod pooler;
mod target;
mod tls;

use crate::config::LockSpec;
use crate::config::duration::{Span, human};
use crate::redact;
use connect::{Session, connect, describe_pg_error};
use key::app_identity;
use key::{key_halves, lock_key};
use pooler::pooler_warning;
use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use target::Target;

/// How long connecting (TCP, TLS and authentication together) may take.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiting release asks for the lock again.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often a waiting release says who it waits for.
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// A bound on any one statement, so a dead network cannot hang the release.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
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

#[cfg(test)]
mod tests;
