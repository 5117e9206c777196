//! The TOML shape of a policy file, read with positions so that every error
//! can say `file:line:col`.

use crate::error::PolicyError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) agents: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) default: Option<Spanned<RawVerdict>>,
    /// `"enforce"` (the default) or `"learn"`; checked in `compile.rs` so a
    /// misspelling names the field.
    pub(crate) mode: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) extends: Vec<Spanned<String>>,
    #[serde(default, rename = "rule")]
    pub(crate) rules: Vec<Spanned<RawRule>>,
    #[serde(default, rename = "limit")]
    pub(crate) limits: Vec<Spanned<RawLimit>>,
    #[serde(default, rename = "schedule")]
    pub(crate) schedules: Vec<Spanned<RawSchedule>>,
    pub(crate) envelope: Option<RawEnvelope>,
    /// Connector -> vault entry, or a list of bindings (see `bindings.rs`).
    #[serde(default)]
    pub(crate) credentials: BTreeMap<String, Spanned<crate::bindings_load::RawCredential>>,
    /// `"on"`, `"off"` or a `[contain]` table (see `contain.rs`).
    pub(crate) contain: Option<Spanned<toml::Value>>,
    /// Per-agent caps overriding the daemon's defaults (see `caps.rs`).
    pub(crate) caps: Option<crate::caps::RawCaps>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawVerdict {
    Allow,
    Deny,
    Approve,
    /// A standing human approval (`cordon approve --always`): allows where
    /// an `approve` of the same agent would ask; a `deny` still wins.
    Approved,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) id: Option<String>,
    pub(crate) action: Spanned<String>,
    pub(crate) decision: RawVerdict,
    pub(crate) reason: Option<String>,
    pub(crate) when: Option<Spanned<String>>,
    pub(crate) approval_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) ports: Vec<Spanned<RawPort>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawPort {
    Number(i64),
    Range(String),
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawOnExceed {
    Deny,
    Approve,
    Kill,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimit {
    pub(crate) id: Option<String>,
    pub(crate) action: String,
    pub(crate) max: u32,
    pub(crate) per: Spanned<String>,
    pub(crate) on_exceed: Option<RawOnExceed>,
    pub(crate) approval_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub(crate) name: Spanned<String>,
    pub(crate) window: Spanned<String>,
    #[serde(default)]
    pub(crate) freeze: bool,
    pub(crate) actions: Option<Vec<String>>,
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvelope {
    pub(crate) max_runtime: Option<Spanned<String>>,
    pub(crate) max_actions: Option<u64>,
    pub(crate) max_cost_usd: Option<Spanned<f64>>,
}

/// One file's text and name, for turning byte spans into line and column.
pub(crate) struct SourceText<'a> {
    pub(crate) name: &'a str,
    pub(crate) text: &'a str,
}

impl SourceText<'_> {
    pub(crate) fn parse(&self) -> Result<RawFile, PolicyError> {
        toml::from_str(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.invalid(span, e.message().to_string())
        })
    }

    /// 1-based line and column of a byte offset.
    pub(crate) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    pub(crate) fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, col) = self.line_col(span.start);
        PolicyError::Invalid {
            file: self.name.to_string(),
            line,
            col,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SourceText;

    #[test]
    fn line_col_counts_from_one() {
        let src = SourceText {
            name: "a.toml",
            text: "x = 1\ny = 2\n",
        };
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(6), (2, 1));
        assert_eq!(src.line_col(10), (2, 5));
    }
}
