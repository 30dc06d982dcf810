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
