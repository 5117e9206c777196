//! Path templates: `/repos/{owner}/{repo}/git/refs/heads/{branch...}`.
//!
//! `{name}` captures exactly one segment, `{name...}` one or more segments (joined by `/`),
//! anything else is literal text compared with the decoded segment.

use crate::error::TemplateError;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    Capture(String),
    Rest(String),
}

/// A parsed path template.
#[derive(Debug, Clone)]
pub(crate) struct PathTemplate {
    segments: Vec<Segment>,
    rest_at: Option<usize>,
}

/// Characters escaped when a value is put back into one path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl PathTemplate {
    pub(crate) fn parse(text: &str) -> Result<Self, TemplateError> {
        let body = text
            .strip_prefix('/')
            .ok_or(TemplateError::NoLeadingSlash)?;
        let mut segments = Vec::new();
        let mut rest_at = None;
        if !body.is_empty() {
            for raw in body.split('/') {
                let seg = Self::parse_segment(raw)?;
                if let Segment::Rest(_) = seg {
                    if rest_at.is_some() {
                        return Err(TemplateError::TwoRestCaptures);
                    }
                    rest_at = Some(segments.len());
                }
                if let Segment::Capture(n) | Segment::Rest(n) = &seg
                    && segments
                        .iter()
                        .any(|s: &Segment| s.capture_name() == Some(n))
                {
                    return Err(TemplateError::DuplicateCapture(n.clone()));
                }
                segments.push(seg);
            }
        }
        Ok(Self { segments, rest_at })
    }

    fn parse_segment(raw: &str) -> Result<Segment, TemplateError> {
        if raw.is_empty() {
            return Err(TemplateError::EmptySegment);
        }
        if let Some(inner) = raw.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let (name, rest) = match inner.strip_suffix("...") {
                Some(n) => (n, true),
                None => (inner, false),
            };
            if !is_identifier(name) {
                return Err(TemplateError::BadCaptureName(name.to_string()));
            }
            return Ok(if rest {
                Segment::Rest(name.to_string())
            } else {
                Segment::Capture(name.to_string())
            });
        }
        if raw.contains(['{', '}']) {
            return Err(TemplateError::MixedSegment(raw.to_string()));
        }
        if raw.contains(['%', '?', '#']) {
            return Err(TemplateError::BadLiteral(raw.to_string()));
        }
        Ok(Segment::Literal(raw.to_string()))
    }

    /// Names of all captures, in order.
    pub(crate) fn captures(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(Segment::capture_name)
    }

    /// A key under which two templates that match exactly the same paths compare equal.
    pub(crate) fn shape(&self) -> String {
        let parts: Vec<&str> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Capture(_) => "{}",
                Segment::Rest(_) => "{...}",
            })
            .collect();
        format!("/{}", parts.join("/"))
    }

    /// Match decoded segments; returns `(capture, value)` pairs.
    pub(crate) fn matches(&self, path: &[String]) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        let Some(k) = self.rest_at else {
            if path.len() != self.segments.len() {
                return None;
            }
            for (seg, value) in self.segments.iter().zip(path) {
                seg.match_one(value, &mut out)?;
            }
            return Some(out);
        };
        let after = self.segments.len() - k - 1;
        if path.len() < k + after + 1 {
            return None;
        }
        for (seg, value) in self.segments[..k].iter().zip(&path[..k]) {
            seg.match_one(value, &mut out)?;
        }
        let tail_start = path.len() - after;
        for (seg, value) in self.segments[k + 1..].iter().zip(&path[tail_start..]) {
            seg.match_one(value, &mut out)?;
        }
        if let Segment::Rest(name) = &self.segments[k] {
            out.push((name.clone(), path[k..tail_start].join("/")));
        }
        Some(out)
    }

    /// Build a path from values; `None` if a capture has no value. Values are
    /// percent-encoded; a rest capture keeps its `/` separators.
    pub(crate) fn fill(&self, value: impl Fn(&str) -> Option<String>) -> Option<String> {
        let mut path = String::new();
        for seg in &self.segments {
            path.push('/');
            match seg {
                Segment::Literal(l) => path.push_str(l),
                Segment::Capture(n) => {
                    path.extend(utf8_percent_encode(&value(n)?, SEGMENT));
                }
                Segment::Rest(n) => {
                    let v = value(n)?;
                    let encoded: Vec<String> = v
                        .split('/')
                        .map(|p| utf8_percent_encode(p, SEGMENT).to_string())
                        .collect();
                    path.push_str(&encoded.join("/"));
                }
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        Some(path)
    }
}

impl Segment {
    fn capture_name(&self) -> Option<&str> {
        match self {
            Segment::Capture(n) | Segment::Rest(n) => Some(n),
            Segment::Literal(_) => None,
        }
    }

    fn match_one(&self, value: &str, out: &mut Vec<(String, String)>) -> Option<()> {
        match self {
            Segment::Literal(l) => (l == value).then_some(()),
            Segment::Capture(n) | Segment::Rest(n) => {
                out.push((n.clone(), value.to_string()));
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        crate::path::normalize(p).unwrap()
    }

    #[test]
    fn rest_capture_in_the_middle_keeps_slashes() {
        let t = PathTemplate::parse("/{repo...}/info/refs").unwrap();
        let m = t
            .matches(&segs("/group/sub/project.git/info/refs"))
            .unwrap();
        assert_eq!(m, vec![("repo".into(), "group/sub/project.git".into())]);
        assert!(t.matches(&segs("/info/refs")).is_none());
    }

    #[test]
    fn rejects_malformed_templates() {
        assert_eq!(
            PathTemplate::parse("repos").unwrap_err(),
            TemplateError::NoLeadingSlash
        );
        assert!(matches!(
            PathTemplate::parse("/a/{x}.git").unwrap_err(),
            TemplateError::MixedSegment(_)
        ));
        assert!(matches!(
            PathTemplate::parse("/{a...}/{b...}").unwrap_err(),
            TemplateError::TwoRestCaptures
        ));
        assert!(matches!(
            PathTemplate::parse("/{a}/{a}").unwrap_err(),
            TemplateError::DuplicateCapture(_)
        ));
        assert!(matches!(
            PathTemplate::parse("/a//b").unwrap_err(),
            TemplateError::EmptySegment
        ));
    }

    #[test]
    fn fill_encodes_values_per_segment() {
        let t = PathTemplate::parse("/repos/{owner}/{path...}").unwrap();
        let filled = t.fill(|n| Some(if n == "owner" { "a b" } else { "x/y?z" }.to_string()));
        assert_eq!(filled.unwrap(), "/repos/a%20b/x/y%3Fz");
        assert!(t.fill(|_| None).is_none());
    }
}
