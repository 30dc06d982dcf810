//! Input framing: reads bytes (never `lines()` on a String), one record at a
//! time, with a cap on the length kept, so a megabyte-long line costs a skip
//! and a count, not a megabyte. Octet-counted syslog frames (`83 <158>1 …`,
//! as logplex drains send them) are split out of a line too.

use std::io::{BufRead, ErrorKind};

/// The longest record kept; longer ones are skipped to their end and counted.
/// Heroku splits dyno lines at 10,000 bytes, so nothing real is longer.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// What the framer hands on.
pub(crate) enum Record<'a> {
    Line(&'a [u8]),
    /// A line longer than [`MAX_LINE`], skipped.
    TooLong,
}

/// Reads newline-delimited records from `reader`, calling `each` for each one.
/// Returns an error only when the reader itself fails.
pub(crate) fn each_record(
    reader: &mut dyn BufRead,
    each: &mut dyn FnMut(Record<'_>),
) -> std::io::Result<()> {
    let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE);
    let mut too_long = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if buf.is_empty() {
            if too_long {
                each(Record::TooLong);
            } else if !line.is_empty() {
                frames(&line, each);
            }
            return Ok(());
        }
        let (chunk, used, ended) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if ended {
            if too_long {
                each(Record::TooLong);
            } else {
                frames(&line, each);
            }
            line.clear();
            too_long = false;
        }
    }
}

/// One line: either a plain record, or one or more octet-counted frames.
fn frames(line: &[u8], each: &mut dyn FnMut(Record<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut rest = line;
    while let Some((len, body)) = octet_frame(rest) {
        let take = len.min(body.len());
        let frame = &body[..take];
        each(Record::Line(frame.strip_suffix(b"\n").unwrap_or(frame)));
        rest = &body[take..];
        if rest.is_empty() {
            return;
        }
    }
    if !rest.is_empty() {
        each(Record::Line(rest));
    }
}

/// `NNN <PRI>…`: the length and what follows the space.
fn octet_frame(text: &[u8]) -> Option<(usize, &[u8])> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 6 || text.get(digits) != Some(&b' ') {
        return None;
    }
    let body = &text[digits + 1..];
    if body.first() != Some(&b'<') {
        return None;
    }
    let len = std::str::from_utf8(&text[..digits]).ok()?.parse().ok()?;
    Some((len, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(input: &[u8]) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        let mut reader = std::io::BufReader::with_capacity(64, input);
        each_record(&mut reader, &mut |r| {
            out.push(match r {
                Record::Line(l) => Some(l.to_vec()),
                Record::TooLong => None,
            });
        })
        .expect("a slice never fails");
        out
    }

    #[test]
    fn lines_crlf_and_a_last_line_without_newline() {
        assert_eq!(
            records(b"a\r\nb\nc"),
            vec![
                Some(b"a".to_vec()),
                Some(b"b".to_vec()),
                Some(b"c".to_vec())
            ]
        );
    }

    #[test]
    fn a_long_line_is_skipped_and_the_next_one_read() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.extend_from_slice(b"\nnext\n");
        assert_eq!(records(&input), vec![None, Some(b"next".to_vec())]);
    }

    #[test]
    fn octet_counted_frames_in_one_line() {
        let a = "<158>1 2026-01-01T00:00:00+00:00 host heroku router - at=info";
        let b = "<13>1 2026-01-01T00:00:01+00:00 host app web.1 - hello";
        let input = format!("{} {a}{} {b}\n", a.len(), b.len());
        assert_eq!(
            records(input.as_bytes()),
            vec![Some(a.as_bytes().to_vec()), Some(b.as_bytes().to_vec())]
        );
    }
}
