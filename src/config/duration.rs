//! Durations as users write them in `preheat.toml`: `"90s"`, `"5m"`, `"1h30m"`.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::time::Duration;

/// A duration parsed from the `preheat.toml` syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Span(pub(crate) Duration);

impl Span {
    pub(crate) const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub(crate) const fn get(self) -> Duration {
        self.0
    }
}

/// The longest duration preheat accepts. Every deadline is `now + duration`,
/// and a value near `u64::MAX` seconds would overflow the clock.
pub(crate) const MAX: Duration = Duration::from_hours(30 * 24);

/// Parses `"500ms"`, `"90s"`, `"5m"`, `"1h"` and sums of them (`"1m30s"`).
pub(crate) fn parse(input: &str) -> Result<Duration, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err(hint("an empty duration"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(hint(&format!("`{input}`")));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit = unit.trim();
        let number: u64 = number
            .parse()
            .map_err(|_| format!("`{input}` is too large for a duration"))?;
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "" => {
                return Err(format!(
                    "`{input}` has no unit; write it like \"{number}s\" or \"{number}m\""
                ));
            }
            other => {
                return Err(format!(
                    "`{input}` has an unknown unit `{other}`; use ms, s, m or h"
                ));
            }
        };
        total = total.saturating_add(part);
        rest = tail;
    }
    if total.is_zero() {
        return Err(format!("`{input}` is zero; a duration must be positive"));
    }
    if total > MAX {
        return Err(format!(
            "`{input}` is longer than 30 days, the longest duration preheat accepts"
        ));
    }
    Ok(total)
}

fn hint(what: &str) -> String {
    format!("{what} is not a duration; write it like \"90s\", \"5m\" or \"1h\"")
}

/// Short human form: `850ms`, `1.8s`, `2m05s`, `1h00m`.
pub(crate) fn human(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else if millis < 3_600_000 {
        let secs = duration.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        let secs = duration.as_secs();
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// The form a user writes in `preheat.toml`, so a plan can be pasted back.
impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let millis = d.as_millis();
        if !millis.is_multiple_of(1000) {
            return write!(f, "{millis}ms");
        }
        let secs = d.as_secs();
        if secs.is_multiple_of(3600) {
            write!(f, "{}h", secs / 3600)
        } else if secs.is_multiple_of(60) {
            write!(f, "{}m", secs / 60)
        } else {
            write!(f, "{secs}s")
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map(Span).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("5m"), Ok(Duration::from_mins(5)));
        assert_eq!(parse("1h"), Ok(Duration::from_hours(1)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_bad_input_with_a_hint() {
        assert!(parse("90").expect_err("invalid").contains("no unit"));
        assert!(
            parse("5 minutes")
                .expect_err("invalid")
                .contains("unknown unit")
        );
        assert!(parse("").expect_err("invalid").contains("\"90s\""));
        assert!(
            parse("fast")
                .expect_err("invalid")
                .contains("not a duration")
        );
        assert!(parse("0s").expect_err("invalid").contains("zero"));
        assert!(
            parse("18446744073709551615s")
                .expect_err("invalid")
                .contains("longer than 30 days")
        );
        assert_eq!(parse("720h"), Ok(MAX));
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(Span::secs(90).to_string(), "90s");
        assert_eq!(Span::secs(300).to_string(), "5m");
        assert_eq!(Span::secs(3600).to_string(), "1h");
        assert_eq!(Span(Duration::from_millis(1500)).to_string(), "1500ms");
    }

    #[test]
    fn human_is_short() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(1840)), "1.8s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
    }
}
