//! Why a head was refused.
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// Both `Content-Length` and `Transfer-Encoding`: the classic
    /// request-smuggling shape.
    #[error("both Content-Length and Transfer-Encoding are set")]
    ConflictingFraming,
    #[error("several Content-Length headers")]
    DuplicateContentLength,
    #[error("Content-Length is not a number")]
    InvalidContentLength,
    /// Any transfer coding list that does not end in exactly `chunked`
    /// (a request body would then be delimited by the connection closing).
    #[error("unsupported Transfer-Encoding (only a final \"chunked\" is accepted)")]
    UnsupportedTransferEncoding,
    #[error("the header block is larger than {limit} bytes")]
    Oversized { limit: usize },
    #[error("more than {max} headers")]
    TooManyHeaders { max: usize },
    #[error("malformed request head: {0}")]
    Unparseable(String),
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
}

impl Problem {
    /// Smuggling shapes, as opposed to merely malformed or oversized heads.
    pub fn is_smuggling(&self) -> bool {
        matches!(
            self,
            Problem::ConflictingFraming
                | Problem::DuplicateContentLength
                | Problem::UnsupportedTransferEncoding
        )
    }

    /// Too large rather than wrong (answered 431, not 400).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            Problem::Oversized { .. } | Problem::TooManyHeaders { .. }
        )
    }
}
