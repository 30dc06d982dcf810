//! The pooler warning: a session lock through `PgBouncer` in transaction mode
//! silently does nothing, so the lock warns when its URL looks like one.

use super::target::{Host, Target};

/// Ports that poolers listen on by default: pgbouncer (6432), Supabase's
/// transaction pooler (6543).
pub(super) const POOLER_PORTS: [u16; 2] = [6432, 6543];

/// A warning when the URL looks like a connection pooler rather than the
/// database: a pooler port or host name, the local pgbouncer of Heroku's
/// pgbouncer buildpack (127.0.0.1:6000), or the value of a Heroku pooler
/// variable (`*_CONNECTION_POOL_URL`, `*_PGBOUNCER`).
pub(super) fn pooler_warning(
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
