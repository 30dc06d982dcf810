//! The parts of a `postgres://` URL the lock uses, parsed as libpq reads
//! them, and the driver config built from them.

use super::LockError;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_postgres::config::SslMode;

/// What `pg_stat_activity.application_name` shows for the lock's session.
pub(super) const APPLICATION_NAME: &str = "preheat migration lock";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Host {
    Tcp(String),
    /// A Unix socket directory (`?host=/var/run/postgresql`).
    Socket(PathBuf),
}

impl Host {
    pub(super) fn key_part(&self) -> String {
        match self {
            Host::Tcp(name) => name.to_ascii_lowercase(),
            Host::Socket(dir) => dir.display().to_string(),
        }
    }

    pub(super) fn is_local(&self) -> bool {
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
pub(super) enum Tls {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// The parts of a `postgres://` URL the lock uses.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) host: Host,
    pub(super) port: u16,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) dbname: Option<String>,
    pub(super) tls: Tls,
    pub(super) root_cert: Option<PathBuf>,
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
    pub(super) fn parse(url: &str) -> Result<Self, LockError> {
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
    pub(super) fn dbname_or_user(&self) -> &str {
        self.dbname
            .as_deref()
            .or(self.user.as_deref())
            .unwrap_or_default()
    }

    /// `host:port/dbname`, for messages: never the user or the password.
    pub(super) fn label(&self) -> String {
        let place = match &self.host {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]:{}", self.port),
            Host::Tcp(name) => format!("{name}:{}", self.port),
            Host::Socket(dir) => format!("{} (socket, port {})", dir.display(), self.port),
        };
        format!("{place}/{}", self.dbname_or_user())
    }

    pub(super) fn pg_config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
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
}
