//! Glob patterns over action names, agent names and host names.
//!
//! Only `*` (any run of characters, dots included) and `?` (one character)
//! are special. A hand-rolled matcher keeps matching allocation-free and
//! lets exact names and `prefix.*` patterns - nearly every pattern a policy
//! holds - short-cut to a string comparison.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    pattern: Box<str>,
    shape: Shape,
    fold_case: bool,
}

#[derive(Clone, PartialEq, Eq)]
enum Shape {
    Exact,
    Any,
    /// `prefix*` with no other wildcard.
    Prefix(Box<str>),
    General,
}

impl Glob {
    /// A case-sensitive glob, used for action and agent names.
    pub(crate) fn new(pattern: &str) -> Glob {
        Glob::build(pattern, false)
    }

    /// A case-insensitive glob, used for DNS names.
    pub(crate) fn new_fold_case(pattern: &str) -> Glob {
        Glob::build(&pattern.to_ascii_lowercase(), true)
    }

    fn build(pattern: &str, fold_case: bool) -> Glob {
        let wild = |c: char| c == '*' || c == '?';
        let shape = if !pattern.contains(wild) {
            Shape::Exact
        } else if pattern.chars().all(|c| c == '*') {
            Shape::Any
        } else if let Some(prefix) = pattern.strip_suffix('*')
            && !prefix.contains(wild)
        {
            Shape::Prefix(prefix.into())
        } else {
            Shape::General
        };
        Glob {
            pattern: pattern.into(),
            shape,
            fold_case,
        }
    }

    pub(crate) fn is_exact(&self) -> bool {
        self.shape == Shape::Exact
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.pattern
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Exact => eq(self.pattern.as_bytes(), text.as_bytes(), self.fold_case),
            Shape::Prefix(prefix) => {
                text.len() >= prefix.len()
                    && eq(
                        prefix.as_bytes(),
                        &text.as_bytes()[..prefix.len()],
                        self.fold_case,
                    )
            }
            Shape::General => wildcard_match(&self.pattern, text, self.fold_case),
        }
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

fn eq(a: &[u8], b: &[u8], fold_case: bool) -> bool {
    if fold_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

fn char_eq(p: char, t: char, fold_case: bool) -> bool {
    p == t || (fold_case && p.eq_ignore_ascii_case(&t))
}

/// Classic greedy matcher with single-star backtracking: linear in practice
/// and never allocates.
fn wildcard_match(pattern: &str, text: &str, fold_case: bool) -> bool {
    let pat = pattern.as_bytes();
    let txt = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < txt.len() {
        if pi < pat.len() && pat[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < pat.len() && pat[pi] == b'?' {
            // `?` stands for one character, which may be several UTF-8 bytes.
            pi += 1;
            ti += utf8_len(txt[ti]);
        } else if pi < pat.len() && char_eq(pat[pi] as char, txt[ti] as char, fold_case) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            let next = st + utf8_len(txt[st]);
            star = Some((sp, next));
            ti = next;
        } else {
            return false;
        }
    }
    pat[pi..].iter().all(|&b| b == b'*')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn glob_table() {
        let cases = [
            ("github.*", "github.pr.merge", true),
            ("github.*", "github", false),
            ("github.*", "gitlab.pr.merge", false),
            ("*", "anything.at.all", true),
            ("github.pr.merge", "github.pr.merge", true),
            ("github.pr.merge", "github.pr.merged", false),
            ("*.read", "stripe.customer.read", true),
            ("*.read", "stripe.customer.create", false),
            ("stripe.*.read", "stripe.charge.read", true),
            ("stripe.*.read", "stripe.charge.create", false),
            ("a?c", "abc", true),
            ("a?c", "aéc", true),
            ("a?c", "abbc", false),
            ("sub-*", "sub-writer", true),
            ("*x*y*", "axbyc", true),
            ("*x*y*", "aybxc", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text),
                want,
                "{pattern} vs {text}"
            );
        }
    }

    #[test]
    fn host_globs_fold_case_and_need_a_subdomain() {
        let g = Glob::new_fold_case("*.GitHub.com");
        assert!(g.matches("api.github.com"));
        assert!(g.matches("API.GITHUB.COM"));
        assert!(!g.matches("github.com"));
        assert!(!g.matches("evilgithub.com"));
    }
}
