//! Output in the Heroku CNB style (`bullet_stream`): header, bullets, sub-bullets,
//! streamed child output, warnings and error blocks. Every line passes through
//! [`redact::scrub`], so nothing preheat prints can leak a secret.

use crate::redact::scrub;
use bullet_stream::global::print;
use std::io::Write;

pub(crate) fn header(text: &str) {
    print::h2(scrub(text));
}

pub(crate) fn bullet(text: &str) {
    print::bullet(scrub(text));
}

pub(crate) fn sub_bullet(text: &str) {
    print::sub_bullet(scrub(text));
}

pub(crate) fn warning(text: &str) {
    print::warning(scrub(text));
}

pub(crate) fn error(text: &str) {
    print::error(scrub(text));
}

/// One line of a child's output, indented under its step.
pub(crate) fn stream_line(line: &str) {
    let mut writer = bullet_stream::global::GlobalWriter;
    // A closed stderr (the dyno is going away) must not panic the release.
    let _ = writeln!(
        writer,
        "      {}",
        scrub(line.trim_end_matches(['\n', '\r']))
    );
    let _ = writer.flush();
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The machine-readable tail of a summary line (the release summary, the warm-up
/// verdict, the gate's first-user line, await-live's verdict), so `heroku logs`
/// alone can be parsed: `… | event=warmup dyno=web.1 duration_ms=1600`.
/// Keys are stable; values with spaces, `=` or quotes are quoted.
pub(crate) fn figures(pairs: &[(&str, &dyn std::fmt::Display)]) -> String {
    let mut out = String::from(" |");
    for (key, value) in pairs {
        let value = value.to_string();
        out.push(' ');
        out.push_str(key);
        out.push('=');
        if value.is_empty() || value.contains([' ', '=', '"', '\\']) {
            out.push('"');
            out.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
            out.push('"');
        } else {
            out.push_str(&value);
        }
    }
    out
}

/// Reads the `key=value` tail that [`figures`] wrote, or `None` when the line has none.
pub(crate) fn parse_figures(line: &str) -> Option<Vec<(String, String)>> {
    let (_, tail) = line.rsplit_once(" | ")?;
    let mut pairs = Vec::new();
    let mut rest = tail.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || key.contains(' ') {
            return None;
        }
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end?..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        pairs.push((key.to_string(), value));
        rest = next.trim_start();
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_keeps_short_text_and_cuts_long_text() {
        assert_eq!(shorten("rake  db:migrate", 40), "rake db:migrate");
        assert_eq!(shorten("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn figures_round_trip_through_the_parser() {
        let tail = figures(&[
            ("event", &"first_users"),
            ("dyno", &"web.1"),
            ("p50_ms", &6),
            ("not_warmed", &"/reports \"x\""),
            ("empty", &""),
        ]);
        assert_eq!(
            tail,
            r#" | event=first_users dyno=web.1 p50_ms=6 not_warmed="/reports \"x\"" empty="""#
        );
        let line = format!("preheat: web.1 gate: first 3 users{tail}");
        assert_eq!(
            parse_figures(&line),
            Some(vec![
                ("event".to_string(), "first_users".to_string()),
                ("dyno".to_string(), "web.1".to_string()),
                ("p50_ms".to_string(), "6".to_string()),
                ("not_warmed".to_string(), "/reports \"x\"".to_string()),
                ("empty".to_string(), String::new()),
            ])
        );
    }

    #[test]
    fn a_line_without_figures_or_with_a_broken_tail_gives_none() {
        assert_eq!(parse_figures("preheat: web.1 warm in 1s"), None);
        assert_eq!(parse_figures("x | event=\"open"), None);
        assert_eq!(parse_figures("x | novalue"), None);
    }
}

/// How output looks: Heroku's coloured build style, or plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Build and release-phase output (bin/build, the classic compile, `preheat release`):
    /// always Heroku's style, as the platform's log shows it.
    Heroku,
    /// Commands people run by hand (`check`, `rehearse`, `warm`, `audit`, and any new one):
    /// colour only on a terminal, and never when `NO_COLOR` is set (<https://no-color.org>).
    Interactive,
}

/// Sets where and how every line goes; call once, first thing in `main`.
pub(crate) fn init(style: Style) {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if style == Style::Interactive && (no_color || !std::io::stderr().is_terminal()) {
        bullet_stream::global::set_writer(PlainText::new(std::io::stderr()));
    }
}

/// A writer that drops ANSI escape sequences (CSI `ESC [ … final` and two-byte `ESC x`),
/// even when one is split across writes.
pub(crate) struct PlainText<W> {
    inner: W,
    state: Escape,
}

#[derive(Clone, Copy)]
enum Escape {
    None,
    Started,
    Csi,
}

impl<W: Write> PlainText<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            state: Escape::None,
        }
    }
}

impl<W: Write> Write for PlainText<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut kept = Vec::with_capacity(buf.len());
        for &byte in buf {
            self.state = match (self.state, byte) {
                (Escape::None, 0x1b) => Escape::Started,
                (Escape::None, _) => {
                    kept.push(byte);
                    Escape::None
                }
                (Escape::Started, b'[') => Escape::Csi,
                (Escape::Csi, 0x40..=0x7e) | (Escape::Started, _) => Escape::None,
                (Escape::Csi, _) => Escape::Csi,
            };
        }
        self.inner.write_all(&kept)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod plain_text_tests {
    use super::PlainText;
    use std::io::Write;

    #[test]
    fn drops_escapes_even_split_across_writes() {
        let mut out = PlainText::new(Vec::new());
        let text = bullet_stream::style::value("value");
        let bytes = format!("- a {text} and \x1b[1;3").into_bytes();
        out.write_all(&bytes).expect("vec write");
        out.write_all(b"1mbold\x1b[0m.\n").expect("vec write");
        let written = String::from_utf8(out.inner).expect("utf-8");
        assert_eq!(written, "- a `value` and bold.\n");
        assert!(!written.contains('\x1b'));
    }
}
