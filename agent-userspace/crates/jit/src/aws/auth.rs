//! Reading the agent's SigV4 parameters out of a request: the
//! `Authorization` header, or the `X-Amz-*` parameters of a presigned URL.

use super::canonical::{ALGORITHM, CredentialScope};
use super::encode::query_pairs;
use super::error::SigError;
use super::head::RequestHead;

/// Where the signature travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigForm {
    Header,
    /// A presigned URL valid for `expires` seconds after its date.
    Query {
        expires: u64,
    },
}

/// The agent's claimed signature, before it is checked.
#[derive(Debug, Clone)]
pub(crate) struct SigInput {
    pub access_key_id: String,
    pub scope: CredentialScope,
    /// Lower-case header names as the signature lists them.
    pub signed_headers: Vec<String>,
    pub signature: String,
    pub amz_date: String,
    pub form: SigForm,
    pub session_token: Option<String>,
}

/// The presigned-URL parameters SigV4 itself adds; they are replaced on
/// re-signing and `X-Amz-Signature` is left out of what is signed.
pub(crate) const QUERY_AUTH_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

pub(crate) fn read(head: &RequestHead<'_>) -> Result<SigInput, SigError> {
    if let Some(auth) = head.headers.get(http::header::AUTHORIZATION) {
        let text = auth
            .to_str()
            .map_err(|_| SigError::Malformed("Authorization is not ASCII".into()))?;
        return from_header(head, text);
    }
    let pairs = query_pairs(head.query);
    if pairs.iter().any(|(n, _)| n == "X-Amz-Signature") {
        return from_query(&pairs);
    }
    Err(SigError::Unsigned)
}

fn from_header(head: &RequestHead<'_>, text: &str) -> Result<SigInput, SigError> {
    let (algorithm, rest) = text
        .split_once(' ')
        .ok_or_else(|| SigError::Malformed("Authorization has no parameters".into()))?;
    if algorithm != ALGORITHM {
        return Err(SigError::UnsupportedAlgorithm(algorithm.to_string()));
    }
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| SigError::Malformed(format!("Authorization part {part:?}")))?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            other => {
                return Err(SigError::Malformed(format!(
                    "unknown Authorization field {other}"
                )));
            }
        };
        if slot.replace(v.to_string()).is_some() {
            return Err(SigError::Malformed(format!("{k} appears twice")));
        }
    }
    let need = |v: Option<String>, what: &str| {
        v.ok_or_else(|| SigError::Malformed(format!("Authorization lacks {what}")))
    };
    let (access_key_id, scope) = credential_of(&need(credential, "Credential")?)?;
    let amz_date = single_header(head, "x-amz-date")?
        .ok_or_else(|| SigError::Malformed("no X-Amz-Date header".into()))?;
    let session_token = single_header(head, "x-amz-security-token")?;
    Ok(SigInput {
        access_key_id,
        scope,
        signed_headers: signed_headers_of(&need(signed, "SignedHeaders")?)?,
        signature: need(signature, "Signature")?,
        amz_date,
        form: SigForm::Header,
        session_token,
    })
}

fn from_query(pairs: &[(String, String)]) -> Result<SigInput, SigError> {
    let get = |name: &str| -> Result<Option<String>, SigError> {
        let mut found = pairs.iter().filter(|(n, _)| n == name);
        let first = found.next().map(|(_, v)| v.clone());
        if found.next().is_some() {
            return Err(SigError::Malformed(format!("{name} appears twice")));
        }
        Ok(first)
    };
    let need = |name: &str| {
        get(name)?.ok_or_else(|| SigError::Malformed(format!("presigned URL lacks {name}")))
    };
    let algorithm = need("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(SigError::UnsupportedAlgorithm(algorithm));
    }
    let (access_key_id, scope) = credential_of(&need("X-Amz-Credential")?)?;
    let expires = need("X-Amz-Expires")?
        .parse::<u64>()
        .ok()
        .filter(|e| (1..=604_800).contains(e))
        .ok_or_else(|| SigError::Malformed("X-Amz-Expires is not 1 to 604800 seconds".into()))?;
    Ok(SigInput {
        access_key_id,
        scope,
        signed_headers: signed_headers_of(&need("X-Amz-SignedHeaders")?)?,
        signature: need("X-Amz-Signature")?,
        amz_date: need("X-Amz-Date")?,
        form: SigForm::Query { expires },
        session_token: get("X-Amz-Security-Token")?,
    })
}

/// `AKID/20150830/us-east-1/iam/aws4_request`.
fn credential_of(text: &str) -> Result<(String, CredentialScope), SigError> {
    let parts: Vec<&str> = text.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"]
            if !key.is_empty()
                && date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty()
                && !service.is_empty() =>
        {
            Ok((
                key.to_string(),
                CredentialScope {
                    date: date.to_string(),
                    region: region.to_string(),
                    service: service.to_string(),
                },
            ))
        }
        _ => Err(SigError::Malformed(format!("credential scope {text:?}"))),
    }
}

fn signed_headers_of(text: &str) -> Result<Vec<String>, SigError> {
    let list: Vec<String> = text.split(';').map(str::to_string).collect();
    let well_formed = list.iter().all(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }) && list.windows(2).all(|w| w[0] < w[1]);
    if !well_formed {
        return Err(SigError::Malformed(
            "SignedHeaders must be sorted, distinct, lower-case header names".into(),
        ));
    }
    Ok(list)
}

/// A header that must appear at most once.
fn single_header(head: &RequestHead<'_>, name: &str) -> Result<Option<String>, SigError> {
    let mut values = head.headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SigError::Malformed(format!("{name} appears twice")));
    }
    first
        .to_str()
        .map(|s| Some(s.trim().to_string()))
        .map_err(|_| SigError::Malformed(format!("{name} is not ASCII")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};

    #[test]
    fn header_form_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
            ),
        );
        headers.insert("x-amz-date", HeaderValue::from_static("20240101T000000Z"));
        let head = RequestHead::new(&Method::GET, "b.s3.amazonaws.com", "/", None, &headers);
        let s = read(&head).unwrap();
        assert_eq!(s.access_key_id, "AKID");
        assert_eq!(s.scope.region, "eu-west-1");
        assert_eq!(s.scope.service, "s3");
        assert_eq!(s.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(s.form, SigForm::Header);
    }

    #[test]
    fn bad_signatures_are_malformed_not_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKID/2024/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=ab",
            ),
        );
        headers.insert("x-amz-date", HeaderValue::from_static("20240101T000000Z"));
        let head = RequestHead::new(&Method::GET, "h", "/", None, &headers);
        assert!(matches!(read(&head), Err(SigError::Malformed(_))));
        headers.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA1 Credential=x"),
        );
        let head = RequestHead::new(&Method::GET, "h", "/", None, &headers);
        assert!(matches!(
            read(&head),
            Err(SigError::UnsupportedAlgorithm(_))
        ));
        let empty = HeaderMap::new();
        let head = RequestHead::new(&Method::GET, "h", "/", Some("a=b"), &empty);
        assert_eq!(read(&head).unwrap_err(), SigError::Unsigned);
    }

    #[test]
    fn presigned_form_is_read() {
        let headers = HeaderMap::new();
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=ff";
        let head = RequestHead::new(&Method::GET, "h", "/b/k", Some(q), &headers);
        let s = read(&head).unwrap();
        assert_eq!(s.form, SigForm::Query { expires: 60 });
        assert_eq!(s.signature, "ff");
    }
}
