//! Generated `preheat.toml` files: random TOML, mutations of valid files and
//! hostile values in every key. Each must parse or fail with a located error,
//! within a time bound, and a file that parses must be safe to run (every
//! deadline it sets can be added to the clock). Counts: docs/hostile-input.md.

use super::*;
use crate::fuzz::{Tally, bounded, heavy_runner, runner};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use std::fmt::Write as _;
use std::time::Instant;

static RANDOM_TOML: Tally = Tally::new("preheat.toml, random TOML trees");
static MUTATED: Tally = Tally::new("preheat.toml, mutated valid files (bytes)");
static SLOTS: Tally = Tally::new("preheat.toml, hostile values in every key");
static TEXT: Tally = Tally::new("preheat.toml, random text and bytes");
static MEGABYTE: Tally = Tally::new("preheat.toml, 1 MB values");

/// Every key of preheat.toml, and the example's.
const FULL: &str = r#"
[release]
deadline = "55m"
lock = "postgres"
lock_timeout = "2m"
lock_url = "${DIRECT_DATABASE_URL}"

[[migrate]]
name = "schema"
run = "bundle exec rails db:migrate"
timeout = "30m"
only_if_env = ["DATABASE_URL"]
lock_url = "postgres://app@db.internal:5432/app"

[[prime]]
name = "search index"
http = { method = "POST", url = "https://search.example.com/reindex", headers = { Authorization = "Bearer ${SEARCH_TOKEN}" }, body = "{}", timeout = "10s" }
expect_status = [200, 202]
retries = 3
required = false

[warmup]
paths = ["/", "/dashboard"]
rounds = 2
concurrency = 4
deadline = "90s"
host = "www.example.com"
url = "https://www.example.com/"

[[warmup.request]]
path = "/api/health"
method = "HEAD"
headers = { Accept = "application/json" }
body = "x"
expect_status = [204]
expect_body = "ok"

[notify]
webhook = "${PREHEAT_WEBHOOK_URL}"

[confirm]
enabled = true
deadline = "20m"
poll = "10s"
time_to_live = "1h"
"#;

const EXAMPLE: &str = include_str!("../../examples/getting-started/preheat.toml");

/// Parses `bytes` as `load_dir` would, under the time bound, then uses the result.
fn check(bytes: Vec<u8>, tally: &Tally) -> Result<(), TestCaseError> {
    tally.add();
    let lines = bytes.split(|b| *b == b'\n').count();
    let result = bounded("preheat.toml", move || {
        Config::parse_bytes(&bytes, Path::new("preheat.toml")).map(|config| exercise(&config))
    });
    match result {
        Ok(()) => Ok(()),
        Err(ConfigError::Several(ref errors)) => {
            // `check` reports every problem at once: each must be located on its own.
            prop_assert!(errors.len() >= 2, "{} problems", errors.len());
            for error in errors {
                located(error, lines)?;
            }
            Ok(())
        }
        Err(ref error @ ConfigError::Invalid { .. }) => located(error, lines),
        Err(other) => Err(TestCaseError::fail(format!("not located: {other}"))),
    }
}

/// What release, warm and check do with a valid file, short of running it.
fn exercise(config: &Config) {
    let now = Instant::now();
    let mut spans = vec![config.release.deadline.get(), config.warmup.deadline];
    spans.extend(config.release.lock_timeout.map(Span::get));
    if let Some(confirm) = &config.confirm {
        spans.extend([confirm.deadline, confirm.poll, confirm.time_to_live]);
    }
    for step in config.migrate.iter().chain(&config.prime) {
        spans.extend(step.timeout);
        spans.extend(step.lock.as_ref().map(|lock| lock.timeout));
        let _ = plan::describe_step(step);
        if let Action::Http(http) = &step.action {
            spans.push(http.timeout);
            let _ = http.retries.saturating_add(1);
            let _ = http.url.expand_with(|_| Some("x".to_string()));
            for (_, value) in &http.headers {
                let _ = value.expand_with(|_| None);
            }
        }
    }
    for span in spans {
        // The release, the warmer and await-live all do `now + duration`.
        let _ = now + span;
    }
    let _ = plan::describe_warmup(config);
    let _ = plan::describe_confirm(config);
    let _ = config.confirm_settings();
    if let Some(notify) = &config.notify {
        let _ = notify.webhook.vars();
    }
}

/// One problem: a line and column inside the file, a message and a help line,
/// shown as `preheat.toml:LINE:COLUMN: …`, and short whatever the input's size.
fn located(error: &ConfigError, lines: usize) -> Result<(), TestCaseError> {
    let ConfigError::Invalid {
        line,
        column,
        message,
        help,
        ..
    } = error
    else {
        return Err(TestCaseError::fail(format!("not located: {error}")));
    };
    prop_assert!((1..=lines).contains(line), "line {line} of {lines}");
    prop_assert!(*column >= 1);
    prop_assert!(!message.is_empty() && !help.is_empty());
    let text = error.to_string();
    prop_assert!(
        text.starts_with(&format!("preheat.toml:{line}:{column}: ")),
        "{text}"
    );
    // A megabyte of input must not make a megabyte of error.
    prop_assert!(text.len() < 4096, "{} bytes of error", text.len());
    Ok(())
}

pub(super) fn run_all<S: Strategy>(
    mut runner: proptest::test_runner::TestRunner,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    if let Err(error) = runner.run(&strategy, test) {
        panic!("{error}");
    }
}

/// A TOML basic string holding `text`, escaped.
pub(super) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const WRONG_TYPES: &[&str] = &[
    "true",
    "false",
    "0",
    "-1",
    "1.5",
    "nan",
    "-inf",
    "+inf",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "1979-05-27",
    "[]",
    "{}",
    "[1, \"a\"]",
    "{ a = 1 }",
    "''",
    "\"\"",
    "0x7fffffff",
    "0o777",
    "0b1",
    "1_000",
    "[[]]",
    "[{}]",
    "'''\nx'''",
];
const HUGE_NUMBERS: &[&str] = &[
    "18446744073709551616",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "4294967295",
    "65536",
    "65535",
    "600",
    "99",
    "100",
    "101",
    "1e308",
    "1e309",
    "-0",
    "99999999999999999999999999999999",
];
const TEMPLATE_BITS: &[&str] = &[
    "${",
    "${}",
    "${A",
    "$${A}}",
    "${A}${",
    "${1}",
    "${A-B}",
    "}${A}",
    "$",
    "${${A}}",
    "${ A }",
    "\\${A}",
    "${DATABASE_URL}",
    "${é}",
    "${_}",
    "${A}}",
];
const SCHEMES: &[&str] = &[
    "http://",
    "https://",
    "ftp://",
    "postgres://",
    "postgresql://",
    "HTTP://",
    "http:/",
    "//",
    "",
    "javascript:",
    "file:///",
    "http:",
    "https:////",
];
const USERS: &[&str] = &["", "user:pa%ss@", "@", "u:${TOKEN}@", ":@", "a:b:c@"];
const HOSTS: &[&str] = &[
    "x.test",
    "127.0.0.1",
    "[::1]",
    "[::1",
    "%zz",
    "xn--",
    "",
    "${HOST}",
    "a..b",
    "-.-",
    "256.256.256.256",
    "ü.test",
    " ",
    "x.test\u{0}",
];
const PORTS: &[&str] = &[
    "",
    ":0",
    ":65535",
    ":65536",
    ":99999999999",
    ":-1",
    ":",
    ":${P}",
];
const URL_TAILS: &[&str] = &[
    "/", "", "/a b", "/%", "/${P}", "?q=${", "#frag", "/\\", "/../..",
];

fn duration_text() -> impl Strategy<Value = String> {
    let unit = select(
        &[
            "ms", "s", "m", "h", "d", "us", "µs", " s", "S", "M", "", "sm", "-",
        ][..],
    );
    (
        "[0-9]{0,22}",
        unit.clone(),
        proptest::option::of(("[0-9]{0,22}", unit)),
        select(&["", " ", "-", "+", "1.5"][..]),
    )
        .prop_map(|(n, u, more, pre)| {
            let tail = more.map(|(n, u)| format!("{n}{u}")).unwrap_or_default();
            format!("{pre}{n}{u}{tail}")
        })
}

fn url_text() -> impl Strategy<Value = String> {
    (
        select(SCHEMES),
        select(USERS),
        select(HOSTS),
        select(PORTS),
        select(URL_TAILS),
    )
        .prop_map(|(s, u, h, p, t)| format!("{s}{u}{h}{p}{t}"))
}

fn template_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            select(TEMPLATE_BITS).prop_map(str::to_string),
            "[a-zA-Z_/:.]{0,6}"
        ],
        1..6,
    )
    .prop_map(|parts| parts.concat())
}

fn deep_value() -> impl Strategy<Value = String> {
    (1usize..400, any::<bool>()).prop_map(|(depth, array)| {
        if array {
            format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}1{}", "{ a = ".repeat(depth), " }".repeat(depth))
        }
    })
}

/// A TOML value a user (or a typo) could put after `key =`.
pub(super) fn hostile_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        select(WRONG_TYPES).prop_map(str::to_string),
        select(HUGE_NUMBERS).prop_map(str::to_string),
        duration_text().prop_map(|t| quoted(&t)),
        url_text().prop_map(|t| quoted(&t)),
        template_text().prop_map(|t| quoted(&t)),
        any::<String>().prop_map(|t| quoted(&t)),
        // Unescaped: the lexer must cope with what the string holds.
        "[^\n]{0,40}".prop_map(|t| format!("\"{t}\"")),
        deep_value(),
    ];
    prop_oneof![
        6 => scalar.clone(),
        1 => proptest::collection::vec(scalar, 0..6).prop_map(|items| format!("[{}]", items.join(", "))),
    ]
}

/// Where a value goes: `@@` in each of these is replaced.
const SLOT_FILES: &[&str] = &[
    "[release]\ndeadline = @@\n",
    "[release]\nlock = @@\n[[migrate]]\nrun = \"m\"\n",
    "[release]\nlock = \"postgres\"\nlock_timeout = @@\n[[migrate]]\nrun = \"m\"\n",
    "[release]\nlock_url = @@\n",
    "[[migrate]]\nrun = @@\n",
    "[[migrate]]\nrun = \"m\"\nname = @@\n",
    "[[migrate]]\nrun = \"m\"\ntimeout = @@\n",
    "[[migrate]]\nrun = \"m\"\nonly_if_env = @@\n",
    "[[migrate]]\nrun = \"m\"\nonly_if_env = [@@]\n",
    "[[migrate]]\nrun = \"m\"\nrequired = @@\n",
    "[[migrate]]\nrun = \"m\"\nlock = @@\n",
    "[[migrate]]\nrun = \"m\"\nlock = \"postgres\"\nlock_timeout = @@\n",
    "[[migrate]]\nrun = \"m\"\nlock = \"postgres\"\nlock_url = @@\n",
    "[[migrate]]\nhttp = { url = @@ }\n",
    "[[prime]]\nhttp = @@\n",
    "[[prime]]\nhttp = { url = @@ }\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\", method = @@ }\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\", headers = @@ }\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\", headers = { Authorization = @@ } }\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\", body = @@ }\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\", timeout = @@ }\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\" }\nexpect_status = @@\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\" }\nexpect_status = [@@]\n",
    "[[prime]]\nhttp = { url = \"https://x.test/\" }\nretries = @@\n",
    "[[prime]]\nrun = \"p\"\nretries = @@\n",
    "[[prime]]\nrun = \"p\"\nexpect_status = [@@]\n",
    "[warmup]\npaths = @@\n",
    "[warmup]\npaths = [@@]\n",
    "[warmup]\nrounds = @@\n",
    "[warmup]\nconcurrency = @@\n",
    "[warmup]\ndeadline = @@\n",
    "[warmup]\nhost = @@\n",
    "[warmup]\nurl = @@\n",
    "[warmup]\nenabled = @@\npaths = []\n",
    "[[warmup.request]]\npath = @@\n",
    "[[warmup.request]]\npath = \"/\"\nmethod = @@\n",
    "[[warmup.request]]\npath = \"/\"\nheaders = { X = @@ }\n",
    "[[warmup.request]]\npath = \"/\"\nbody = @@\n",
    "[[warmup.request]]\npath = \"/\"\nexpect_status = @@\n",
    "[[warmup.request]]\npath = \"/\"\nexpect_body = @@\n",
    "[notify]\nwebhook = @@\n",
    "[confirm]\ndeadline = @@\n",
    "[confirm]\npoll = @@\n",
    "[confirm]\ntime_to_live = @@\n",
    "[confirm]\ndeadline = \"23h\"\ntime_to_live = @@\n",
    "[confirm]\nenabled = @@\n",
    "release = @@\n",
    "migrate = @@\n",
    "warmup = @@\n",
];

const KEYS: &[&str] = &[
    "release",
    "migrate",
    "prime",
    "warmup",
    "notify",
    "confirm",
    "deadline",
    "lock",
    "lock_timeout",
    "lock_url",
    "name",
    "run",
    "http",
    "timeout",
    "required",
    "only_if_env",
    "expect_status",
    "retries",
    "method",
    "url",
    "headers",
    "body",
    "paths",
    "request",
    "rounds",
    "concurrency",
    "host",
    "enabled",
    "expect_body",
    "webhook",
    "poll",
    "time_to_live",
    "Authorization",
    "relase",
    "primes",
    "warm_up",
    "",
];

pub(super) fn random_tree() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(toml::Value::Boolean),
        any::<i64>().prop_map(toml::Value::Integer),
        any::<f64>().prop_map(toml::Value::Float),
        duration_text().prop_map(toml::Value::String),
        url_text().prop_map(toml::Value::String),
        template_text().prop_map(toml::Value::String),
        any::<String>().prop_map(toml::Value::String),
        select(&["postgres", "GET", "post", "/", "/x", "true"][..])
            .prop_map(|s| toml::Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(toml::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![4 => select(KEYS).prop_map(str::to_string), 1 => any::<String>()],
                inner,
                0..6,
            )
            .prop_map(|map| toml::Value::Table(map.into_iter().collect())),
        ]
    })
}

#[test]
fn random_toml_trees_parse_or_fail_located() {
    let top = proptest::collection::btree_map(
        prop_oneof![4 => select(KEYS).prop_map(str::to_string), 1 => "[a-z_]{1,8}"],
        random_tree(),
        0..6,
    );
    run_all(runner(3000), top, |table| {
        let table: toml::Table = table.into_iter().collect();
        match toml::to_string(&table) {
            Ok(text) => check(text.into_bytes(), &RANDOM_TOML),
            // Not every tree has a TOML form (a table after a value in an array).
            Err(_) => Ok(()),
        }
    });
    RANDOM_TOML.report();
    assert!(RANDOM_TOML.get() > 0);
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    ReplaceValue(Index, String),
    DuplicateLine(Index),
    Truncate(Index),
}

const NOT_UTF8: &[&[u8]] = &[
    &[0x80],
    &[0xc3],
    &[0xe2, 0x82],
    &[0xed, 0xa0, 0x80],
    &[0xff],
    &[0xfe, 0xff],
];

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(
            &[
                "${", "\"", "'", "[", "]]", "[[", "=", "\n", "{", "}", ",", "#", "\\", "\"\"\"",
                "\r", "\t", "\u{0}", "\u{feff}", ".", "-", "é",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
        hostile_value().prop_map(String::into_bytes),
        // Bytes that are not UTF-8: a lone continuation, a cut sequence, a surrogate, 0xff.
        select(NOT_UTF8).prop_map(<[u8]>::to_vec),
        proptest::collection::vec(any::<u8>(), 1..8),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1usize..24).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<Index>(), fragment()).prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<Index>(), hostile_value()).prop_map(|(at, v)| Mutation::ReplaceValue(at, v)),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    let len = bytes.len();
    match mutation {
        Mutation::Delete(at, n) if len > 0 => {
            let start = at.index(len);
            bytes.drain(start..(start + n).min(len));
        }
        Mutation::Insert(at, fragment) => {
            let start = at.index(len + 1);
            bytes.splice(start..start, fragment.iter().copied());
        }
        Mutation::ReplaceValue(at, value) => {
            let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
            let with_value: Vec<usize> = (0..lines.len())
                .filter(|i| lines[*i].contains(&b'='))
                .collect();
            if !with_value.is_empty() {
                let pick = with_value[at.index(with_value.len())];
                let mut out = Vec::with_capacity(len + value.len());
                for (i, line) in lines.iter().enumerate() {
                    if i > 0 {
                        out.push(b'\n');
                    }
                    match line.iter().position(|b| *b == b'=') {
                        Some(eq) if i == pick => {
                            out.extend_from_slice(&line[..=eq]);
                            out.push(b' ');
                            out.extend_from_slice(value.as_bytes());
                        }
                        _ => out.extend_from_slice(line),
                    }
                }
                return out;
            }
        }
        Mutation::DuplicateLine(at) => {
            let lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let pick = at.index(lines.len());
            let mut out = lines[..=pick].to_vec();
            out.push(lines[pick].clone());
            out.extend_from_slice(&lines[pick + 1..]);
            return out.join(&b'\n');
        }
        Mutation::Truncate(at) => bytes.truncate(at.index(len + 1)),
        Mutation::Delete(..) => {}
    }
    bytes
}

#[test]
fn mutated_valid_files_parse_or_fail_located() {
    let strategy = (
        select(&[FULL, EXAMPLE][..]),
        proptest::collection::vec(mutation(), 1..5),
    );
    run_all(runner(6000), strategy, |(base, mutations)| {
        let bytes = mutations.iter().fold(base.as_bytes().to_vec(), apply);
        check(bytes, &MUTATED)
    });
    MUTATED.report();
    assert!(MUTATED.get() > 0);
}

#[test]
fn hostile_values_in_every_key_parse_or_fail_located() {
    let strategy = proptest::collection::vec((select(SLOT_FILES), hostile_value()), 1..3);
    run_all(runner(6000), strategy, |slots| {
        let text: String = slots
            .iter()
            .map(|(file, value)| file.replace("@@", value))
            .collect();
        check(text.into_bytes(), &SLOTS)
    });
    SLOTS.report();
    assert!(SLOTS.get() > 0);
}

#[test]
fn random_text_and_bytes_parse_or_fail_located() {
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "[\\[\\]{}=\"'.,#a-z_0-9 \n$\\\\-]{0,200}".prop_map(String::into_bytes),
        proptest::collection::vec(
            (
                select(KEYS),
                select(&[".", " = ", "=", "]\n", "\n[", "\n[[", "]]\n"][..])
            ),
            0..30
        )
        .prop_map(|parts| parts
            .iter()
            .flat_map(|(k, sep)| [*k, *sep])
            .collect::<String>()
            .into_bytes()),
    ];
    run_all(runner(6000), strategy, |bytes| check(bytes, &TEXT));
    TEXT.report();
    assert!(TEXT.get() > 0);
}

/// A megabyte, in one of the shapes that cost parsers the most.
fn megabyte() -> impl Strategy<Value = (&'static str, String)> {
    const MB: usize = 1 << 20;
    let filler = prop_oneof![
        Just("a".to_string()),
        Just("${".to_string()),
        Just("${A}".to_string()),
        Just("é".to_string()),
        Just("1".to_string()),
        Just("[".to_string()),
        Just("\\".to_string()),
        "[^\n]{1,8}",
    ];
    (
        select(
            &[
                "quoted", "raw", "key", "comment", "table", "dotted", "array",
            ][..],
        ),
        filler,
    )
        .prop_map(|(shape, filler)| {
            let body = filler.repeat(MB / filler.len().max(1));
            let text = match shape {
                "quoted" => quoted(&body),
                "raw" => format!("\"{body}\""),
                "key" => format!("{} = 1\n", quoted(&body)),
                "comment" => format!("# {body}\n[warmup]\npaths = [\"/\"]\n"),
                "table" => format!("[{body}]\n"),
                "dotted" => format!("{} = 1\n", vec!["a"; MB / 2].join(".")),
                _ => format!("[{}]", vec!["1"; MB / 2].join(",")),
            };
            (shape, text)
        })
}

#[test]
fn one_megabyte_values_fail_fast_with_a_short_located_error() {
    let strategy = (select(SLOT_FILES), megabyte());
    run_all(heavy_runner(12), strategy, |(file, (shape, value))| {
        let text = match shape {
            "key" | "comment" | "table" | "dotted" => value,
            _ => file.replace("@@", &value),
        };
        check(text.into_bytes(), &MEGABYTE)
    });
    MEGABYTE.report();
    assert!(MEGABYTE.get() > 0);
}

#[test]
fn regressions_found_by_the_generators() {
    // Each of these parsed, then panicked in release, warm or await-live on
    // `now + duration`, or overflowed `retries + 1`.
    for text in [
        "[release]\ndeadline = \"18446744073709551615s\"\n",
        "[warmup]\ndeadline = \"18446744073709551615h\"\n",
        "[confirm]\ndeadline = \"99999999999999h\"\n",
        "[[prime]]\nhttp = { url = \"https://x.test/\", timeout = \"18446744073709551615ms\" }\n",
        "[[prime]]\nhttp = { url = \"https://x.test/\" }\nretries = 4294967295\n",
    ] {
        let error = Config::parse(text, Path::new("preheat.toml")).expect_err(text);
        let shown = error.to_string();
        assert!(
            shown.contains("longer than 30 days") || shown.contains("at most 100"),
            "{shown}"
        );
    }
    let error = Config::parse_bytes(
        b"[warmup]\npaths = [\"/\xff\"]\n",
        Path::new("preheat.toml"),
    )
    .expect_err("not UTF-8");
    assert!(
        error
            .to_string()
            .starts_with("preheat.toml:2:12: byte 0xff is not UTF-8 text"),
        "{error}"
    );
}
