//! One direct session to the database, on a current-thread runtime, and
//! driver errors turned into messages that say what to do.

use super::LockError;
use super::target::Target;
use std::fmt::Write as _;
use std::time::Duration;
use tokio_postgres::error::SqlState;

pub(super) struct Session {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) client: tokio_postgres::Client,
    /// Drives the socket; ends when the client is dropped or the server goes away.
    pub(super) connection: tokio::task::JoinHandle<()>,
    pub(super) pid: i32,
}

pub(super) fn connect(target: &Target, connect_timeout: Duration) -> Result<Session, LockError> {
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
pub(super) fn describe_pg_error(error: &tokio_postgres::Error) -> String {
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

pub(super) fn io_kind(error: &tokio_postgres::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = cause.source();
    }
    None
}

pub(super) fn connect_error(target: &str, error: &tokio_postgres::Error) -> LockError {
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
