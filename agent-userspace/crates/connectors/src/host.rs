//! Host patterns: exact names or globs (`*.slack.com`), case-insensitive.

use globset::{Glob, GlobBuilder, GlobMatcher};

#[derive(Debug, Clone)]
pub(crate) struct HostPattern {
    text: String,
    glob: Option<GlobMatcher>,
}

impl HostPattern {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        if lower.is_empty() {
            return Err("empty".into());
        }
        if lower.contains([':', '/', ' ']) {
            return Err("a host pattern is a host name without scheme, port or path".into());
        }
        let glob = if lower.contains(['*', '?', '[', '{']) {
            let g: Glob = GlobBuilder::new(&lower)
                .case_insensitive(true)
                .build()
                .map_err(|e| e.kind().to_string())?;
            Some(g.compile_matcher())
        } else {
            None
        };
        Ok(Self { text: lower, glob })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// `host` must already be normalised by [`normalize_host`].
    pub(crate) fn matches(&self, host: &str) -> bool {
        match &self.glob {
            Some(g) => g.is_match(host),
            None => self.text == host,
        }
    }

    /// Higher is more specific: exact names beat any glob, longer globs beat shorter ones.
    pub(crate) fn specificity(&self) -> usize {
        match self.glob {
            None => usize::MAX,
            Some(_) => self.text.chars().filter(|c| !"*?[]{}".contains(*c)).count(),
        }
    }
}

/// Lowercase, without a trailing dot, as hosts are compared.
pub(crate) fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_subdomains_and_exact_names_are_most_specific() {
        let g = HostPattern::parse("*.Slack.com").unwrap();
        assert!(g.matches("files.slack.com"));
        assert!(!g.matches("slack.com"));
        let e = HostPattern::parse("slack.com").unwrap();
        assert!(e.specificity() > g.specificity());
        assert!(HostPattern::parse("https://x").is_err());
    }
}
