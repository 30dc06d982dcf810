//! Generated `.env` files: each parses, or fails with the file and line
//! named and no value shown, within a time bound.

use super::*;
use crate::fuzz::{Tally, bounded, heavy_runner, runner};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

static LINES: Tally = Tally::new(".env, generated lines and bytes");
static BIG: Tally = Tally::new(".env, 1 MB values");

/// Never appears in an error: values are secrets.
const SECRET: &str = "s3cr3t-value-xyz";

fn check(bytes: Vec<u8>, tally: &Tally) -> Result<(), TestCaseError> {
    tally.add();
    let lines = bytes.split(|b| *b == b'\n').count();
    let result = bounded(".env", move || parse_dotenv(&bytes, Path::new(".env")));
    match result {
        Ok(_) => Ok(()),
        Err(message) => {
            prop_assert!(!message.contains(SECRET), "a value leaked: {message}");
            prop_assert!(message.len() < 1024, "{} bytes of error", message.len());
            if let Some(rest) = message
                .strip_prefix(".env:")
                .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            {
                let line: usize = rest
                    .split(':')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                prop_assert!(
                    (1..=lines).contains(&line),
                    "line {line} of {lines}: {message}"
                );
            } else {
                prop_assert!(
                    message.starts_with(".env is not") || message.starts_with(".env: a line"),
                    "{message}"
                );
            }
            Ok(())
        }
    }
}

fn line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        select(
            &[
                "A",
                "DATABASE_URL",
                "export A",
                "1A",
                "",
                "A B",
                "a.b",
                "é",
                "A-B"
            ][..]
        )
        .prop_map(str::to_string),
        "[A-Za-z0-9_ .-]{0,10}",
    ];
    let value = prop_oneof![
        select(
            &[
                "",
                "x",
                "\"x\"",
                "'x'",
                "\"unterminated",
                "'unterminated",
                "\"a\\\"b\"",
                "${A}",
                "${",
                "$A",
                "\\",
                "\"multi\nline\"",
                "x # comment",
                "\"\\u{0}\"",
                "a=b=c",
            ][..]
        )
        .prop_map(str::to_string),
        Just(SECRET.to_string()),
        Just(format!("\"{SECRET}")),
        Just(format!("{SECRET}'")),
        any::<String>(),
    ];
    prop_oneof![
        6 => (name, select(&["=", " = ", "", ":", "=="][..]), value)
            .prop_map(|(n, s, v)| format!("{n}{s}{v}")),
        1 => select(&["", "#", "# c", "   ", "export", "\r"][..]).prop_map(str::to_string),
    ]
}

#[test]
fn generated_dotenv_files_parse_or_name_the_line() {
    let strategy = prop_oneof![
        5 => proptest::collection::vec(line(), 0..10).prop_map(|lines| lines.join("\n").into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ];
    let result = runner(5000).run(&strategy, |bytes| check(bytes, &LINES));
    if let Err(error) = result {
        panic!("{error}");
    }
    LINES.report();
    assert!(LINES.get() > 0);
}

#[test]
fn one_megabyte_values_parse_or_name_the_line() {
    let strategy = (
        select(&["A=", "A=\"", "A='", "A=${", "=", "export A=", "\n\n"][..]),
        select(&["a", "\\", "$", "é", " "][..]),
    );
    let result = heavy_runner(8).run(&strategy, |(prefix, filler)| {
        let body = filler.repeat((1 << 20) / filler.len());
        check(format!("{prefix}{body}\nB=2\n").into_bytes(), &BIG)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    BIG.report();
    assert!(BIG.get() > 0);
}

#[test]
fn a_bad_line_is_named_without_its_value() {
    let error = parse_dotenv(
        format!("A=1\nTOKEN=\"{SECRET}\nB=2\n").as_bytes(),
        Path::new(".env"),
    )
    .expect_err("unterminated quote");
    assert!(error.starts_with(".env:2: the line for `TOKEN`"), "{error}");
    assert!(!error.contains(SECRET), "{error}");
    // dotenvy reports a bad escape with the value alone: the name is the
    // file's, and no part of the value becomes one.
    let error = parse_dotenv("B=2\nA=a=\\\u{10b78}\n".as_bytes(), Path::new(".env"))
        .expect_err("bad escape");
    assert!(error.starts_with(".env:2: the line for `A`"), "{error}");
    let error = parse_dotenv(b"A=1\nB=\xff\n", Path::new(".env")).expect_err("not UTF-8");
    assert!(
        error.starts_with(".env:2: the file is not UTF-8"),
        "{error}"
    );
}
