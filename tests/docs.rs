//! Every relative link in README.md, ARCHITECTURE.md and docs/*.md points at
//! a file that exists and, for `#anchor` parts, at a heading of that file
//! (GitHub's slug rules). Links in fenced code blocks and inline code, and
//! absolute (`scheme://`, `mailto:`) links, are not checked.
#![allow(unused_crate_dependencies)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The Markdown files whose links are checked, relative to `root`.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of `text` outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence: Option<(char, usize)> = None;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        match (fence, marker) {
            (None, Some(c)) if run >= 3 => fence = Some((c, run)),
            (Some((c, open)), Some(m))
                if m == c && run >= open && trimmed[run..].trim().is_empty() =>
            {
                fence = None;
            }
            (None, _) => lines.push((index + 1, line)),
            _ => {}
        }
    }
    lines
}

/// `line` with inline code spans (`` `…` ``, ``` ``…`` ```) removed.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let ticks = "`".repeat(run);
        let after = &rest[start + run..];
        if let Some(end) = after.find(&ticks) {
            rest = &after[end + run..];
        } else {
            // An unmatched run is literal text.
            out.push_str(&ticks);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The targets of `[text](target)` links and `[label]: target` definitions.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let trimmed = line.trim_start();
    if trimmed.starts_with('[')
        && let Some((label, rest)) = trimmed[1..].split_once("]:")
        && !label.is_empty()
        && let Some(target) = rest.split_whitespace().next()
    {
        targets.push(target.trim_matches(['<', '>']).to_string());
    }
    let mut rest = line.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let mut depth = 0usize;
        let end = after
            .char_indices()
            .find(|(_, c)| match c {
                '(' => {
                    depth += 1;
                    false
                }
                ')' if depth == 0 => true,
                ')' => {
                    depth -= 1;
                    false
                }
                _ => false,
            })
            .map_or(after.len(), |(i, _)| i);
        let inside = after[..end].trim();
        let target = if let Some(angled) = inside.strip_prefix('<') {
            angled.split('>').next().unwrap_or_default()
        } else {
            inside.split_whitespace().next().unwrap_or_default()
        };
        targets.push(target.to_string());
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor for a heading text: markup dropped, lower-cased, every
/// character but letters, digits, `-`, `_` and spaces dropped, spaces → `-`.
fn slug(heading: &str) -> String {
    // `[text](url)` reads as `text`.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let link = after
            .split_once("](")
            .and_then(|(label, tail)| tail.split_once(')').map(|(_, tail)| (label, tail)));
        if let Some((label, tail)) = link {
            text.push_str(label);
            rest = tail;
        } else {
            text.push('[');
            rest = after;
        }
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor of a Markdown file's ATX headings, duplicates numbered `-1`, `-2`…
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&level) || line.len() - trimmed.len() > 3 {
            continue;
        }
        let rest = &trimmed[level..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            continue;
        }
        // A closing run of `#` is not part of the heading.
        let title = rest.trim().trim_end_matches('#').trim_end();
        let base = slug(title);
        let count = seen.entry(base.clone()).or_insert(0);
        anchors.push(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    anchors
}

fn is_absolute(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// One line per broken relative link in `files`: `file:line: link (why)`.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for file in files {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        let Ok(text) = fs::read_to_string(file) else {
            broken.push(format!("{shown}: cannot be read"));
            continue;
        };
        let dir = file.parent().unwrap_or(root);
        for (number, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.is_empty() || is_absolute(&target) {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let linked = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !linked.exists() {
                    broken.push(format!("{shown}:{number}: {target} (no such file)"));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                let headings = if linked.extension().is_some_and(|ext| ext == "md") {
                    fs::read_to_string(&linked)
                        .map(|t| anchors(&t))
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                if !headings.iter().any(|h| h == anchor) {
                    broken.push(format!("{shown}:{number}: {target} (no heading #{anchor})"));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = documents(root);
    for required in ["README.md", "ARCHITECTURE.md", "docs/reference.md"] {
        assert!(
            files.contains(&root.join(required)) && root.join(required).is_file(),
            "{required} is missing"
        );
    }
    let broken = broken_links(root, &files);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// Messages name the docs users have as `docs/<file>.md, “<heading>”`: each
/// such reference in `src/` must name a file and a heading that exist.
#[test]
fn messages_name_docs_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = 0;
    let mut broken = Vec::new();
    for file in rust_files(&root.join("src")) {
        let text = fs::read_to_string(&file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("docs/") {
                let rest = &line[at..];
                let Some((doc, after)) = rest.split_once(".md") else {
                    continue;
                };
                let doc = format!("{doc}.md");
                let target = root.join(&doc);
                let shown = format!(
                    "{}:{}",
                    file.strip_prefix(root).unwrap_or(&file).display(),
                    number + 1
                );
                if !target.is_file() {
                    broken.push(format!("{shown}: {doc} (no such file)"));
                    continue;
                }
                found += 1;
                let Some(heading) = after
                    .strip_prefix(", “")
                    .and_then(|h| h.split_once('”'))
                    .map(|(h, _)| h)
                else {
                    continue;
                };
                let text = fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&text).contains(&slug(heading)) {
                    broken.push(format!("{shown}: {doc} has no heading “{heading}”"));
                }
            }
        }
    }
    assert!(found > 0, "no message in src/ names a docs/ file");
    assert!(
        broken.is_empty(),
        "messages name missing docs:\n{}",
        broken.join("\n")
    );
}

#[test]
fn a_broken_link_or_anchor_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    fs::create_dir(root.join("docs")).expect("docs dir");
    fs::write(
        root.join("docs/a.md"),
        "# A page\n\n## Keys: `x` and y\n\n## Keys: `x` and y\n",
    )
    .expect("write a.md");
    fs::write(
        root.join("README.md"),
        "# Top\n\n\
         [ok](docs/a.md) [ok](docs/a.md#keys-x-and-y) [ok](docs/a.md#keys-x-and-y-1) [ok](#top)\n\
         [gone](docs/missing.md) and [bad anchor](docs/a.md#nope) and [self](#elsewhere)\n\
         [web](https://example.com/x) `[code](nowhere.md)`\n\
         [def]: docs/also-missing.md\n\
         ```\n[fenced](nowhere.md)\n```\n",
    )
    .expect("write README.md");
    let broken = broken_links(root, &documents(root)[..1]);
    assert_eq!(
        broken,
        [
            "README.md:4: docs/missing.md (no such file)",
            "README.md:4: docs/a.md#nope (no heading #nope)",
            "README.md:4: #elsewhere (no heading #elsewhere)",
            "README.md:6: docs/also-missing.md (no such file)",
        ]
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug("preheat.toml keys"), "preheattoml-keys");
    assert_eq!(
        slug("`preheat restart [--rolling] [--type TYPE] [--app APP]`"),
        "preheat-restart---rolling---type-type---app-app"
    );
    assert_eq!(
        slug("Heroku (Fir generation, Cloud Native Buildpacks)"),
        "heroku-fir-generation-cloud-native-buildpacks"
    );
    assert_eq!(slug("See [the docs](x.md) now"), "see-the-docs-now");
    assert_eq!(
        anchors("# A\n## A\n```\n# not a heading\n```\n## A ##\n"),
        ["a", "a-1", "a-2"]
    );
}
