//! Shape errors (an unknown key, a wrong type), every one of them: serde stops
//! at the first, so each error's key is dropped from the parsed document and
//! the rest is read again. Only a syntax error stops at once.

use super::diagnostic::{Located, from_toml, is_unknown_key};
use super::raw::RawConfig;
use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer};

/// More than this many shape errors in one file are not worth reading on.
const MOST: usize = 50;

/// What `read` found besides the config.
pub(super) struct Shape {
    pub(super) problems: Vec<Located>,
    /// Tables that lost a wrongly typed key: a check inside them could only
    /// report that the key is missing, so their other checks are not kept.
    pub(super) tainted: Vec<Range<usize>>,
}

/// The config with every wrong key left out, and what was wrong; `Err` for
/// a syntax error, or a shape error that cannot be placed.
pub(super) fn read(text: &str) -> Result<(RawConfig, Shape), toml::de::Error> {
    let mut root = DeTable::parse(text)?;
    let mut shape = Shape {
        problems: Vec::new(),
        tainted: Vec::new(),
    };
    // Keys dropped for a wrong type: serde then misses them in their table.
    let mut dropped: Vec<String> = Vec::new();
    loop {
        let error = match RawConfig::deserialize(Deserializer::from(root.clone())) {
            Ok(raw) => return Ok((raw, shape)),
            Err(error) => error,
        };
        let Some(span) = error.span() else {
            return Err(error);
        };
        let unknown = is_unknown_key(&error);
        let Some((name, parent)) = drop_at(root.get_mut(), &span) else {
            return Err(error);
        };
        let missing = error
            .message()
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .is_some_and(|(field, _)| dropped.iter().any(|d| d == field));
        if missing {
            continue;
        }
        if !unknown {
            dropped.push(name);
            shape.tainted.extend(parent);
        }
        shape.problems.push(from_toml(&error));
        if shape.problems.len() >= MOST {
            return Err(error);
        }
    }
}

fn within(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Removes the key whose key, or whose plain value, is at `at`, searching the
/// whole tree: the span of an `[[array]]` table is only its header. Gives the
/// key's name, and the extent of the nested table it was in (`None` for a key
/// of `table` itself); `None` when no key is there.
fn drop_at(table: &mut DeTable<'_>, at: &Range<usize>) -> Option<(String, Option<Range<usize>>)> {
    let here = table
        .iter()
        .find(|(key, value)| {
            within(&key.span(), at)
                || (within(&value.span(), at)
                    && !matches!(value.get_ref(), DeValue::Table(_) | DeValue::Array(_)))
        })
        .map(|(key, _)| key.clone());
    if let Some(key) = here {
        table.remove(&key);
        return Some((key.get_ref().to_string(), None));
    }
    let found = table
        .iter_mut()
        .find_map(|(_, value)| drop_inside(value, at));
    if let Some((name, extent)) = found {
        return Some((name, Some(extent)));
    }
    // A table or array that is wrong as a whole (`[notify]` without its `webhook`).
    let whole = table
        .iter()
        .find(|(_, value)| value.span() == *at)
        .map(|(key, _)| key.clone())?;
    table.remove(&whole);
    Some((whole.get_ref().to_string(), None))
}

/// `drop_at` in a table value, or in the tables of an array value; the key's
/// name and the extent of the table that lost it.
fn drop_inside(
    value: &mut Spanned<DeValue<'_>>,
    at: &Range<usize>,
) -> Option<(String, Range<usize>)> {
    let header = value.span();
    match value.get_mut() {
        DeValue::Table(table) => {
            let extent = extent(header, table);
            drop_at(table, at).map(|(name, inner)| (name, inner.unwrap_or(extent)))
        }
        DeValue::Array(items) => items.iter_mut().find_map(|item| drop_inside(item, at)),
        _ => None,
    }
}

/// From the first to the last byte of a table's header, keys and values.
fn extent(header: Range<usize>, table: &DeTable<'_>) -> Range<usize> {
    table
        .iter()
        .flat_map(|(key, value)| [key.span(), value.span()])
        .fold(header, |all, span| {
            all.start.min(span.start)..all.end.max(span.end)
        })
}
