//! Trace and span ids. A release's trace id and root span id are derived from
//! the app and the release version, so processes that never talk share one trace.

use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) type TraceId = [u8; 16];
pub(crate) type SpanId = [u8; 8];

/// The trace and root span of `app`'s release `version` (e.g. `v42`).
pub(crate) fn release_ids(app: &str, version: &str) -> (TraceId, SpanId) {
    let digest = Sha256::new()
        .chain_update(b"preheat release trace\0")
        .chain_update(app.as_bytes())
        .chain_update(b"\0")
        .chain_update(version.as_bytes())
        .finalize();
    let mut trace = [0u8; 16];
    let mut span = [0u8; 8];
    trace.copy_from_slice(&digest[..16]);
    span.copy_from_slice(&digest[16..24]);
    (nonzero(trace), nonzero(span))
}

/// A fresh id: unique per process and call, not a secret (no CSPRNG needed).
fn fresh<const N: usize>() -> [u8; N] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = Sha256::new()
        .chain_update(now.to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .chain_update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes())
        .finalize();
    let mut out = [0u8; N];
    out.copy_from_slice(&digest[..N]);
    nonzero(out)
}

pub(crate) fn random_trace() -> TraceId {
    fresh()
}

pub(crate) fn random_span() -> SpanId {
    fresh()
}

fn nonzero<const N: usize>(mut id: [u8; N]) -> [u8; N] {
    if id.iter().all(|b| *b == 0) {
        id[N - 1] = 1;
    }
    id
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The W3C `traceparent` value for a sampled span.
pub(crate) fn traceparent(trace: &TraceId, span: SpanId) -> String {
    format!("00-{}-{}-01", hex(trace), hex(&span))
}

/// Reads a W3C `traceparent` (version 00), or `None` when it is malformed.
pub(crate) fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId)> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || flags.len() != 2 {
        return None;
    }
    let trace: TraceId = unhex(trace)?;
    let span: SpanId = unhex(span)?;
    if trace.iter().all(|b| *b == 0) || span.iter().all(|b| *b == 0) {
        return None;
    }
    Some((trace, span))
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids_are_stable_and_distinct() {
        assert_eq!(release_ids("app", "v1"), release_ids("app", "v1"));
        assert_ne!(release_ids("app", "v1").0, release_ids("app", "v2").0);
        assert_ne!(release_ids("app", "v1").0, release_ids("app2", "v1").0);
        // No ambiguity between ("ab","c") and ("a","bc").
        assert_ne!(release_ids("ab", "c").0, release_ids("a", "bc").0);
    }

    #[test]
    fn fresh_ids_differ() {
        assert_ne!(random_span(), random_span());
        assert_ne!(random_trace(), random_trace());
    }

    #[test]
    fn traceparent_round_trips() {
        let (trace, span) = release_ids("app", "v7");
        let header = traceparent(&trace, span);
        assert_eq!(header.len(), 55);
        assert_eq!(parse_traceparent(&header), Some((trace, span)));
        assert_eq!(parse_traceparent("00-abc-def-01"), None);
        assert_eq!(
            parse_traceparent("00-00000000000000000000000000000000-0000000000000001-01"),
            None
        );
        assert_eq!(parse_traceparent("zz"), None);
    }
}
