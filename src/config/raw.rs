//! The shapes of `preheat.toml` as written: spanned, so that every error
//! can point at its line and column.

use super::duration::Span;
use super::template::Template;
use super::{LockKind, Method, Notify, Release};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) release: Release,
    #[serde(default)]
    pub(super) migrate: Vec<Spanned<RawStep>>,
    #[serde(default)]
    pub(super) prime: Vec<Spanned<RawStep>>,
    pub(super) warmup: Option<Spanned<RawWarmup>>,
    pub(super) notify: Option<Notify>,
    pub(super) confirm: Option<RawConfirm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfirm {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    pub(super) deadline: Option<Spanned<Span>>,
    pub(super) poll: Option<Spanned<Span>>,
    pub(super) time_to_live: Option<Spanned<Span>>,
    #[serde(default)]
    pub(super) rollback: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub(super) name: Option<String>,
    pub(super) run: Option<Spanned<String>>,
    pub(super) http: Option<Spanned<RawHttp>>,
    pub(super) timeout: Option<Span>,
    #[serde(default = "yes")]
    pub(super) required: bool,
    #[serde(default)]
    pub(super) only_if_env: Vec<Spanned<String>>,
    pub(super) expect_status: Option<Vec<Spanned<u16>>>,
    pub(super) retries: Option<Spanned<u32>>,
    pub(super) lock: Option<Spanned<LockKind>>,
    pub(super) lock_timeout: Option<Spanned<Span>>,
    pub(super) lock_url: Option<Spanned<Template>>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    #[serde(default = "default_http_method")]
    pub(super) method: Method,
    pub(super) url: Spanned<Template>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, Template>,
    pub(super) body: Option<Template>,
    pub(super) timeout: Option<Span>,
}

fn default_http_method() -> Method {
    Method::Get
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWarmup {
    #[serde(default = "yes")]
    pub(super) enabled: bool,
    pub(super) paths: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) request: Vec<RawWarmRequest>,
    pub(super) rounds: Option<Spanned<u32>>,
    pub(super) max_rounds: Option<Spanned<u32>>,
    pub(super) concurrency: Option<Spanned<u32>>,
    pub(super) deadline: Option<Span>,
    pub(super) host: Option<String>,
    pub(super) url: Option<Spanned<Template>>,
    pub(super) gate_timeout: Option<Spanned<Span>>,
    pub(super) first_users: Option<Spanned<u32>>,
    pub(super) first_users_window: Option<Spanned<Span>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWarmRequest {
    pub(super) path: Spanned<String>,
    #[serde(default = "default_http_method")]
    pub(super) method: Method,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, Template>,
    pub(super) body: Option<Template>,
    pub(super) expect_status: Option<Vec<Spanned<u16>>>,
    pub(super) expect_body: Option<String>,
}
