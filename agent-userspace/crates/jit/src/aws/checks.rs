//! The checks of a SigV4 request other than the signature itself: whose
//! key it is, when it was signed, which headers it covers, and what it says
//! about its body.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::auth::{SigForm, SigInput};
use super::canonical::{self, STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD};
use super::error::SigError;
use super::head::RequestHead;
use super::placeholder::{AwsPlaceholder, is_placeholder_key};
use super::verify::PayloadMode;

/// How far a header-signed request's date may be from now (AWS's own
/// window).
pub const CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

pub(crate) fn check_key(input: &SigInput, placeholder: &AwsPlaceholder) -> Result<(), SigError> {
    if input.access_key_id != placeholder.access_key_id {
        let access_key_id = input.access_key_id.clone();
        return Err(if is_placeholder_key(&access_key_id) {
            SigError::ForeignPlaceholder { access_key_id }
        } else {
            SigError::ForeignCredential { access_key_id }
        });
    }
    match &input.session_token {
        Some(t) if t != &placeholder.session_token => Err(SigError::SessionTokenMismatch),
        _ => Ok(()),
    }
}

pub(crate) fn parse_amz_date(text: &str) -> Result<DateTime<Utc>, SigError> {
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .map(|n| n.and_utc())
        .map_err(|_| SigError::Malformed(format!("X-Amz-Date {text:?} is not YYYYMMDDTHHMMSSZ")))
}

pub(crate) fn amz_date(at: SystemTime) -> String {
    DateTime::<Utc>::from(at)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

pub(crate) fn check_time(input: &SigInput, now: SystemTime) -> Result<(), SigError> {
    let signed_at = parse_amz_date(&input.amz_date)?;
    if !input.amz_date.starts_with(&input.scope.date) {
        return Err(SigError::ScopeDateMismatch {
            scope: input.scope.date.clone(),
            date: input.amz_date.clone(),
        });
    }
    let now_utc = DateTime::<Utc>::from(now);
    let skew = chrono::Duration::from_std(CLOCK_SKEW).unwrap_or(chrono::Duration::zero());
    let (earliest, latest) = match input.form {
        SigForm::Header => (signed_at - skew, signed_at + skew),
        SigForm::Query { expires } => (
            signed_at - skew,
            signed_at + chrono::Duration::seconds(expires as i64),
        ),
    };
    if now_utc < earliest || now_utc > latest {
        return Err(SigError::OutsideWindow {
            signed_at: input.amz_date.clone(),
            now: amz_date(now),
        });
    }
    Ok(())
}

/// `host` must be signed, every signed header present, and no `x-amz-*`
/// header may ride along unsigned (S3 acts on many of them).
pub(crate) fn check_headers(head: &RequestHead<'_>, input: &SigInput) -> Result<(), SigError> {
    if !input.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::HostNotSigned);
    }
    for name in &input.signed_headers {
        if head.values(name).is_empty() {
            return Err(SigError::SignedHeaderMissing(name.clone()));
        }
    }
    for name in head.headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") && !input.signed_headers.iter().any(|s| s == n) {
            // The presigned form carries its date and token in the query;
            // a header of the same name would be unsigned.
            return Err(SigError::UnsignedHeader(n.to_string()));
        }
    }
    Ok(())
}

pub(crate) fn payload_of(
    head: &RequestHead<'_>,
    input: &SigInput,
    body: Option<&[u8]>,
) -> Result<PayloadMode, SigError> {
    if let SigForm::Query { .. } = input.form {
        return Ok(PayloadMode::Unsigned);
    }
    let declared = head
        .headers
        .get("x-amz-content-sha256")
        .map(|v| {
            v.to_str()
                .map(|s| s.trim().to_string())
                .map_err(|_| SigError::Malformed("x-amz-content-sha256 is not ASCII".into()))
        })
        .transpose()?;
    let mode = match declared.as_deref() {
        None => {
            let body = body.ok_or(SigError::BodyRequired)?;
            return Ok(PayloadMode::Hashed(canonical::sha256_hex(body)));
        }
        Some(UNSIGNED_PAYLOAD) => PayloadMode::Unsigned,
        Some(STREAMING_SIGNED) => PayloadMode::StreamingSigned,
        Some(STREAMING_UNSIGNED_TRAILER) => PayloadMode::StreamingUnsignedTrailer,
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            PayloadMode::Hashed(h.to_ascii_lowercase())
        }
        // Includes STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, whose signed
        // trailer is not handled.
        Some(other) => return Err(SigError::UnsupportedPayload(other.to_string())),
    };
    Ok(mode)
}
