//! How a vault secret is put on a request, and what the agent had put there itself.

use crate::error::CredentialError;
use crate::placeholder::{looks_like_foreign_credential, placeholder_connector};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue, PROXY_AUTHORIZATION};
use http::uri::PathAndQuery;
use http::{HeaderMap, Uri};
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
use zeroize::Zeroizing;

/// Where and how the secret goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialScheme {
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// `Authorization: Basic base64(user:secret)`; without a fixed username the secret
    /// itself must be `user:password`.
    Basic { username: Option<String> },
    /// `<header>: <secret>`.
    Header { name: HeaderName },
    /// `?<param>=<secret>`.
    Query { param: String },
}

/// A connector's credential rule. Holds no secret; the secret is passed to [`Self::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSpec {
    pub(crate) scheme: CredentialScheme,
    pub(crate) placeholder_env: Vec<String>,
}

/// The spellings of a secret that a request carries besides its own bytes: the base64 of a
/// basic-auth pair, a query value's percent-encoding. An upstream that echoes the request
/// echoes these, so whatever scrubs the secret from the answer must look for them too (the
/// agent could decode them).
#[derive(Default)]
#[must_use = "an echo in one of these spellings hands the agent the secret"]
pub struct Spellings(Vec<Zeroizing<Vec<u8>>>);

impl Spellings {
    fn add(&mut self, spelling: Vec<u8>, secret: &[u8]) {
        let spelling = Zeroizing::new(spelling);
        if !spelling.is_empty() && *spelling != secret && !self.0.contains(&spelling) {
            self.0.push(spelling);
        }
    }

    pub fn into_vec(self) -> Vec<Zeroizing<Vec<u8>>> {
        self.0
    }
}

/// What the agent sent where this credential goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Absent,
    /// Cordon's placeholder for the named connector.
    Placeholder {
        connector: String,
    },
    /// Something that looks like a real credential Cordon did not issue.
    Foreign,
    /// A value that is neither (short, empty, unknown format).
    Unrecognised,
}

impl CredentialSpec {
    pub fn scheme(&self) -> &CredentialScheme {
        &self.scheme
    }

    /// Environment variables `cordon run` fills with the placeholder.
    pub fn placeholder_env(&self) -> &[String] {
        &self.placeholder_env
    }

    /// Remove whatever credential the agent sent (`Authorization`, `Proxy-Authorization`, the
    /// scheme's header or query param) and put the real one in its place. The new header is
    /// marked sensitive so `HeaderMap`'s Debug hides it; with the query scheme the secret is in
    /// the URI, which callers must then not log. Returns the other spellings of the secret
    /// the request now carries.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        uri: &mut Uri,
        secret: &[u8],
    ) -> Result<Spellings, CredentialError> {
        headers.remove(AUTHORIZATION);
        headers.remove(PROXY_AUTHORIZATION);
        let mut spellings = Spellings::default();
        match &self.scheme {
            CredentialScheme::Bearer => {
                let mut v = Zeroizing::new(b"Bearer ".to_vec());
                v.extend_from_slice(secret);
                headers.insert(AUTHORIZATION, sensitive(&v)?);
            }
            CredentialScheme::Basic { username } => {
                let mut pair = Zeroizing::new(Vec::new());
                if let Some(user) = username {
                    pair.extend_from_slice(user.as_bytes());
                    pair.push(b':');
                } else if let Some(colon) = secret.iter().position(|&b| b == b':') {
                    // The secret is `user:password`: the password alone is what an echo
                    // that decoded the pair might show.
                    spellings.add(secret[colon + 1..].to_vec(), secret);
                } else {
                    return Err(CredentialError::BasicNeedsUserPassword);
                }
                pair.extend_from_slice(secret);
                let encoded = Zeroizing::new(STANDARD.encode(&*pair));
                let v = Zeroizing::new(format!("Basic {}", *encoded));
                headers.insert(AUTHORIZATION, sensitive(v.as_bytes())?);
                spellings.add(encoded.as_bytes().to_vec(), secret);
            }
            CredentialScheme::Header { name } => {
                headers.remove(name);
                headers.insert(name.clone(), sensitive(secret)?);
            }
            CredentialScheme::Query { param } => {
                *uri = with_query_param(uri, param, secret)?;
                spellings.add(query_value(secret).as_bytes().to_vec(), secret);
            }
        }
        Ok(spellings)
    }

    /// Classify the credential the agent sent, looking at `Authorization` and at the place
    /// this scheme uses. A foreign credential anywhere wins, so it cannot hide behind a
    /// placeholder.
    pub fn inspect(&self, headers: &HeaderMap, uri: &Uri) -> Presented {
        let mut values: Vec<Zeroizing<String>> = headers
            .get_all(AUTHORIZATION)
            .iter()
            .map(|v| Zeroizing::new(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        match &self.scheme {
            CredentialScheme::Header { name } => values.extend(
                headers
                    .get_all(name)
                    .iter()
                    .map(|v| Zeroizing::new(String::from_utf8_lossy(v.as_bytes()).into_owned())),
            ),
            CredentialScheme::Query { param } => values.extend(
                form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                    .filter(|(k, _)| k == param)
                    .map(|(_, v)| Zeroizing::new(v.into_owned())),
            ),
            CredentialScheme::Bearer | CredentialScheme::Basic { .. } => {}
        }
        if values.is_empty() {
            return Presented::Absent;
        }
        if values.iter().any(|v| looks_like_foreign_credential(v)) {
            return Presented::Foreign;
        }
        values
            .iter()
            .find_map(|v| placeholder_connector(v))
            .map_or(Presented::Unrecognised, |connector| {
                Presented::Placeholder { connector }
            })
    }
}

fn sensitive(bytes: &[u8]) -> Result<HeaderValue, CredentialError> {
    let mut v = HeaderValue::from_bytes(bytes).map_err(|_| CredentialError::InvalidHeaderValue)?;
    v.set_sensitive(true);
    Ok(v)
}

/// How a secret is spelled as a query value.
fn query_value(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(percent_encode(secret, NON_ALPHANUMERIC).to_string())
}

/// The URI with every `param` removed from the query and `param=<secret>` appended. Other
/// pairs are kept byte for byte.
fn with_query_param(uri: &Uri, param: &str, secret: &[u8]) -> Result<Uri, CredentialError> {
    let mut query = Zeroizing::new(String::new());
    for piece in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let same_key = form_urlencoded::parse(piece.as_bytes())
            .next()
            .is_some_and(|(k, _)| k == param);
        if !same_key {
            query.push_str(piece);
            query.push('&');
        }
    }
    query.extend(percent_encode(param.as_bytes(), NON_ALPHANUMERIC));
    query.push('=');
    query.push_str(&query_value(secret));
    let pq = Zeroizing::new(format!("{}?{}", uri.path(), *query));
    let mut parts = uri.clone().into_parts();
    parts.path_and_query =
        Some(PathAndQuery::try_from(pq.as_str()).map_err(|_| CredentialError::InvalidUri)?);
    Uri::from_parts(parts).map_err(|_| CredentialError::InvalidUri)
}
