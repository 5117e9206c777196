//! Why an agent's SigV4 request was refused. Every variant is fail-closed:
//! the request is not forwarded.

/// A refused signature. Messages name headers and key ids, never secrets.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SigError {
    #[error("the request carries no AWS SigV4 signature (Authorization header or X-Amz-Signature)")]
    Unsigned,
    #[error("malformed SigV4 signature: {0}")]
    Malformed(String),
    #[error("signature algorithm {0:?} is not AWS4-HMAC-SHA256")]
    UnsupportedAlgorithm(String),
    /// An access key id Cordon never issued: the agent holds a real AWS key.
    #[error(
        "the request is signed with access key {access_key_id}, which Cordon did not issue; agents sign with the placeholder keys Cordon gives them"
    )]
    ForeignCredential { access_key_id: String },
    /// A placeholder Cordon issued to another agent instance, replayed here.
    #[error(
        "the request is signed with placeholder key {access_key_id}, which belongs to another agent instance"
    )]
    ForeignPlaceholder { access_key_id: String },
    #[error("the session token does not belong to this placeholder")]
    SessionTokenMismatch,
    #[error("the signature's date {signed_at} is outside the allowed window (now {now})")]
    OutsideWindow { signed_at: String, now: String },
    #[error("the credential scope date {scope} does not match the request date {date}")]
    ScopeDateMismatch { scope: String, date: String },
    #[error("the signature does not cover the Host header")]
    HostNotSigned,
    #[error("header {0} is signed but absent from the request")]
    SignedHeaderMissing(String),
    #[error("header {0} is not covered by the signature, so it could be altered in flight")]
    UnsignedHeader(String),
    #[error(
        "the signature does not match the request: it was altered after signing, or not signed with the placeholder secret"
    )]
    SignatureMismatch,
    #[error("the body does not match the payload hash the signature covers")]
    PayloadHashMismatch,
    #[error(
        "the signature covers the body (no x-amz-content-sha256), so the body is needed to verify it"
    )]
    BodyRequired,
    #[error("payload mode {0:?} is not supported")]
    UnsupportedPayload(String),
    #[error("malformed aws-chunked body: {0}")]
    ChunkMalformed(String),
    #[error("chunk {index} of the streaming body does not match its signature")]
    ChunkSignatureMismatch { index: u64 },
    #[error("a chunk of {size} bytes exceeds the {limit}-byte limit")]
    ChunkTooLarge { size: u64, limit: u64 },
    #[error("the streaming body ended before its final chunk")]
    ChunkTruncated,
    #[error("the session credentials cannot sign: {0}")]
    Session(String),
}
