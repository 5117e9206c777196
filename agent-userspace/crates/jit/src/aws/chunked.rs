//! S3's signed streaming upload (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`):
//! the body is aws-chunked,
//!
//! ```text
//! <hex size>;chunk-signature=<64 hex>\r\n<data>\r\n ... 0;chunk-signature=<64 hex>\r\n\r\n
//! ```
//!
//! and each chunk's signature chains from the previous one (the seed is the
//! request's own signature). The re-signer checks every chunk against the
//! agent's chain (placeholder key) and writes it out signed in the session's
//! chain. Sizes are copied as sent and signatures are always 64 hex digits,
//! so the body keeps its length and Content-Length stays right.

use aws_lc_rs::hmac;

use super::canonical::{self, CredentialScope};
use super::error::SigError;

/// Largest chunk held in memory to check its signature (SDKs use 64 KiB
/// to 8 MiB chunks).
pub const MAX_CHUNK: u64 = 16 * 1024 * 1024;
/// A chunk header is short; anything longer is not aws-chunked.
const MAX_HEADER: usize = 256;

/// One side of a chunk signature chain.
pub(crate) struct Chain {
    pub key: hmac::Key,
    pub amz_date: String,
    pub scope: CredentialScope,
    pub previous: String,
}

impl Chain {
    fn string_to_sign(&self, chunk: &[u8]) -> String {
        canonical::chunk_string_to_sign(&self.amz_date, &self.scope, &self.previous, chunk)
    }
}

enum State {
    Header,
    Data {
        size_token: String,
        size: usize,
        signature: String,
    },
    Done,
}

/// Checks and re-signs an aws-chunked body, a piece at a time.
pub struct ChunkResigner {
    agent: Chain,
    upstream: Chain,
    state: State,
    pending: Vec<u8>,
    index: u64,
}

impl std::fmt::Debug for ChunkResigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkResigner")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl ChunkResigner {
    pub(crate) fn new(agent: Chain, upstream: Chain) -> ChunkResigner {
        ChunkResigner {
            agent,
            upstream,
            state: State::Header,
            pending: Vec::new(),
            index: 0,
        }
    }

    /// Takes the next bytes of the agent's body and returns the re-signed
    /// bytes that are complete so far (whole chunks only).
    pub fn feed(&mut self, input: &[u8]) -> Result<Vec<u8>, SigError> {
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        loop {
            match &self.state {
                State::Done => {
                    if self.pending.is_empty() {
                        return Ok(out);
                    }
                    return Err(SigError::ChunkMalformed(
                        "bytes after the final chunk".into(),
                    ));
                }
                State::Header => {
                    let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                        if self.pending.len() > MAX_HEADER {
                            return Err(SigError::ChunkMalformed("chunk header too long".into()));
                        }
                        return Ok(out);
                    };
                    let line = String::from_utf8(self.pending[..end].to_vec())
                        .map_err(|_| SigError::ChunkMalformed("chunk header is not text".into()))?;
                    self.pending.drain(..end + 2);
                    self.state = parse_header(&line)?;
                }
                State::Data {
                    size_token,
                    size,
                    signature,
                } => {
                    let size = *size;
                    if self.pending.len() < size + 2 {
                        return Ok(out);
                    }
                    if &self.pending[size..size + 2] != b"\r\n" {
                        return Err(SigError::ChunkMalformed(format!(
                            "chunk {} is not followed by CRLF",
                            self.index
                        )));
                    }
                    let data = &self.pending[..size];
                    let agent_sts = self.agent.string_to_sign(data);
                    if !canonical::signature_matches(&self.agent.key, &agent_sts, signature) {
                        return Err(SigError::ChunkSignatureMismatch { index: self.index });
                    }
                    self.agent.previous = signature.clone();
                    let new_sig =
                        canonical::sign(&self.upstream.key, &self.upstream.string_to_sign(data));
                    self.upstream.previous = new_sig.clone();
                    out.extend_from_slice(size_token.as_bytes());
                    out.extend_from_slice(b";chunk-signature=");
                    out.extend_from_slice(new_sig.as_bytes());
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\n");
                    self.pending.drain(..size + 2);
                    self.index += 1;
                    self.state = if size == 0 {
                        State::Done
                    } else {
                        State::Header
                    };
                }
            }
        }
    }

    /// Called at the end of the agent's body: it must have ended with the
    /// final (empty) chunk.
    pub fn finish(&self) -> Result<(), SigError> {
        match self.state {
            State::Done if self.pending.is_empty() => Ok(()),
            _ => Err(SigError::ChunkTruncated),
        }
    }
}

fn parse_header(line: &str) -> Result<State, SigError> {
    let (size_token, ext) = line
        .split_once(';')
        .ok_or_else(|| SigError::ChunkMalformed("chunk header has no chunk-signature".into()))?;
    let signature = ext
        .strip_prefix("chunk-signature=")
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| SigError::ChunkMalformed("chunk-signature is not 64 hex digits".into()))?;
    if size_token.is_empty() || size_token.len() > 16 {
        return Err(SigError::ChunkMalformed("chunk size is not hex".into()));
    }
    let size = u64::from_str_radix(size_token, 16)
        .map_err(|_| SigError::ChunkMalformed("chunk size is not hex".into()))?;
    if size > MAX_CHUNK {
        return Err(SigError::ChunkTooLarge {
            size,
            limit: MAX_CHUNK,
        });
    }
    Ok(State::Data {
        size_token: size_token.to_string(),
        size: size as usize,
        signature: signature.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's "Signature Calculations for the Authorization
    /// Header: Transferring Payload in Multiple Chunks" page: 65 KiB of 'a'
    /// in a 64 KiB chunk, a 1 KiB chunk and the final chunk.
    fn aws_example_chain() -> Chain {
        let scope = CredentialScope {
            date: "20130524".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
        };
        Chain {
            key: canonical::signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &scope),
            amz_date: "20130524T000000Z".into(),
            scope,
            previous: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        }
    }

    const SIGS: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];

    fn example_body(sigs: [&str; 3]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={}\r\n", sigs[0]).as_bytes());
        body.extend(std::iter::repeat_n(b'a', 65536));
        body.extend_from_slice(format!("\r\n400;chunk-signature={}\r\n", sigs[1]).as_bytes());
        body.extend(std::iter::repeat_n(b'a', 1024));
        body.extend_from_slice(format!("\r\n0;chunk-signature={}\r\n\r\n", sigs[2]).as_bytes());
        body
    }

    #[test]
    fn aws_documented_chunks_verify_and_resign_in_pieces() {
        let body = example_body(SIGS);
        // Re-signing with the same key and seed must reproduce AWS's own
        // chunk signatures, byte for byte.
        let mut r = ChunkResigner::new(aws_example_chain(), aws_example_chain());
        let mut out = Vec::new();
        for piece in body.chunks(1000) {
            out.extend(r.feed(piece).unwrap());
        }
        r.finish().unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn a_chunk_altered_in_flight_is_refused() {
        let mut body = example_body(SIGS);
        body[200] = b'b';
        let mut r = ChunkResigner::new(aws_example_chain(), aws_example_chain());
        assert_eq!(
            r.feed(&body).unwrap_err(),
            SigError::ChunkSignatureMismatch { index: 0 }
        );
    }

    #[test]
    fn a_truncated_body_is_refused_at_the_end() {
        let body = example_body(SIGS);
        let mut r = ChunkResigner::new(aws_example_chain(), aws_example_chain());
        r.feed(&body[..body.len() - 90]).unwrap();
        assert_eq!(r.finish().unwrap_err(), SigError::ChunkTruncated);
    }

    #[test]
    fn chunks_out_of_order_break_the_chain() {
        let mut r = ChunkResigner::new(aws_example_chain(), aws_example_chain());
        let mut body = Vec::new();
        body.extend_from_slice(format!("400;chunk-signature={}\r\n", SIGS[1]).as_bytes());
        body.extend(std::iter::repeat_n(b'a', 1024));
        body.extend_from_slice(b"\r\n");
        assert!(matches!(
            r.feed(&body),
            Err(SigError::ChunkSignatureMismatch { .. })
        ));
    }

    #[test]
    fn oversized_and_garbled_headers_are_refused() {
        let mut r = ChunkResigner::new(aws_example_chain(), aws_example_chain());
        let e = r
            .feed(format!("ffffffff;chunk-signature={}\r\n", SIGS[0]).as_bytes())
            .unwrap_err();
        assert!(matches!(e, SigError::ChunkTooLarge { .. }));
        let mut r = ChunkResigner::new(aws_example_chain(), aws_example_chain());
        assert!(matches!(
            r.feed(b"10\r\n"),
            Err(SigError::ChunkMalformed(_))
        ));
    }
}
