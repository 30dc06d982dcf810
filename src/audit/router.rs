//! The router's line: `at=info method=GET path="/x" host=… request_id=…
//! fwd=… dyno=web.1 connect=0ms service=12ms status=200 bytes=… protocol=https`,
//! and its errors: `at=error code=H12 desc="Request timeout" … service=30000ms`.

#[derive(Debug, PartialEq, Eq)]
#[allow(
    clippy::struct_field_names,
    reason = "request_id is the router's own key"
)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// The path as logged, query string included.
    pub(crate) path: &'a str,
    pub(crate) dyno: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) service_ms: Option<u64>,
    pub(crate) status: Option<u16>,
    /// `H12`, `H13`… for `at=error`.
    pub(crate) error: Option<&'a str>,
}

/// Reads a router message, or `None` when it is not a request line
/// (a `sock=client at=warning` line, garbage, a truncated line).
pub(crate) fn parse(message: &str) -> Option<Request<'_>> {
    let mut at = None;
    let mut request = Request {
        method: "",
        path: "",
        dyno: "",
        request_id: "",
        service_ms: None,
        status: None,
        error: None,
    };
    for (key, value) in pairs(message) {
        match key {
            "at" => at = Some(value),
            "code" => request.error = Some(value),
            "method" => request.method = value,
            "path" => request.path = value,
            "dyno" => request.dyno = value,
            "request_id" => request.request_id = value,
            "service" => request.service_ms = millis(value),
            "status" => request.status = value.parse().ok(),
            _ => {}
        }
    }
    match at? {
        "info" if request.service_ms.is_some() => request.error = None,
        "error" if request.error.is_some() => {}
        _ => return None,
    }
    // H20 and H10 name no dyno; they still count as router errors.
    if request.method.is_empty()
        || !request.path.starts_with('/')
        || (request.dyno.is_empty() && request.error.is_none())
    {
        return None;
    }
    Some(request)
}

/// `12ms` → 12 (the router logs whole milliseconds; `1.5ms` rounds down).
fn millis(value: &str) -> Option<u64> {
    let number = value.strip_suffix("ms")?;
    let whole = number.split_once('.').map_or(number, |(w, _)| w);
    whole.parse().ok()
}

/// `key=value` and `key="quoted value"` pairs, in order; bare words are skipped.
pub(crate) fn pairs(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                return None;
            }
            let word_end = rest.find([' ', '=']).unwrap_or(rest.len());
            if rest.as_bytes().get(word_end) != Some(&b'=') {
                rest = &rest[word_end..];
                continue;
            }
            let key = &rest[..word_end];
            let after = &rest[word_end + 1..];
            if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"').unwrap_or(quoted.len());
                let value = &quoted[..end];
                rest = quoted.get(end + 1..).unwrap_or("");
                return Some((key, value));
            }
            let end = after.find(' ').unwrap_or(after.len());
            rest = &after[end..];
            return Some((key, &after[..end]));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_info_line() {
        let r = parse(r#"at=info method=GET path="/reports?y=2026" host=a.herokuapp.com request_id=abc fwd="1.2.3.4" dyno=web.2 connect=0ms service=1532ms status=200 bytes=12 protocol=https"#)
            .expect("parses");
        assert_eq!(r.path, "/reports?y=2026");
        assert_eq!(r.dyno, "web.2");
        assert_eq!(r.service_ms, Some(1532));
        assert_eq!(r.error, None);
    }

    #[test]
    fn an_h12_and_an_h13() {
        let r = parse(r#"at=error code=H12 desc="Request timeout" method=GET path="/slow" host=a request_id=x fwd="1.2.3.4" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=https"#)
            .expect("parses");
        assert_eq!(r.error, Some("H12"));
        let r = parse(r#"at=error code=H13 desc="Connection closed without response" method=GET path="/" host=a request_id=y fwd="1.2.3.4" dyno=web-12a34b56d-e78f9 connect=1ms service=5ms status=503 bytes=0"#)
            .expect("parses");
        assert_eq!(r.error, Some("H13"));
        let r = parse(r#"at=error code=H20 desc="App boot timeout" method=GET path="/" host=a request_id=z fwd="1.2.3.4" dyno= connect= service= status=503 bytes= protocol=https"#)
            .expect("parses");
        assert_eq!((r.error, r.dyno), (Some("H20"), ""));
    }

    #[test]
    fn truncated_and_other_lines_are_not_requests() {
        assert_eq!(parse("at=info method=GET path=\"/x"), None);
        assert_eq!(
            parse("sock=client at=warning code=H27 desc=\"Client Request Interrupted\""),
            None
        );
        assert_eq!(parse(""), None);
        assert_eq!(parse("==== ==\"\" = \""), None);
    }
}
