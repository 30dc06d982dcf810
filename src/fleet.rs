//! Whether `preheat release` will also confirm, through the Platform API, that
//! the whole release is live and warm.

use crate::config::Config;
use crate::skip::Skip;

/// One line for the release output.
pub(crate) fn describe(config: &Config, skip: Skip) -> String {
    if config.notify.is_none() {
        return "off (add [notify] to preheat.toml to hear when the release is live and warm)"
            .to_string();
    }
    if skip.notify {
        return "skipped for this release (PREHEAT_SKIP=notify)".to_string();
    }
    "not available in this version of preheat; boot warm-up alone applies".to_string()
}
