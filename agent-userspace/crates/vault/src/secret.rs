//! The plaintext secret type handed to the proxy for injection.

use zeroize::Zeroizing;

/// A decrypted secret value. The bytes live in a buffer that is zeroed on drop; `Debug` never
/// shows them and there is deliberately no `Display`.
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps a buffer that already holds plaintext; the buffer is zeroed when the secret drops.
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Secret(bytes)
    }

    /// Copies `bytes` into a zeroizing buffer (the caller is responsible for its own copy).
    pub fn from_slice(bytes: &[u8]) -> Self {
        Secret(Zeroizing::new(bytes.to_vec()))
    }

    /// The plaintext. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::from_slice(b"ghp_supersecret");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s:#?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), b"ghp_supersecret");
    }
}
