//! The lock key: one signed 64-bit `pg_advisory_lock` key per app and
//! database, from SHA-256; never the credentials (see the module docs).

use super::target::Target;
use sha2::{Digest, Sha256};

const KEY_DOMAIN: &str = "preheat-migration-lock/v1";

/// The app part of the key: `HEROKU_APP_ID`, else `HEROKU_APP_NAME`, else `preheat`.
pub(crate) fn app_identity() -> String {
    app_identity_from(|name| std::env::var(name).ok())
}

pub(super) fn app_identity_from(lookup: impl Fn(&str) -> Option<String>) -> String {
    ["HEROKU_APP_ID", "HEROKU_APP_NAME"]
        .into_iter()
        .filter_map(lookup)
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "preheat".to_string())
}

/// See the module documentation: SHA-256 of app and database, first 8 bytes.
pub(super) fn lock_key(app: &str, target: &Target) -> i64 {
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
pub(super) fn key_halves(key: i64) -> (u32, u32) {
    let bits = key.cast_unsigned();
    (
        u32::try_from(bits >> 32).unwrap_or_default(),
        u32::try_from(bits & 0xFFFF_FFFF).unwrap_or_default(),
    )
}
