//! Which requests name a path worth warming: the query string dropped, and
//! assets and paths that carry personal ids (long digit runs, UUIDs, emails)
//! left out, counted, never stored.

/// Assets left out unless `--assets` says otherwise: suffixes and prefixes.
pub(crate) const DEFAULT_ASSETS: &str = ".css,.js,.mjs,.map,.png,.jpg,.jpeg,.gif,.svg,.ico,.webp,.avif,.woff,.woff2,.ttf,.eot,/assets/,/static/,/packs/";

/// A path's class.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Class<'a> {
    /// The path without its query string.
    Page(&'a str),
    Asset,
    Personal,
}

pub(crate) struct Assets {
    suffixes: Vec<String>,
    prefixes: Vec<String>,
}

impl Assets {
    /// From a comma-separated list: entries starting with `/` are prefixes,
    /// others suffixes (`.css`). An empty list leaves nothing out as an asset.
    pub(crate) fn parse(list: &str) -> Self {
        let mut assets = Self {
            suffixes: Vec::new(),
            prefixes: Vec::new(),
        };
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.to_ascii_lowercase();
            if entry.starts_with('/') {
                assets.prefixes.push(entry);
            } else {
                assets.suffixes.push(entry);
            }
        }
        assets
    }

    fn contains(&self, path: &str) -> bool {
        let lower = path.to_ascii_lowercase();
        self.prefixes.iter().any(|p| lower.starts_with(p.as_str()))
            || self.suffixes.iter().any(|s| lower.ends_with(s.as_str()))
    }
}

pub(crate) fn classify<'a>(path: &'a str, assets: &Assets) -> Class<'a> {
    let path = path.split_once(['?', '#']).map_or(path, |(p, _)| p);
    if assets.contains(path) {
        Class::Asset
    } else if personal(path) {
        Class::Personal
    } else {
        Class::Page(path)
    }
}

/// Six digits in a row, a UUID, or an email (`@`, `%40`) anywhere in the path.
fn personal(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains('@') || lower.contains("%40") {
        return true;
    }
    let mut run = 0;
    for b in lower.bytes() {
        run = if b.is_ascii_digit() { run + 1 } else { 0 };
        if run >= 6 {
            return true;
        }
    }
    lower
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .any(is_uuid)
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_dropped_and_assets_and_ids_left_out() {
        let assets = Assets::parse(DEFAULT_ASSETS);
        assert_eq!(
            classify("/reports?year=2026", &assets),
            Class::Page("/reports")
        );
        assert_eq!(classify("/assets/app-1f2e.css", &assets), Class::Asset);
        assert_eq!(classify("/logo.PNG", &assets), Class::Asset);
        assert_eq!(classify("/users/1234567", &assets), Class::Personal);
        assert_eq!(classify("/users/42", &assets), Class::Page("/users/42"));
        assert_eq!(
            classify("/o/0b9c505d-5d65-4e63-8fee-fa18da33ee47/edit", &assets),
            Class::Personal
        );
        assert_eq!(classify("/u/ann%40example.com", &assets), Class::Personal);
        assert_eq!(
            classify("/style.css", &Assets::parse("")),
            Class::Page("/style.css")
        );
    }
}
