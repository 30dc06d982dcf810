//! One log record, either framing: the `heroku logs` form
//! (`TIMESTAMP SOURCE[PROC]: MESSAGE`) or syslog RFC 5424 as log drains send it
//! (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MESSAGE`). Both give the same
//! four parts; what the message means is for `router` and `mod.rs`.

/// A record's parts. `source` is `heroku`/`app` (or Fir's `heroku-router`…).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Header<'a> {
    /// Milliseconds since the Unix epoch.
    pub(crate) at_ms: i64,
    pub(crate) source: &'a str,
    pub(crate) proc: &'a str,
    pub(crate) message: &'a str,
}

pub(crate) fn parse(text: &str) -> Option<Header<'_>> {
    let text = text.trim_start_matches('\u{feff}');
    if text.starts_with('<') {
        syslog(text)
    } else {
        cli(text)
    }
}

fn cli(text: &str) -> Option<Header<'_>> {
    let (stamp, rest) = text.split_once(' ')?;
    let at_ms = timestamp(stamp)?;
    let (tag, message) = rest.split_once(": ").or_else(|| {
        // `heroku[router]:` with an empty message.
        rest.strip_suffix(':').map(|tag| (tag, ""))
    })?;
    let (source, proc) = tag.strip_suffix(']')?.split_once('[')?;
    if source.is_empty() || proc.is_empty() || tag.contains(' ') {
        return None;
    }
    Some(Header {
        at_ms,
        source,
        proc,
        message,
    })
}

fn syslog(text: &str) -> Option<Header<'_>> {
    let rest = text.strip_prefix('<')?;
    let (pri, rest) = rest.split_once('>')?;
    if pri.is_empty() || pri.len() > 3 || !pri.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix("1 ")?;
    let mut parts = rest.splitn(5, ' ');
    let at_ms = timestamp(parts.next()?)?;
    let _host = parts.next()?;
    let source = parts.next()?;
    let proc = parts.next()?;
    let rest = parts.next().unwrap_or("");
    // MSGID, then structured data or `-`; logplex writes `-` once for both.
    let (_msgid, mut message) = rest.split_once(' ').unwrap_or((rest, ""));
    if message.starts_with('[') {
        message = skip_structured_data(message)?;
    } else if let Some(after) = message.strip_prefix("- ") {
        message = after;
    } else if message == "-" {
        message = "";
    }
    if source.is_empty() || proc.is_empty() {
        return None;
    }
    Some(Header {
        at_ms,
        source,
        proc,
        message,
    })
}

/// `[id k="v"][id2 …] MSG` → `MSG` (quoted values may hold `]` escaped as `\]`).
fn skip_structured_data(mut text: &str) -> Option<&str> {
    while let Some(inner) = text.strip_prefix('[') {
        let mut escaped = false;
        let mut quoted = false;
        let mut end = None;
        for (i, c) in inner.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = !quoted,
                ']' if !quoted => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        text = &inner[end? + 1..];
    }
    Some(text.strip_prefix(' ').unwrap_or(text))
}

/// RFC 3339 (`2026-03-01T12:00:00.123456+00:00` or `…Z`) to epoch milliseconds.
pub(crate) fn timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let s = text.get(from..to)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(3)];
        millis = kept.parse::<i64>().ok()? * 10_i64.pow(3 - u32::try_from(kept.len()).ok()?);
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h: i64 = num_in(&rest[1..3])?;
            let m: i64 = num_in(&rest[4..6])?;
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

fn num_in(text: &str) -> Option<i64> {
    if text.bytes().all(|c| c.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_fractions_and_offsets() {
        assert_eq!(timestamp("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(timestamp("1970-01-01T00:00:01.5+00:00"), Some(1500));
        assert_eq!(timestamp("1970-01-01T01:00:00.123456+01:00"), Some(123));
        assert_eq!(
            timestamp("2026-03-01T12:00:00+00:00"),
            Some(1_772_366_400_000)
        );
        assert_eq!(timestamp("2026-13-01T12:00:00+00:00"), None);
        assert_eq!(timestamp("2026-03-01T12:00:00"), None);
        assert_eq!(timestamp("garbage"), None);
    }

    #[test]
    fn the_heroku_logs_form() {
        let h = parse("2026-03-01T12:00:00.000000+00:00 heroku[router]: at=info method=GET")
            .expect("parses");
        assert_eq!(
            (h.source, h.proc, h.message),
            ("heroku", "router", "at=info method=GET")
        );
        let h = parse("2026-03-01T12:00:00+00:00 app[web-12a34b56d-e78f9]: hi").expect("parses");
        assert_eq!(h.proc, "web-12a34b56d-e78f9");
        assert_eq!(parse("2026-03-01T12:00:00+00:00 no tag here"), None);
    }

    #[test]
    fn the_syslog_form_logplex_and_with_structured_data() {
        let h = parse("<158>1 2026-03-01T12:00:00+00:00 host heroku router - at=info x=1")
            .expect("parses");
        assert_eq!(
            (h.source, h.proc, h.message),
            ("heroku", "router", "at=info x=1")
        );
        let h = parse(r#"<13>1 2026-03-01T12:00:00Z h app web.1 ID [a b="]\""][c] hello"#)
            .expect("parses");
        assert_eq!(h.message, "hello");
        assert_eq!(parse("<x>1 2026-03-01T12:00:00Z h app web.1 - m"), None);
    }
}
