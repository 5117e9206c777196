//! What the proxy searches an answer for when the request carried a credential.
use cordon_connectors::Spellings;
use cordon_vault::{Redactor, Secret};

/// Every spelling of an injected secret that an echo could carry back to the
/// agent: its own bytes, and the encodings the request put on the wire (the
/// base64 of a basic-auth pair, a percent-encoded query value), any of which
/// the agent could decode.
pub struct Echoes {
    spellings: Vec<Secret>,
}

impl Echoes {
    pub fn new(secret: Secret, other: Spellings) -> Echoes {
        let mut spellings = vec![secret];
        spellings.extend(other.into_vec().into_iter().map(Secret::new));
        // JSON may escape `/` (PHP does by default), and base64 has `/` in its alphabet: an
        // echo in such a body spells the secret with `\/`.
        let escaped: Vec<Secret> = spellings
            .iter()
            .filter(|s| s.expose().contains(&b'/'))
            .map(|s| {
                let mut e = zeroize::Zeroizing::new(Vec::with_capacity(s.len() + 8));
                for &b in s.expose() {
                    if b == b'/' {
                        e.push(b'\\');
                    }
                    e.push(b);
                }
                Secret::new(e)
            })
            .collect();
        spellings.extend(escaped);
        Echoes { spellings }
    }

    pub(super) fn redactor(&self) -> Redactor<'_> {
        Redactor::new(&self.spellings.iter().collect::<Vec<_>>())
    }

    /// `text` scrubbed of every spelling: for a reason that quotes what the upstream sent,
    /// which goes to the agent and the trail.
    pub fn scrub_text(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redactor().redact(text.as_bytes())).into_owned()
    }

    /// Whether a header name carries a spelling. Names are lowercased on the way in, so
    /// the search ignores case: a lowercased token still gives most of it away.
    pub(super) fn in_name(&self, name: &[u8]) -> bool {
        self.spellings.iter().any(|s| {
            let s = s.expose();
            !s.is_empty()
                && name.len() >= s.len()
                && name.windows(s.len()).any(|w| w.eq_ignore_ascii_case(s))
        })
    }

    /// The bytes a body must hold back so a spelling split across frames is whole in the next.
    pub(super) fn hold_back(&self) -> usize {
        self.spellings
            .iter()
            .map(|s| s.len().saturating_sub(1))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
impl Echoes {
    pub(super) fn spelling(&self, i: usize) -> &[u8] {
        self.spellings[i].expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spelling_with_a_slash_is_also_found_json_escaped() {
        let e = Echoes::new(Secret::from_slice(b"ab/cd+ef/gh"), Spellings::default());
        let body = br#"{"raw":"ab/cd+ef/gh","php":"ab\/cd+ef\/gh"}"#;
        assert_eq!(
            &*e.redactor().redact(body),
            br#"{"raw":"[REDACTED]","php":"[REDACTED]"}"#
        );
    }
}
