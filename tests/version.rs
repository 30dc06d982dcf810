//! One version everywhere: `Cargo.toml`, `buildpack.toml` and the latest
//! release in `CHANGELOG.md` must name the same version, so a release never
//! ships a buildpack whose `preheat --version` disagrees with its metadata.
#![allow(unused_crate_dependencies)]

use std::path::Path;

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `[table] version` from a TOML file.
fn toml_version(name: &str, table: &str) -> String {
    let doc: toml::Table = toml::from_str(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    doc.get(table)
        .and_then(|t| t.get("version"))
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("{name} has no [{table}] version"))
        .to_string()
}

/// The `## [x.y.z] - date` headings of a Keep a Changelog file, in order.
fn changelog_headings(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("## ["))
        .filter_map(|rest| {
            let (version, rest) = rest.split_once(']')?;
            let date = rest.trim().strip_prefix("- ").map(|d| d.trim().to_string());
            Some((version.to_string(), date))
        })
        .collect()
}

#[test]
fn cargo_buildpack_and_changelog_versions_match() {
    let cargo = toml_version("Cargo.toml", "package");
    let buildpack = toml_version("buildpack.toml", "buildpack");
    let headings = changelog_headings(&read("CHANGELOG.md"));
    let released = headings
        .iter()
        .find(|(version, _)| !version.eq_ignore_ascii_case("unreleased"))
        .map(|(version, _)| version.clone())
        .expect("CHANGELOG.md has no released version (`## [x.y.z] - YYYY-MM-DD`)");
    assert_eq!(
        cargo, buildpack,
        "Cargo.toml says {cargo} but buildpack.toml says {buildpack}: set both together"
    );
    assert_eq!(
        cargo, released,
        "Cargo.toml says {cargo} but the latest release in CHANGELOG.md is {released}: add a `## [{cargo}] - YYYY-MM-DD` section"
    );
}

#[test]
fn changelog_follows_keep_a_changelog() {
    let text = read("CHANGELOG.md");
    let headings = changelog_headings(&text);
    assert_eq!(
        headings.first().map(|(v, _)| v.as_str()),
        Some("Unreleased"),
        "CHANGELOG.md starts its sections with `## [Unreleased]`"
    );
    for (version, date) in headings.iter().skip(1) {
        let date = date
            .as_deref()
            .unwrap_or_else(|| panic!("`## [{version}]` has no ` - YYYY-MM-DD` date"));
        let parts: Vec<&str> = date.split('-').collect();
        assert!(
            parts.len() == 3
                && [4, 2, 2]
                    .iter()
                    .zip(&parts)
                    .all(|(len, p)| p.len() == *len && p.bytes().all(|b| b.is_ascii_digit())),
            "`## [{version}] - {date}`: the date is not YYYY-MM-DD"
        );
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("[{version}]: "))),
            "CHANGELOG.md has no `[{version}]: <link>` reference for `## [{version}]`"
        );
    }
    assert!(
        text.lines()
            .any(|line| line.to_ascii_lowercase().starts_with("[unreleased]: ")),
        "CHANGELOG.md has no `[unreleased]: <link>` reference"
    );
}
