//! `${VAR}` templates, checked when the config is parsed and expanded when a step runs.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A string that may hold `${VAR}` references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template(String);

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MissingVar(pub(crate) String);

impl fmt::Display for MissingVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "environment variable `{}` is not set (referenced as `${{{}}}`); set it with `heroku config:set {}=…` or remove the reference",
            self.0, self.0, self.0
        )
    }
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("`${{` without a closing `}}` in \"{text}\""));
        };
        let name = &after[..end];
        if !is_var_name(name) {
            return Err(format!(
                "`${{{name}}}` is not a valid variable reference; names use A-Z, 0-9 and _"
            ));
        }
        out.push(Piece::Var(name));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        pieces(text)?;
        Ok(Self(text.to_string()))
    }

    pub(crate) fn raw(&self) -> &str {
        &self.0
    }

    pub(crate) fn vars(&self) -> Vec<&str> {
        pieces(&self.0)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|piece| match piece {
                Piece::Var(name) => Some(name),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// Expands with `lookup`; an unset variable is an error that names it.
    pub(crate) fn expand_with(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String, MissingVar> {
        let mut out = String::with_capacity(self.0.len());
        for piece in pieces(&self.0).unwrap_or_default() {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Var(name) => {
                    out.push_str(&lookup(name).ok_or_else(|| MissingVar(name.to_string()))?);
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn expand(&self) -> Result<String, MissingVar> {
        self.expand_with(|name| std::env::var(name).ok())
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_known_vars() {
        let t = Template::parse("Bearer ${TOKEN}!${EMPTY}").expect("valid");
        assert_eq!(t.expand_with(env), Ok("Bearer abc!".to_string()));
        assert_eq!(t.vars(), vec!["TOKEN", "EMPTY"]);
    }

    #[test]
    fn missing_var_is_named() {
        let t = Template::parse("https://x/${NOPE}").expect("valid");
        let err = t.expand_with(env).expect_err("missing");
        assert_eq!(err, MissingVar("NOPE".into()));
        assert!(err.to_string().contains("`NOPE` is not set"));
    }

    #[test]
    fn rejects_malformed_references() {
        assert!(
            Template::parse("${OPEN")
                .expect_err("invalid")
                .contains("closing")
        );
        assert!(
            Template::parse("${1BAD}")
                .expect_err("invalid")
                .contains("not a valid")
        );
        assert!(Template::parse("plain $HOME").is_ok());
    }
}
