//! Scrubbing secret values out of bytes that leave the proxy (echoed responses, log lines).

use std::borrow::Cow;
use std::cell::OnceCell;

use crate::secret::Secret;

pub const REDACTED_STR: &str = "[REDACTED]";
pub const REDACTED: &[u8] = REDACTED_STR.as_bytes();

/// Replaces every occurrence of any secret's bytes in `haystack` with `[REDACTED]`. Overlapping
/// or adjacent matches of different secrets collapse into one marker, so no fragment of either
/// survives. Empty secrets are ignored (they would match everywhere). Borrows when nothing
/// matched.
pub fn redact<'a>(haystack: &'a [u8], secrets: &[&Secret]) -> Cow<'a, [u8]> {
    Redactor::new(secrets).redact(haystack)
}

/// [`redact`] with its searchers built once, for scrubbing many pieces (every header of a
/// response, each frame of its body) for the same secrets: building a searcher costs more
/// than running it over a header. They are built on the first piece long enough to hold a
/// secret (most header values are shorter than a token), and borrow the secrets' bytes;
/// they copy none.
pub struct Redactor<'s> {
    needles: Vec<&'s [u8]>,
    shortest: usize,
    finders: OnceCell<Vec<memchr::memmem::Finder<'s>>>,
}

impl<'s> Redactor<'s> {
    pub fn new(secrets: &[&'s Secret]) -> Redactor<'s> {
        let needles: Vec<&[u8]> = secrets
            .iter()
            .map(|s| s.expose())
            .filter(|needle| !needle.is_empty())
            .collect();
        Redactor {
            shortest: needles.iter().map(|n| n.len()).min().unwrap_or(usize::MAX),
            needles,
            finders: OnceCell::new(),
        }
    }

    /// See [`redact`].
    pub fn redact<'a>(&self, haystack: &'a [u8]) -> Cow<'a, [u8]> {
        let spans = self.spans(haystack);
        if spans.is_empty() {
            return Cow::Borrowed(haystack);
        }
        let mut out = Vec::with_capacity(haystack.len());
        let mut cursor = 0;
        let mut iter = spans.into_iter().peekable();
        while let Some((start, mut end)) = iter.next() {
            while let Some(&(next_start, next_end)) = iter.peek() {
                if next_start > end {
                    break;
                }
                end = end.max(next_end);
                iter.next();
            }
            out.extend_from_slice(&haystack[cursor..start]);
            out.extend_from_slice(REDACTED);
            cursor = end;
        }
        out.extend_from_slice(&haystack[cursor..]);
        Cow::Owned(out)
    }

    /// Overwrites every occurrence in place with a marker of the same length (`[REDACTED]`,
    /// cut or padded with `*`), for bytes whose length is part of their framing (a WebSocket
    /// frame's payload). Whether anything matched.
    pub fn mask_in_place(&self, haystack: &mut [u8]) -> bool {
        let spans = self.spans(haystack);
        for &(start, end) in &spans {
            for (i, b) in haystack[start..end].iter_mut().enumerate() {
                *b = REDACTED.get(i).copied().unwrap_or(b'*');
            }
        }
        !spans.is_empty()
    }

    /// Where any secret occurs, as `(start, end)`, sorted by start; overlapping occurrences
    /// ("aa" in "aaa") are all there, so covering every span leaves no fragment.
    fn spans(&self, haystack: &[u8]) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        if haystack.len() < self.shortest {
            return spans;
        }
        let finders = self.finders.get_or_init(|| {
            self.needles
                .iter()
                .map(|&n| memchr::memmem::Finder::new(n))
                .collect()
        });
        for finder in finders {
            let len = finder.needle().len();
            // Search from every match start + 1 rather than from the match end.
            let mut from = 0;
            while let Some(pos) = finder.find(&haystack[from..]) {
                let start = from + pos;
                spans.push((start, start + len));
                from = start + 1;
            }
        }
        spans.sort_unstable();
        spans
    }

    /// The longest tail of `bytes` that begins some secret without completing it: what a
    /// stream must hold back until more arrives, since the rest of a secret may follow.
    pub fn open_prefix(&self, bytes: &[u8]) -> usize {
        self.needles
            .iter()
            .filter_map(|needle| {
                (1..needle.len().min(bytes.len() + 1))
                    .rev()
                    .find(|&n| bytes[bytes.len() - n..] == needle[..n])
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Secret {
        Secret::from_slice(v.as_bytes())
    }

    #[test]
    fn masking_in_place_keeps_the_length_and_leaves_no_fragment() {
        let (a, b) = (s("secretAB"), s("ABCDEF0123"));
        let r = Redactor::new(&[&a, &b]);
        let mut buf = b"x secretABCDEF0123 y secretAB.".to_vec();
        let len = buf.len();
        assert!(r.mask_in_place(&mut buf));
        assert_eq!(buf.len(), len);
        assert_eq!(&buf[..], b"x [REDAC[REDACTED] y [REDACTE.");
        let mut clean = b"nothing here".to_vec();
        assert!(!r.mask_in_place(&mut clean));
        assert_eq!(&clean[..], b"nothing here");
    }

    #[test]
    fn the_open_prefix_is_the_longest_tail_that_begins_a_secret() {
        let (a, b) = (s("ghp_abcdef"), s("svc:xyz"));
        let r = Redactor::new(&[&a, &b]);
        assert_eq!(r.open_prefix(b"text ghp_ab"), 6);
        assert_eq!(r.open_prefix(b"text sv"), 2);
        assert_eq!(r.open_prefix(b"g"), 1);
        // A whole secret is a match, not a prefix; nothing after it begins one.
        assert_eq!(r.open_prefix(b"ghp_abcdef"), 0);
        assert_eq!(r.open_prefix(b"text"), 0);
        assert_eq!(r.open_prefix(b""), 0);
    }

    #[test]
    fn replaces_every_occurrence() {
        let tok = s("ghp_abc");
        let out = redact(b"auth ghp_abc and again ghp_abc.", &[&tok]);
        assert_eq!(&*out, b"auth [REDACTED] and again [REDACTED].");
    }

    #[test]
    fn borrows_when_nothing_matches() {
        let tok = s("ghp_abc");
        assert!(matches!(redact(b"clean", &[&tok]), Cow::Borrowed(_)));
    }

    #[test]
    fn overlapping_secrets_leave_no_fragment() {
        let a = s("secretAB");
        let b = s("ABCDEF");
        let out = redact(b"x secretABCDEF y", &[&a, &b]);
        assert_eq!(&*out, b"x [REDACTED] y");
        let rep = s("aa");
        assert_eq!(&*redact(b"aaa|a", &[&rep]), b"[REDACTED]|a");
    }

    #[test]
    fn empty_secret_is_ignored() {
        let e = s("");
        assert_eq!(&*redact(b"abc", &[&e]), b"abc");
    }

    #[test]
    fn one_redactor_scrubs_many_pieces_of_any_length() {
        let long = s("ghs_aVeryLongInstallationToken");
        let short = s("k3y");
        let r = Redactor::new(&[&long, &short]);
        // Shorter than either secret: nothing to find, nothing copied.
        assert!(matches!(r.redact(b"ok"), Cow::Borrowed(_)));
        // Shorter than the long secret, long enough for the short one.
        assert_eq!(&*r.redact(b"a k3y"), b"a [REDACTED]");
        assert_eq!(
            &*r.redact(b"Bearer ghs_aVeryLongInstallationToken"),
            b"Bearer [REDACTED]"
        );
        assert!(matches!(
            r.redact(b"nothing secret in here at all"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            Redactor::new(&[]).redact(b"abc"),
            Cow::Borrowed(_)
        ));
    }
}
