//! Every `preheat` command and every `preheat.toml` key that README.md,
//! ARCHITECTURE.md and docs/*.md name exists, in the spirit of the link test
//! (tests/docs.rs). The real names come from the binary itself: the commands
//! from `preheat --help` (clap's list), the keys of each table from the
//! "Valid keys here: …" help that `preheat check` prints for an unknown key
//! (the list serde's `deny_unknown_fields` gives the did-you-mean).
//!
//! What is checked: code spans and code-block lines that start with
//! `preheat WORD` (WORD must be a command, listed or hidden), code spans of the form
//! `[table] key`, and `key = …` lines in fenced `toml` blocks under a
//! preheat table header. Output lines (`preheat: …`) and other TOML files'
//! tables (`fly.toml`, `project.toml`) are not.
#![allow(unused_crate_dependencies)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The tables of preheat.toml, with a document that has an unknown key in each.
const TABLES: [(&str, &str); 8] = [
    ("", "bogus_key_for_docs_test = 1\n"),
    ("release", "[release]\nbogus_key_for_docs_test = 1\n"),
    ("migrate", "[[migrate]]\nbogus_key_for_docs_test = 1\n"),
    ("prime", "[[prime]]\nbogus_key_for_docs_test = 1\n"),
    ("warmup", "[warmup]\nbogus_key_for_docs_test = 1\n"),
    (
        "warmup.requests",
        "[[warmup.requests]]\nbogus_key_for_docs_test = 1\n",
    ),
    ("notify", "[notify]\nbogus_key_for_docs_test = 1\n"),
    ("confirm", "[confirm]\nbogus_key_for_docs_test = 1\n"),
];

/// The commands clap lists under `Commands:` in `preheat --help`.
fn real_commands() -> BTreeSet<String> {
    let output = support::preheat()
        .arg("--help")
        .output()
        .expect("run preheat --help");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let mut commands = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            if let Some(word) = line.split_whitespace().next() {
                commands.insert(word.to_string());
            }
        }
    }
    assert!(commands.contains("release"), "{text}");
    commands
}

/// Each table's keys, from `preheat check`'s help for an unknown key.
fn real_keys() -> BTreeMap<String, BTreeSet<String>> {
    let mut tables = BTreeMap::new();
    for (table, document) in TABLES {
        let dir = support::app(&[("preheat.toml", document)]);
        let output = support::preheat()
            .arg("check")
            .arg(dir.path())
            .output()
            .expect("run preheat check");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let list = text
            .split("Valid keys here: ")
            .nth(1)
            .and_then(|rest| rest.split(".\n").next())
            .unwrap_or_else(|| panic!("no key list for [{table}]:\n{text}"));
        let keys: BTreeSet<String> = list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        assert!(!keys.is_empty(), "[{table}]: {text}");
        tables.insert(table.to_string(), keys);
    }
    tables
}

/// What the docs name: `(file:line, what, problem)` for every unknown name.
fn unknown_names(
    name: &str,
    text: &str,
    commands: &BTreeSet<String>,
    keys: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fence: Option<String> = None;
    let mut table: Option<String> = None;
    for (index, line) in text.lines().enumerate() {
        let at = format!("{name}:{}", index + 1);
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(info.trim().to_string()),
            };
            table = None;
            continue;
        }
        match fence.as_deref() {
            Some(lang) => {
                check_command_line(trimmed, commands, &at, &mut problems);
                if lang == "toml" {
                    check_toml_line(trimmed, &mut table, keys, &at, &mut problems);
                }
            }
            None => {
                for span in line.split('`').skip(1).step_by(2) {
                    check_command_line(span, commands, &at, &mut problems);
                    check_table_key(span, keys, &at, &mut problems);
                }
            }
        }
    }
    problems
}

/// `preheat WORD …`: WORD is a command (or a flag, like `--help`).
fn check_command_line(
    text: &str,
    commands: &BTreeSet<String>,
    at: &str,
    problems: &mut Vec<String>,
) {
    let text = text.trim_start_matches(['$', ' ', '#']);
    let text = text.strip_prefix("target/release/").unwrap_or(text);
    let Some(rest) = text.strip_prefix("preheat ") else {
        return;
    };
    let Some(word) = rest.split_whitespace().next() else {
        return;
    };
    if !word.chars().all(|c| c.is_ascii_lowercase() || c == '-') || word.starts_with('-') {
        return;
    }
    if !commands.contains(word) && !hidden_command(word) {
        problems.push(format!("{at}: `preheat {word}` is not a command"));
    }
}

/// A command clap hides from `--help` (like `classic`, which the classic
/// buildpack's scripts call) still answers `preheat WORD --help`.
fn hidden_command(word: &str) -> bool {
    support::preheat()
        .args([word, "--help"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `[table] key`: key is a key of that table.
fn check_table_key(
    span: &str,
    keys: &BTreeMap<String, BTreeSet<String>>,
    at: &str,
    problems: &mut Vec<String>,
) {
    let Some(rest) = span.strip_prefix('[') else {
        return;
    };
    let rest = rest.trim_start_matches('[');
    let Some((table, key)) = rest.split_once(']') else {
        return;
    };
    let key = key
        .trim_start_matches(']')
        .split_whitespace()
        .next()
        .unwrap_or("");
    if !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') || key.is_empty() {
        return;
    }
    let Some(known) = keys.get(table) else {
        return;
    };
    if !known.contains(key) {
        problems.push(format!("{at}: `[{table}] {key}` is not a preheat.toml key"));
    }
}

/// A line of a toml block: a table header, or `key = …` under a preheat table.
fn check_toml_line(
    line: &str,
    table: &mut Option<String>,
    keys: &BTreeMap<String, BTreeSet<String>>,
    at: &str,
    problems: &mut Vec<String>,
) {
    if line.starts_with('[') {
        let name = line
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim();
        *table = keys.contains_key(name).then(|| name.to_string());
        return;
    }
    let Some(current) = table.as_deref() else {
        return;
    };
    let Some((key, _)) = line.split_once('=') else {
        return;
    };
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return;
    }
    if !keys[current].contains(key) {
        problems.push(format!("{at}: `{key}` is not a key of [{current}]"));
    }
}

fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_command_and_key_the_docs_name_exists() {
    let commands = real_commands();
    let keys = real_keys();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for file in documents(root) {
        let text = fs::read_to_string(&file).expect("read doc");
        let name = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .display()
            .to_string();
        problems.extend(unknown_names(&name, &text, &commands, &keys));
    }
    assert!(
        problems.is_empty(),
        "names in the docs that preheat does not have:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_planted_bad_name_fails() {
    let commands = real_commands();
    let keys = real_keys();
    let planted = "Run `preheat rehaerse .` and set `[confirm] rollbak = true`.\n\n```toml\n[warmup]\npaths = [\"/\"]\ndeadlin = \"60s\"\n```\n\n```\npreheat awiat-live v42\n```\n";
    let problems = unknown_names("planted.md", planted, &commands, &keys);
    assert_eq!(
        problems,
        [
            "planted.md:1: `preheat rehaerse` is not a command",
            "planted.md:1: `[confirm] rollbak` is not a preheat.toml key",
            "planted.md:6: `deadlin` is not a key of [warmup]",
            "planted.md:10: `preheat awiat-live` is not a command",
        ]
    );
    // And the real names pass.
    let good = "`preheat rehearse .`, `[confirm] rollback`, `[warmup] paths`\n";
    assert!(unknown_names("good.md", good, &commands, &keys).is_empty());
}
