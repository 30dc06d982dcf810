//! `PREHEAT_SKIP=migrate,prime,warmup,notify,telemetry`: skip phases for one deploy.

use std::fmt;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // one flag per phase is the natural shape
pub(crate) struct Skip {
    pub(crate) migrate: bool,
    pub(crate) prime: bool,
    pub(crate) warmup: bool,
    pub(crate) notify: bool,
    /// Read by `telemetry` itself (a lower layer); accepted here so it is not an error.
    pub(crate) telemetry: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SkipError(String);

impl fmt::Display for SkipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PREHEAT_SKIP names `{}`, which is not a phase.\n\nUse a comma-separated subset of migrate, prime, warmup, notify, telemetry, e.g. `heroku config:set PREHEAT_SKIP=migrate`, or unset it with `heroku config:unset PREHEAT_SKIP`.",
            self.0
        )
    }
}

impl Skip {
    pub(crate) fn parse(value: &str) -> Result<Self, SkipError> {
        let mut skip = Skip::default();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "migrate" => skip.migrate = true,
                "prime" => skip.prime = true,
                "warmup" => skip.warmup = true,
                "notify" => skip.notify = true,
                "telemetry" => skip.telemetry = true,
                _ => return Err(SkipError(part.to_string())),
            }
        }
        Ok(skip)
    }

    pub(crate) fn from_env() -> Result<Self, SkipError> {
        Self::parse(&std::env::var("PREHEAT_SKIP").unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subsets() {
        assert_eq!(Skip::parse(""), Ok(Skip::default()));
        let skip = Skip::parse("migrate, Warmup").expect("valid");
        assert!(skip.migrate && skip.warmup && !skip.prime && !skip.notify);
        assert!(Skip::parse("telemetry").expect("valid").telemetry);
    }

    #[test]
    fn rejects_unknown_phases() {
        let err = Skip::parse("migrations").expect_err("invalid");
        assert!(
            err.to_string()
                .contains("`migrations`, which is not a phase")
        );
    }
}
